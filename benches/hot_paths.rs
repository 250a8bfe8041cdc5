//! Micro-benchmarks of the hot paths, to find where the cost is (not timed
//! tests: nothing is asserted). Best of N wall times, in-process, warm:
//!
//! * page decode — every page header in id order, and every leaf element of the
//!   leaf pages (bounds-checked accessors only, no tree walk);
//! * leaf iteration — the whole bucket tree through `Walk` (cursors, visited set);
//! * structural check — `bolt::check` (parallel);
//! * schema decode — `MetaDb::decode_records` (parallel);
//! * digest-map build — `analysis::refs::build` (parallel);
//! * writer packing — a compact copy packed into a sink that discards it.
//!
//! `cargo bench --bench hot_paths [-- DB [ROUNDS]]`; DB defaults to
//! `bench-data/medium.db` (made by `python3 benches/bench.py`), else the largest
//! shipped fixture. `RAYON_NUM_THREADS` sets the parallel paths' threads.

use std::path::{Path, PathBuf};

use ctrdb::analysis::refs;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::writer::{self, BoltWriter, Filtered, WriterOptions};
use ctrdb::bolt::{check, DbFile, LockMode, Walk};
use ctrdb::containerd::MetaDb;

#[path = "../examples/common/mod.rs"]
mod common;
use common::{best, Null};

fn default_db() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let medium = root.join("bench-data/medium.db");
    if medium.exists() {
        return medium;
    }
    std::fs::read_dir(root.join("fixtures"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("meta.db"))
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
        .expect("no database: pass one, or run benches/bench.py for bench-data/medium.db")
}

fn main() {
    // `cargo bench` passes `--bench`; everything else positional is ours.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let path = args.next().map(PathBuf::from).unwrap_or_else(default_db);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let file = DbFile::open(&path, LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let mb = db.data().len() as f64 / 1e6;
    println!(
        "{}: {mb:.1} MB, {} threads, best of {rounds}",
        path.display(),
        rayon::current_num_threads()
    );
    let report = |name: &str, ms: f64, what: String| {
        println!(
            "{name:<16} {ms:>9.1} ms  {:>8.0} MB/s  {what}",
            mb / ms * 1e3
        );
    };

    let pages = db.pages();
    let (ms, (n_pages, n_elems)) = best(rounds, || {
        let (mut n, mut e) = (0u64, 0u64);
        for id in 0..pages.hwm() {
            let Ok(p) = pages.page(id) else { continue };
            n += 1;
            if p.kind() == Some(PageKind::Leaf) {
                for i in 0..usize::from(p.count) {
                    if let Ok(l) = p.leaf_element(i) {
                        std::hint::black_box(l);
                        e += 1;
                    }
                }
            }
        }
        (n, e)
    });
    report(
        "page decode",
        ms,
        format!("{n_pages} pages, {n_elems} leaf elements"),
    );

    let (ms, events) = best(rounds, || {
        Walk::new(&db)
            .expect("walk")
            .take_while(|e| e.is_ok())
            .count()
    });
    report("leaf iteration", ms, format!("{events} walk events"));

    let (ms, r) = best(rounds, || check::check(&db));
    report(
        "structural check",
        ms,
        format!("{} findings", r.findings.len()),
    );

    let (ms, meta) = best(rounds, || MetaDb::decode_records(&db));
    let records: usize = meta
        .namespaces
        .iter()
        .map(|n| n.images.len() + n.blobs.len() + n.snapshot_count())
        .sum();
    report(
        "schema decode",
        ms,
        format!("{records} image/blob/snapshot records"),
    );

    let (ms, map) = best(rounds, || refs::build(&meta));
    report(
        "digest-map build",
        ms,
        format!("{} digest groups", map.groups.len()),
    );

    let opts = WriterOptions::copy_of(&db).expect("root");
    let (ms, ()) = best(rounds, || {
        let mut w = BoltWriter::new(Null, opts).expect("writer");
        let mut src = Filtered::new(Walk::new(&db).expect("walk"), writer::keep_all);
        writer::copy_walk(&mut src, &mut w).expect("copy");
        w.finish().expect("finish");
    });
    report("writer packing", ms, "compact copy into a null sink".into());
}
