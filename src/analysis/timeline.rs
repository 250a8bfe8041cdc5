//! Every record's creation and last update in time order (`ctrdb timeline`):
//! the view an investigator otherwise builds by hand from `createdat` and
//! `updatedat`.
//!
//! An update is an event only when it differs from the creation (containerd
//! writes both at creation). Namespaces and ingests keep no times; a record
//! whose times do not decode has no events (the decoder reports it).

use crate::bytes::Bytes;
use crate::containerd::shape::RecordKind;
use crate::containerd::{MetaDb, Timestamp};

/// What happened at an event's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// The record was created (`createdat`).
    Created,
    /// The record was last changed (`updatedat`, when later than `createdat`).
    Updated,
}

impl EventKind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
        }
    }
}

/// One event of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// When.
    pub time: Timestamp,
    /// What.
    pub event: EventKind,
    /// The record's namespace.
    pub namespace: Bytes<'a>,
    /// Its kind.
    pub kind: RecordKind,
    /// Its id, as `repair` and `diff` report it (a snapshot's is
    /// `<snapshotter>/<key>`).
    pub id: Vec<u8>,
}

/// The events of the namespaces `selected` keeps, in time order (then by
/// namespace, kind and id, creation before update).
pub fn timeline<'a>(meta: &MetaDb<'a>, selected: impl Fn(&[u8]) -> bool) -> Vec<Event<'a>> {
    let mut out = Vec::new();
    for ns in meta.namespaces.iter().filter(|n| selected(n.name.0)) {
        let mut add =
            |kind, id: Vec<u8>, created: Option<Timestamp>, updated: Option<Timestamp>| {
                let mut push = |time, event| {
                    out.push(Event {
                        time,
                        event,
                        namespace: ns.name,
                        kind,
                        id: id.clone(),
                    })
                };
                if let Some(t) = created {
                    push(t, EventKind::Created);
                }
                if let Some(t) = updated.filter(|u| Some(*u) != created) {
                    push(t, EventKind::Updated);
                }
            };
        for x in &ns.images {
            add(
                RecordKind::Image,
                x.name.0.to_vec(),
                x.created_at,
                x.updated_at,
            );
        }
        for x in &ns.containers {
            add(
                RecordKind::Container,
                x.id.0.to_vec(),
                x.created_at,
                x.updated_at,
            );
        }
        for x in &ns.blobs {
            add(
                RecordKind::Content,
                x.digest.0.to_vec(),
                x.created_at,
                x.updated_at,
            );
        }
        for sn in &ns.snapshotters {
            for x in &sn.snapshots {
                let mut id = sn.name.0.to_vec();
                id.push(b'/');
                id.extend_from_slice(x.key.0);
                add(RecordKind::Snapshot, id, x.created_at, x.updated_at);
            }
        }
        for x in &ns.leases {
            add(RecordKind::Lease, x.id.0.to_vec(), x.created_at, None);
        }
        for x in &ns.sandboxes {
            add(
                RecordKind::Sandbox,
                x.id.0.to_vec(),
                x.created_at,
                x.updated_at,
            );
        }
    }
    out.sort_by(|a, b| {
        (a.time, a.namespace.0, a.kind, &a.id, a.event).cmp(&(
            b.time,
            b.namespace.0,
            b.kind,
            &b.id,
            b.event,
        ))
    });
    out
}
