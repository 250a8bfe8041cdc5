//! A model of containerd's metadata garbage collector: which records the next
//! GC run would delete (`containerd-metadb.md` §5, `docs/gc.md`).
//!
//! containerd's GC (`metadata/gc.go`, 2.x `core/metadata/gc.go`) marks, per
//! namespace, everything reachable from a set of roots and sweeps leases,
//! snapshots, ingests, content blobs (and 2.x images) that were not marked. On
//! every start the first GC runs unconditionally, so whatever an offline edit
//! leaves unreachable is gone shortly after the next start. [`collectable`]
//! computes that set from a decoded [`MetaDb`]; [`collectable_without`] does so
//! as if some image records had been deleted, which is what the dedup planner
//! needs to prove that removing them loses nothing.
//!
//! The model follows containerd's code, not its documentation: node keys are
//! containerd's strings (a snapshot is `"<snapshotter>/<key>"`, split at the first
//! `/` when looked up), the flat bit travels exactly as there, and label keys
//! are matched with containerd's prefix rules ([`labels`]).
//!
//! # Versions ([`GcRules`])
//! * **1.6**: roots = unexpired leases (+ their content, snapshots, ingests),
//!   every image (target + the image's label refs), ingests with `expireat` in
//!   the future, blobs and snapshots labelled `containerd.io/gc.root`,
//!   containers (their snapshot + label refs). Edges: label refs
//!   `gc.ref.content*` / `gc.ref.snapshot.*`, snapshot → parent, ingest →
//!   `expected`.
//! * **1.7**: also label refs of sandboxes under `v1/<ns>/sandboxes` (1.7 itself
//!   writes sandboxes at the top level, which its GC does not look at); generic
//!   `gc.ref.<collector>` labels for in-memory resources (streams), which touch
//!   nothing in meta.db.
//! * **2.0/2.1**: images become nodes. An image is a root unless its
//!   `containerd.io/gc.expire` (RFC 3339) is past; expired images are swept
//!   unless reached. Leases hold `images/<name>`; `gc.ref.image*` labels
//!   reference images by name. Sandboxes live in `v1/<ns>/sandboxes`.
//! * **2.2** adds back references `containerd.io/gc.bref.container|content|image`
//!   and `gc.bref.snapshot.<snapshotter>`: the labelled object is kept if the
//!   object named by the value is reached (an expired image too); and
//!   `containerd.io/gc.root` becomes a prefix match. **2.3** adds conditional
//!   references `containerd.io/gc.cond.snapshot…` on content/images (`usedat<D`,
//!   `usedat>D`) tested against snapshots' `containerd.io/gc.cond.value-usedat`;
//!   [`GcRules::V2_2`] applies them too (they only add reachability).
//!   A 2.2/2.3 file cannot be told from a 2.0/2.1 one, so [`GcRules::for_db`]
//!   picks `V2_2` whenever such labels exist: on a file without them both rule
//!   sets give the same answer, and with them `V2_2` keeps more (safe side).
//!
//! Not modelled: the GC failing as a whole (containerd aborts the run when an
//! ingest's `expireat` cannot be decoded, so nothing is collected; we treat such
//! an ingest as having no expiry); in-memory collectors (1.7+ streams, 2.x
//! active mounts); backend cleanup (blob files, snapshot directories), which
//! follows from the metadata removed here.

pub mod gotime;
pub mod labels;
mod mark;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bytes::table_cell;
use crate::bytes::Bytes;
use crate::containerd::labels as keys;
use crate::containerd::{MetaDb, Namespace};

/// Which containerd release family's GC to model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GcRules {
    /// containerd 1.6.
    V1_6,
    /// containerd 1.7: 1.6 plus sandbox label refs (`v1/<ns>/sandboxes` only).
    V1_7,
    /// containerd 2.0/2.1: image nodes, image expiry, lease images, `gc.ref.image`.
    V2_0,
    /// containerd 2.2+: 2.0 plus back references (`gc.bref.*`), `gc.root` as a
    /// prefix, and 2.3's conditional snapshot references (`gc.cond.*`).
    V2_2,
}

impl GcRules {
    /// The rules for a decoded file without knowing its freelist style:
    /// `v1/version` 4 → [`GcRules::V2_0`], or [`GcRules::V2_2`] if any label uses
    /// 2.2+ syntax; otherwise (3, missing) [`GcRules::V1_7`], which differs from
    /// 1.6 only by keeping more (sandbox label refs). See [`GcRules::for_file`].
    pub fn for_db(db: &MetaDb<'_>) -> GcRules {
        GcRules::for_file(db, false)
    }

    /// Like [`GcRules::for_db`], using the file's freelist style to tell 1.6
    /// (bbolt writes a freelist page) from 1.7 (`NoFreelistSync`); pass
    /// `bolt::Db::meta().has_freelist()`.
    pub fn for_file(db: &MetaDb<'_>, has_freelist: bool) -> GcRules {
        match db.schema_version {
            Some(v) if v >= 4 && uses_2_2_labels(db) => GcRules::V2_2,
            Some(v) if v >= 4 => GcRules::V2_0,
            _ if has_freelist => GcRules::V1_6,
            _ => GcRules::V1_7,
        }
    }

    /// Images are GC nodes (expiry, lease images, `gc.ref.image`): 2.0+.
    pub fn image_nodes(self) -> bool {
        self >= GcRules::V2_0
    }

    /// Sandbox label refs are roots: 1.7+.
    pub fn sandboxes(self) -> bool {
        self >= GcRules::V1_7
    }

    /// Back references, `gc.root` prefix, conditional references: 2.2+.
    pub fn back_refs(self) -> bool {
        self >= GcRules::V2_2
    }

    /// The release family's name: `1.6`, `1.7`, `2.0`, `2.2`.
    pub fn name(self) -> &'static str {
        match self {
            GcRules::V1_6 => "1.6",
            GcRules::V1_7 => "1.7",
            GcRules::V2_0 => "2.0",
            GcRules::V2_2 => "2.2",
        }
    }
}

/// Whether any label in `db` is only meaningful to containerd 2.2+ GC.
fn uses_2_2_labels(db: &MetaDb<'_>) -> bool {
    db.namespaces.iter().any(|ns| {
        ns.all_labels().any(|(_, l)| {
            // Labels are sorted: look only at the key ranges of these prefixes.
            l.has_gc_labels()
                && (l.with_prefix(keys::BREF_PREFIX).next().is_some()
                    || l.with_prefix(keys::COND_PREFIX).next().is_some()
                    || l.with_prefix(keys::GC_ROOT)
                        .any(|(k, _)| k.0 != keys::GC_ROOT))
        })
    })
}

/// Options for [`collectable`].
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// The time the GC runs at (lease, image and ingest expiry).
    pub now: SystemTime,
    /// The release family.
    pub rules: GcRules,
}

impl GcOptions {
    /// `now` as Unix nanoseconds.
    fn now_ns(&self) -> i128 {
        match self.now.duration_since(UNIX_EPOCH) {
            Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
            Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
        }
    }
}

/// What containerd's GC would collect before and after removing image records,
/// and the difference: the GC proof of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact<'a> {
    /// The rules applied.
    pub rules: GcRules,
    /// The time the GC is modelled at.
    pub now: SystemTime,
    /// Collectable in the input as it is.
    pub before: Collectable<'a>,
    /// Collectable once `removed` is gone.
    pub after: Collectable<'a>,
    /// `after` minus `before`: what the edit would newly let the GC delete.
    pub newly: Collectable<'a>,
}

impl<'a> Impact<'a> {
    /// The impact of removing the image records `removed` (`(namespace, name)`)
    /// from `db` at `now`; `has_freelist` tells 1.6 from 1.7 ([`GcRules::for_file`]).
    pub fn of_removal(
        db: &MetaDb<'a>,
        removed: &BTreeSet<(Bytes<'a>, Bytes<'a>)>,
        has_freelist: bool,
        now: SystemTime,
    ) -> Impact<'a> {
        let rules = GcRules::for_file(db, has_freelist);
        let (before, after) = collectable_before_and_after(db, removed, &GcOptions { now, rules });
        let newly = after.minus(&before);
        Impact {
            rules,
            now,
            before,
            after,
            newly,
        }
    }
}

/// What containerd's next GC would delete, per kind, as `(namespace, …)` tuples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collectable<'a> {
    /// Content blob records `(ns, digest)`.
    pub content: BTreeSet<(Bytes<'a>, Bytes<'a>)>,
    /// Snapshot records `(ns, snapshotter, key)`.
    pub snapshots: BTreeSet<(Bytes<'a>, Bytes<'a>, Bytes<'a>)>,
    /// Image records `(ns, name)`: 2.x only (expired, unreferenced images).
    pub images: BTreeSet<(Bytes<'a>, Bytes<'a>)>,
    /// Lease records `(ns, id)`: expired leases.
    pub leases: BTreeSet<(Bytes<'a>, Bytes<'a>)>,
    /// Ingest records `(ns, ref)`.
    pub ingests: BTreeSet<(Bytes<'a>, Bytes<'a>)>,
}

impl<'a> Collectable<'a> {
    /// Nothing would be collected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of records over all kinds.
    pub fn len(&self) -> usize {
        self.content.len()
            + self.snapshots.len()
            + self.images.len()
            + self.leases.len()
            + self.ingests.len()
    }

    /// Adds every record of `other`.
    pub fn extend(&mut self, other: Collectable<'a>) {
        self.content.extend(other.content);
        self.snapshots.extend(other.snapshots);
        self.images.extend(other.images);
        self.leases.extend(other.leases);
        self.ingests.extend(other.ingests);
    }

    /// The records per kind for messages: `2 content blob(s), 1 lease(s)`, or `nothing`.
    pub fn counts(&self) -> String {
        if self.is_empty() {
            return "nothing".into();
        }
        [
            (self.content.len(), "content blob(s)"),
            (self.snapshots.len(), "snapshot(s)"),
            (self.images.len(), "image(s)"),
            (self.leases.len(), "lease(s)"),
            (self.ingests.len(), "ingest(s)"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// The first `max` records for messages: `content default/sha256:…, snapshot
    /// default/overlayfs/…, and 3 more`.
    pub fn describe(&self, max: usize) -> String {
        let s = |b: &Bytes<'_>| table_cell(b.0);
        let mut v: Vec<String> = Vec::new();
        v.extend(
            self.content
                .iter()
                .map(|(n, d)| format!("content {}/{}", s(n), s(d))),
        );
        v.extend(
            self.snapshots
                .iter()
                .map(|(n, sn, k)| format!("snapshot {}/{}/{}", s(n), s(sn), s(k))),
        );
        v.extend(
            self.images
                .iter()
                .map(|(n, x)| format!("image {}/{}", s(n), s(x))),
        );
        v.extend(
            self.leases
                .iter()
                .map(|(n, x)| format!("lease {}/{}", s(n), s(x))),
        );
        v.extend(
            self.ingests
                .iter()
                .map(|(n, x)| format!("ingest {}/{}", s(n), s(x))),
        );
        let more = v.len().saturating_sub(max);
        v.truncate(max);
        if more > 0 {
            v.push(format!("and {more} more"));
        }
        v.join(", ")
    }

    /// Per-kind set difference `self \ other`: e.g. what an edit newly makes collectable.
    pub fn minus(&self, other: &Collectable<'a>) -> Collectable<'a> {
        fn d<T: Ord + Clone>(a: &BTreeSet<T>, b: &BTreeSet<T>) -> BTreeSet<T> {
            a.difference(b).cloned().collect()
        }
        Collectable {
            content: d(&self.content, &other.content),
            snapshots: d(&self.snapshots, &other.snapshots),
            images: d(&self.images, &other.images),
            leases: d(&self.leases, &other.leases),
            ingests: d(&self.ingests, &other.ingests),
        }
    }
}

/// What containerd's next GC would delete from `db`.
pub fn collectable<'a>(db: &MetaDb<'a>, opts: &GcOptions) -> Collectable<'a> {
    collectable_without(db, &BTreeSet::new(), opts)
}

/// `(collectable(db), collectable_without(db, removed_images))` from one mark
/// per namespace extended incrementally (see `NsGc::sweep_before_and_after`):
/// about half the work of computing both separately, with the same result.
pub fn collectable_before_and_after<'a>(
    db: &MetaDb<'a>,
    removed_images: &BTreeSet<(Bytes<'_>, Bytes<'_>)>,
    opts: &GcOptions,
) -> (Collectable<'a>, Collectable<'a>) {
    use rayon::prelude::*;
    let now = opts.now_ns();
    let none = BTreeSet::new();
    let per_ns: Vec<(Collectable<'a>, Collectable<'a>)> = db
        .namespaces
        .par_iter()
        .map(|ns| {
            let removed = removed_in(removed_images, ns);
            let ctx = |removed| ns_gc(db, ns, removed, opts.rules, now);
            let (mut before, mut after) = (Collectable::default(), Collectable::default());
            ctx(&none).sweep_before_and_after(&ctx(&removed), &mut before, &mut after);
            (before, after)
        })
        .collect();
    let (mut before, mut after) = (Collectable::default(), Collectable::default());
    for (b, a) in per_ns {
        before.extend(b);
        after.extend(a);
    }
    (before, after)
}

/// What containerd's next GC would delete from `db` if the image records
/// `(namespace, name)` in `removed_images` were deleted first. Removed images
/// are neither roots nor reachable by name, and are not reported as collectable.
pub fn collectable_without<'a>(
    db: &MetaDb<'a>,
    removed_images: &BTreeSet<(Bytes<'_>, Bytes<'_>)>,
    opts: &GcOptions,
) -> Collectable<'a> {
    use rayon::prelude::*;
    let now = opts.now_ns();
    // Namespaces are independent (references never leave one): mark them in
    // parallel, then merge.
    let per_ns: Vec<Collectable<'a>> = db
        .namespaces
        .par_iter()
        .map(|ns| {
            let removed = removed_in(removed_images, ns);
            let mut out = Collectable::default();
            ns_gc(db, ns, &removed, opts.rules, now).sweep(&mut out);
            out
        })
        .collect();
    let mut out = Collectable::default();
    for c in per_ns {
        out.extend(c);
    }
    out
}

/// The names of `ns`'s images among `removed_images` (`(namespace, name)` pairs).
fn removed_in<'r>(
    removed_images: &'r BTreeSet<(Bytes<'_>, Bytes<'_>)>,
    ns: &Namespace<'_>,
) -> BTreeSet<&'r [u8]> {
    removed_images
        .iter()
        .filter(|(n, _)| n.0 == ns.name.0)
        .map(|(_, i)| i.0)
        .collect()
}

/// One namespace's GC inputs.
fn ns_gc<'r, 'a>(
    db: &MetaDb<'a>,
    ns: &'r Namespace<'a>,
    removed: &'r BTreeSet<&'r [u8]>,
    rules: GcRules,
    now: i128,
) -> mark::NsGc<'r, 'a> {
    mark::NsGc {
        ns,
        removed,
        rules,
        now,
        schema_version: db.schema_version,
    }
}
