//! Corruption injection: precise byte patches of the real containerd fixtures.
//! Each case asserts the specific finding or error, that the full walk ends, and
//! that nothing panics.

use ctrdb::bolt::check::{self, Severity};
use ctrdb::bolt::layout::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::{Db, Error, Walk};

use super::common::*;

/// Parses and checks `d`; returns the finding codes, or the open error.
fn check_codes(d: &[u8]) -> Result<Vec<(&'static str, Severity)>, Error> {
    let db = Db::parse(d)?;
    let r = check::check(&db);
    // The walk must end too (with or without an error) — never hang or panic.
    if let Ok(mut w) = Walk::new(&db) {
        while let Some(ev) = w.next_event() {
            if ev.is_err() {
                break;
            }
        }
    }
    Ok(r.findings
        .iter()
        .map(|f| (f.corruption.kind.code(), f.severity))
        .collect())
}

fn assert_code(d: &[u8], code: &str, case: &str) {
    let codes =
        check_codes(d).unwrap_or_else(|e| panic!("{case}: expected finding {code}, got error {e}"));
    assert!(
        codes.iter().any(|(c, _)| *c == code),
        "{case}: expected finding {code}, got {codes:?}"
    );
}

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    ps: usize,
    used: usize,
    root: u64,
    hwm: u64,
    freelist: Option<u64>,
    pages: Vec<TreePage>,
}

fn load() -> Vec<Fixture> {
    fixtures()
        .into_iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(&path).unwrap();
            let db = Db::parse(&bytes).unwrap();
            let m = db.meta();
            let (ps, used, pages) = (db.page_size(), db.selection().used, tree_pages(&db));
            Fixture {
                name,
                ps,
                used,
                root: m.root,
                hwm: m.pgid,
                freelist: m.has_freelist().then_some(m.freelist),
                pages,
                bytes,
            }
        })
        .collect()
}

impl Fixture {
    fn off(&self, id: u64) -> usize {
        id as usize * self.ps
    }

    fn first(&self, kind: PageKind, min_count: u16) -> &TreePage {
        self.pages
            .iter()
            .find(|p| p.kind == kind && p.count >= min_count)
            .unwrap_or_else(|| panic!("{}: no {kind:?} page with {min_count}+ elements", self.name))
    }

    /// Byte offset of leaf element `i` of page `id`.
    fn elem(&self, id: u64, i: usize) -> usize {
        self.off(id) + PAGE_HEADER_SIZE + i * ELEMENT_SIZE
    }

    /// (page, element index) of the first leaf element that is a bucket stored inline.
    fn inline_bucket(&self) -> (u64, usize) {
        let db = Db::parse(&self.bytes).unwrap();
        for p in self.pages.iter().filter(|p| p.kind == PageKind::Leaf) {
            let page = db.pages().page(p.id).unwrap();
            for i in 0..usize::from(p.count) {
                let e = page.leaf_element(i).unwrap();
                if e.is_bucket() && e.value.len() >= 8 && e.value[..8] == [0; 8] {
                    return (p.id, i);
                }
            }
        }
        panic!("{}: no inline bucket", self.name)
    }
}

#[test]
fn every_fixture_is_clean() {
    for f in load() {
        let codes = check_codes(&f.bytes).unwrap();
        assert!(codes.is_empty(), "{}: {codes:?}", f.name);
    }
}

#[test]
fn one_bad_meta_falls_back_to_the_other_and_is_reported() {
    for f in load() {
        for corrupt in [META_CHECKSUM, META_MAGIC, META_VERSION] {
            let mut d = f.bytes.clone();
            d[f.off(f.used as u64) + corrupt] ^= 0x5a;
            let db = Db::parse(&d).unwrap_or_else(|e| panic!("{}: {e}", f.name));
            assert_eq!(
                db.selection().used,
                1 - f.used,
                "{}: other meta must be used",
                f.name
            );
            assert_eq!(db.selection().reason, ctrdb::bolt::MetaReason::OtherInvalid);
            let codes = check_codes(&d).unwrap();
            assert!(
                codes.contains(&("meta-invalid", Severity::Warning)),
                "{}: {codes:?}",
                f.name
            );
        }
    }
}

#[test]
fn both_metas_bad_is_a_clear_error_with_exit_2() {
    let f = &load()[0];
    for field in [META_MAGIC, META_CHECKSUM] {
        let mut d = f.bytes.clone();
        d[field] ^= 1;
        d[f.ps + field] ^= 1;
        match Db::parse(&d) {
            Err(Error::NoValidMeta { .. }) => {}
            other => panic!("expected NoValidMeta, got {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.db");
        std::fs::write(&p, &d).unwrap();
        let o = ctrdb_path(&["check"], &p);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("no valid meta page"));
    }
}

#[test]
fn branch_pointing_to_itself_is_a_cycle() {
    for f in load() {
        let b = f.first(PageKind::Branch, 1);
        let mut d = f.bytes.clone();
        put_u64(&mut d, f.elem(b.id, 0) + BRANCH_PGID, b.id);
        assert_code(
            &d,
            "page-cycle",
            &format!("{} self-pointing branch {}", f.name, b.id),
        );
    }
}

#[test]
fn bucket_root_pointing_to_an_ancestor_page_is_caught() {
    // A nested bucket whose root is a page of an enclosing bucket's tree: a cycle
    // through bucket values that Go's check would recurse into forever.
    for f in load() {
        let db = Db::parse(&f.bytes).unwrap();
        let mut done = false;
        'outer: for p in f
            .pages
            .iter()
            .filter(|p| p.kind == PageKind::Leaf && !p.bucket.is_empty())
        {
            let page = db.pages().page(p.id).unwrap();
            for i in 0..usize::from(p.count) {
                let e = page.leaf_element(i).unwrap();
                if e.is_bucket() && e.value.len() == 16 {
                    let mut d = f.bytes.clone();
                    put_u64(&mut d, e.value_offset as usize, f.root);
                    let codes = check_codes(&d).unwrap();
                    assert!(
                        codes
                            .iter()
                            .any(|(c, _)| *c == "page-multiple-references" || *c == "page-cycle"),
                        "{}: {codes:?}",
                        f.name
                    );
                    done = true;
                    break 'outer;
                }
            }
        }
        assert!(done, "{}: no page-based nested bucket found", f.name);
    }
}

#[test]
fn branch_child_beyond_the_high_water_mark() {
    for f in load() {
        let b = f.first(PageKind::Branch, 1);
        let mut d = f.bytes.clone();
        put_u64(&mut d, f.elem(b.id, 0) + BRANCH_PGID, f.hwm + 5);
        assert_code(&d, "page-out-of-bounds", &f.name);
        let mut d = f.bytes.clone();
        put_u64(&mut d, f.elem(b.id, 0) + BRANCH_PGID, u64::MAX);
        assert_code(&d, "page-out-of-bounds", &f.name);
    }
}

#[test]
fn overflow_running_past_the_end() {
    for f in load() {
        let l = f.first(PageKind::Leaf, 1);
        for ov in [1_000_000u32, u32::MAX] {
            let mut d = f.bytes.clone();
            put_u32(&mut d, f.off(l.id) + PAGE_OVERFLOW, ov);
            assert_code(&d, "page-out-of-bounds", &f.name);
        }
    }
}

#[test]
fn truncated_file_reports_missing_pages() {
    for f in load() {
        let d = &f.bytes[..f.off(f.hwm / 2)];
        let codes = check_codes(d).unwrap();
        assert!(
            codes.iter().any(|(c, _)| *c == "file-truncated"),
            "{}: {codes:?}",
            f.name
        );
        assert!(
            codes.iter().any(|(c, _)| *c == "page-beyond-file"),
            "{}: {codes:?}",
            f.name
        );
    }
}

#[test]
fn element_count_too_large() {
    for f in load() {
        for kind in [PageKind::Leaf, PageKind::Branch] {
            let p = f.first(kind, 1);
            let mut d = f.bytes.clone();
            put_u16(&mut d, f.off(p.id) + PAGE_COUNT, 0xFFFF);
            assert_code(&d, "elements-overflow", &f.name);
        }
    }
}

#[test]
fn key_and_value_sizes_too_large() {
    for f in load() {
        let l = f.first(PageKind::Leaf, 2);
        for (field, v) in [
            (LEAF_KSIZE, 0x7FFF_FFFFu32),
            (LEAF_VSIZE, u32::MAX),
            (LEAF_POS, u32::MAX),
        ] {
            let mut d = f.bytes.clone();
            put_u32(&mut d, f.elem(l.id, 1) + field, v);
            assert_code(&d, "element-out-of-page", &f.name);
        }
        let b = f.first(PageKind::Branch, 1);
        let mut d = f.bytes.clone();
        put_u32(&mut d, f.elem(b.id, 0) + BRANCH_KSIZE, u32::MAX);
        assert_code(&d, "element-out-of-page", &f.name);
    }
}

#[test]
fn empty_key() {
    for f in load() {
        let l = f.first(PageKind::Leaf, 2);
        let mut d = f.bytes.clone();
        put_u32(&mut d, f.elem(l.id, 1) + LEAF_KSIZE, 0);
        assert_code(&d, "key-empty", &f.name);
    }
}

#[test]
fn keys_swapped_within_a_page() {
    for f in load() {
        let l = f.first(PageKind::Leaf, 2);
        let mut d = f.bytes.clone();
        // Swap the element headers, adjusting pos (it is relative to the element).
        let (e0, e1) = (f.elem(l.id, 0), f.elem(l.id, 1));
        let mut h0: [u8; 16] = d[e0..e0 + 16].try_into().unwrap();
        let mut h1: [u8; 16] = d[e1..e1 + 16].try_into().unwrap();
        let p0 = u32::from_le_bytes(h0[4..8].try_into().unwrap()) + 16;
        let p1 = u32::from_le_bytes(h1[4..8].try_into().unwrap()) - 16;
        h0[4..8].copy_from_slice(&p0.to_le_bytes());
        h1[4..8].copy_from_slice(&p1.to_le_bytes());
        d[e0..e0 + 16].copy_from_slice(&h1);
        d[e1..e1 + 16].copy_from_slice(&h0);
        assert_code(&d, "key-order", &f.name);
    }
}

#[test]
fn branch_keys_out_of_order_with_children() {
    for f in load() {
        let b = f.first(PageKind::Branch, 2);
        let mut d = f.bytes.clone();
        // Point both children at each other's pages: every key now sits outside
        // the range its branch key allows.
        let (e0, e1) = (f.elem(b.id, 0) + BRANCH_PGID, f.elem(b.id, 1) + BRANCH_PGID);
        let c0 = u64::from_le_bytes(d[e0..e0 + 8].try_into().unwrap());
        let c1 = u64::from_le_bytes(d[e1..e1 + 8].try_into().unwrap());
        put_u64(&mut d, e0, c1);
        put_u64(&mut d, e1, c0);
        assert_code(&d, "key-order-ancestor", &f.name);
    }
}

#[test]
fn inline_bucket_shorter_than_32_bytes() {
    for f in load() {
        let (page, i) = f.inline_bucket();
        for vsize in [20u32, 8] {
            let mut d = f.bytes.clone();
            put_u32(&mut d, f.elem(page, i) + LEAF_VSIZE, vsize);
            let want = if vsize < 16 {
                "bucket-value-short"
            } else {
                "inline-bucket-malformed"
            };
            assert_code(&d, want, &f.name);
        }
    }
}

#[test]
fn inline_bucket_with_wrong_page_flags() {
    for f in load() {
        let (page, i) = f.inline_bucket();
        let db = Db::parse(&f.bytes).unwrap();
        let e = db.pages().page(page).unwrap().leaf_element(i).unwrap();
        let flags_at = e.value_offset as usize + BUCKET_HEADER_SIZE + PAGE_FLAGS;
        let mut d = f.bytes.clone();
        put_u16(&mut d, flags_at, BRANCH_PAGE);
        assert_code(&d, "inline-bucket-malformed", &f.name);
    }
}

#[test]
fn plain_key_in_the_root_bucket() {
    for f in load() {
        let mut d = f.bytes.clone();
        put_u32(&mut d, f.elem(f.root, 0) + LEAF_FLAGS, 0);
        assert_code(&d, "root-non-bucket", &f.name);
    }
}

#[test]
fn zeroed_root_page() {
    for f in load() {
        let mut d = f.bytes.clone();
        let o = f.off(f.root);
        d[o..o + f.ps].fill(0);
        assert_code(&d, "page-id-mismatch", &f.name);
    }
}

#[test]
fn page_of_unknown_type() {
    for f in load() {
        let l = f.first(PageKind::Leaf, 1);
        for flags in [0u16, 0x03, FREELIST_PAGE, META_PAGE] {
            let mut d = f.bytes.clone();
            put_u16(&mut d, f.off(l.id) + PAGE_FLAGS, flags);
            assert_code(&d, "page-type", &f.name);
        }
    }
}

#[test]
fn freelist_damage_on_the_1_6_fixture() {
    let fixtures = load();
    let f = fixtures
        .iter()
        .find(|f| f.freelist.is_some())
        .expect("the 1.6 fixture has a freelist");
    let fl = f.freelist.unwrap();
    let ids_at = f.off(fl) + PAGE_HEADER_SIZE;
    let count = u16::from_le_bytes(f.bytes[f.off(fl) + PAGE_COUNT..][..2].try_into().unwrap());
    assert!(count >= 2, "{}: freelist has {count} ids", f.name);
    let id0 = u64::from_le_bytes(f.bytes[ids_at..ids_at + 8].try_into().unwrap());

    let mut d = f.bytes.clone();
    put_u64(&mut d, ids_at + 8, id0);
    assert_code(&d, "freelist-duplicate", &f.name);
    assert_code(&d, "page-unreachable-unfreed", &f.name);

    let mut d = f.bytes.clone();
    put_u64(&mut d, ids_at, f.hwm + 100);
    assert_code(&d, "freelist-out-of-range", &f.name);

    let mut d = f.bytes.clone();
    put_u64(&mut d, ids_at, f.root);
    assert_code(&d, "page-reachable-freed", &f.name);

    let mut d = f.bytes.clone();
    put_u16(&mut d, f.off(fl) + PAGE_COUNT, 0xFFFF);
    put_u64(&mut d, ids_at, u64::MAX / 2);
    assert_code(&d, "freelist-malformed", &f.name);

    let mut d = f.bytes.clone();
    put_u16(&mut d, f.off(fl) + PAGE_FLAGS, LEAF_PAGE);
    assert_code(&d, "freelist-malformed", &f.name);
}

#[test]
fn truncation_at_many_points_never_panics() {
    for f in load() {
        let len = f.bytes.len();
        for cut in [
            0,
            1,
            15,
            79,
            80,
            100,
            f.ps - 1,
            f.ps,
            f.ps + 80,
            2 * f.ps - 1,
            2 * f.ps,
            3 * f.ps,
            len / 2,
            len - 1,
        ] {
            let d = &f.bytes[..cut];
            match check_codes(d) {
                Ok(_) => assert!(cut >= 2 * f.ps, "{}: cut {cut} parsed", f.name),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                }
            }
        }
    }
}

#[test]
fn empty_file_and_random_bytes_are_not_bolt() {
    assert!(matches!(Db::parse(&[]), Err(Error::NotBolt { .. })));
    let mut rng = Rng(42);
    for size in [64usize, 4096, 8192, 1 << 20] {
        let d: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        assert!(Db::parse(&d).is_err(), "random {size} bytes parsed");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.db");
    std::fs::write(&p, b"").unwrap();
    let o = ctrdb_path(&["check"], &p);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
