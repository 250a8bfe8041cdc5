//! The containerd release `fixtures/gen/get-containerd.sh` picks from a
//! suite's Packages index, offline: the package of the pinned upstream
//! version when the suite still has it (the newest Debian revision of it),
//! else the newest of the same major.minor series — never another series, and
//! nothing (exit 1) when the series is gone too. Debian's version ordering
//! decides "newest" (`~` sorts before everything).

use std::io::Write;
use std::process::{Command, Stdio};

use super::common::*;

/// Runs `select_version VERSION` of the script on `index` (a Packages file's text).
fn select(version: &str, index: &str) -> (bool, String) {
    let script = repo().join("fixtures/gen/get-containerd.sh");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && packages_versions | select_version '{version}'",
            script.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(index.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        o.status.success(),
        String::from_utf8(o.stdout).unwrap().trim_end().to_string(),
    )
}

fn stanza(package: &str, version: &str) -> String {
    format!("Package: {package}\nSource: containerd\nVersion: {version}\nArchitecture: amd64\nDescription: x\n\n")
}

#[test]
fn the_pinned_release_else_the_newest_of_its_series() {
    for tool in ["bash", "dpkg"] {
        if Command::new(tool).arg("--version").output().is_err() {
            skip_or_fail(&test_name(), &format!("{tool} not found"));
            return;
        }
    }
    let index: String = [
        stanza("containerd", "1.7.24~ds1-6"),
        stanza("containerd", "1.7.24~ds1-6+deb13u1"),
        stanza("golang-github-containerd-containerd-dev", "1.7.99~ds1-1"),
        stanza("containerd", "1.7.25~ds1-1"),
        stanza("containerd", "1.7.3~ds1-1"),
        stanza("containerd", "2.1.9+ds1-5"),
        stanza("containerd", "2.2.0+ds1-1"),
        stanza("containerd", "1:1.6.30~ds1-1"),
    ]
    .concat();
    // still there: the newest revision of exactly that release
    assert_eq!(
        select("1.7.24", &index),
        (true, "exact 1.7.24~ds1-6+deb13u1".into())
    );
    assert_eq!(select("2.1.9", &index), (true, "exact 2.1.9+ds1-5".into()));
    // gone: the newest of the series (1.7.25 beats 1.7.3; the -dev package is not containerd)
    assert_eq!(
        select("1.7.20", &index),
        (true, "series 1.7.25~ds1-1".into())
    );
    assert_eq!(select("2.1.7", &index), (true, "series 2.1.9+ds1-5".into()));
    // an epoch does not hide the upstream version
    assert_eq!(
        select("1.6.30", &index),
        (true, "exact 1:1.6.30~ds1-1".into())
    );
    assert_eq!(
        select("1.6.20", &index),
        (true, "series 1:1.6.30~ds1-1".into())
    );
    // no package of the series at all: nothing is chosen
    assert_eq!(select("1.5.9", &index), (false, String::new()));
    assert_eq!(select("1.7.24", ""), (false, String::new()));
}
