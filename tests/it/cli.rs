//! The command line contract: exit codes 0/1/2/3, never waiting for a lock, the
//! default path and `--root`, and the JSON envelope of `check`.

use std::fs::File;
use std::time::{Duration, Instant};

use super::common::*;

#[test]
fn locked_database_exits_3_at_once_naming_the_holder() {
    let (_, path) = fixtures().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("meta.db");
    std::fs::copy(&path, &p).unwrap();
    // Hold the exclusive lock containerd would hold.
    let holder = File::options().read(true).write(true).open(&p).unwrap();
    holder.lock().unwrap();
    for args in [&["check"][..], &["dump"][..]] {
        let t = Instant::now();
        let o = ctrdb_path(args, &p);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{args:?} waited for the lock"
        );
        assert_eq!(
            o.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("in use") && err.contains("containerd"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "holder not named: {err}"
        );
    }
    // --no-lock reads a copy anyway.
    let o = ctrdb_path(&["check", "--no-lock"], &p);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(holder);
    assert_eq!(ctrdb_path(&["check"], &p).status.code(), Some(0));
}

#[test]
fn root_flag_finds_the_database_under_a_containerd_root() {
    let (_, path) = fixtures().remove(0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("io.containerd.metadata.v1.bolt");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(&path, d.join("meta.db")).unwrap();
    let o = ctrdb(&["check", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn bad_paths_are_clear_errors_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let o = ctrdb_path(&["check"], &missing);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.db"));
    let o = ctrdb_path(&["check"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = ctrdb(&["check", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn check_json_has_the_documented_envelope() {
    for (name, path) in fixtures() {
        let o = ctrdb_path(&["check", "--format", "json", "--hash"], &path);
        assert_eq!(o.status.code(), Some(0), "{name}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["schemaVersion"], 3);
        assert_eq!(v["command"], "check");
        assert_eq!(v["tool"]["name"], "ctrdb");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(v["input"]["sha256"], super::common::sha256_hex(&bytes));
        assert_eq!(v["input"]["size"], bytes.len());
        assert!(v["input"]["txid"].as_u64().unwrap() > 0);
        assert_eq!(v["summary"]["pageSize"], 4096);
        assert_eq!(v["findings"], serde_json::json!([]));
        let freelist = &v["summary"]["freelist"];
        assert_eq!(
            freelist.is_null(),
            !name.contains("1.6"),
            "{name}: freelist mode"
        );
    }
}

#[test]
fn json_reports_hash_only_with_the_flag() {
    let (_, path) = fixtures().remove(0);
    let bytes = std::fs::read(&path).unwrap();
    for cmd in ["check", "inspect", "refs", "images", "dedup"] {
        let v = |extra: &[&str]| -> serde_json::Value {
            let args: Vec<&str> = [cmd, "--format", "json"]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            let o = ctrdb_path(&args, &path);
            assert!(matches!(o.status.code(), Some(0 | 1)), "{cmd}");
            serde_json::from_slice(&o.stdout).unwrap()
        };
        let plain = v(&[]);
        assert!(
            plain["input"]["sha256"].is_null(),
            "{cmd}: no hash unless asked"
        );
        assert_eq!(plain["input"]["size"], bytes.len(), "{cmd}");
        let hashed = v(&["--hash"]);
        assert_eq!(
            hashed["input"]["sha256"],
            super::common::sha256_hex(&bytes),
            "{cmd}"
        );
    }
}

#[test]
fn findings_exit_1_with_codes_in_json() {
    let (_, path) = fixtures().remove(0);
    let mut d = std::fs::read(&path).unwrap();
    let db = ctrdb::bolt::Db::parse(&d).unwrap();
    let (ps, root) = (db.page_size(), db.meta().root);
    d[root as usize * ps..(root as usize + 1) * ps].fill(0);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("meta.db");
    std::fs::write(&p, &d).unwrap();
    let o = ctrdb_path(&["check", "--format", "json"], &p);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["code"], "page-id-mismatch");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["page"], root);
    assert_eq!(f["offset"], root * ps as u64);
}

/// Without `DB` or `--root`: containerd's default if it has a database, else
/// the one known installation that has one (named on stderr), else an error
/// that lists every place tried; several is an error that lists them.
#[test]
fn default_database_is_discovered_among_the_known_installations() {
    use ctrdb::app::{AppError, Input};
    use ctrdb::cli::InputArgs;
    use ctrdb::containerd::roots::{self, Installation, DB_UNDER_ROOT};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, fixture) = fixtures().remove(0);
    let install = |rel: &str| {
        let db = d.join(rel).join(DB_UNDER_ROOT);
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::copy(&fixture, &db).unwrap();
        db
    };
    let default = Installation::new("containerd", d.join("var/lib/containerd"));
    let others = [
        Installation::new("k3s", d.join("k3s")),
        Installation::new("rke2", d.join("rke2")),
    ];
    let args = InputArgs {
        db: None,
        root: None,
        no_lock: false,
        hash: false,
    };
    let resolve = |a: &InputArgs| {
        let mut err = Vec::new();
        let r = Input::resolve(a, &default, &others, &mut err);
        (r, String::from_utf8(err).unwrap())
    };

    let (r, note) = resolve(&args);
    let Err(AppError::Usage(msg)) = r else {
        panic!("{r:?}")
    };
    assert!(note.is_empty());
    for i in std::iter::once(&default).chain(&others) {
        assert!(
            msg.contains(&format!("{} ({})", i.db().display(), i.name)),
            "{msg}"
        );
    }

    let k3s = install("k3s");
    let (r, note) = resolve(&args);
    assert_eq!(r.unwrap().path, k3s);
    assert_eq!(
        note,
        format!(
            "ctrdb: note: no {}; using k3s's database {} (give DB or --root DIR to choose)\n",
            default.db().display(),
            k3s.display()
        )
    );

    let rke2 = install("rke2");
    let (r, _) = resolve(&args);
    let Err(AppError::Usage(msg)) = r else {
        panic!("{r:?}")
    };
    assert!(
        msg.contains("several")
            && msg.contains(&k3s.display().to_string())
            && msg.contains(&rke2.display().to_string()),
        "{msg}"
    );
    // naming one settles it
    let (r, note) = resolve(&InputArgs {
        root: Some(d.join("rke2")),
        ..args.clone()
    });
    assert_eq!(r.unwrap().path, rke2);
    assert!(note.is_empty());

    let own = install("var/lib/containerd");
    let (r, note) = resolve(&args);
    assert_eq!(r.unwrap().path, own);
    assert!(note.is_empty(), "the default needs no note");

    // the real list: containerd's default first, then the four distributions
    let real: Vec<_> = roots::embedded().iter().map(|i| i.root.clone()).collect();
    assert_eq!(
        real,
        [
            "/var/lib/rancher/k3s/agent/containerd",
            "/var/lib/rancher/rke2/agent/containerd",
            "/var/lib/docker/containerd/daemon",
            "/var/snap/microk8s/common/var/lib/containerd",
        ]
        .map(std::path::PathBuf::from)
    );
}
