//! The generated and hand-written documents stay in step with the code: `docs/options.md` is
//! generated from the options table (`QUIVER_UPDATE_DOCS=1 cargo test -p quiver-core --test
//! docs`, or `make docs`, rewrites it), and `docs/errors.md` has a row for every error kind.

use quiver_core::ErrorKind;

const OPTIONS_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/options.md");

#[test]
fn options_doc_is_generated_from_the_table() {
    let generated = quiver_core::options_markdown();
    if std::env::var_os("QUIVER_UPDATE_DOCS").is_some() {
        std::fs::write(OPTIONS_MD, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(OPTIONS_MD).unwrap();
    assert!(
        checked_in == generated,
        "docs/options.md is stale: run `make docs` and commit it"
    );
}

#[test]
fn docs_list_every_error_kind_and_option() {
    let errors =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/errors.md")).unwrap();
    for kind in ErrorKind::ALL {
        let row = format!("| `{}` | {} |", kind.as_str(), kind.class());
        assert!(
            errors.contains(&row),
            "docs/errors.md lacks the row for {kind}"
        );
    }
    let options =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/options.md"))
            .unwrap();
    for name in quiver_core::PoolSettings::NAMES {
        assert!(
            options.contains(&format!("| `{name}` |")),
            "docs/options.md lacks {name}"
        );
    }
}
