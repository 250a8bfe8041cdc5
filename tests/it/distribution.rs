//! What the README promises about building and shipping holds for the
//! manifest: the minimum Rust it names is `Cargo.toml`'s `rust-version`, the
//! `dist` profile it describes is stripped, link-time optimized, in one codegen
//! unit and without debug information, and `release` keeps the line tables the
//! benchmarks need.

use super::common::repo;

/// The `key = value` lines of the `[section]` table of a TOML file, as written.
fn table(toml: &str, section: &str) -> Vec<(String, String)> {
    let header = format!("[{section}]");
    toml.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn value<'t>(t: &'t [(String, String)], key: &str) -> Option<&'t str> {
    t.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn readme_names_the_manifests_minimum_rust() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let package = table(&manifest, "package");
    let version = value(&package, "rust-version")
        .expect("rust-version")
        .trim_matches('"');
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("**Rust {version} or newer**")),
        "README must name rust-version {version} as the minimum"
    );
    assert!(readme.contains(&format!("rustc {version}.0 or newer")));
    assert!(readme.contains("build-essential"));
}

#[test]
fn dist_profile_is_the_shipped_binary_and_release_keeps_symbols() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let dist = table(&manifest, "profile.dist");
    assert_eq!(value(&dist, "inherits"), Some("\"release\""));
    assert_eq!(value(&dist, "strip"), Some("true"));
    assert_eq!(value(&dist, "debug"), Some("false"));
    assert_eq!(value(&dist, "lto"), Some("\"fat\""));
    assert_eq!(value(&dist, "codegen-units"), Some("1"));
    let release = table(&manifest, "profile.release");
    assert_eq!(
        value(&release, "debug"),
        Some("1"),
        "benchmarks need line tables"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("cargo build --profile dist --locked"));
    assert!(readme.contains("**`target/dist/ctrdb`**"));
}
