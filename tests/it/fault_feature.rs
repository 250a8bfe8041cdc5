//! The `CTRDB_FAULT` hook exists only in builds with the `fault-injection`
//! feature: `src/fault.rs` is compiled here on its own (it names nothing of
//! ctrdb), once without and once with the feature, into a program that passes
//! a fault point with the variable set. Without the feature the point does
//! nothing; with it the point fails, which shows the program does reach it.

use std::path::Path;
use std::process::Command;

use super::common::repo;

/// Builds `src/fault.rs` and a caller of `fault::point` in `dir`, `features`
/// passed as `--cfg`, and runs the caller with `CTRDB_FAULT=after-lock:error`.
/// Returns what it printed: `ok` or `error`.
fn run_point(dir: &Path, name: &str, features: &[&str]) -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let cfgs: Vec<String> = features
        .iter()
        .flat_map(|f| ["--cfg".to_string(), format!("feature=\"{f}\"")])
        .collect();
    let lib = dir.join(format!("libfault_{name}.rlib"));
    let o = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "rlib",
            "--crate-name",
            "fault",
        ])
        .args(&cfgs)
        .arg(repo().join("src/fault.rs"))
        .arg("-o")
        .arg(&lib)
        .output()
        .expect("run rustc");
    assert!(
        o.status.success(),
        "rustc fault.rs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let main = dir.join(format!("{name}.rs"));
    std::fs::write(
        &main,
        "fn main() { print!(\"{}\", if fault::point(\"after-lock\").is_err() { \"error\" } else { \"ok\" }); }\n",
    )
    .expect("write main");
    let exe = dir.join(name);
    let o = Command::new(&rustc)
        .args(["--edition", "2021", "--extern"])
        .arg(format!("fault={}", lib.display()))
        .arg(&main)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run rustc");
    assert!(
        o.status.success(),
        "rustc {name}.rs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(&exe)
        .env("CTRDB_FAULT", "after-lock:error")
        .output()
        .expect("run the caller");
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn fault_points_do_nothing_without_the_feature() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(run_point(dir.path(), "without", &[]), "ok");
    assert_eq!(run_point(dir.path(), "with", &["fault-injection"]), "error");
}
