//! The layers of `src/` (docs/architecture.md) depend one way: each module
//! names only the layers below it. This reads every source file and fails on a
//! `crate::…` path that reaches up or sideways, on serialization outside the
//! report layer, and on words of the upper layers (containerd, the command
//! line) in the format layer's messages.

use std::path::{Path, PathBuf};

/// Which top-level modules each layer may name (besides itself).
const LAYERS: &[(&str, &[&str])] = &[
    // Leaf helpers.
    ("bytes", &[]),
    ("time", &[]),
    ("fault", &[]),
    ("heapstats", &[]),
    // OCI documents in containerd's content store (a foreign JSON format,
    // read with serde_json).
    ("oci", &[]),
    // The bbolt format.
    ("bolt", &["bytes", "time", "fault"]),
    // The verified-write protocol.
    ("fsio", &["bytes", "time", "fault", "bolt"]),
    // containerd's schema.
    ("containerd", &["bytes", "time", "bolt"]),
    // The planners: digest map, GC model, dedup plan.
    ("analysis", &["bytes", "time", "bolt", "containerd"]),
    // Operations that write.
    (
        "ops",
        &[
            "bytes",
            "time",
            "fault",
            "bolt",
            "fsio",
            "containerd",
            "analysis",
            "oci",
        ],
    ),
    // The output formats.
    (
        "report",
        &[
            "bytes",
            "time",
            "bolt",
            "fsio",
            "containerd",
            "analysis",
            "ops",
            "oci",
        ],
    ),
    // The command line: values are parsed into domain types at the boundary.
    ("cli", &["bolt", "analysis", "report", "oci"]),
    // The commands.
    (
        "app",
        &[
            "bytes",
            "time",
            "fault",
            "bolt",
            "fsio",
            "containerd",
            "analysis",
            "ops",
            "oci",
            "report",
            "cli",
        ],
    ),
];

/// Layers that must not serialize: the wire format lives in `report`.
const NO_SERDE: &[&str] = &[
    "bytes",
    "time",
    "bolt",
    "fsio",
    "containerd",
    "analysis",
    "ops",
];

/// Words of the upper layers that the format layer's code must not contain.
const NOT_IN_BOLT: &[&str] = &["containerd", "dockerd", "k3s", "rke2", "--force", "--"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None`: lib.rs, main.rs).
fn layer_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a file without its unit tests (everything from the first
/// `#[cfg(test)]` on) and without comment lines.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
        .collect()
}

/// Every top-level module named by a `crate::` path on `line`, including the
/// `use crate::{a, b}` form.
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `ctrdb::crate::` or an identifier ending in `crate`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// The string literals on a line (`"…"`, escapes kept as written).
fn string_literals(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            out.push(&line[start..i.min(line.len())]);
        }
        i += 1;
    }
    out
}

#[test]
fn layering_each_module_names_only_the_layers_below_it() {
    let src = super::common::repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut problems = Vec::new();
    let mut seen_layers = std::collections::BTreeSet::new();
    for file in &files {
        let Some(layer) = layer_of(&src, file) else {
            continue;
        };
        let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer) else {
            problems.push(format!(
                "{}: the module `{layer}` has no place in the layer table of tests/it/layering.rs \
                 (and docs/architecture.md)",
                file.display()
            ));
            continue;
        };
        seen_layers.insert(layer.clone());
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in code_lines(&text) {
            for target in crate_refs(line) {
                if target != layer && !allowed.contains(&target.as_str()) && target != "testing" {
                    problems.push(format!(
                        "{}:{n}: `{layer}` names `crate::{target}`, which is not below it: {}",
                        file.display(),
                        line.trim()
                    ));
                }
            }
            if NO_SERDE.contains(&layer.as_str())
                && (line.contains("serde") || line.contains("Serialize"))
            {
                problems.push(format!(
                    "{}:{n}: serialization outside `report`: {}",
                    file.display(),
                    line.trim()
                ));
            }
            if layer == "bolt" {
                for lit in string_literals(line) {
                    let lower = lit.to_ascii_lowercase();
                    for word in NOT_IN_BOLT {
                        let hit = if *word == "--" {
                            lit.split_whitespace().any(|w| {
                                w.strip_prefix("--").is_some_and(|f| {
                                    f.starts_with(|c: char| c.is_ascii_lowercase())
                                })
                            })
                        } else {
                            lower.contains(word)
                        };
                        if hit {
                            problems.push(format!(
                                "{}:{n}: the format layer speaks of `{word}`: \"{lit}\"",
                                file.display()
                            ));
                        }
                    }
                }
            }
        }
    }
    for (layer, _) in LAYERS {
        assert!(
            seen_layers.contains(*layer) || *layer == "heapstats",
            "the layer `{layer}` has no files under src/ (the table is stale)"
        );
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

/// The checker of this test finds what it must: a made-up upward import, a
/// grouped import, and a flag in a message.
#[test]
fn layering_check_sees_what_it_must() {
    assert_eq!(crate_refs("use crate::report::Bytes;"), ["report"]);
    assert_eq!(
        crate_refs("use crate::{bolt, containerd::MetaDb};"),
        ["bolt", "containerd"]
    );
    assert_eq!(
        crate_refs("    let x = crate::ops::copy::compact(db);"),
        ["ops"]
    );
    assert!(crate_refs("use ctrdb::report::Bytes;").is_empty());
    assert_eq!(
        string_literals(r#"format!("'{0}' exists (use --force)", "a\"b")"#),
        ["'{0}' exists (use --force)", "a\\\"b"]
    );
    assert_eq!(
        code_lines("use a;\n// use crate::app;\n#[cfg(test)]\nuse crate::app;"),
        [(1, "use a;")]
    );
}

/// The bbolt reader modules, whose reads of file bytes must not panic.
const NO_INDEXING: &[&str] = &[
    "bolt/page.rs",
    "bolt/meta.rs",
    "bolt/freelist.rs",
    "bolt/pageset.rs",
    "bolt/tree.rs",
    "bolt/bucket.rs",
    "bolt/walk.rs",
    "bolt/check/mod.rs",
    "bolt/check/walker.rs",
    "bolt/check/order.rs",
];

/// Every reader module denies `clippy::indexing_slicing` for its code (unit
/// tests may index), so a panicking read of file bytes fails the lint run.
#[test]
fn layering_reader_modules_deny_indexing() {
    let src = super::common::repo().join("src");
    for m in NO_INDEXING {
        let text = std::fs::read_to_string(src.join(m)).expect("read a reader module");
        assert!(
            text.lines()
                .any(|l| l.trim() == "#![deny(clippy::indexing_slicing)]"),
            "src/{m} does not deny clippy::indexing_slicing"
        );
    }
}
