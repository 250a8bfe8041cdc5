//! The report of `repair`: what was damaged, what each record came from, what
//! is lost, the GC impact and the lease added — in containerd's terms
//! (`docs/report.md`, "repair").

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Bound;
use std::path::Path;

use serde::Serialize;

use super::findings::Finding;
use std::os::unix::ffi::OsStrExt;

use super::wire::{serialize_bytes, OsBytes, PathBytes};
use super::{Envelope, InputInfo, Layout};
use crate::bolt::Corruption;
use crate::bytes::{table_cell, ByteStr};
use crate::containerd::shape::RecordKind;
use crate::oci::VerifyError;
use crate::ops::repair::merge::{identity, Source};
use crate::ops::repair::{ContentStoreOutcome, GcItem, GcKind, GcSet, LostWhat, Outcome, Why};

/// How many recovered and lost records the table lists before it counts.
const TABLE_ROWS: usize = 20;

fn finding(c: &Corruption) -> Finding {
    Finding {
        severity: "error",
        code: c.kind.code(),
        page: c.page,
        offset: c.offset,
        path: c.path.as_ref().map(|p| p.to_string()),
        message: c.message.clone(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tree {
    meta: usize,
    txid: u64,
    role: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordRef {
    namespace: Option<ByteStr>,
    kind: Option<&'static str>,
    id: ByteStr,
    path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecoveredOut {
    #[serde(flatten)]
    record: RecordRef,
    source: &'static str,
    page: Option<u64>,
    reason: &'static str,
    detail: String,
    damage: Option<Finding>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Range {
    #[serde(serialize_with = "bound")]
    from: Bound<Vec<u8>>,
    #[serde(serialize_with = "bound")]
    to: Bound<Vec<u8>>,
}

fn bound<S: serde::Serializer>(b: &Bound<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct B<'b> {
        #[serde(serialize_with = "ser")]
        key: &'b [u8],
        inclusive: bool,
    }
    fn ser<S: serde::Serializer>(k: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(k, s)
    }
    match b {
        Bound::Unbounded => s.serialize_none(),
        Bound::Included(k) => B {
            key: k,
            inclusive: true,
        }
        .serialize(s),
        Bound::Excluded(k) => B {
            key: k,
            inclusive: false,
        }
        .serialize(s),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LostOut {
    namespace: Option<ByteStr>,
    kind: Option<&'static str>,
    id: Option<ByteStr>,
    range: Option<Range>,
    path: String,
    page: Option<u64>,
    damage: Finding,
    recreated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Count {
    namespace: ByteStr,
    kind: &'static str,
    newest_tree: u64,
    other_tree: u64,
    orphan_pages: u64,
    lost: u64,
    recreated: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrphansOut {
    pages_read: u64,
    leaves: u64,
    placed: u64,
    unplaced: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GcOut {
    rules: &'static str,
    input: Vec<GcRecord>,
    output: Vec<GcRecord>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GcRecord {
    namespace: ByteStr,
    kind: &'static str,
    id: ByteStr,
    size: Option<u64>,
}

/// The records, with the blob file's size for content where the content
/// store was read.
fn gc_records(s: &GcSet, content: Option<&ContentStoreOutcome>) -> Vec<GcRecord> {
    s.iter()
        .map(|x: &GcItem| GcRecord {
            namespace: ByteStr(x.namespace.clone()),
            kind: x.kind.name(),
            id: ByteStr(x.id.clone()),
            size: content
                .filter(|_| x.kind == GcKind::Content)
                .and_then(|c| c.sizes.get(String::from_utf8_lossy(&x.id).as_ref()))
                .copied(),
        })
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentStoreOut {
    root: PathBytes,
    recreated: Vec<RecreatedOut>,
    not_recreated: Vec<NotRecreatedOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecreatedOut {
    namespace: ByteStr,
    digest: String,
    size: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotRecreatedOut {
    namespace: ByteStr,
    digest: ByteStr,
    reason: &'static str,
    detail: String,
}

fn reason_code(r: &VerifyError) -> &'static str {
    match r {
        VerifyError::InvalidDigest => "invalidDigest",
        VerifyError::Missing => "missing",
        VerifyError::NotAFile => "notAFile",
        VerifyError::Mismatch { .. } => "digestMismatch",
        VerifyError::Io(_) => "unreadable",
    }
}

fn content_store(c: &ContentStoreOutcome) -> ContentStoreOut {
    ContentStoreOut {
        root: PathBytes(c.root.clone()),
        recreated: c
            .recreated
            .iter()
            .map(|r| RecreatedOut {
                namespace: ByteStr(r.namespace.clone()),
                digest: r.digest.clone(),
                size: r.size,
            })
            .collect(),
        not_recreated: c
            .not_recreated
            .iter()
            .map(|n| NotRecreatedOut {
                namespace: ByteStr(n.namespace.clone()),
                digest: ByteStr(n.digest.clone()),
                reason: reason_code(&n.reason),
                detail: n.reason.to_string(),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaseOut {
    id: String,
    holds: Vec<GcRecord>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    path: PathBytes,
    size: u64,
    txid: u64,
    verified: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    database: &'static str,
    dry_run: bool,
    damaged: bool,
    trees: Vec<Tree>,
    damage: Vec<Finding>,
    other_tree_damage: Vec<Finding>,
    recovered: Vec<RecoveredOut>,
    lost: Vec<LostOut>,
    orphans: Option<OrphansOut>,
    counts: Vec<Count>,
    gc: Option<GcOut>,
    lease: Option<LeaseOut>,
    content_store: Option<ContentStoreOut>,
    output: Option<Written>,
    backup: Option<BackupOut>,
    rollback: Option<OsBytes>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupOut {
    path: PathBytes,
    sha256: String,
}

fn kind_name(k: Option<RecordKind>) -> Option<&'static str> {
    k.map(RecordKind::name)
}

fn body(db: &Path, o: &Outcome) -> Body {
    let trees = o
        .trees
        .iter()
        .enumerate()
        .map(|(i, &(meta, txid))| Tree {
            meta,
            txid,
            role: if i == 0 { "newest" } else { "other" },
        })
        .collect();
    let recovered = o
        .ledger
        .recovered
        .iter()
        .map(|r| {
            let id = r.id();
            let (reason, detail, damage) = match &r.why {
                Why::NewestDamaged(c) => (
                    "newestDamaged",
                    "the newest tree cannot give it whole".to_string(),
                    Some(finding(c)),
                ),
                Why::NewerInOther { newest, other } => (
                    "newerInOtherTree",
                    format!(
                        "both trees hold it whole; the other tree's is newer (updatedat {other} against {newest}): the newest tree's page is an older version"
                    ),
                    None,
                ),
                Why::SnapshotIdOnlyInOther(lost) => (
                    "snapshotIdOnlyInOtherTree",
                    "the newest tree lacks this snapshot and lost snapshot records, and no other record holds its id: kept so containerd does not delete its directory (a snapshot the newest transaction committed is renamed, and its new record may be the one lost)".to_string(),
                    Some(finding(lost)),
                ),
                Why::OlderBucketInNewest(proof) => (
                    "newerInOtherTree",
                    format!(
                        "the other tree's version of {} is newer (its bucket {} has sequence {} there, {} in the newest tree; sequences only grow): the newest tree's page is an older version",
                        proof.bucket,
                        crate::bytes::display(&proof.child),
                        proof.other,
                        proof.newest
                    ),
                    None,
                ),
            };
            let detail = match r.source {
                Source::Orphan => "neither tree can give it; a page no tree reaches holds it whole, placed by its keys (it may be older than both trees)".to_string(),
                Source::Newest | Source::Other => detail,
            };
            RecoveredOut {
                record: RecordRef {
                    namespace: id.namespace.map(ByteStr),
                    kind: kind_name(r.kind),
                    id: ByteStr(id.id),
                    path: r.path.to_string(),
                },
                source: match r.source {
                    Source::Orphan => "orphanPage",
                    Source::Newest | Source::Other => "otherTree",
                },
                page: r.page,
                reason,
                detail,
                damage,
            }
        })
        .collect();
    let lost = o
        .ledger
        .lost
        .iter()
        .map(|l| {
            let (id, range) = match &l.what {
                LostWhat::Record { key } => (Some(identity(&l.path, key, l.kind)), None),
                LostWhat::Range { lower, upper } => (
                    None,
                    Some(Range {
                        from: lower.clone(),
                        to: upper.clone(),
                    }),
                ),
            };
            let ns = match &id {
                Some(i) => i.namespace.clone(),
                None => identity(&l.path, b"", l.kind).namespace,
            };
            let recreated = match (&l.what, &o.content) {
                (LostWhat::Record { key }, Some(c)) => c.recreated.iter().any(|r| {
                    r.digest.as_bytes() == key.as_slice()
                        && l.path.components().nth(1) == Some(r.namespace.as_slice())
                }),
                _ => false,
            };
            LostOut {
                recreated,
                namespace: ns.map(ByteStr),
                kind: kind_name(l.kind),
                id: id.map(|i| ByteStr(i.id)),
                range,
                path: l.path.to_string(),
                page: l.page,
                damage: finding(&l.cause),
            }
        })
        .collect();
    Body {
        database: o.kind.name(),
        dry_run: o.written.is_none(),
        damaged: !o.clean(),
        trees,
        damage: o.ledger.damage.iter().map(finding).collect(),
        other_tree_damage: o.ledger.other_damage.iter().map(finding).collect(),
        recovered,
        lost,
        orphans: o.orphans.map(|s| OrphansOut {
            pages_read: s.pages_read,
            leaves: s.leaves,
            placed: s.placed,
            unplaced: s.unplaced,
        }),
        counts: counts(o),
        gc: o.gc.as_ref().map(|g| GcOut {
            rules: g.rules.name(),
            input: gc_records(&g.input, o.content.as_ref()),
            output: gc_records(&g.output, o.content.as_ref()),
        }),
        lease: o.lease.as_ref().map(|l| LeaseOut {
            id: l.id.clone(),
            holds: gc_records(&l.holds, o.content.as_ref()),
        }),
        content_store: o.content.as_ref().map(content_store),
        output: o.written.as_ref().map(|w| Written {
            path: PathBytes(w.path.clone()),
            size: w.size,
            txid: o.summary.txid,
            verified: true,
        }),
        backup: o.backup.as_ref().map(|b| BackupOut {
            path: PathBytes(b.path.clone()),
            sha256: b.sha256.clone(),
        }),
        rollback: o.backup.as_ref().map(|b| OsBytes(b.restore_command(db))),
    }
}

/// Records per namespace and kind: from each tree, and lost by key.
fn counts(o: &Outcome) -> Vec<Count> {
    /// Records from the newest tree, the other tree, orphan pages; lost;
    /// re-created from the content store.
    type Sources = (u64, u64, u64, u64, u64);
    let mut m: BTreeMap<(Vec<u8>, &'static str), Sources> = BTreeMap::new();
    for ((ns, kind, source), n) in &o.ledger.records {
        let e = m.entry((ns.clone(), kind.name())).or_default();
        match source {
            Source::Newest => e.0 += n,
            Source::Other => e.1 += n,
            Source::Orphan => e.2 += n,
        }
    }
    for l in &o.ledger.lost {
        if let (LostWhat::Record { key }, Some(kind)) = (&l.what, l.kind) {
            let ns = identity(&l.path, key, Some(kind))
                .namespace
                .unwrap_or_default();
            m.entry((ns, kind.name())).or_default().3 += 1;
        }
    }
    for r in o.content.iter().flat_map(|c| &c.recreated) {
        let kind = RecordKind::Content.name();
        m.entry((r.namespace.clone(), kind)).or_default().4 += 1;
    }
    m.into_iter()
        .map(|((ns, kind), (a, b, orphan, lost, recreated))| Count {
            namespace: ByteStr(ns),
            kind,
            newest_tree: a,
            other_tree: b,
            orphan_pages: orphan,
            lost,
            recreated,
        })
        .collect()
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says).
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    input: InputInfo,
    db: &Path,
    o: &Outcome,
) -> io::Result<()> {
    super::write_document(out, &Envelope::new("repair", input, body(db, o)), layout)
}

/// The report for people.
pub fn write_table(out: &mut dyn Write, source: &Path, o: &Outcome) -> io::Result<()> {
    let b = body(source, o);
    let trees: Vec<String> = b
        .trees
        .iter()
        .map(|t| format!("meta {} (txid {}, {})", t.meta, t.txid, t.role))
        .collect();
    writeln!(
        out,
        "{}: {} database; trees read: {}",
        source.display(),
        b.database,
        trees.join(", ")
    )?;
    if !b.damaged {
        writeln!(
            out,
            "no damage: every record was read whole from the newest tree"
        )?;
    } else {
        writeln!(
            out,
            "damage in the newest tree: {} problem(s)",
            b.damage.len()
        )?;
        for f in b.damage.iter().take(TABLE_ROWS) {
            writeln!(out, "  {} {}", f.code, f.describe())?;
        }
        more(out, b.damage.len())?;
    }
    if !b.recovered.is_empty() {
        let orphan = b.recovered.iter().filter(|r| r.page.is_some()).count();
        writeln!(
            out,
            "recovered: {} record(s), {} from the other tree, {orphan} from orphan pages",
            b.recovered.len(),
            b.recovered.len() - orphan
        )?;
        for r in b.recovered.iter().take(TABLE_ROWS) {
            let from = match r.page {
                Some(p) => format!("orphan page {p}"),
                None => "other tree".to_string(),
            };
            writeln!(
                out,
                "  {:<10} {:<14} {}  (from the {from}: {})",
                r.record.kind.unwrap_or("key"),
                r.record
                    .namespace
                    .as_ref()
                    .map_or("-".into(), |n| table_cell(&n.0)),
                table_cell(&r.record.id.0),
                r.detail
            )?;
        }
        more(out, b.recovered.len())?;
    }
    if let Some(o) = &b.orphans {
        writeln!(
            out,
            "orphan pages: {} read that no tree reaches, {} well-formed leaves, {} placed in lost ranges, {} could not be placed",
            o.pages_read, o.leaves, o.placed, o.unplaced
        )?;
    }
    if b.lost.is_empty() {
        if b.damaged {
            writeln!(out, "lost: nothing")?;
        }
    } else {
        writeln!(out, "lost: {}", b.lost.len())?;
        for l in b.lost.iter().take(TABLE_ROWS) {
            let what = match (&l.id, &l.range) {
                (Some(id), _) => table_cell(&id.0),
                (None, Some(r)) => format!("keys {} .. {}", show_bound(&r.from), show_bound(&r.to)),
                (None, None) => String::new(),
            };
            writeln!(
                out,
                "  {:<10} {:<14} {}  (bucket {}{}){}",
                l.kind.unwrap_or("key"),
                l.namespace
                    .as_ref()
                    .map_or("-".into(), |n| table_cell(&n.0)),
                what,
                l.path,
                l.page.map(|p| format!(", page {p}")).unwrap_or_default(),
                if l.recreated {
                    "; re-created from its blob file"
                } else {
                    ""
                }
            )?;
        }
        more(out, b.lost.len())?;
    }
    if let Some(c) = &b.content_store {
        let bytes: u64 = c.recreated.iter().map(|r| r.size).sum();
        writeln!(
            out,
            "content store {}: {} lost content record(s) re-created from verified blob files ({bytes} bytes), {} not re-created",
            c.root.0.display(),
            c.recreated.len(),
            c.not_recreated.len()
        )?;
        for n in c.not_recreated.iter().take(TABLE_ROWS) {
            writeln!(
                out,
                "  not re-created: {} {}: {}",
                table_cell(&n.namespace.0),
                table_cell(&n.digest.0),
                n.detail
            )?;
        }
        more(out, c.not_recreated.len())?;
    }
    if let Some(g) = &b.gc {
        let blob_bytes = |r: &[GcRecord]| -> String {
            if b.content_store.is_none() {
                return String::new();
            }
            let n: u64 = r.iter().filter_map(|x| x.size).sum();
            format!(" ({n} bytes of blobs)")
        };
        writeln!(
            out,
            "GC impact (containerd {} rules): the input as it reads: containerd would delete {} record(s){}; the repaired file: {}{}",
            g.rules,
            g.input.len(),
            blob_bytes(&g.input),
            g.output.len(),
            blob_bytes(&g.output)
        )?;
    }
    if let Some(l) = &b.lease {
        writeln!(
            out,
            "lease {} added: it holds {} record(s) the repaired file would otherwise let containerd's GC delete; review, then delete it (ctr -n NS leases delete {})",
            l.id,
            l.holds.len(),
            l.id
        )?;
    }
    match &b.output {
        Some(w) => writeln!(
            out,
            "wrote {} ({} bytes), verified: ctrdb check finds nothing and it equals the repair",
            w.path.0.display(),
            w.size
        )?,
        None if b.damaged => writeln!(
            out,
            "dry run: nothing written; write with --output OUT or --in-place"
        )?,
        None => {}
    }
    if let Some(bk) = &o.backup {
        writeln!(
            out,
            "backup of the damaged database: {} (sha256 {})",
            bk.path.display(),
            bk.sha256
        )?;
        writeln!(out, "to go back to it, with containerd stopped:")?;
        out.write_all(b"    ")?;
        out.write_all(bk.restore_command(source).as_bytes())?;
        writeln!(out)?;
    }
    Ok(())
}

fn show_bound(b: &Bound<Vec<u8>>) -> String {
    match b {
        Bound::Unbounded => "(end)".into(),
        Bound::Included(k) => format!("[{}", table_cell(k)),
        Bound::Excluded(k) => format!("({}", table_cell(k)),
    }
}

fn more(out: &mut dyn Write, n: usize) -> io::Result<()> {
    if n > TABLE_ROWS {
        writeln!(
            out,
            "  … and {} more (--format json lists all)",
            n - TABLE_ROWS
        )?;
    }
    Ok(())
}
