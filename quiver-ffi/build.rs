//! Generates `quiver.h` with cbindgen into `OUT_DIR` (a test and tests/c/run.sh compare it
//! with the checked-in `include/quiver.h`; `QUIVER_UPDATE_HEADER=1` rewrites that one too),
//! and gives the cdylib its SONAME.

use std::path::{Path, PathBuf};

/// The ABI version: the SONAME is `libquiver.so.<ABI_VERSION>`; bump it on an ABI break.
const ABI_VERSION: u32 = 0;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));

    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libquiver.so.{ABI_VERSION}");
    }

    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=QUIVER_UPDATE_HEADER");
    for entry in std::fs::read_dir(crate_dir.join("src")).expect("src/") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("src entry").path().display()
        );
    }

    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let header = out_dir.join("quiver.h");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not generate quiver.h")
        .write_to_file(&header);
    println!(
        "cargo:rustc-env=QUIVER_GENERATED_HEADER={}",
        header.display()
    );

    if std::env::var_os("QUIVER_UPDATE_HEADER").is_some_and(|v| v == "1") {
        let checked_in: &Path = &crate_dir.join("../include/quiver.h");
        std::fs::copy(&header, checked_in).expect("cannot write include/quiver.h");
    }
}
