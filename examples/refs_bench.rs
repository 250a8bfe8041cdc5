//! Times the schema decode and the digest → references map build on a file:
//! `RAYON_NUM_THREADS=N cargo run --release --example refs_bench -- DB [ROUNDS]`.

use std::time::Instant;

use ctrdb::analysis::refs;
use ctrdb::bolt::{DbFile, LockMode};
use ctrdb::containerd::MetaDb;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: refs_bench DB [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let file = DbFile::open(path.as_ref(), LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let (mut best_decode, mut best_build) = (f64::MAX, f64::MAX);
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let meta = MetaDb::decode(&db);
        let d = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let map = refs::build(&meta);
        let b = t.elapsed().as_secs_f64();
        best_decode = best_decode.min(d);
        best_build = best_build.min(b);
        let images: usize = meta.namespaces.iter().map(|n| n.images.len()).sum();
        last = Some((
            meta.namespaces.len(),
            images,
            map.groups.len(),
            map.multi_name_groups().count(),
            meta.findings.len(),
        ));
    }
    let (ns, images, groups, multi, findings) = last.unwrap_or_default();
    println!(
        "threads={} namespaces={ns} images={images} groups={groups} multi={multi} findings={findings} decode_ms={:.1} build_ms={:.1} (best of {rounds})",
        rayon::current_num_threads(),
        best_decode * 1e3,
        best_build * 1e3
    );
}
