//! Walks `meta.db`'s bucket tree into typed records that borrow their bytes from
//! the file. Namespaces decode in parallel, and a large `images` or
//! `content/blob` bucket is split across threads. A malformed record or
//! unreadable bucket becomes a finding and the walk continues with every other
//! record. Bucket paths are built only when a finding needs one.

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use rayon::prelude::*;

use super::encoding::{self, AnyValue, Timestamp};
use super::findings::{cross_check, SchemaCode, SchemaFinding};
use super::model::*;
use crate::bolt::bucket::Cursor;
use crate::bolt::page::PageKind;
use crate::bolt::pageset::PageSet;
use crate::bolt::{Bucket, BucketPath, Corruption, Db, Entry, EntryKind};
use crate::bytes::display;

/// Records at or above this count are decoded in parallel chunks.
const PAR_MIN: usize = 256;

/// How many records ahead of the one being decoded the decode prefetches the
/// root page of: enough that a page's miss is over when its record's turn
/// comes, few enough that the prefetched lines are still in the cache then.
const PREFETCH_AHEAD: usize = 8;

/// Findings of one decoding task.
type Sink = Vec<SchemaFinding>;

/// A bucket path as a chain of borrowed names on the stack; turned into a
/// [`BucketPath`] only for a finding.
#[derive(Debug, Clone, Copy)]
enum P<'p> {
    Root,
    Child(&'p P<'p>, &'p [u8]),
}

impl<'p> P<'p> {
    fn child<'q>(&'q self, name: &'q [u8]) -> P<'q> {
        P::Child(self, name)
    }

    fn path(&self) -> BucketPath {
        let mut v = Vec::new();
        let mut cur = self;
        while let P::Child(up, name) = cur {
            v.push(name.to_vec());
            cur = up;
        }
        v.reverse();
        BucketPath(v)
    }
}

fn finding(f: &mut Sink, code: SchemaCode, path: &P<'_>, message: impl Into<String>) {
    f.push(SchemaFinding::new(code, &path.path(), message));
}

/// A bucket's entries in key order, as [`Bucket::iter`].
struct Entries<'a> {
    cursor: Cursor<'a>,
    seen: PageSet,
}

impl<'a> Entries<'a> {
    fn next(&mut self) -> Option<Result<Entry<'a>, Corruption>> {
        self.cursor.next_entry(&mut self.seen)
    }
}

/// Starts iterating `b`.
fn iter<'a>(b: &Bucket<'a>) -> Entries<'a> {
    Entries {
        cursor: b.cursor(),
        seen: PageSet::new(&b.pages()),
    }
}

/// The next entry of `it`; a structural corruption becomes a finding and ends
/// the iteration.
fn next<'a>(it: &mut Entries<'a>, path: &P<'_>, f: &mut Sink) -> Option<Entry<'a>> {
    match it.next()? {
        Ok(e) => Some(e),
        Err(c) => {
            f.push(SchemaFinding::unreadable(&path.path(), &c));
            None
        }
    }
}

fn bucket_of<'a>(e: &Entry<'a>, path: &P<'_>, what: &str, f: &mut Sink) -> Option<Bucket<'a>> {
    match e.kind {
        EntryKind::Bucket(b) => Some(b),
        EntryKind::Value(_) => {
            finding(
                f,
                SchemaCode::RecordNotBucket,
                &path.child(e.key),
                format!("{what} {} is a plain key, not a bucket", display(e.key)),
            );
            None
        }
    }
}

/// The number of entries of `b` when its root is a leaf whose element array fits
/// in the page (so the count is backed by the file's bytes), else 0. Used as a
/// capacity hint so small maps are allocated at their exact size.
fn leaf_count(b: &Bucket<'_>) -> usize {
    match b.root_page() {
        Ok(p) if p.kind() == Some(PageKind::Leaf) && p.check_elements_fit().is_ok() => {
            usize::from(p.count)
        }
        _ => 0,
    }
}

/// A `key → value` map bucket (labels, annotations).
fn read_map<'a>(b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Labels<'a> {
    let mut v = Vec::with_capacity(leaf_count(b));
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        match e.kind {
            EntryKind::Value(val) => v.push((Bytes(e.key), Bytes(val))),
            EntryKind::Bucket(_) => finding(
                f,
                SchemaCode::UnknownKey,
                &path.child(e.key),
                format!("unexpected bucket {} in a label map", display(e.key)),
            ),
        }
    }
    Labels::from_pairs(v)
}

/// The keys of a set bucket (lease resources, snapshot children).
fn read_keys<'a>(b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Vec<Bytes<'a>> {
    let mut v = Vec::with_capacity(leaf_count(b));
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        v.push(Bytes(e.key));
    }
    v
}

fn field_value<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Option<&'a [u8]> {
    match e.kind {
        EntryKind::Value(v) => Some(v),
        EntryKind::Bucket(_) => {
            finding(
                f,
                SchemaCode::FieldInvalid,
                &path.child(e.key),
                format!("field {} is a bucket, want a value", display(e.key)),
            );
            None
        }
    }
}

fn field_bucket<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Option<Bucket<'a>> {
    match e.kind {
        EntryKind::Bucket(b) => Some(b),
        EntryKind::Value(_) => {
            finding(
                f,
                SchemaCode::FieldInvalid,
                &path.child(e.key),
                format!("field {} is a value, want a bucket", display(e.key)),
            );
            None
        }
    }
}

fn labels_field<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Labels<'a> {
    field_bucket(e, path, f)
        .map(|b| read_map(&b, &path.child(e.key), f))
        .unwrap_or_default()
}

fn keys_field<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Vec<Bytes<'a>> {
    field_bucket(e, path, f)
        .map(|b| read_keys(&b, &path.child(e.key), f))
        .unwrap_or_default()
}

fn time_field(e: &Entry<'_>, path: &P<'_>, code: SchemaCode, f: &mut Sink) -> Option<Timestamp> {
    let v = field_value(e, path, f)?;
    match encoding::time(v) {
        Ok(t) => Some(t),
        Err(err) => {
            finding(
                f,
                code,
                &path.child(e.key),
                format!("cannot decode {}: {err}", display(e.key)),
            );
            None
        }
    }
}

fn varint_field(e: &Entry<'_>, path: &P<'_>, code: SchemaCode, f: &mut Sink) -> Option<i64> {
    let v = field_value(e, path, f)?;
    match encoding::varint(v) {
        Ok(t) => Some(t),
        Err(err) => {
            finding(
                f,
                code,
                &path.child(e.key),
                format!("cannot decode {}: {err}", display(e.key)),
            );
            None
        }
    }
}

fn any_field<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Option<AnyValue<'a>> {
    let v = field_value(e, path, f)?;
    match encoding::any(v) {
        Ok(a) => Some(a),
        Err(err) => {
            finding(
                f,
                SchemaCode::FieldInvalid,
                &path.child(e.key),
                format!("cannot decode {}: {err}", display(e.key)),
            );
            None
        }
    }
}

fn bytes_field<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Option<Bytes<'a>> {
    field_value(e, path, f).map(Bytes)
}

fn decode_target<'a>(
    name: &[u8],
    tb: &Bucket<'a>,
    tpath: &P<'_>,
    f: &mut Sink,
) -> (Target<'a>, bool) {
    let mut t = Target::default();
    let (mut has_d, mut has_m, mut has_s) = (false, false, false);
    let mut it = iter(tb);
    while let Some(te) = next(&mut it, tpath, f) {
        match te.key {
            b"digest" => {
                if let Some(v) = bytes_field(&te, tpath, f) {
                    has_d = !v.0.is_empty();
                    t.digest = v;
                }
            }
            b"mediatype" => {
                if let Some(v) = bytes_field(&te, tpath, f) {
                    has_m = !v.0.is_empty();
                    t.media_type = v;
                }
            }
            b"size" => {
                if let Some(s) = varint_field(&te, tpath, SchemaCode::ImageTargetInvalid, f) {
                    has_s = true;
                    t.size = s;
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    if !has_d {
        missing.push("digest");
    } else if !super::reference::is_valid_digest(t.digest.0) {
        finding(
            f,
            SchemaCode::ImageTargetInvalid,
            tpath,
            format!(
                "image {} has target digest {:?}, not a valid digest",
                display(name),
                display(t.digest.0)
            ),
        );
    }
    if !has_m {
        missing.push("mediatype");
    }
    if !has_s {
        missing.push("size");
    }
    if !missing.is_empty() {
        finding(
            f,
            SchemaCode::ImageTargetInvalid,
            tpath,
            format!(
                "image {} target has no valid {}",
                display(name),
                missing.join(", ")
            ),
        );
    }
    (t, missing.is_empty())
}

/// A record without `createdat`: containerd writes it with every image, content
/// blob, container, sandbox, snapshot and lease, so a record without one (a
/// bucket that is empty, or holds another kind's keys) sits on a stale or
/// misplaced page.
fn record_without_createdat(f: &mut Sink, path: &P<'_>, kind: &str, name: &[u8]) {
    finding(
        f,
        SchemaCode::PageMisplaced,
        path,
        format!(
            "{kind} {} has no createdat: containerd writes it with every {kind}, so the page holding the record is probably stale or misplaced",
            display(name)
        ),
    );
}

fn decode_image<'a>(name: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Image<'a> {
    let mut img = Image {
        name: Bytes(name),
        target: None,
        target_valid: false,
        labels: Labels::new(),
        annotations: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                img.created_at = time_field(&e, path, SchemaCode::ImageTimeInvalid, f);
            }
            b"updatedat" => img.updated_at = time_field(&e, path, SchemaCode::ImageTimeInvalid, f),
            b"labels" => img.labels = labels_field(&e, path, f),
            b"annotations" => img.annotations = labels_field(&e, path, f),
            b"target" => {
                if let EntryKind::Bucket(tb) = e.kind {
                    let (t, valid) = decode_target(name, &tb, &path.child(b"target"), f);
                    img.target_valid = valid;
                    img.target = Some(t);
                }
            }
            _ => {}
        }
    }
    if img.target.is_none() {
        finding(
            f,
            SchemaCode::ImageTargetMissing,
            path,
            format!(
                "image {} has no target bucket: containerd's image List fails for the whole namespace (\"unable to read target bucket\")",
                display(name)
            ),
        );
    }
    if !created {
        record_without_createdat(f, path, "image", name);
    }
    img
}

fn decode_blob<'a>(digest: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Blob<'a> {
    let mut r = Blob {
        digest: Bytes(digest),
        size: None,
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                r.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f);
            }
            b"updatedat" => r.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"size" => r.size = varint_field(&e, path, SchemaCode::FieldInvalid, f),
            b"labels" => r.labels = labels_field(&e, path, f),
            _ => {}
        }
    }
    if !created {
        record_without_createdat(f, path, "content blob", digest);
    }
    r
}

fn decode_ingest<'a>(name: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Ingest<'a> {
    let mut r = Ingest {
        ref_: Bytes(name),
        backend_ref: None,
        expire_at: None,
        expected: None,
        sequence: b.sequence(),
    };
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"ref" => r.backend_ref = bytes_field(&e, path, f),
            b"expireat" => r.expire_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"expected" => r.expected = bytes_field(&e, path, f),
            _ => {}
        }
    }
    r
}

fn decode_runtime<'a>(b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Runtime<'a> {
    let mut r = Runtime::default();
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"name" => r.name = bytes_field(&e, path, f),
            b"options" => r.options = any_field(&e, path, f),
            _ => {}
        }
    }
    r
}

fn decode_extensions<'a>(
    b: &Bucket<'a>,
    path: &P<'_>,
    f: &mut Sink,
) -> BTreeMap<Bytes<'a>, AnyValue<'a>> {
    let mut m = BTreeMap::new();
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        if let Some(a) = any_field(&e, path, f) {
            m.insert(Bytes(e.key), a);
        }
    }
    m
}

fn runtime_field<'a>(e: &Entry<'a>, path: &P<'_>, f: &mut Sink) -> Option<Runtime<'a>> {
    field_bucket(e, path, f).map(|b| decode_runtime(&b, &path.child(e.key), f))
}

fn extensions_field<'a>(
    e: &Entry<'a>,
    path: &P<'_>,
    f: &mut Sink,
) -> BTreeMap<Bytes<'a>, AnyValue<'a>> {
    field_bucket(e, path, f)
        .map(|b| decode_extensions(&b, &path.child(e.key), f))
        .unwrap_or_default()
}

fn decode_container<'a>(id: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Container<'a> {
    let mut c = Container {
        id: Bytes(id),
        image: None,
        snapshotter: None,
        snapshot_key: None,
        sandbox_id: None,
        runtime: None,
        spec: None,
        extensions: BTreeMap::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                c.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f);
            }
            b"updatedat" => c.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"image" => c.image = bytes_field(&e, path, f),
            b"snapshotter" => c.snapshotter = bytes_field(&e, path, f),
            b"snapshotKey" => c.snapshot_key = bytes_field(&e, path, f),
            b"sandboxid" => c.sandbox_id = bytes_field(&e, path, f),
            b"spec" => c.spec = any_field(&e, path, f),
            b"runtime" => c.runtime = runtime_field(&e, path, f),
            b"extensions" => c.extensions = extensions_field(&e, path, f),
            b"labels" => c.labels = labels_field(&e, path, f),
            _ => {}
        }
    }
    if !created {
        record_without_createdat(f, path, "container", id);
    }
    c
}

fn decode_sandbox<'a>(
    id: &'a [u8],
    location: SandboxLocation,
    b: &Bucket<'a>,
    path: &P<'_>,
    f: &mut Sink,
) -> Sandbox<'a> {
    let mut s = Sandbox {
        id: Bytes(id),
        location,
        sandboxer: None,
        runtime: None,
        spec: None,
        extensions: BTreeMap::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                s.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f);
            }
            b"updatedat" => s.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"sandboxer" => s.sandboxer = bytes_field(&e, path, f),
            b"spec" => s.spec = any_field(&e, path, f),
            b"runtime" => s.runtime = runtime_field(&e, path, f),
            b"extensions" => s.extensions = extensions_field(&e, path, f),
            b"labels" => s.labels = labels_field(&e, path, f),
            _ => {}
        }
    }
    if !created {
        record_without_createdat(f, path, "sandbox", id);
    }
    s
}

fn decode_snapshot<'a>(key: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Snapshot<'a> {
    let mut s = Snapshot {
        key: Bytes(key),
        name: None,
        parent: None,
        children: Vec::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                s.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f);
            }
            b"updatedat" => s.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"name" => s.name = bytes_field(&e, path, f),
            b"parent" => s.parent = bytes_field(&e, path, f),
            b"children" => s.children = keys_field(&e, path, f),
            b"labels" => s.labels = labels_field(&e, path, f),
            _ => {}
        }
    }
    if !created {
        record_without_createdat(f, path, "snapshot", key);
    }
    s
}

fn decode_lease<'a>(id: &'a [u8], b: &Bucket<'a>, path: &P<'_>, f: &mut Sink) -> Lease<'a> {
    let mut l = Lease {
        id: Bytes(id),
        created_at: None,
        labels: Labels::new(),
        content: Vec::new(),
        snapshots: Vec::new(),
        ingests: Vec::new(),
        images: Vec::new(),
    };
    let mut it = iter(b);
    let mut created = false;
    while let Some(e) = next(&mut it, path, f) {
        match e.key {
            b"createdat" => {
                created = true;
                l.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f);
            }
            b"labels" => l.labels = labels_field(&e, path, f),
            b"content" => l.content = keys_field(&e, path, f),
            b"ingests" => l.ingests = keys_field(&e, path, f),
            b"images" => l.images = keys_field(&e, path, f),
            b"snapshots" => {
                if let Some(sb) = field_bucket(&e, path, f) {
                    let spath = path.child(e.key);
                    let mut sit = iter(&sb);
                    while let Some(se) = next(&mut sit, &spath, f) {
                        if let Some(kb) = bucket_of(&se, &spath, "lease snapshotter", f) {
                            let kpath = spath.child(se.key);
                            let mut kit = iter(&kb);
                            while let Some(k) = next(&mut kit, &kpath, f) {
                                l.snapshots.push((Bytes(se.key), Bytes(k.key)));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !created {
        record_without_createdat(f, path, "lease", id);
    }
    l
}

/// Decodes each bucket entry of `b` with `one`, in parallel for large buckets,
/// in key order. Plain keys become `non_bucket` findings.
fn records<'a, T: Send>(
    b: &Bucket<'a>,
    path: &P<'_>,
    what: &str,
    non_bucket: SchemaCode,
    f: &mut Sink,
    one: impl Fn(&'a [u8], &Bucket<'a>, &P<'_>, &mut Sink) -> T + Sync,
) -> Vec<T> {
    let mut items: Vec<(&'a [u8], Bucket<'a>)> = Vec::new();
    let mut it = iter(b);
    while let Some(e) = next(&mut it, path, f) {
        match e.kind {
            EntryKind::Bucket(rb) => items.push((e.key, rb)),
            EntryKind::Value(_) => finding(
                f,
                non_bucket,
                &path.child(e.key),
                format!("{what} {} is a plain key, not a bucket", display(e.key)),
            ),
        }
    }
    // Lookups in the decoded lists are binary searches: a corrupt leaf with keys
    // out of order must not make them miss, so such a list is put in key order
    // (stable: duplicate keys stay in file order).
    if !items.is_sorted_by(|x, y| x.0 <= y.0) {
        items.sort_by(|x, y| x.0.cmp(y.0));
    }
    // Each record's bucket is a page of its own (it has nested buckets): while one
    // is decoded, the root pages of the next few are prefetched, so their memory
    // latency overlaps the work instead of stalling the first read of each.
    let ahead = |i: usize| {
        if let Some((_, next)) = items.get(i + PREFETCH_AHEAD) {
            next.prefetch_root();
        }
    };
    if items.len() < PAR_MIN {
        return items
            .iter()
            .enumerate()
            .map(|(i, (k, rb))| {
                ahead(i);
                one(k, rb, &path.child(k), f)
            })
            .collect();
    }
    // Findings are rare: each chunk keeps its own and they are merged in record order.
    let found: Mutex<Vec<(usize, Sink)>> = Mutex::new(Vec::new());
    let v: Vec<T> = items
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .map(|(i, (k, rb))| {
            ahead(i);
            let mut sink = Vec::new();
            let r = one(k, rb, &path.child(k), &mut sink);
            if !sink.is_empty() {
                if let Ok(mut g) = found.lock() {
                    g.push((i, sink));
                }
            }
            r
        })
        .collect();
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_by_key(|(i, _)| *i);
    f.extend(found.into_iter().flat_map(|(_, s)| s));
    v
}

const NS_KNOWN: &[&[u8]] = &[
    b"labels",
    b"images",
    b"containers",
    b"snapshots",
    b"content",
    b"leases",
    b"sandboxes",
];

fn decode_namespace<'a>(name: &'a [u8], b: &Bucket<'a>, f: &mut Sink) -> Namespace<'a> {
    let v1 = P::Root;
    let v1 = v1.child(b"v1");
    let path = v1.child(name);
    let mut ns = Namespace {
        name: Bytes(name),
        in_v1: true,
        ..Namespace::default()
    };
    let mut it = iter(b);
    let (mut known, mut unknown) = (0usize, 0usize);
    while let Some(e) = next(&mut it, &path, f) {
        let EntryKind::Bucket(cb) = e.kind else {
            finding(
                f,
                SchemaCode::PageMisplaced,
                &path.child(e.key),
                format!(
                    "namespace {} holds a plain key {}: containerd writes only buckets there, so the page is probably stale or misplaced",
                    display(name),
                    display(e.key)
                ),
            );
            continue;
        };
        let p = path.child(e.key);
        if NS_KNOWN.contains(&e.key) {
            known += 1;
        } else {
            unknown += 1;
        }
        match e.key {
            b"labels" => ns.labels = read_map(&cb, &p, f),
            b"images" => {
                ns.images = records(
                    &cb,
                    &p,
                    "image",
                    SchemaCode::ImageNotBucket,
                    f,
                    decode_image,
                )
            }
            b"containers" => {
                ns.containers = records(
                    &cb,
                    &p,
                    "container",
                    SchemaCode::RecordNotBucket,
                    f,
                    decode_container,
                )
            }
            b"leases" => {
                ns.leases = records(
                    &cb,
                    &p,
                    "lease",
                    SchemaCode::RecordNotBucket,
                    f,
                    decode_lease,
                )
            }
            b"sandboxes" => {
                ns.sandboxes = records(
                    &cb,
                    &p,
                    "sandbox",
                    SchemaCode::RecordNotBucket,
                    f,
                    |k, b, p, f| decode_sandbox(k, SandboxLocation::V1, b, p, f),
                )
            }
            b"snapshots" => {
                let mut sit = iter(&cb);
                while let Some(se) = next(&mut sit, &p, f) {
                    if let Some(sb) = bucket_of(&se, &p, "snapshotter", f) {
                        let sp = p.child(se.key);
                        let snapshots = records(
                            &sb,
                            &sp,
                            "snapshot",
                            SchemaCode::RecordNotBucket,
                            f,
                            decode_snapshot,
                        );
                        ns.snapshotters.push(Snapshotter {
                            name: Bytes(se.key),
                            sequence: sb.sequence(),
                            snapshots,
                        });
                    }
                }
            }
            b"content" => {
                let mut cit = iter(&cb);
                while let Some(ce) = next(&mut cit, &p, f) {
                    let cp = p.child(ce.key);
                    match (ce.key, ce.kind) {
                        (b"blob", EntryKind::Bucket(bb)) => {
                            ns.blobs = records(
                                &bb,
                                &cp,
                                "content blob",
                                SchemaCode::RecordNotBucket,
                                f,
                                decode_blob,
                            )
                        }
                        (b"ingests", EntryKind::Bucket(ib)) => {
                            ns.ingests = records(
                                &ib,
                                &cp,
                                "ingest",
                                SchemaCode::RecordNotBucket,
                                f,
                                decode_ingest,
                            )
                        }
                        _ => finding(
                            f,
                            SchemaCode::UnknownKey,
                            &cp,
                            format!("unexpected {} under content", display(ce.key)),
                        ),
                    }
                }
            }
            _ => {
                debug_assert!(!NS_KNOWN.contains(&e.key));
                finding(
                    f,
                    SchemaCode::UnknownKey,
                    &p,
                    format!(
                        "namespace {} holds an unknown bucket {}",
                        display(name),
                        display(e.key)
                    ),
                );
            }
        }
    }
    if known == 0 && unknown > 0 {
        finding(
            f,
            SchemaCode::PageMisplaced,
            &path,
            format!(
                "namespace {} holds only buckets containerd does not write, so its page is probably stale or misplaced",
                display(name)
            ),
        );
    }
    ns
}

/// Findings in report order: by path, then code, then message.
fn sort_findings(f: &mut [SchemaFinding]) {
    f.sort_by(|a, b| (&a.path, a.code, &a.message).cmp(&(&b.path, b.code, &b.message)));
}

/// The decoded database. Its records borrow from the file's bytes (`'a`).
#[derive(Debug, Clone, Default)]
pub struct MetaDb<'a> {
    /// `v1/version`, if present and decodable.
    pub schema_version: Option<i64>,
    /// Top-level bucket names (normally just `v1`).
    pub top_level: Vec<Bytes<'a>>,
    /// Namespaces in name order.
    pub namespaces: Vec<Namespace<'a>>,
    /// Schema findings, sorted by path then code.
    pub findings: Vec<SchemaFinding>,
    /// A snapshotter's database has no namespaces and no schema findings:
    /// containerd's metadata schema does not apply to it.
    pub kind: super::DbKind,
}

impl<'a> MetaDb<'a> {
    /// Decodes the whole tree and runs the cross-record checks (dangling image
    /// targets, missing snapshot parents, lease resources that do not exist).
    /// Never fails: problems become findings.
    pub fn decode(db: &Db<'a>) -> MetaDb<'a> {
        let mut out = MetaDb::decode_records(db);
        let cross: Vec<Sink> = out
            .namespaces
            .par_iter()
            .map(|ns| {
                let mut s = Vec::new();
                cross_check(ns, &mut s);
                s
            })
            .collect();
        out.findings.extend(cross.into_iter().flatten());
        sort_findings(&mut out.findings);
        out
    }

    /// Decodes the whole tree without the cross-record checks: `findings` holds
    /// only what is wrong with single records and buckets. For readers that do
    /// not report findings (`refs`, `images`); the checks cost about a fifth of
    /// the decode.
    pub fn decode_records(db: &Db<'a>) -> MetaDb<'a> {
        MetaDb::decode_records_each(db, |_| {})
    }

    /// [`MetaDb::decode_records`], calling `each` once for every namespace of
    /// the result as soon as that namespace is complete — while the others are
    /// still being decoded, from any thread, in no particular order — with the
    /// same content it has in the result. For work that can start per namespace.
    pub fn decode_records_each(db: &Db<'a>, each: impl Fn(&Namespace<'a>) + Sync) -> MetaDb<'a> {
        let mut f: Sink = Vec::new();
        let mut out = MetaDb::default();
        // Findings are collected in `f` and moved to `out.findings` at the end.
        let root = match db.root() {
            Ok(r) => r,
            Err(c) => {
                f.push(SchemaFinding::unreadable(&BucketPath::root(), &c));
                out.findings = f;
                return out;
            }
        };
        let mut v1 = None;
        let mut top_sandboxes: Vec<(&'a [u8], Bucket<'a>)> = Vec::new();
        let mut rit = iter(&root);
        while let Some(e) = next(&mut rit, &P::Root, &mut f) {
            out.top_level.push(Bytes(e.key));
            let EntryKind::Bucket(b) = e.kind else {
                continue;
            }; // the bolt check reports root values
            if e.key == b"v1" {
                v1 = Some(b);
                continue;
            }
            // 1.7 writes sandboxes at `<ns>/sandboxes`, beside v1.
            let p = P::Root;
            let p = p.child(e.key);
            let mut cit = iter(&b);
            let mut children = 0usize;
            let mut sandboxes = None;
            while let Some(c) = next(&mut cit, &p, &mut f) {
                children += 1;
                if c.key == b"sandboxes" {
                    sandboxes = sandboxes.or(c.bucket());
                }
            }
            match sandboxes {
                Some(sb) if children == 1 => top_sandboxes.push((e.key, sb)),
                _ => finding(
                    &mut f,
                    SchemaCode::UnknownTopLevelBucket,
                    &p,
                    format!("top-level bucket {} is not containerd's (only v1, and 1.7's <namespace>/sandboxes)", display(e.key)),
                ),
            }
        }
        let v1path = P::Root;
        let v1path = v1path.child(b"v1");
        let mut ns_buckets: Vec<(&'a [u8], Bucket<'a>)> = Vec::new();
        match v1 {
            // Not a containerd metadata database (or one containerd never
            // initialised): there is no schema to check, so no schema findings
            // but the damage that may have hidden `v1`.
            None => {
                f.retain(|x| x.code.is_structural());
                out.findings = f;
                return out;
            }
            Some(v1) if super::kind::is_snapshotter_v1(&v1) && out.top_level.len() == 1 => {
                out.kind = super::DbKind::Snapshotter;
                out.findings = Vec::new();
                return out;
            }
            Some(v1) => {
                let mut saw_version = false;
                let mut vit = iter(&v1);
                while let Some(e) = next(&mut vit, &v1path, &mut f) {
                    match e.kind {
                        EntryKind::Bucket(b) => ns_buckets.push((e.key, b)),
                        EntryKind::Value(v) if e.key == b"version" => {
                            saw_version = true;
                            match encoding::varint(v) {
                                Ok(n) => {
                                    out.schema_version = Some(n);
                                    if !(1..=4).contains(&n) {
                                        finding(
                                            &mut f,
                                            SchemaCode::VersionInvalid,
                                            &v1path.child(b"version"),
                                            format!("schema version {n} is not one containerd 1.6–2.3 writes (3 or 4)"),
                                        );
                                    }
                                }
                                Err(err) => finding(
                                    &mut f,
                                    SchemaCode::VersionInvalid,
                                    &v1path.child(b"version"),
                                    format!("cannot decode v1/version: {err}"),
                                ),
                            }
                        }
                        EntryKind::Value(_) => finding(
                            &mut f,
                            SchemaCode::PageMisplaced,
                            &v1path.child(e.key),
                            format!(
                                "v1 holds a plain key {}: containerd writes only version there, so the page is probably stale or misplaced",
                                display(e.key)
                            ),
                        ),
                    }
                }
                if !saw_version && ns_buckets.is_empty() {
                    finding(
                        &mut f,
                        SchemaCode::VersionMissing,
                        &v1path,
                        "v1 has no version key",
                    );
                } else if !saw_version {
                    finding(
                        &mut f,
                        SchemaCode::PageMisplaced,
                        &v1path,
                        "v1 holds namespaces but no version key: containerd writes both, so a page of v1 is probably stale, misplaced or lost",
                    );
                }
            }
        }
        let decoded: Vec<(Namespace<'a>, Sink)> = ns_buckets
            .par_iter()
            .map(|(name, b)| {
                let mut s = Vec::new();
                let ns = decode_namespace(name, b, &mut s);
                // A namespace with 1.7's top-level sandboxes is complete only
                // once those are merged in, below.
                if !top_sandboxes.iter().any(|(n, _)| n == name) {
                    each(&ns);
                }
                (ns, s)
            })
            .collect();
        let mut namespaces = Vec::with_capacity(decoded.len());
        for (ns, s) in decoded {
            namespaces.push(ns);
            f.extend(s);
        }
        let late: Vec<&'a [u8]> = top_sandboxes.iter().map(|(n, _)| *n).collect();
        for (name, sb) in top_sandboxes {
            let p = P::Root;
            let p = p.child(name);
            let p = p.child(b"sandboxes");
            let list = records(
                &sb,
                &p,
                "sandbox",
                SchemaCode::RecordNotBucket,
                &mut f,
                |k, b, p, f| decode_sandbox(k, SandboxLocation::TopLevel, b, p, f),
            );
            match namespaces.binary_search_by(|n: &Namespace<'_>| n.name.0.cmp(name)) {
                Ok(i) => {
                    if let Some(ns) = namespaces.get_mut(i) {
                        ns.sandboxes.extend(list);
                    }
                }
                Err(i) => namespaces.insert(
                    i,
                    Namespace {
                        name: Bytes(name),
                        in_v1: false,
                        sandboxes: list,
                        ..Namespace::default()
                    },
                ),
            }
        }
        for ns in namespaces.iter().filter(|n| late.contains(&n.name.0)) {
            each(ns);
        }
        sort_findings(&mut f);
        out.namespaces = namespaces;
        out.findings = f;
        out
    }

    /// The structural damage met while decoding that affects the namespaces for
    /// which `selected` holds: damage under `v1/<ns>` (or a 1.7 `<ns>` sandbox
    /// bucket) affects that namespace; damage at the root or in `v1` itself
    /// affects them all (a namespace may be hidden by it).
    pub fn damage(&self, selected: impl Fn(&[u8]) -> bool) -> Vec<&SchemaFinding> {
        self.findings
            .iter()
            .filter(|f| f.code.is_structural())
            .filter(|f| match f.path.0.as_slice() {
                [] => true,
                [v1] if v1.as_slice() == b"v1" => true,
                [v1, ns, ..] if v1.as_slice() == b"v1" => selected(ns),
                [ns, ..] => selected(ns),
            })
            .collect()
    }

    /// Finds a namespace by name.
    pub fn namespace(&self, name: &[u8]) -> Option<&Namespace<'a>> {
        self.namespaces.iter().find(|n| n.name.0 == name)
    }

    /// The containerd release family the file's schema version (and freelist
    /// style) imply.
    pub fn family(&self, has_freelist: bool) -> &'static str {
        if self.kind == super::DbKind::Snapshotter {
            return "not meta.db: a containerd snapshotter database";
        }
        match self.schema_version {
            Some(3) if has_freelist => "containerd 1.6 (schema 3, freelist written)",
            Some(3) => "containerd 1.7+ (schema 3, NoFreelistSync)",
            Some(4) => "containerd 2.x (schema 4)",
            Some(1 | 2) => "containerd older than 1.3 (schema 1 or 2)",
            Some(_) => "unknown (schema version not written by containerd)",
            None if !self.top_level.iter().any(|t| t.0 == b"v1") => {
                "not a containerd metadata database (no v1 bucket)"
            }
            None => "unknown (no schema version)",
        }
    }
}
