//! Seeded random mutations of the real fixtures through every read path (open,
//! check, full walk, key lookups; every third also the containerd decode, the
//! digest map, the dedup plan under each policy and the GC model) and, every tenth,
//! through the writer (what `compact` and `dedup --output` do) to memory.
//! Invariants: no input makes ctrdb panic, hang or take time out of proportion to
//! the file; whenever the writer produces a file, that file verifies (check clean,
//! walk equal to the source) — and a sample of them passes Go's `tx.Check`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::io::Cursor;

use ctrdb::analysis::dedup::{self, PlanOptions, Policy};
use ctrdb::analysis::gc::{self, GcOptions, GcRules};
use ctrdb::bolt::layout::*;
use ctrdb::bolt::writer::{self, BoltWriter, Filtered, WriterOptions};
use ctrdb::bolt::{check, BucketPath, Db, Walk};
use ctrdb::containerd::MetaDb;

use super::common::*;

/// Mutations per fixture; three fixtures give more than 10 000 in all.
const MUTATIONS_PER_FIXTURE: u64 = 3_500;

/// Applies one random mutation of a kind chosen by `rng`.
pub fn mutate(d: &mut Vec<u8>, ps: usize, rng: &mut Rng) -> &'static str {
    let pages = (d.len() / ps).max(1) as u64;
    let page_off = |rng: &mut Rng| rng.below(pages) as usize * ps;
    match rng.below(9) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(d.len() as u64) as usize;
                d[i] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        1 => {
            let o = page_off(rng) + rng.below(PAGE_HEADER_SIZE as u64) as usize;
            let n = (1 + rng.below(8) as usize).min(d.len() - o);
            for b in &mut d[o..o + n] {
                *b = rng.next_u64() as u8;
            }
            "page header run"
        }
        2 => {
            let o = page_off(rng) + PAGE_HEADER_SIZE + rng.below(16 * 8) as usize;
            if o + 8 <= d.len() {
                let v = [
                    0u64,
                    1,
                    0xFFFF,
                    0xFFFF_FFFF,
                    u64::MAX,
                    rng.next_u64(),
                    rng.below(4096),
                ][rng.below(7) as usize];
                let w = [2usize, 4, 8][rng.below(3) as usize];
                d[o..o + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
            "element field"
        }
        3 => {
            let o = rng.below(d.len() as u64) as usize;
            let n = (1 + rng.below(64) as usize).min(d.len() - o);
            for b in &mut d[o..o + n] {
                *b = rng.next_u64() as u8;
            }
            "value run"
        }
        4 => {
            let cut = rng.below(d.len() as u64) as usize;
            d.truncate(cut);
            "truncation"
        }
        5 => {
            let (a, b) = (page_off(rng), page_off(rng));
            if a != b {
                let pa = d[a..a + ps].to_vec();
                let pb = d[b..b + ps].to_vec();
                d[a..a + ps].copy_from_slice(&pb);
                d[b..b + ps].copy_from_slice(&pa);
            }
            "pages swapped"
        }
        6 => {
            let (a, b) = (page_off(rng), page_off(rng));
            let pa = d[a..a + ps].to_vec();
            d[b..b + ps].copy_from_slice(&pa);
            "page duplicated"
        }
        7 => {
            let m = rng.below(2) as usize * ps;
            let o = m + META_OFFSET + rng.below((META_END - META_OFFSET) as u64) as usize;
            d[o] = rng.next_u64() as u8;
            "meta damaged"
        }
        _ => {
            // Damage a meta field and fix its checksum, so Go would accept it.
            let m = rng.below(2) as usize * ps;
            let field =
                [META_ROOT, META_FREELIST, META_PGID, META_PAGE_SIZE][rng.below(4) as usize];
            let v =
                [0u64, 1, 2, 3, u64::MAX, rng.next_u64(), rng.below(256)][rng.below(7) as usize];
            let w = if field == META_PAGE_SIZE { 4 } else { 8 };
            d[m + field..m + field + w].copy_from_slice(&v.to_le_bytes()[..w]);
            let sum = ctrdb::bolt::testing::fnv1a64(&d[m + META_OFFSET..m + META_CHECKSUM]);
            d[m + META_CHECKSUM..m + META_CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
            "meta rewritten with a valid checksum"
        }
    }
}

/// Runs every read path over `d`. Returns the number of walk events.
pub fn exercise(d: &[u8]) -> usize {
    let Ok(db) = Db::parse(d) else { return 0 };
    let report = check::check(&db);
    let _ = report.errors();
    let mut events = 0;
    if let Ok(mut w) = Walk::new(&db) {
        while let Some(ev) = w.next_event() {
            events += 1;
            if ev.is_err() {
                break;
            }
        }
    }
    for path in [
        "v1",
        "v1/k8s.io/images",
        "v1/default/content/blob",
        "v1/moby/containers",
    ] {
        if let Ok(Some(b)) = db.bucket(&path.parse::<BucketPath>().expect("a bucket path")) {
            for e in b.iter().take(1000) {
                if e.is_err() {
                    break;
                }
            }
            let _ = b.get(b"version");
        }
    }
    let _ = db.freelist();
    events
}

/// The containerd layer: decode, digest map, dedup plans and GC impact.
pub fn exercise_containerd(d: &[u8]) {
    let Ok(db) = Db::parse(d) else { return };
    let meta = MetaDb::decode(&db);
    let _ = ctrdb::analysis::refs::build(&meta);
    let opts = GcOptions {
        now: std::time::SystemTime::now(),
        rules: GcRules::for_file(&meta, db.meta().has_freelist()),
    };
    let before = gc::collectable(&meta, &opts);
    for policy in [Policy::Safe, Policy::Tagged, Policy::OnePerDigest] {
        let plan = dedup::plan(
            &meta,
            &PlanOptions {
                policy,
                keep: Vec::new(),
                namespaces: Vec::new(),
            },
        );
        let removed: BTreeSet<_> = plan.removed();
        let _ = gc::collectable_without(&meta, &removed, &opts).minus(&before);
    }
}

/// What `compact` does, in memory: copy the tree through the writer. Returns the
/// new file if the writer finished and the file verifies (what the command keeps);
/// panics if a clean source gives a file that does not verify.
pub fn exercise_write(d: &[u8], what: &str) -> Option<Vec<u8>> {
    let db = Db::parse(d).ok()?;
    let opts = WriterOptions::copy_of(&db).ok()?;
    let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).ok()?;
    let mut src = Filtered::new(Walk::new(&db).ok()?, writer::keep_all);
    writer::copy_walk(&mut src, &mut w).ok()?;
    let (cur, _) = w.finish().ok()?;
    let out = cur.into_inner();
    // The command verifies before it renames: a file that fails is removed. A clean
    // source must always give a file that passes; a damaged one may be refused.
    let source_clean = check::check(&db).findings.is_empty();
    let verified = (|| {
        let copy = Db::parse(&out).map_err(|e| format!("unreadable: {e}"))?;
        let r = check::check(&copy);
        if let Some(f) = r.findings.first() {
            return Err(format!("findings: {f:?}"));
        }
        let mut src = Filtered::new(Walk::new(&db).map_err(|e| e.to_string())?, writer::keep_all);
        let mut cw = Walk::new(&copy).map_err(|e| e.to_string())?;
        writer::compare(&mut src, &mut cw).map_err(|e| format!("differs: {e:?}"))?;
        Ok::<(), String>(())
    })();
    match verified {
        Ok(()) => {}
        Err(e) if source_clean => {
            panic!("{what}: a clean source was rewritten to a file that fails verification: {e}")
        }
        Err(_) => return None, // `compact`/`dedup --output` refuse it and remove the file
    }
    Some(out)
}

#[test]
fn seeded_mutations_never_panic_or_hang() {
    let mut total = 0u64;
    let mut written = 0u64;
    let mut slowest = Duration::ZERO;
    let samples = tempfile::tempdir().unwrap();
    let mut sampled = Vec::new();
    for (name, path) in fixtures() {
        let original = std::fs::read(&path).unwrap();
        let ps = Db::parse(&original).unwrap().page_size();
        // Generous bound per file: the clean file takes well under a millisecond.
        let bound = Duration::from_secs(2);
        for seed in 0..MUTATIONS_PER_FIXTURE {
            let mut rng = Rng(seed ^ 0xC7DB_0000);
            let mut d = original.clone();
            let what = mutate(&mut d, ps, &mut rng);
            let t = Instant::now();
            let what = format!("{name}: seed {seed} ({what})");
            let r = catch_unwind(AssertUnwindSafe(|| {
                exercise(&d);
                if seed % 3 == 0 {
                    exercise_containerd(&d);
                }
                if seed % 10 == 0 {
                    exercise_write(&d, &what)
                } else {
                    None
                }
            }));
            let took = t.elapsed();
            let out = r.unwrap_or_else(|_| panic!("{what} panicked"));
            assert!(took < bound, "{what} took {took:?}");
            if let Some(out) = out {
                written += 1;
                if written % 50 == 1 {
                    let p = samples.path().join(format!("{name}-{seed}.db"));
                    std::fs::write(&p, out).unwrap();
                    sampled.push(p);
                }
            }
            slowest = slowest.max(took);
            total += 1;
        }
    }
    eprintln!("mutation: {total} mutated files read without a panic; {written} rewritten and verified; slowest {slowest:?}");
    assert!(total >= 10_000);
    assert!(
        written > 100,
        "only {written} mutated files could be rewritten"
    );
    // A sample of the rewritten files goes to Go's tx.Check.
    if let Some(bin) =
        oracle_bin("seeded_mutations_never_panic_or_hang (Go check of rewritten samples)")
    {
        for p in &sampled {
            let o = std::process::Command::new(bin.join("dumpdb"))
                .arg("-check")
                .arg(p)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{}: Go tx.Check rejects a file our writer produced: {}",
                p.display(),
                String::from_utf8_lossy(&o.stdout)
            );
        }
        eprintln!(
            "mutation: {} rewritten samples pass Go's tx.Check",
            sampled.len()
        );
    }
}
