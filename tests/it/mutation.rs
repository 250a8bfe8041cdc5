//! Seeded random mutations of the real fixtures through every read path: open,
//! check, full walk and key lookups. Invariant: no input makes the reader panic,
//! hang or take time out of proportion to the file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use ctrdb::bolt::layout::*;
use ctrdb::bolt::{check, BucketPath, Db, Walk};

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
                let v = [0u64, 1, 0xFFFF, 0xFFFF_FFFF, u64::MAX, rng.next_u64(), rng.below(4096)][rng.below(7) as usize];
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
            let field = [META_ROOT, META_FREELIST, META_PGID, META_PAGE_SIZE][rng.below(4) as usize];
            let v = [0u64, 1, 2, 3, u64::MAX, rng.next_u64(), rng.below(256)][rng.below(7) as usize];
            let w = if field == META_PAGE_SIZE { 4 } else { 8 };
            d[m + field..m + field + w].copy_from_slice(&v.to_le_bytes()[..w]);
            let sum = ctrdb::bolt::bytes::fnv1a64(&d[m + META_OFFSET..m + META_CHECKSUM]);
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
    for path in ["v1", "v1/k8s.io/images", "v1/default/content/blob", "v1/moby/containers"] {
        if let Ok(Some(b)) = db.bucket(&BucketPath::parse(path)) {
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

#[test]
fn seeded_mutations_never_panic_or_hang() {
    let mut total = 0u64;
    let mut slowest = Duration::ZERO;
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
            let r = catch_unwind(AssertUnwindSafe(|| exercise(&d)));
            let took = t.elapsed();
            assert!(r.is_ok(), "{name}: seed {seed} ({what}) panicked");
            assert!(took < bound, "{name}: seed {seed} ({what}) took {took:?}");
            slowest = slowest.max(took);
            total += 1;
        }
    }
    eprintln!("mutation: {total} mutated files read without a panic; slowest {slowest:?}");
    assert!(total >= 10_000);
}
