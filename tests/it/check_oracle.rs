//! The structural check against two oracles that share no code with it: a
//! simple serial reference walker written here from `docs/format.md` (it reads
//! the page bytes itself and takes only the selected meta from ctrdb), and Go
//! bbolt's `tx.Check` (`dumpdb -check`). On the real fixtures and on seeded
//! mutations of them:
//! - a file ctrdb's check passes (no error) is one the reference finds sound
//!   (every page below the high-water mark reachable once, or free once, never
//!   both) and Go's check accepts;
//! - damage the reference or Go finds is an error for ctrdb;
//! - where ctrdb followed every subtree (no finding that stops one), its page
//!   accounting equals the reference's page by page count, and each freelist
//!   and leak finding is there exactly when the reference sees that problem;
//! - the report does not depend on the number of threads or on where the walk
//!   is split.
//!
//! Go is asked about the files ctrdb passes; ctrdb checks more than Go (key
//! order across pages, the root's plain keys), so a file it rejects says
//! nothing about Go.

use std::time::Instant;

use ctrdb::bolt::check::{self, CheckReport};
use ctrdb::bolt::testing;
use ctrdb::bolt::{CorruptKind, Db};

use super::common::*;
use super::mutation::mutate;

/// Mutations per fixture.
const MUTATIONS_PER_FIXTURE: u64 = 150;

/// What the reference walker finds.
#[derive(Debug, Default)]
struct Reference {
    reachable: Vec<bool>,
    free: Vec<bool>,
    /// A page it cannot follow (out of range, beyond the file, wrong id or type,
    /// an element or bucket value outside its page), or the file is shorter than
    /// its high-water mark.
    broken: bool,
    /// A page reached twice.
    twice: bool,
    /// A freelist id listed twice, or outside `2..hwm`.
    free_twice: bool,
    free_out_of_range: bool,
}

impl Reference {
    fn count(v: &[bool]) -> u64 {
        v.iter().filter(|&&b| b).count() as u64
    }
    fn overlap(&self) -> bool {
        self.reachable.iter().zip(&self.free).any(|(&r, &f)| r && f)
    }
    fn unused(&self) -> u64 {
        self.reachable
            .iter()
            .zip(&self.free)
            .filter(|(&r, &f)| !r && !f)
            .count() as u64
    }
}

fn rd(d: &[u8], at: usize, n: usize) -> Option<u64> {
    let b = d.get(at..at.checked_add(n)?)?;
    Some(b.iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x)))
}

const BRANCH: u64 = 0x01;
const LEAF: u64 = 0x02;
const FREELIST: u64 = 0x10;

/// Walks the file serially: metas, freelist, every bucket tree.
fn reference(d: &[u8], ps: usize, root: u64, freelist: Option<u64>, hwm: u64) -> Reference {
    let n = usize::try_from(hwm)
        .unwrap_or(usize::MAX)
        .min(d.len() / ps + 1);
    let mut r = Reference {
        reachable: vec![false; n],
        free: vec![false; n],
        broken: u128::from(hwm) * ps as u128 > d.len() as u128,
        ..Reference::default()
    };
    // Page `id` with flags in `kinds`: its bytes (with overflow) and header
    // (flags, count), and whether it was reached before; `None`: cannot follow.
    let page = |id: u64, kinds: &[u64]| -> Option<(&[u8], u64, u64)> {
        let off = usize::try_from(id).ok()?.checked_mul(ps)?;
        let (hid, flags, count, over) = (
            rd(d, off, 8)?,
            rd(d, off + 8, 2)?,
            rd(d, off + 10, 2)?,
            rd(d, off + 12, 4)?,
        );
        let len = usize::try_from(over + 1).ok()?.checked_mul(ps)?;
        let bytes = d.get(off..off.checked_add(len)?)?;
        (id >= 2 && id + over < hwm && hid == id && kinds.contains(&flags))
            .then_some((bytes, flags, count))
    };
    let mark = |r: &mut Reference, id: u64, bytes: &[u8]| -> bool {
        let mut again = false;
        for p in id..id + (bytes.len() / ps) as u64 {
            if let Some(seen) = r.reachable.get_mut(p as usize) {
                again |= *seen;
                *seen = true;
            }
        }
        r.twice |= again;
        again
    };
    for meta in r.reachable.iter_mut().take(2) {
        *meta = true;
    }
    if let Some(fl) = freelist {
        match page(fl, &[FREELIST]) {
            None => r.broken = true,
            Some((bytes, _, count)) => {
                mark(&mut r, fl, bytes);
                let (count, start) = match count {
                    0xFFFF => (rd(bytes, 16, 8).unwrap_or(u64::MAX), 24),
                    c => (c, 16),
                };
                for i in 0..count.min(bytes.len() as u64 / 8) as usize {
                    let Some(id) = rd(bytes, start + 8 * i, 8) else {
                        r.broken = true;
                        break;
                    };
                    match r.free.get_mut(id as usize).filter(|_| id >= 2 && id < hwm) {
                        None => r.free_out_of_range = true,
                        Some(f) => {
                            r.free_twice |= *f;
                            *f = true;
                        }
                    }
                }
            }
        }
    }
    // Work: a page id of a bucket tree, or an inline bucket's leaf image.
    let mut work: Vec<Result<u64, &[u8]>> = vec![Ok(root)];
    while let Some(w) = work.pop() {
        let (bytes, flags, count) = match w {
            Ok(id) => match page(id, &[BRANCH, LEAF]) {
                Some((bytes, flags, count)) => {
                    if mark(&mut r, id, bytes) {
                        continue;
                    }
                    (bytes, flags, count)
                }
                None => {
                    r.broken = true;
                    continue;
                }
            },
            Err(img) => (img, rd(img, 8, 2).unwrap_or(0), rd(img, 10, 2).unwrap_or(0)),
        };
        if flags != LEAF && flags != BRANCH {
            r.broken = true;
            continue;
        }
        for i in 0..count as usize {
            let e = 16 + 16 * i;
            let child = if flags == BRANCH {
                rd(bytes, e + 8, 8).map(Ok)
            } else if rd(bytes, e, 4).is_some_and(|f| f & 1 != 0) {
                let (pos, ks, vs) = (
                    rd(bytes, e + 4, 4),
                    rd(bytes, e + 8, 4),
                    rd(bytes, e + 12, 4),
                );
                let value = pos.zip(ks).zip(vs).and_then(|((p, k), v)| {
                    let at = e + (p + k) as usize;
                    bytes.get(at..at.checked_add(v as usize)?)
                });
                value.and_then(|v| match rd(v, 0, 8)? {
                    0 => v.get(16..).filter(|img| img.len() >= 16).map(Err),
                    root => Some(Ok(root)),
                })
            } else {
                continue;
            };
            match child {
                Some(c) => work.push(c),
                None => r.broken = true,
            }
        }
    }
    r
}

/// Finding kinds after which ctrdb does not follow the subtree (or the tree, or
/// count every page): page accounting can then differ from the reference's.
const STOPS: &[CorruptKind] = &[
    CorruptKind::MetaGeometry,
    CorruptKind::FileTruncated,
    CorruptKind::PageOutOfBounds,
    CorruptKind::PageBeyondFile,
    CorruptKind::PageIdMismatch,
    CorruptKind::PageType,
    CorruptKind::PageMultipleReferences,
    CorruptKind::PageCycle,
    CorruptKind::TreeTooDeep,
    CorruptKind::BranchEmpty,
    CorruptKind::ElementsOverflow,
    CorruptKind::ElementOutOfPage,
    CorruptKind::BucketValueShort,
    CorruptKind::InlineBucketMalformed,
    CorruptKind::FreelistMalformed,
];

fn has(r: &CheckReport, k: CorruptKind) -> bool {
    r.findings.iter().any(|f| f.corruption.kind == k)
}

/// What one comparison with the reference covered.
struct Compared {
    /// The reference found a problem.
    problem: bool,
    /// ctrdb followed every subtree, so the page accounting was compared.
    accounting: bool,
}

/// Compares ctrdb's report on `d` with the reference's.
fn compare_with_reference(db: &Db<'_>, d: &[u8], report: &CheckReport, what: &str) -> Compared {
    let m = db.meta();
    let freelist = m.has_freelist().then_some(m.freelist);
    let r = reference(d, db.page_size(), m.root, freelist, m.pgid);
    let leak = freelist.is_some() && r.unused() > 0;
    let problem = r.broken || r.twice || r.free_twice || r.free_out_of_range || r.overlap() || leak;
    let findings = || {
        report
            .findings
            .iter()
            .map(|f| f.corruption.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    assert!(
        !problem || report.errors() > 0,
        "{what}: the reference finds a problem ({r:?}) and ctrdb none:\n  {}",
        findings()
    );
    if report
        .findings
        .iter()
        .any(|f| STOPS.contains(&f.corruption.kind))
        || r.broken
    {
        return Compared {
            problem,
            accounting: false,
        };
    }
    assert!(
        !r.twice,
        "{what}: a page reached twice, and ctrdb followed every subtree"
    );
    let p = &report.pages;
    assert_eq!(
        (p.reachable, p.free, p.unused),
        (
            Reference::count(&r.reachable),
            Reference::count(&r.free),
            r.unused()
        ),
        "{what}: page accounting (reachable, free, unused) differs:\n  {}",
        findings()
    );
    for (kind, seen) in [
        (CorruptKind::FreelistDuplicate, r.free_twice),
        (CorruptKind::FreelistOutOfRange, r.free_out_of_range),
        (CorruptKind::PageReachableFreed, r.overlap()),
        (CorruptKind::PageUnreachableUnfreed, leak),
    ] {
        assert_eq!(
            has(report, kind),
            seen,
            "{what}: {kind:?}:\n  {}",
            findings()
        );
    }
    Compared {
        problem,
        accounting: true,
    }
}

/// Changes one freelist entry (replaced, duplicated, dropped or added), the
/// damage that only page accounting finds.
fn mutate_freelist(d: &mut [u8], ps: usize, fl: u64, hwm: u64, rng: &mut Rng) -> &'static str {
    let off = fl as usize * ps;
    let count = u16::from_le_bytes([d[off + 10], d[off + 11]]) as usize;
    if count == 0xFFFF {
        return "nothing (freelist count overflow)";
    }
    let id_at = |i: usize| off + 16 + 8 * i;
    match rng.below(4) {
        0 if count > 0 => {
            let v = rng.below(hwm + 4);
            put_u64(d, id_at(rng.below(count as u64) as usize), v);
            "freelist id replaced"
        }
        1 if count > 1 => {
            let from = id_at(rng.below(count as u64) as usize);
            let v = u64::from_le_bytes(d[from..from + 8].try_into().unwrap());
            put_u64(d, id_at(rng.below(count as u64) as usize), v);
            "freelist id duplicated"
        }
        2 if count > 0 => {
            put_u16(d, off + 10, count as u16 - 1);
            "freelist id dropped"
        }
        _ if id_at(count + 1) <= off + ps => {
            let v = rng.below(hwm + 4);
            put_u64(d, id_at(count), v);
            put_u16(d, off + 10, count as u16 + 1);
            "freelist id added"
        }
        _ => "nothing (freelist page full)",
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn assert_same(a: &CheckReport, b: &CheckReport, what: &str) {
    assert_eq!(a.findings, b.findings, "{what}: findings differ");
    assert_eq!(a.omitted, b.omitted, "{what}: omitted differ");
    assert_eq!(a.pages, b.pages, "{what}: page counts differ");
    assert_eq!(
        (a.buckets, a.keys),
        (b.buckets, b.keys),
        "{what}: counts differ"
    );
}

#[test]
fn check_agrees_with_a_reference_walker_and_go_and_is_deterministic() {
    // Without the Go tools (and not required) the reference comparison runs alone.
    let bin = oracle_bin(&test_name());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meta.db");
    let (one, four) = (pool(1), pool(4));
    let (mut files, mut damaged, mut go_runs) = (0u64, 0u64, 0u64);
    let (mut problems, mut accounted) = (0u64, 0u64);
    let start = Instant::now();
    for (name, path) in fixtures() {
        let original = std::fs::read(&path).unwrap();
        let db = Db::parse(&original).unwrap();
        let (ps, m) = (db.page_size(), db.meta());
        for seed in 0..=MUTATIONS_PER_FIXTURE {
            let mut d = original.clone();
            let mut rng = Rng(seed ^ 0x0AC1_E000);
            let what = match seed {
                0 => "unmodified",
                _ if m.has_freelist() && seed % 3 == 0 => {
                    mutate_freelist(&mut d, ps, m.freelist, m.pgid, &mut rng)
                }
                _ => mutate(&mut d, ps, &mut rng),
            };
            let what = format!("{name}: seed {seed} ({what})");
            let Ok(db) = Db::parse(&d) else { continue };
            files += 1;
            let serial = one.install(|| check::check(&db));
            for (other, how) in [
                (four.install(|| check::check(&db)), "4 threads"),
                (
                    four.install(|| testing::check_split_everywhere(&db)),
                    "split on 4 threads",
                ),
                (
                    one.install(|| testing::check_split_everywhere(&db)),
                    "split on 1 thread",
                ),
            ] {
                assert_same(&serial, &other, &format!("{what}: 1 thread vs {how}"));
            }
            let c = compare_with_reference(&db, &d, &serial, &what);
            damaged += u64::from(serial.errors() > 0);
            problems += u64::from(c.problem);
            accounted += u64::from(c.accounting && serial.errors() > 0);
            if seed == 0 {
                assert!(
                    !c.problem && c.accounting && serial.errors() == 0,
                    "{what}: a real fixture is damaged"
                );
            }
            // Go's check is asked about every file ctrdb passes: damage Go
            // finds must be an error for ctrdb (ctrdb checks more than Go, so
            // a file it rejects says nothing about Go).
            if let (Some(bin), 0) = (&bin, serial.errors()) {
                std::fs::write(&file, &d).unwrap();
                go_runs += 1;
                assert!(
                    go_check_passes(bin, &file),
                    "{what}: Go's tx.Check rejects the file and ctrdb finds no error"
                );
            }
        }
    }
    eprintln!(
        "check_oracle: {files} files, {damaged} with errors, {problems} with a problem the \
         reference sees, {accounted} of those with the page accounting compared, {go_runs} through Go, \
         {:.1?}",
        start.elapsed()
    );
    assert!(files > 400 && damaged > 200 && problems > 100 && accounted > 30);
    assert!(bin.is_none() || go_runs > 150);
}
