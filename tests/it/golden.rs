//! Golden outputs: `dump` of every fixture equals the committed expected file.
//! Regenerate on purpose with `CTRDB_UPDATE=1 cargo test golden`.

use super::common::*;

pub(super) fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("CTRDB_UPDATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with CTRDB_UPDATE=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let diff_line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n  expected: {:?}\n  actual:   {:?}\n(CTRDB_UPDATE=1 regenerates)",
            path.display(),
            diff_line + 1,
            expected.lines().nth(diff_line),
            actual.lines().nth(diff_line)
        );
    }
}

#[test]
fn dump_of_every_fixture_matches_golden() {
    for (name, path) in fixtures() {
        for (fmt, ext) in [("table", "dump.txt"), ("hex", "dump.hex")] {
            let o = ctrdb_path(&["dump", "--format", fmt], &path);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            golden(
                &format!("{name}.{ext}"),
                &String::from_utf8(o.stdout).unwrap(),
            );
        }
    }
}

#[test]
fn dump_of_a_subtree_is_the_matching_part_of_the_full_dump() {
    for (name, path) in fixtures() {
        let full =
            String::from_utf8(ctrdb_path(&["dump", "--format", "hex"], &path).stdout).unwrap();
        let o = ctrdb_path(
            &["dump", "--format", "hex", "--path", "v1/k8s.io/images"],
            &path,
        );
        assert_eq!(o.status.code(), Some(0), "{name}");
        let sub = String::from_utf8(o.stdout).unwrap();
        // "v1/k8s.io/images" in hex path form.
        let prefix = "7631/6b38732e696f/696d61676573";
        let expected = subtree(&full, prefix);
        assert!(!sub.is_empty(), "{name}: images dump is empty");
        assert_eq!(sub, expected, "{name}");
    }
}

/// Every bucket whose name `check` prints with escapes (`/` in image names as
/// `\x2f`) can be dumped by that printed path: `dump --path` takes the form the
/// findings use (`BucketPath`'s text) and gives exactly that subtree.
#[test]
fn dump_takes_bucket_paths_as_ctrdb_prints_them() {
    let mut escaped = 0;
    for (name, path) in fixtures() {
        let full =
            String::from_utf8(ctrdb_path(&["dump", "--format", "hex"], &path).stdout).unwrap();
        for line in full.lines().filter(|l| l.starts_with("B ")) {
            let hex_path = line.split(' ').nth(1).unwrap();
            let components: Vec<Vec<u8>> = hex_path.split('/').map(unhex).collect();
            let text = ctrdb::bolt::BucketPath(components).to_string();
            if !text.contains(r"\x") {
                continue;
            }
            escaped += 1;
            let o = ctrdb_path(&["dump", "--format", "hex", "--path", &text], &path);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name}: dump --path {text}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let expected = subtree(&full, hex_path);
            assert_eq!(
                String::from_utf8(o.stdout).unwrap(),
                expected,
                "{name}: {text}"
            );
        }
    }
    assert!(
        escaped > 10,
        "only {escaped} bucket names with escapes in the fixtures"
    );

    // a backslash that is not an escape is refused, not taken literally
    let (_, db) = fixtures().into_iter().next().unwrap();
    let o = ctrdb_path(&["dump", "--path", r"v1/default/images/a\q"], &db);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(r"\x2f"));
}

/// The lines of a hex dump at or below the bucket `hex_path`.
fn subtree(full: &str, hex_path: &str) -> String {
    full.lines()
        .filter(|l| {
            let p = l.split(' ').nth(1).unwrap_or("");
            p == hex_path || p.starts_with(&format!("{hex_path}/"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
