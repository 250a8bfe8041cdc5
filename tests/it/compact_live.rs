//! `compact` against real programs beyond the fixtures' own tests: each fixture's
//! own containerd serves exactly the same objects from the compacted copy, and
//! files written by Go bbolt at realistic scale compact to copies Go checks clean
//! with identical content (CRC over every bucket, sequence, key and value).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::tool_dir;
use super::live::{assert_same_listing, compare_startup, fixture_dir, VERSIONS};

fn compact(src: &Path, out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .arg("compact")
        .arg(src)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "compact {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn live_containerd_serves_the_same_objects_from_a_compacted_copy() {
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("meta.db");
        compact(&fx.join("meta.db"), &out);
        let Some((orig, compacted)) = compare_startup(v, &fx, &fx.join("meta.db"), &out) else {
            continue;
        };
        assert!(
            orig.contains("docker.io/library/tiny:1.0"),
            "containerd {v}: listing looks empty:\n{orig}"
        );
        assert_same_listing(
            &format!("containerd {v}: original vs compacted"),
            &orig,
            &compacted,
        );
    }
}

/// perfgen's tools (`benches/perfgen`, built by `.ci/install-deps.sh`).
fn perfgen_bin(test: &str) -> Option<PathBuf> {
    tool_dir(
        test,
        "CTRDB_PERFGEN_BIN",
        "/var/cache/ctrdb-deps/perfgen",
        &["gen", "walk", "check"],
        "perfgen tools",
    )
}

/// The content line of perfgen's `walk -crc`: bucket/key counts and the CRC32C of
/// every key, value and bucket sequence in walk order.
fn go_content(bin: &Path, db: &Path) -> String {
    let o = Command::new(bin.join("walk"))
        .arg("-crc")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "Go walk {}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("buckets ") || l.starts_with("crc32c "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn go_written_files_at_scale_compact_to_go_clean_identical_copies() {
    let Some(bin) = perfgen_bin("go_written_files_at_scale_compact_to_go_clean_identical_copies")
    else {
        return;
    };
    // ~20 MB always; ~250 MB churned in CI (CI=true) or with CTRDB_HEAVY_TESTS;
    // ~1.1 GB churned only with CTRDB_HEAVY_TESTS. Flags as in benches/bench.py.
    let heavy = std::env::var_os("CTRDB_HEAVY_TESTS").is_some();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut sets: Vec<(&str, Vec<&str>)> =
        vec![("small", vec!["-namespaces", "4", "-images-per-ns", "64"])];
    if heavy || ci {
        sets.push((
            "medium",
            vec!["-namespaces", "8", "-images-per-ns", "330", "-churn", "30"],
        ));
    }
    if heavy {
        sets.push((
            "large",
            vec!["-namespaces", "16", "-images-per-ns", "720", "-churn", "30"],
        ));
    }
    for (name, flags) in sets {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join(format!("{name}.db"));
        let g = Command::new(bin.join("gen"))
            .arg("-out")
            .arg(&src)
            .args(&flags)
            .output()
            .unwrap();
        assert!(
            g.status.success(),
            "gen {name}: {}",
            String::from_utf8_lossy(&g.stderr)
        );
        let out = dir.path().join(format!("{name}.compact.db"));
        compact(&src, &out);
        let c = Command::new(bin.join("check")).arg(&out).output().unwrap();
        assert!(
            c.status.success(),
            "{name}: Go tx.Check failed on the compacted copy: {}",
            String::from_utf8_lossy(&c.stdout)
        );
        let (before, after) = (go_content(&bin, &src), go_content(&bin, &out));
        assert!(before.contains("crc32c"), "{name}: {before}");
        assert_eq!(
            before, after,
            "{name}: Go sees different content after compaction"
        );
        let (sb, sa) = (
            std::fs::metadata(&src).unwrap().len(),
            std::fs::metadata(&out).unwrap().len(),
        );
        assert!(
            sa < sb,
            "{name}: compacted copy is not smaller ({sa} >= {sb})"
        );
        eprintln!("compact {name}: {sb} -> {sa} bytes, Go check OK, content CRC equal");
    }
}
