//! Times only the structural check, best of N rounds:
//! `RAYON_NUM_THREADS=N cargo run --release --example checkbench -- DB [ROUNDS]`.

use std::time::Instant;

use ctrdb::bolt::{check, DbFile, LockMode};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: checkbench DB [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let file = DbFile::open(path.as_ref(), LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let mut best = f64::MAX;
    let mut all = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let r = check::check(&db);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        last = Some(r);
        best = best.min(ms);
        all.push(format!("{ms:.0}"));
    }
    let r = last.expect("at least one round");
    println!(
        "threads={} findings={} buckets={} keys={} pages={:?} check_best_ms={best:.1} rounds=[{}]",
        rayon::current_num_threads(),
        r.findings.len(),
        r.buckets,
        r.keys,
        r.pages,
        all.join(" ")
    );
}
