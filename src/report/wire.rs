//! The JSON forms of the values reports carry. Byte strings (names, keys,
//! digests, label values) are never replaced or lost: a JSON string when they
//! are UTF-8, `{"bytes": "<base64>"}` otherwise. A label map is a JSON object,
//! whose keys must be strings: a key that is not UTF-8 is written as the string
//! `"\u0000b64:<base64>"` (no UTF-8 label key starts with NUL). Timestamps are
//! RFC 3339 in UTC with nine fractional digits. `docs/report.md` is the
//! specification.

#![deny(clippy::indexing_slicing)]

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use std::collections::BTreeSet;

use crate::analysis::dedup::{Action, Decision, NamespaceSummary, Protection, Reason, TargetRef};
use crate::analysis::gc::Collectable;
use crate::analysis::refs::{
    DigestGroup, LabelRef, NameRef, NamespaceCount, RefClass, SharedDigest,
};
use crate::bytes::{ByteStr, Bytes};
use crate::containerd::encoding::{AnyValue, Timestamp};
use crate::containerd::model::{Labels, Target};

/// The prefix of a non-UTF-8 label key's string form.
pub const NON_UTF8_KEY_PREFIX: &str = "\u{0}b64:";

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Serializes bytes as a string if UTF-8, else `{"bytes": base64}`.
pub fn serialize_bytes<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(b) {
        Ok(t) => s.serialize_str(t),
        Err(_) => {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("bytes", &base64(b))?;
            m.end()
        }
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(self.0, s)
    }
}

impl Serialize for ByteStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(&self.0, s)
    }
}

/// A byte string as a JSON object's key: itself if UTF-8, else
/// [`NON_UTF8_KEY_PREFIX`] + base64.
pub fn map_key(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{NON_UTF8_KEY_PREFIX}{}", base64(k)),
    }
}

/// Serializes a [`Labels`] map as a JSON object (keys as [`map_key`]).
pub fn serialize_labels<S: Serializer>(m: &Labels<'_>, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        map.serialize_entry(&map_key(k.0), v)?;
    }
    map.end()
}

/// A file path as a byte string: the path's own bytes, so a path that is not
/// UTF-8 is `{"bytes": …}` rather than a lossy string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathBytes(pub std::path::PathBuf);

impl Serialize for PathBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::os::unix::ffi::OsStrExt;
        serialize_bytes(self.0.as_os_str().as_bytes(), s)
    }
}

/// A shell command (or any byte string held as an `OsString`), as a byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsBytes(pub std::ffi::OsString);

impl Serialize for OsBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::os::unix::ffi::OsStrExt;
        serialize_bytes(self.0.as_bytes(), s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

impl Serialize for AnyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Any", 2)?;
        st.serialize_field("typeUrl", &Bytes(self.type_url))?;
        st.serialize_field("valueSize", &self.value.len())?;
        st.end()
    }
}

/// The JSON form of a domain value: `Json(&value)`. Domain types carry no
/// serialization of their own; each form is spelled out here, field by field,
/// in the order the report has it.
#[derive(Debug)]
pub struct Json<'r, T: ?Sized>(pub &'r T);

impl<T> Serialize for Json<'_, [T]>
where
    for<'x> Json<'x, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Json))
    }
}

impl<T> Serialize for Json<'_, Vec<T>>
where
    for<'x> Json<'x, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Json(self.0.as_slice()).serialize(s)
    }
}

impl<T> Serialize for Json<'_, Option<T>>
where
    for<'x> Json<'x, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) => s.serialize_some(&Json(v)),
            None => s.serialize_none(),
        }
    }
}

/// `impl Serialize for Json<'_, Type>` as a JSON object of `"key": expression`
/// entries, the expressions reading the value through `$v`.
macro_rules! json_object {
    (impl<$($lt:lifetime),*> $ty:ty, |$v:ident| { $($key:literal : $e:expr),* $(,)? }) => {
        impl<$($lt),*> Serialize for Json<'_, $ty> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let $v = self.0;
                let mut m = s.serialize_map(None)?;
                $( m.serialize_entry($key, &$e)?; )*
                m.end()
            }
        }
    };
}

/// `impl Serialize for Json<'_, Enum>` as the string its `name()` gives.
macro_rules! json_name {
    ($($ty:ty),*) => {$(
        impl Serialize for Json<'_, $ty> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.name())
            }
        }
    )*};
}

json_name!(RefClass, Action, Reason, Protection);

/// A set of labels as a JSON object (see [`serialize_labels`]).
#[derive(Debug)]
pub struct LabelMap<'r, 'a>(pub &'r Labels<'a>);

impl Serialize for LabelMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_labels(self.0, s)
    }
}

json_object!(impl<'a> Target<'a>, |t| {
    "digest": t.digest,
    "mediaType": t.media_type,
    "size": t.size,
});

json_object!(impl<'a> LabelRef<'a>, |r| {
    "owner": r.owner,
    "key": r.key,
});

impl Serialize for Json<'_, NameRef<'_>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &n.name)?;
        m.serialize_entry("class", &Json(&n.class))?;
        m.serialize_entry("normalized", &n.normalized)?;
        if let Some(matches) = n.digest_matches_target {
            m.serialize_entry("digestMatchesTarget", &matches)?;
        }
        m.serialize_entry("managed", &n.managed)?;
        m.serialize_entry("pinned", &n.pinned)?;
        m.serialize_entry("usedByContainers", &n.used_by_containers)?;
        m.serialize_entry("leasedBy", &n.leased_by)?;
        m.serialize_entry("namedByLabels", &Json(&n.named_by_labels))?;
        m.serialize_entry("gcLabels", &LabelMap(&n.gc_labels))?;
        m.serialize_entry("dangling", &n.dangling)?;
        m.end()
    }
}

json_object!(impl<'a> DigestGroup<'a>, |g| {
    "namespace": g.namespace,
    "digest": g.digest,
    "mediaType": g.media_type,
    "size": g.size,
    "dangling": g.dangling,
    "names": Json(&g.names),
});

json_object!(impl<'a> NamespaceCount<'a>, |c| {
    "namespace": c.namespace,
    "names": c.names,
});

json_object!(impl<'a> SharedDigest<'a>, |d| {
    "digest": d.digest,
    "namespaces": Json(&d.namespaces),
});

json_object!(impl<'a> TargetRef<'a>, |t| {
    "digest": t.digest,
});

json_object!(impl<'a> Decision<'a>, |d| {
    "namespace": d.namespace,
    "name": d.name,
    "target": Json(&d.target),
    "class": Json(&d.class),
    "action": Json(&d.action),
    "reason": Json(&d.reason),
    "protectedBy": Json(&d.protected_by),
    "detail": d.detail,
});

json_object!(impl<'a> NamespaceSummary<'a>, |n| {
    "namespace": n.namespace,
    "names": n.names,
    "kept": n.kept,
    "removed": n.removed,
    "protected": n.protected,
});

/// The records of a [`Collectable`] set, per kind: lists of
/// `{"namespace", "digest"|"name"|"id"|"ref"}` and of
/// `{"namespace", "snapshotter", "key"}`.
impl Serialize for Json<'_, Collectable<'_>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("content", &NamespacedPairs(&c.content, "digest"))?;
        m.serialize_entry("snapshots", &NamespacedSnapshots(&c.snapshots))?;
        m.serialize_entry("images", &NamespacedPairs(&c.images, "name"))?;
        m.serialize_entry("leases", &NamespacedPairs(&c.leases, "id"))?;
        m.serialize_entry("ingests", &NamespacedPairs(&c.ingests, "ref"))?;
        m.end()
    }
}

type Pairs<'a> = BTreeSet<(Bytes<'a>, Bytes<'a>)>;

/// `(namespace, x)` records as `[{"namespace": …, "<key>": x}, …]`.
struct NamespacedPairs<'r, 'a>(&'r Pairs<'a>, &'static str);

impl Serialize for NamespacedPairs<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let key = self.1;
        s.collect_seq(
            self.0
                .iter()
                .map(|(namespace, x)| Record([("namespace", *namespace), (key, *x)])),
        )
    }
}

/// `(namespace, snapshotter, key)` records as objects.
struct NamespacedSnapshots<'r, 'a>(&'r BTreeSet<(Bytes<'a>, Bytes<'a>, Bytes<'a>)>);

impl Serialize for NamespacedSnapshots<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(namespace, snapshotter, key)| {
            Record([
                ("namespace", *namespace),
                ("snapshotter", *snapshotter),
                ("key", *key),
            ])
        }))
    }
}

/// A JSON object of byte-string fields, in this order.
struct Record<'a, const N: usize>([(&'static str, Bytes<'a>); N]);

impl<const N: usize> Serialize for Record<'_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(N))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
