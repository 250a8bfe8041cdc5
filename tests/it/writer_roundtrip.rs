//! The writer's contract: any bucket tree written with `BoltWriter` reads back
//! identical (every bucket, sequence, key and value), buckets are inline exactly when
//! Go's `inlineable` rule says so, and ctrdb's structural check finds nothing: no
//! unreachable page below the high-water mark, no free page, valid metas.
//!
//! Deterministic: a seeded splitmix64 generator; the seed of a failing case is in
//! the assertion message. `CTRDB_HEAVY_TESTS=1` runs more seeds.

use super::writer_common::*;
use ctrdb::bolt::check;
use ctrdb::bolt::layout::*;
use ctrdb::bolt::writer::{BoltWriter, FreelistMode, WriteError, WriterOptions};
use ctrdb::bolt::Db;

fn heavy() -> bool {
    std::env::var_os("CTRDB_HEAVY_TESTS").is_some()
}

/// Writes, reads back, compares, checks. Returns the file.
fn roundtrip(label: &str, root: &Tree, page_size: u32, freelist: FreelistMode) -> Vec<u8> {
    let opts = options(page_size, freelist);
    let (data, summary) = write_tree(root, opts);
    let ps = page_size as usize;
    assert_eq!(
        data.len() as u64,
        summary.pages * ps as u64,
        "{label}: file length is hwm × page size"
    );
    let db = Db::parse(&data).unwrap_or_else(|e| panic!("{label}: cannot parse: {e}"));
    let m = db.meta();
    assert_eq!(m.pgid, summary.pages, "{label}");
    assert_eq!(m.page_size, page_size, "{label}");
    assert_eq!(m.has_freelist(), freelist == FreelistMode::Page, "{label}");
    // Both metas valid, consecutive txids, page i holds txid ≡ i (mod 2), newer than the source's.
    let sel = db.selection();
    let t0 = sel.slots[0].valid().map(|m| m.txid).expect("meta 0 valid");
    let t1 = sel.slots[1].valid().map(|m| m.txid).expect("meta 1 valid");
    assert_eq!((t0 % 2, t1), (0, t0 + 1), "{label}: meta txids");
    assert!(t1 > opts.after_txid, "{label}");

    let (back, inline) = read_tree(&data);
    let (eb, ek) = root.counts();
    assert_eq!(back.counts(), (eb, ek), "{label}: bucket and key counts");
    assert!(
        back == *root,
        "{label}: content read back differs from what was written"
    );
    assert_eq!((summary.buckets, summary.keys), (eb, ek), "{label}");
    let mut want = Vec::new();
    expected_inline(root, ps, &mut Vec::new(), &mut want);
    assert_eq!(inline.len(), want.len(), "{label}");
    for (got, exp) in inline.iter().zip(&want) {
        assert_eq!(
            got, exp,
            "{label}: inline decision (Go's rule: no sub-bucket and 16+Σ(16+k+v) <= pageSize/4)"
        );
    }

    let reserved = if freelist == FreelistMode::Page { 3 } else { 2 };
    let go = go_pages(root, ps, true).0;
    assert_eq!(
        summary.pages,
        reserved + go,
        "{label}: page count differs from Go's split rule (fill 1.0)"
    );

    let report = check::check(&db);
    assert!(
        report.findings.is_empty(),
        "{label}: check findings: {:#?}",
        report.findings
    );
    assert_eq!(report.pages.free, 0, "{label}");
    assert_eq!(
        report.pages.unused, 0,
        "{label}: every page below the hwm is used"
    );
    assert_eq!((report.buckets, report.keys), (eb, ek), "{label}");
    data
}

const MIXED: Shape = Shape {
    max_depth: 6,
    max_entries: 40,
    bucket_percent: 25,
    big_key_percent: 2,
    big_value_percent: 8,
    huge_value_percent: 1,
};

#[test]
fn random_trees_roundtrip_at_several_page_sizes() {
    let seeds = if heavy() { 40 } else { 6 };
    for seed in 0..seeds {
        for (i, &ps) in [4096u32, 1024, 16384, 65536].iter().enumerate() {
            let mut rng = Rng(seed * 1000 + i as u64);
            let top = rng.range(0, 6);
            let root = random_root(&mut rng, &MIXED, top);
            let fl = if rng.chance(50) {
                FreelistMode::Page
            } else {
                FreelistMode::None
            };
            roundtrip(&format!("seed {seed} page size {ps}"), &root, ps, fl);
        }
    }
}

#[test]
fn empty_root_and_empty_buckets() {
    let root = Tree::default();
    for fl in [FreelistMode::Page, FreelistMode::None] {
        let data = roundtrip("empty root", &root, 4096, fl);
        // metas, [freelist], one empty root leaf
        assert_eq!(
            data.len(),
            4096 * if fl == FreelistMode::Page { 4 } else { 3 }
        );
    }
    let mut root = Tree::default();
    let mut nested = Tree {
        sequence: u64::MAX,
        ..Tree::default()
    };
    nested
        .entries
        .insert(b"empty".to_vec(), Node::Bucket(Tree::default()));
    nested.entries.insert(
        b"empty-seq".to_vec(),
        Node::Bucket(Tree {
            sequence: 7,
            ..Tree::default()
        }),
    );
    root.entries
        .insert(b"a".to_vec(), Node::Bucket(Tree::default()));
    root.entries.insert(b"b".to_vec(), Node::Bucket(nested));
    root.sequence = 12345;
    roundtrip("empty buckets", &root, 4096, FreelistMode::Page);
}

#[test]
fn thousands_of_tiny_buckets() {
    let mut rng = Rng(77);
    let mut ns = Tree::default();
    for i in 0..5000u32 {
        let mut b = Tree {
            sequence: random_sequence(&mut rng),
            ..Tree::default()
        };
        for j in 0..rng.range(0, 4) {
            b.entries.insert(vec![b'k', j as u8], {
                let n = rng.range(0, 300) as usize;
                Node::Value(rng.bytes(n))
            });
        }
        ns.entries
            .insert(format!("sha256:{i:08x}").into_bytes(), Node::Bucket(b));
    }
    let mut root = Tree::default();
    root.entries.insert(b"v1".to_vec(), Node::Bucket(ns));
    roundtrip("5000 tiny buckets", &root, 4096, FreelistMode::None);
    roundtrip(
        "5000 tiny buckets, 1 KiB pages",
        &root,
        1024,
        FreelistMode::Page,
    );
}

fn many_keys(n: u32, value_len: usize) -> Tree {
    let mut big = Tree {
        sequence: 99,
        ..Tree::default()
    };
    for i in 0..n {
        big.entries.insert(
            format!("{i:05}").into_bytes(),
            Node::Value(vec![i as u8; value_len]),
        );
    }
    let mut root = Tree::default();
    root.entries.insert(b"big".to_vec(), Node::Bucket(big));
    root
}

#[test]
fn bucket_with_more_than_65535_keys() {
    roundtrip(
        "70000 keys",
        &many_keys(70_000, 1),
        4096,
        FreelistMode::Page,
    );
}

#[test]
fn huge_pages_never_hold_0xffff_elements() {
    // With 8 MiB pages, 70 000 elements of 21 bytes fit in one page and under the 2 MiB
    // inline limit: only the element-count cap splits them.
    let root = many_keys(70_000, 0);
    let data = roundtrip(
        "70000 keys, 8 MiB pages",
        &root,
        8 << 20,
        FreelistMode::None,
    );
    let db = Db::parse(&data).expect("parse");
    let ps = 8usize << 20;
    for id in 2..db.meta().pgid as usize {
        let count =
            u16::from_le_bytes([data[id * ps + PAGE_COUNT], data[id * ps + PAGE_COUNT + 1]]);
        assert!(
            usize::from(count) < MAX_ELEMENTS,
            "page {id} has {count} elements"
        );
    }
}

#[test]
fn deep_nesting_and_big_keys_and_values() {
    let mut rng = Rng(5);
    let mut t = Tree {
        sequence: 1,
        ..Tree::default()
    };
    for d in 0..200u32 {
        let mut parent = Tree {
            sequence: u64::from(d),
            ..Tree::default()
        };
        let vlen = if d % 40 == 0 { 1 << 20 } else { 5000 };
        parent
            .entries
            .insert(rng.bytes(32 * 1024), Node::Value(rng.bytes(vlen)));
        parent
            .entries
            .insert(format!("n{d}").into_bytes(), Node::Bucket(t));
        parent
            .entries
            .insert(vec![0xff; 3], Node::Value(Vec::new()));
        t = parent;
    }
    let mut root = Tree::default();
    root.entries.insert(b"deep".to_vec(), Node::Bucket(t));
    roundtrip(
        "200 levels, 32 KiB keys, values up to 1 MiB",
        &root,
        4096,
        FreelistMode::Page,
    );
}

#[test]
fn split_boundaries() {
    // Every entry count from 1 to 40 with entry sizes around a quarter and half a page:
    // exercises ≤4-entry nodes spanning overflow pages and the ≥3-entry remainder rule.
    for vlen in [1000usize, 1008, 2000, 2040, 4100] {
        for n in 1..=40u32 {
            let mut b = Tree::default();
            for i in 0..n {
                b.entries
                    .insert(format!("{i:04}").into_bytes(), Node::Value(vec![7; vlen]));
            }
            let mut root = Tree::default();
            root.entries.insert(b"b".to_vec(), Node::Bucket(b));
            roundtrip(&format!("{n} × {vlen}"), &root, 4096, FreelistMode::Page);
        }
    }
}

#[test]
fn rejects_bad_input() {
    let opts = WriterOptions {
        page_size: 4096,
        freelist: FreelistMode::Page,
        after_txid: 0,
        root_sequence: 0,
    };
    let new = || BoltWriter::new(std::io::Cursor::new(Vec::new()), opts).expect("writer");

    let mut w = new();
    w.begin_bucket(&b"b"[..], 0).expect("begin");
    w.put(&b"k2"[..], &b""[..]).expect("put");
    assert!(matches!(
        w.put(&b"k1"[..], &b""[..]),
        Err(WriteError::KeyOrder { .. })
    ));
    assert!(matches!(
        w.put(&b"k2"[..], &b""[..]),
        Err(WriteError::KeyOrder { .. })
    ));
    assert!(matches!(
        w.put(&b""[..], &b""[..]),
        Err(WriteError::KeyEmpty { .. })
    ));

    let mut w = new();
    assert!(matches!(w.end_bucket(), Err(WriteError::Unbalanced(_))));
    let mut w = new();
    w.begin_bucket(&b"b"[..], 0).expect("begin");
    assert!(matches!(w.finish(), Err(WriteError::Unbalanced(_))));
    let mut w = new();
    w.begin_bucket(&b"b"[..], 0).expect("begin");
    w.end_bucket().expect("end");
    assert!(matches!(
        w.begin_bucket(&b"a"[..], 0),
        Err(WriteError::KeyOrder { .. })
    ));

    for ps in [0u32, 512, 4095, 32 << 20] {
        let o = WriterOptions {
            page_size: ps,
            ..opts
        };
        assert!(matches!(
            BoltWriter::new(std::io::Cursor::new(Vec::new()), o),
            Err(WriteError::PageSize(_))
        ));
    }
    let o = WriterOptions {
        after_txid: u64::MAX,
        ..opts
    };
    let w = BoltWriter::new(std::io::Cursor::new(Vec::new()), o).expect("writer");
    assert!(matches!(w.finish(), Err(WriteError::Overflow(_))));
    // The largest usable source txids still get newer metas (u64::MAX - 1, u64::MAX).
    for after in [u64::MAX - 1, u64::MAX - 2] {
        let o = WriterOptions {
            after_txid: after,
            ..opts
        };
        let w = BoltWriter::new(std::io::Cursor::new(Vec::new()), o).expect("writer");
        assert_eq!(w.finish().expect("finish").1.txid, u64::MAX);
    }
}
