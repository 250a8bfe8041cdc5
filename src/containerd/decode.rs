//! Walks `meta.db`'s bucket tree into typed records. Namespaces decode in
//! parallel, and a large `images` or `content/blob` bucket is split across
//! threads. A malformed record or unreadable bucket becomes a finding and the
//! walk continues with every other record.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::encoding::{self, AnyValue, Timestamp};
use super::findings::{cross_check, SchemaCode, SchemaFinding};
use super::model::*;
use crate::bolt::{Bucket, BucketPath, Db, Entry, EntryKind};
use crate::report::ByteStr;

/// Records at or above this count are decoded in parallel chunks.
const PAR_MIN: usize = 256;

/// Findings of one decoding task.
type Sink = Vec<SchemaFinding>;

/// Every entry of `b`, stopping (with a finding) at structural corruption.
fn entries<'a>(b: &Bucket<'a>, path: &BucketPath, f: &mut Sink) -> Vec<Entry<'a>> {
    let mut v = Vec::new();
    for e in b.iter() {
        match e {
            Ok(e) => v.push(e),
            Err(c) => {
                f.push(SchemaFinding::unreadable(path, &c));
                break;
            }
        }
    }
    v
}

fn bucket_of<'a>(e: &Entry<'a>, path: &BucketPath, what: &str, f: &mut Sink) -> Option<Bucket<'a>> {
    match e.kind {
        EntryKind::Bucket(b) => Some(b),
        EntryKind::Value(_) => {
            f.push(SchemaFinding::new(
                SchemaCode::RecordNotBucket,
                &path.child(e.key),
                format!("{what} {} is a plain key, not a bucket", show(e.key)),
            ));
            None
        }
    }
}

/// A `key → value` map bucket (labels, annotations).
fn read_map(b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Labels {
    let mut m = Labels::new();
    for e in entries(b, path, f) {
        match e.kind {
            EntryKind::Value(v) => {
                m.insert(ByteStr::new(e.key), ByteStr::new(v));
            }
            EntryKind::Bucket(_) => f.push(SchemaFinding::new(
                SchemaCode::UnknownKey,
                &path.child(e.key),
                format!("unexpected bucket {} in a label map", show(e.key)),
            )),
        }
    }
    m
}

/// The keys of a set bucket (lease resources, snapshot children).
fn read_keys(b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Vec<ByteStr> {
    entries(b, path, f)
        .into_iter()
        .map(|e| ByteStr::new(e.key))
        .collect()
}

fn field_value<'a>(e: &Entry<'a>, path: &BucketPath, f: &mut Sink) -> Option<&'a [u8]> {
    match e.kind {
        EntryKind::Value(v) => Some(v),
        EntryKind::Bucket(_) => {
            f.push(SchemaFinding::new(
                SchemaCode::FieldInvalid,
                &path.child(e.key),
                format!("field {} is a bucket, want a value", show(e.key)),
            ));
            None
        }
    }
}

fn field_bucket<'a>(e: &Entry<'a>, path: &BucketPath, f: &mut Sink) -> Option<Bucket<'a>> {
    match e.kind {
        EntryKind::Bucket(b) => Some(b),
        EntryKind::Value(_) => {
            f.push(SchemaFinding::new(
                SchemaCode::FieldInvalid,
                &path.child(e.key),
                format!("field {} is a value, want a bucket", show(e.key)),
            ));
            None
        }
    }
}

fn time_field(
    e: &Entry<'_>,
    path: &BucketPath,
    code: SchemaCode,
    f: &mut Sink,
) -> Option<Timestamp> {
    let v = field_value(e, path, f)?;
    match encoding::time(v) {
        Ok(t) => Some(t),
        Err(err) => {
            f.push(SchemaFinding::new(
                code,
                &path.child(e.key),
                format!("cannot decode {}: {err}", show(e.key)),
            ));
            None
        }
    }
}

fn varint_field(e: &Entry<'_>, path: &BucketPath, code: SchemaCode, f: &mut Sink) -> Option<i64> {
    let v = field_value(e, path, f)?;
    match encoding::varint(v) {
        Ok(t) => Some(t),
        Err(err) => {
            f.push(SchemaFinding::new(
                code,
                &path.child(e.key),
                format!("cannot decode {}: {err}", show(e.key)),
            ));
            None
        }
    }
}

fn any_field(v: &[u8], key: &[u8], path: &BucketPath, f: &mut Sink) -> Option<AnyValue> {
    match encoding::any(v) {
        Ok(a) => Some(a),
        Err(err) => {
            f.push(SchemaFinding::new(
                SchemaCode::FieldInvalid,
                &path.child(key),
                format!("cannot decode {}: {err}", show(key)),
            ));
            None
        }
    }
}

fn bytes_field(e: &Entry<'_>, path: &BucketPath, f: &mut Sink) -> Option<ByteStr> {
    field_value(e, path, f).map(ByteStr::new)
}

fn decode_image(name: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Image {
    let mut img = Image {
        name: ByteStr::new(name),
        target: None,
        target_valid: false,
        labels: Labels::new(),
        annotations: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    for e in entries(b, path, f) {
        match e.key {
            b"createdat" => img.created_at = time_field(&e, path, SchemaCode::ImageTimeInvalid, f),
            b"updatedat" => img.updated_at = time_field(&e, path, SchemaCode::ImageTimeInvalid, f),
            b"labels" => {
                img.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &path.child(e.key), f))
                    .unwrap_or_default()
            }
            b"annotations" => {
                img.annotations = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &path.child(e.key), f))
                    .unwrap_or_default()
            }
            b"target" => {
                if let EntryKind::Bucket(tb) = e.kind {
                    let tpath = path.child(b"target");
                    let mut t = Target::default();
                    let (mut has_d, mut has_m, mut has_s) = (false, false, false);
                    for te in entries(&tb, &tpath, f) {
                        match te.key {
                            b"digest" => {
                                if let Some(v) = bytes_field(&te, &tpath, f) {
                                    has_d = !v.0.is_empty();
                                    t.digest = v;
                                }
                            }
                            b"mediatype" => {
                                if let Some(v) = bytes_field(&te, &tpath, f) {
                                    has_m = !v.0.is_empty();
                                    t.media_type = v;
                                }
                            }
                            b"size" => {
                                if let Some(s) =
                                    varint_field(&te, &tpath, SchemaCode::ImageTargetInvalid, f)
                                {
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
                    } else if !super::reference::is_valid_digest(&t.digest.0) {
                        f.push(SchemaFinding::new(
                            SchemaCode::ImageTargetInvalid,
                            &tpath,
                            format!(
                                "image {} has target digest {:?}, not a valid digest",
                                show(name),
                                show(&t.digest.0)
                            ),
                        ));
                    }
                    if !has_m {
                        missing.push("mediatype");
                    }
                    if !has_s {
                        missing.push("size");
                    }
                    if !missing.is_empty() {
                        f.push(SchemaFinding::new(
                            SchemaCode::ImageTargetInvalid,
                            &tpath,
                            format!(
                                "image {} target has no valid {}",
                                show(name),
                                missing.join(", ")
                            ),
                        ));
                    }
                    img.target_valid = missing.is_empty();
                    img.target = Some(t);
                }
            }
            _ => {}
        }
    }
    if img.target.is_none() {
        f.push(SchemaFinding::new(
            SchemaCode::ImageTargetMissing,
            path,
            format!(
                "image {} has no target bucket: containerd's image List fails for the whole namespace (\"unable to read target bucket\")",
                show(name)
            ),
        ));
    }
    img
}

fn decode_blob(digest: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Blob {
    let mut r = Blob {
        digest: ByteStr::new(digest),
        size: None,
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    for e in entries(b, path, f) {
        match e.key {
            b"createdat" => r.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"updatedat" => r.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"size" => r.size = varint_field(&e, path, SchemaCode::FieldInvalid, f),
            b"labels" => {
                r.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &path.child(e.key), f))
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    r
}

fn decode_ingest(name: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Ingest {
    let mut r = Ingest {
        ref_: ByteStr::new(name),
        backend_ref: None,
        expire_at: None,
        expected: None,
        sequence: b.sequence(),
    };
    for e in entries(b, path, f) {
        match e.key {
            b"ref" => r.backend_ref = bytes_field(&e, path, f),
            b"expireat" => r.expire_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"expected" => r.expected = bytes_field(&e, path, f),
            _ => {}
        }
    }
    r
}

fn decode_runtime(b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Runtime {
    let mut r = Runtime::default();
    for e in entries(b, path, f) {
        match e.key {
            b"name" => r.name = bytes_field(&e, path, f),
            b"options" => {
                r.options = field_value(&e, path, f).and_then(|v| any_field(v, e.key, path, f))
            }
            _ => {}
        }
    }
    r
}

fn decode_extensions(
    b: &Bucket<'_>,
    path: &BucketPath,
    f: &mut Sink,
) -> BTreeMap<ByteStr, AnyValue> {
    let mut m = BTreeMap::new();
    for e in entries(b, path, f) {
        if let Some(a) = field_value(&e, path, f).and_then(|v| any_field(v, e.key, path, f)) {
            m.insert(ByteStr::new(e.key), a);
        }
    }
    m
}

fn decode_container(id: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Container {
    let mut c = Container {
        id: ByteStr::new(id),
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
    for e in entries(b, path, f) {
        let sub = || path.child(e.key);
        match e.key {
            b"createdat" => c.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"updatedat" => c.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"image" => c.image = bytes_field(&e, path, f),
            b"snapshotter" => c.snapshotter = bytes_field(&e, path, f),
            b"snapshotKey" => c.snapshot_key = bytes_field(&e, path, f),
            b"sandboxid" => c.sandbox_id = bytes_field(&e, path, f),
            b"spec" => c.spec = field_value(&e, path, f).and_then(|v| any_field(v, e.key, path, f)),
            b"runtime" => {
                c.runtime = field_bucket(&e, path, f).map(|b| decode_runtime(&b, &sub(), f))
            }
            b"extensions" => {
                c.extensions = field_bucket(&e, path, f)
                    .map(|b| decode_extensions(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"labels" => {
                c.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &sub(), f))
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    c
}

fn decode_sandbox(
    id: &[u8],
    location: SandboxLocation,
    b: &Bucket<'_>,
    path: &BucketPath,
    f: &mut Sink,
) -> Sandbox {
    let mut s = Sandbox {
        id: ByteStr::new(id),
        location,
        sandboxer: None,
        runtime: None,
        spec: None,
        extensions: BTreeMap::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    for e in entries(b, path, f) {
        let sub = || path.child(e.key);
        match e.key {
            b"createdat" => s.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"updatedat" => s.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"sandboxer" => s.sandboxer = bytes_field(&e, path, f),
            b"spec" => s.spec = field_value(&e, path, f).and_then(|v| any_field(v, e.key, path, f)),
            b"runtime" => {
                s.runtime = field_bucket(&e, path, f).map(|b| decode_runtime(&b, &sub(), f))
            }
            b"extensions" => {
                s.extensions = field_bucket(&e, path, f)
                    .map(|b| decode_extensions(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"labels" => {
                s.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &sub(), f))
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    s
}

fn decode_snapshot(key: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Snapshot {
    let mut s = Snapshot {
        key: ByteStr::new(key),
        name: None,
        parent: None,
        children: Vec::new(),
        labels: Labels::new(),
        created_at: None,
        updated_at: None,
    };
    for e in entries(b, path, f) {
        let sub = || path.child(e.key);
        match e.key {
            b"createdat" => s.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"updatedat" => s.updated_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"name" => s.name = bytes_field(&e, path, f),
            b"parent" => s.parent = bytes_field(&e, path, f),
            b"children" => {
                s.children = field_bucket(&e, path, f)
                    .map(|b| read_keys(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"labels" => {
                s.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &sub(), f))
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    s
}

fn decode_lease(id: &[u8], b: &Bucket<'_>, path: &BucketPath, f: &mut Sink) -> Lease {
    let mut l = Lease {
        id: ByteStr::new(id),
        created_at: None,
        labels: Labels::new(),
        content: Vec::new(),
        snapshots: Vec::new(),
        ingests: Vec::new(),
        images: Vec::new(),
    };
    for e in entries(b, path, f) {
        let sub = || path.child(e.key);
        match e.key {
            b"createdat" => l.created_at = time_field(&e, path, SchemaCode::FieldInvalid, f),
            b"labels" => {
                l.labels = field_bucket(&e, path, f)
                    .map(|b| read_map(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"content" => {
                l.content = field_bucket(&e, path, f)
                    .map(|b| read_keys(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"ingests" => {
                l.ingests = field_bucket(&e, path, f)
                    .map(|b| read_keys(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"images" => {
                l.images = field_bucket(&e, path, f)
                    .map(|b| read_keys(&b, &sub(), f))
                    .unwrap_or_default()
            }
            b"snapshots" => {
                if let Some(sb) = field_bucket(&e, path, f) {
                    let spath = sub();
                    for se in entries(&sb, &spath, f) {
                        if let Some(kb) = bucket_of(&se, &spath, "lease snapshotter", f) {
                            for k in read_keys(&kb, &spath.child(se.key), f) {
                                l.snapshots.push((ByteStr::new(se.key), k));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// Decodes each bucket entry of `b` with `one`, in parallel for large buckets,
/// keeping key order. Plain keys become `non_bucket` findings.
fn records<T: Send>(
    b: &Bucket<'_>,
    path: &BucketPath,
    what: &str,
    non_bucket: SchemaCode,
    f: &mut Sink,
    one: impl Fn(&[u8], &Bucket<'_>, &BucketPath, &mut Sink) -> T + Sync,
) -> Vec<T> {
    let es = entries(b, path, f);
    let mut items = Vec::with_capacity(es.len());
    for e in &es {
        match e.kind {
            EntryKind::Bucket(rb) => items.push((e.key, rb)),
            EntryKind::Value(_) => f.push(SchemaFinding::new(
                non_bucket,
                &path.child(e.key),
                format!("{what} {} is a plain key, not a bucket", show(e.key)),
            )),
        }
    }
    let decode = |(k, rb): &(&[u8], Bucket<'_>)| {
        let mut sink = Vec::new();
        let r = one(k, rb, &path.child(k), &mut sink);
        (r, sink)
    };
    let out: Vec<(T, Sink)> = if items.len() >= PAR_MIN {
        items.par_iter().with_min_len(64).map(decode).collect()
    } else {
        items.iter().map(decode).collect()
    };
    let mut v = Vec::with_capacity(out.len());
    for (r, s) in out {
        v.push(r);
        f.extend(s);
    }
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

fn decode_namespace(name: &[u8], b: &Bucket<'_>, f: &mut Sink) -> Namespace {
    let path = BucketPath(vec![b"v1".to_vec(), name.to_vec()]);
    let mut ns = Namespace {
        name: ByteStr::new(name),
        in_v1: true,
        ..Namespace::default()
    };
    for e in entries(b, &path, f) {
        let EntryKind::Bucket(cb) = e.kind else {
            f.push(SchemaFinding::new(
                SchemaCode::UnknownKey,
                &path.child(e.key),
                format!("namespace {} holds a plain key {}", show(name), show(e.key)),
            ));
            continue;
        };
        let p = path.child(e.key);
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
                for se in entries(&cb, &p, f) {
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
                            name: ByteStr::new(se.key),
                            sequence: sb.sequence(),
                            snapshots,
                        });
                    }
                }
            }
            b"content" => {
                for ce in entries(&cb, &p, f) {
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
                        _ => f.push(SchemaFinding::new(
                            SchemaCode::UnknownKey,
                            &cp,
                            format!("unexpected {} under content", show(ce.key)),
                        )),
                    }
                }
            }
            _ => {
                debug_assert!(!NS_KNOWN.contains(&e.key));
                f.push(SchemaFinding::new(
                    SchemaCode::UnknownKey,
                    &p,
                    format!(
                        "namespace {} holds an unknown bucket {}",
                        show(name),
                        show(e.key)
                    ),
                ));
            }
        }
    }
    ns
}

/// The decoded database.
#[derive(Debug, Clone, Default)]
pub struct MetaDb {
    /// `v1/version`, if present and decodable.
    pub schema_version: Option<i64>,
    /// Top-level bucket names (normally just `v1`).
    pub top_level: Vec<ByteStr>,
    /// Namespaces in name order.
    pub namespaces: Vec<Namespace>,
    /// Schema findings, sorted by path then code.
    pub findings: Vec<SchemaFinding>,
}

impl MetaDb {
    /// Decodes the whole tree. Never fails: problems become findings.
    pub fn decode(db: &Db<'_>) -> MetaDb {
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
        let mut top_sandboxes: Vec<(&[u8], Bucket<'_>)> = Vec::new();
        for e in entries(&root, &BucketPath::root(), &mut f) {
            out.top_level.push(ByteStr::new(e.key));
            let EntryKind::Bucket(b) = e.kind else {
                continue;
            }; // the bolt check reports root values
            if e.key == b"v1" {
                v1 = Some(b);
                continue;
            }
            // 1.7 writes sandboxes at `<ns>/sandboxes`, beside v1.
            let p = BucketPath(vec![e.key.to_vec()]);
            let children = entries(&b, &p, &mut f);
            let sandboxes = children
                .iter()
                .find(|c| c.key == b"sandboxes")
                .and_then(|c| c.bucket());
            match sandboxes {
                Some(sb) if children.len() == 1 => top_sandboxes.push((e.key, sb)),
                _ => f.push(SchemaFinding::new(
                    SchemaCode::UnknownTopLevelBucket,
                    &p,
                    format!("top-level bucket {} is not containerd's (only v1, and 1.7's <namespace>/sandboxes)", show(e.key)),
                )),
            }
        }
        let v1path = BucketPath(vec![b"v1".to_vec()]);
        let mut ns_buckets: Vec<(&[u8], Bucket<'_>)> = Vec::new();
        match v1 {
            // Not a containerd metadata database (or one containerd never
            // initialised): there is no schema to check, so no schema findings.
            None => {
                out.findings = Vec::new();
                return out;
            }
            Some(v1) => {
                let mut saw_version = false;
                for e in entries(&v1, &v1path, &mut f) {
                    match e.kind {
                        EntryKind::Bucket(b) => ns_buckets.push((e.key, b)),
                        EntryKind::Value(v) if e.key == b"version" => {
                            saw_version = true;
                            match encoding::varint(v) {
                                Ok(n) => {
                                    out.schema_version = Some(n);
                                    if !(1..=4).contains(&n) {
                                        f.push(SchemaFinding::new(
                                            SchemaCode::VersionInvalid,
                                            &v1path.child(b"version"),
                                            format!("schema version {n} is not one containerd 1.6–2.3 writes (3 or 4)"),
                                        ));
                                    }
                                }
                                Err(err) => f.push(SchemaFinding::new(
                                    SchemaCode::VersionInvalid,
                                    &v1path.child(b"version"),
                                    format!("cannot decode v1/version: {err}"),
                                )),
                            }
                        }
                        EntryKind::Value(_) => f.push(SchemaFinding::new(
                            SchemaCode::UnknownKey,
                            &v1path.child(e.key),
                            format!(
                                "v1 holds a plain key {} (only version is expected)",
                                show(e.key)
                            ),
                        )),
                    }
                }
                if !saw_version {
                    f.push(SchemaFinding::new(
                        SchemaCode::VersionMissing,
                        &v1path,
                        "v1 has no version key",
                    ));
                }
            }
        }
        let decoded: Vec<(Namespace, Sink)> = ns_buckets
            .par_iter()
            .map(|(name, b)| {
                let mut s = Vec::new();
                let ns = decode_namespace(name, b, &mut s);
                (ns, s)
            })
            .collect();
        let mut namespaces = Vec::with_capacity(decoded.len());
        for (ns, s) in decoded {
            namespaces.push(ns);
            f.extend(s);
        }
        for (name, sb) in top_sandboxes {
            let p = BucketPath(vec![name.to_vec(), b"sandboxes".to_vec()]);
            let list = records(
                &sb,
                &p,
                "sandbox",
                SchemaCode::RecordNotBucket,
                &mut f,
                |k, b, p, f| decode_sandbox(k, SandboxLocation::TopLevel, b, p, f),
            );
            match namespaces.binary_search_by(|n: &Namespace| n.name.0.as_slice().cmp(name)) {
                Ok(i) => {
                    if let Some(ns) = namespaces.get_mut(i) {
                        ns.sandboxes.extend(list);
                    }
                }
                Err(i) => namespaces.insert(
                    i,
                    Namespace {
                        name: ByteStr::new(name),
                        in_v1: false,
                        sandboxes: list,
                        ..Namespace::default()
                    },
                ),
            }
        }
        let cross: Vec<Sink> = namespaces
            .par_iter()
            .map(|ns| {
                let mut s = Vec::new();
                cross_check(ns, &mut s);
                s
            })
            .collect();
        f.extend(cross.into_iter().flatten());
        f.sort_by(|a, b| (&a.path, a.code, &a.message).cmp(&(&b.path, b.code, &b.message)));
        out.namespaces = namespaces;
        out.findings = f;
        out
    }

    /// Finds a namespace by name.
    pub fn namespace(&self, name: &[u8]) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name.0 == name)
    }

    /// The containerd release family the file's schema version (and freelist
    /// style) imply.
    pub fn family(&self, has_freelist: bool) -> &'static str {
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
