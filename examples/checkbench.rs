//! Times only the structural check, best of N rounds:
//! `RAYON_NUM_THREADS=N cargo run --release --example checkbench -- DB [ROUNDS]`.

use std::time::Instant;

use ctrdb::bolt::{check, DbFile, LockMode};

/// CPU time of every thread of this process so far, in ms (from schedstat).
fn cpu_ms() -> f64 {
    let mut ns = 0u64;
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e6
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: checkbench DB [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let file = DbFile::open(path.as_ref(), LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut all = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let c = cpu_ms();
        let t = Instant::now();
        let r = check::check(&db);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        best_cpu = best_cpu.min(cpu_ms() - c);
        last = Some(r);
        best = best.min(ms);
        all.push(format!("{ms:.0}"));
    }
    let r = last.expect("at least one round");
    println!(
        "threads={} findings={} buckets={} keys={} pages={:?} check_best_ms={best:.1} cpu_best_ms={best_cpu:.1} rounds=[{}]",
        rayon::current_num_threads(),
        r.findings.len(),
        r.buckets,
        r.keys,
        r.pages,
        all.join(" ")
    );
}
