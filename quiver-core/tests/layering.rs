//! The dependency direction inside `quiver-core/src`, checked on the source: each layer names
//! only the layers below it (client → client layer → manager → proxies → pools → protocol connections → the
//! dialing layer), and the shared vocabulary (errors, origins, options, requests, stats, the
//! signal) names no layer at all. A `crate::` path in a file is a dependency of its layer.

use std::collections::BTreeSet;
use std::path::Path;

/// Layers, bottom first; a layer may name its own and lower ones.
const LAYERS: &[(&str, u32)] = &[
    ("conn", 0),
    ("timeout", 1),
    ("proto", 2),
    ("response", 3),
    ("datagram", 3),
    ("pool", 4),
    ("proxy", 5),
    ("manager", 6),
    ("layer", 7),
    ("embed", 8),
    ("client", 9),
    ("lib", 10),
];

/// Modules every layer may use, which themselves use no layer.
const VOCABULARY: &[&str] = &[
    "error", "origin", "config", "request", "signal", "stats", "events",
];

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// The top-level module a source file belongs to (`pool/h2.rs` → `pool`).
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names through `crate::` paths, tests excluded.
fn dependencies(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    // Comments (documentation links included) are not dependencies.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let mut deps = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            deps.insert(name);
        }
    }
    // `use crate::{a, b}` groups.
    for (i, _) in code.match_indices("crate::{") {
        let rest = &code[i + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(0)];
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                deps.insert(name);
            }
        }
    }
    deps
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_layer_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong = Vec::new();
    for path in &all {
        let module = module_of(path, &src);
        let text = std::fs::read_to_string(path).unwrap();
        for dep in dependencies(&text) {
            if dep == module {
                continue;
            }
            // A name re-exported at the root (`crate::Client`) counts as the root's.
            let dep = if dep.starts_with(char::is_uppercase) {
                "lib".to_owned()
            } else {
                dep
            };
            let allowed = match (rank(&module), rank(&dep)) {
                // The vocabulary names no layer.
                _ if VOCABULARY.contains(&module.as_str()) => VOCABULARY.contains(&dep.as_str()),
                _ if VOCABULARY.contains(&dep.as_str()) => true,
                (Some(from), Some(to)) => to <= from,
                _ => false,
            };
            if !allowed {
                wrong.push(format!("{} names `crate::{dep}`", path.display()));
            }
        }
    }
    assert!(
        all.len() > 30,
        "found only {} source files under {}",
        all.len(),
        src.display()
    );
    assert!(
        wrong.is_empty(),
        "dependencies against the direction:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_file_is_long_without_a_reason() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text.lines().count();
        if lines > 520 {
            let doc: String = text.lines().take_while(|l| l.starts_with("//!")).collect();
            assert!(
                doc.contains("Longer than"),
                "{} has {lines} lines and no reason in its module doc",
                path.display()
            );
        }
    }
}
