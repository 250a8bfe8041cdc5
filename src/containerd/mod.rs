//! containerd's metadata schema: decoding `meta.db`'s bucket tree
//! (`containerd-metadb.md` §3) into typed, per-namespace records, and the schema
//! findings `ctrdb check` reports. Knows nothing about output formats.
//!
//! Entry point: [`MetaDb::decode`]. Every namespace's images, content blobs,
//! ingests, containers, snapshots (per snapshotter, with the bucket sequence),
//! leases and sandboxes are in [`Namespace`]; lookups by key are
//! [`Namespace::image`], [`Namespace::blob`], [`Namespace::snapshot`].

pub mod decode;
pub mod encoding;
pub mod findings;
pub mod kind;
pub mod labels;
pub mod model;
pub mod namespaces;
pub mod placement;
pub mod records;
pub mod reference;
pub mod roots;
pub mod shape;

pub use decode::MetaDb;
pub use encoding::{AnyValue, DecodeError, Timestamp};
pub use findings::{SchemaCode, SchemaFinding};
pub use kind::DbKind;
pub use model::*;
