//! ctrdb: offline inspection, checking and repair of containerd's `meta.db`.
//!
//! Layers, data flowing one way: [`bolt`] (the bbolt file format, no containerd
//! knowledge) → `containerd` (schema decode) → analysis, dedup plan and GC model →
//! [`report`] and [`app`] (the commands). `main.rs` only parses arguments and maps
//! the outcome to an exit code.

#![deny(missing_debug_implementations)]

pub mod analysis;
pub mod app;
pub mod bolt;
pub mod bytes;
pub mod cli;
pub mod containerd;
pub mod fault;
pub mod fsio;
#[cfg(feature = "heap-stats")]
pub mod heapstats;
pub mod oci;
pub mod ops;
pub mod report;
pub mod time;

/// Unit-test support: the real containerd fixtures.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use crate::bolt::{Db, DbFile, LockMode};

    /// Runs `f` on each real containerd fixture's `meta.db` (at least three).
    pub fn for_each_fixture_db(mut f: impl FnMut(&Path, &Db<'_>)) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .map(|e| e.expect("entry").path().join("meta.db"))
            .filter(|p| p.exists())
            .collect();
        paths.sort();
        assert!(
            paths.len() >= 3,
            "expected the real fixtures under {}",
            dir.display()
        );
        for path in paths {
            let file = DbFile::open(&path, LockMode::None).expect("open");
            f(&path, &file.db().expect("parse"));
        }
    }
}
