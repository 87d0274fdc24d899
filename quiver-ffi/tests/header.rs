//! The checked-in `include/quiver.h` must be what cbindgen generates from this crate now.

#[test]
fn checked_in_header_is_current() {
    let generated = std::fs::read_to_string(env!("QUIVER_GENERATED_HEADER"))
        .expect("build.rs writes the generated header");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/quiver.h");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "include/quiver.h is stale: regenerate it with `make header` \
         (QUIVER_UPDATE_HEADER=1 cargo build -p quiver-ffi) and commit it"
    );
}
