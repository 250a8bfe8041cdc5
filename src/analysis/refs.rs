//! The digest → references map: for each namespace and image target digest,
//! every image name pointing at it, classified (`tag`, `repoDigest`, `imageId`,
//! `mobyDangling`, `invalid`, `other`), normalized, and flagged with what else
//! refers to it. Names in different namespaces are never grouped together;
//! digests shared across namespaces are listed separately.
//!
//! Built in parallel (namespaces in parallel, a large `images` list split across
//! threads); the output order is deterministic.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::bytes::Bytes;
use crate::containerd::labels as keys;
use crate::containerd::model::{Labels, Namespace};
use crate::containerd::reference::{is_sha256_digest, normalize, Normalized};
use crate::containerd::MetaDb;

/// Docker's keep-alive record name prefix.
pub const MOBY_DANGLING_PREFIX: &[u8] = b"moby-dangling@";

/// What kind of name an image record has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefClass {
    /// `repo:tag`.
    Tag,
    /// `repo@sha256:…`.
    RepoDigest,
    /// `sha256:<64 hex>` (CRI's image-id alias).
    ImageId,
    /// `moby-dangling@sha256:…` (Docker's keep-alive record).
    MobyDangling,
    /// Not a valid docker reference.
    Invalid,
    /// A valid reference with neither tag nor digest.
    Other,
}

impl RefClass {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            RefClass::Tag => "tag",
            RefClass::RepoDigest => "repoDigest",
            RefClass::ImageId => "imageId",
            RefClass::MobyDangling => "mobyDangling",
            RefClass::Invalid => "invalid",
            RefClass::Other => "other",
        }
    }
}

/// The classification of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The class.
    pub class: RefClass,
    /// `ParseDockerRef` of the name (`nginx` → `docker.io/library/nginx:latest`);
    /// `None` for `imageId` and `invalid` names.
    pub normalized: Option<String>,
    /// For names carrying a digest (`repoDigest`, `mobyDangling`): whether it
    /// equals the target digest.
    pub digest_matches_target: Option<bool>,
}

/// Classifies an image name. `target` is the record's target digest.
pub fn classify(name: &[u8], target: Option<&[u8]>) -> Classified {
    if is_sha256_digest(name) {
        return Classified {
            class: RefClass::ImageId,
            normalized: None,
            digest_matches_target: None,
        };
    }
    let Ok(s) = std::str::from_utf8(name) else {
        return Classified {
            class: RefClass::Invalid,
            normalized: None,
            digest_matches_target: None,
        };
    };
    let parsed = normalize(s);
    let matches = |d: &str| Some(target.is_some_and(|t| t == d.as_bytes()));
    // (digest check, has tag) of the parsed name, then `ParseDockerRef` of it.
    let shape = parsed
        .as_ref()
        .ok()
        .map(|r| (r.digest().map(matches), r.tag().is_some()));
    let normalized = parsed.ok().map(Normalized::into_docker_ref);
    if name.starts_with(MOBY_DANGLING_PREFIX) {
        let digest = s.get(MOBY_DANGLING_PREFIX.len()..).unwrap_or_default();
        return Classified {
            class: RefClass::MobyDangling,
            normalized,
            digest_matches_target: matches(digest),
        };
    }
    match shape {
        None => Classified {
            class: RefClass::Invalid,
            normalized: None,
            digest_matches_target: None,
        },
        Some((Some(m), _)) => Classified {
            class: RefClass::RepoDigest,
            normalized,
            digest_matches_target: m,
        },
        Some((None, true)) => Classified {
            class: RefClass::Tag,
            normalized,
            digest_matches_target: None,
        },
        Some((None, false)) => Classified {
            class: RefClass::Other,
            normalized,
            digest_matches_target: None,
        },
    }
}

/// A label elsewhere in the namespace that names an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelRef<'a> {
    /// The object carrying the label, e.g. `content sha256:…`, `image foo:1`.
    pub owner: String,
    /// The label key.
    pub key: Bytes<'a>,
}

/// One image name in a digest group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef<'a> {
    /// The record's name.
    pub name: Bytes<'a>,
    /// Its class.
    pub class: RefClass,
    /// Normalized docker reference.
    pub normalized: Option<String>,
    /// For digest-carrying names: whether the digest equals the target.
    pub digest_matches_target: Option<bool>,
    /// `io.cri-containerd.image=managed`.
    pub managed: bool,
    /// `io.cri-containerd.pinned=pinned`.
    pub pinned: bool,
    /// Container ids whose `image` field equals the name.
    pub used_by_containers: Vec<Bytes<'a>>,
    /// 2.x lease ids holding the name in `leases/<id>/images`.
    pub leased_by: Vec<Bytes<'a>>,
    /// `containerd.io/gc.ref.image*` / `gc.bref.image*` labels whose value is the name.
    pub named_by_labels: Vec<LabelRef<'a>>,
    /// The record's own `containerd.io/gc.*` labels.
    pub gc_labels: Labels<'a>,
    /// The target has no content record in this namespace.
    pub dangling: bool,
}

/// All names in one namespace that point at one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestGroup<'a> {
    /// The namespace.
    pub namespace: Bytes<'a>,
    /// The target digest.
    pub digest: Bytes<'a>,
    /// The media type of the first name's target.
    pub media_type: Bytes<'a>,
    /// The size of the first name's target.
    pub size: i64,
    /// No content record for the digest in this namespace.
    pub dangling: bool,
    /// The names, in key order.
    pub names: Vec<NameRef<'a>>,
}

/// A digest that is a target in more than one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDigest<'a> {
    /// The digest.
    pub digest: Bytes<'a>,
    /// (namespace, number of names there), by namespace.
    pub namespaces: Vec<NamespaceCount<'a>>,
}

/// A namespace and how many names it has for a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceCount<'a> {
    /// The namespace.
    pub namespace: Bytes<'a>,
    /// Names pointing at the digest there.
    pub names: usize,
}

/// The digest → references map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefsMap<'a> {
    /// Groups with more than one name first, then by namespace and digest.
    pub groups: Vec<DigestGroup<'a>>,
    /// Digests targeted in more than one namespace, by digest.
    pub shared: Vec<SharedDigest<'a>>,
}

impl<'a> RefsMap<'a> {
    /// Groups with more than one name.
    pub fn multi_name_groups(&self) -> impl Iterator<Item = &DigestGroup<'a>> {
        self.groups.iter().filter(|g| g.names.len() > 1)
    }
}

/// Names below this count are classified sequentially.
const PAR_MIN: usize = 512;

/// Builds the map for one namespace, in digest order.
pub fn namespace_groups<'a>(ns: &Namespace<'a>) -> Vec<DigestGroup<'a>> {
    let mut by_container: HashMap<&[u8], Vec<Bytes<'a>>> = HashMap::new();
    for c in &ns.containers {
        if let Some(img) = c.image.filter(|i| !i.0.is_empty()) {
            by_container.entry(img.0).or_default().push(c.id);
        }
    }
    let mut by_lease: HashMap<&[u8], Vec<Bytes<'a>>> = HashMap::new();
    for l in &ns.leases {
        for n in &l.images {
            by_lease.entry(n.0).or_default().push(l.id);
        }
    }
    let mut by_label: HashMap<&[u8], Vec<LabelRef<'a>>> = HashMap::new();
    for (owner, labels) in ns.all_labels() {
        if !labels.has_image_ref_labels() {
            continue;
        }
        // Labels are sorted: only the key ranges with an image-ref prefix are read.
        for p in keys::IMAGE_REF_LABEL_PREFIXES {
            for (k, v) in labels.with_prefix(p) {
                by_label.entry(v.0).or_default().push(LabelRef {
                    owner: owner.to_string(),
                    key: *k,
                });
            }
        }
    }
    // Images with a target, by (digest, key order): each name is classified
    // straight into its place, so the sort moves indices, not records.
    let mut order: Vec<(&'a [u8], u32)> = ns
        .images
        .iter()
        .zip(0u32..)
        .filter(|(img, _)| img.target.is_some())
        .filter_map(|(img, i)| img.target_digest().map(|d| (d.0, i)))
        .collect();
    order.sort_unstable();
    let one = |&(_, i): &(&'a [u8], u32)| -> Option<(Bytes<'a>, i64, NameRef<'a>)> {
        let img = ns.images.get(i as usize)?;
        let t = img.target.as_ref()?;
        let digest = img.target_digest()?;
        let c = classify(img.name.0, Some(digest.0));
        let label_is = |k: &[u8], v: &[u8]| img.labels.get(k).is_some_and(|x| x.0 == v);
        let mut named_by_labels = by_label.get(img.name.0).cloned().unwrap_or_default();
        named_by_labels.sort();
        Some((
            t.media_type,
            t.size,
            NameRef {
                name: img.name,
                class: c.class,
                normalized: c.normalized,
                digest_matches_target: c.digest_matches_target,
                managed: label_is(keys::CRI_MANAGED, b"managed"),
                pinned: label_is(keys::CRI_PINNED, b"pinned"),
                used_by_containers: by_container.get(img.name.0).cloned().unwrap_or_default(),
                leased_by: by_lease.get(img.name.0).cloned().unwrap_or_default(),
                named_by_labels,
                gc_labels: if img.labels.has_gc_labels() {
                    img.labels
                        .with_prefix(keys::GC_LABEL_PREFIX)
                        .copied()
                        .collect()
                } else {
                    Labels::new()
                },
                dangling: false, // set below, by digest
            },
        ))
    };
    let named: Vec<Option<(Bytes<'a>, i64, NameRef<'a>)>> = if order.len() >= PAR_MIN {
        order.par_iter().with_min_len(128).map(one).collect()
    } else {
        order.iter().map(one).collect()
    };
    let mut groups: Vec<DigestGroup<'a>> = Vec::new();
    for (&(digest, _), n) in order.iter().zip(named) {
        let Some((media_type, size, n)) = n else {
            continue;
        };
        match groups.last_mut() {
            Some(g) if g.digest.0 == digest => g.names.push(n),
            _ => groups.push(DigestGroup {
                namespace: ns.name,
                digest: Bytes(digest),
                media_type,
                size,
                dangling: false,
                names: vec![n],
            }),
        }
    }
    // Groups and blobs are both in digest order: one merge finds the targets
    // without a content record.
    let mut blobs = ns.blobs.iter().map(|b| b.digest.0).peekable();
    for g in &mut groups {
        while blobs.next_if(|d| *d < g.digest.0).is_some() {}
        let dangling = blobs.peek() != Some(&g.digest.0);
        g.dangling = dangling;
        for n in &mut g.names {
            n.dangling = dangling;
        }
    }
    groups
}

/// The number of digest groups of `ns` with more than one name (what
/// `namespace_groups(ns)` would count, without classifying the names).
pub fn multi_name_digests(ns: &Namespace<'_>) -> usize {
    let mut d: Vec<&[u8]> = ns
        .images
        .iter()
        .filter_map(|i| i.target_digest().map(|d| d.0))
        .collect();
    d.sort_unstable();
    d.chunk_by(|a, b| a == b).filter(|g| g.len() > 1).count()
}

/// The digests targeted in more than one namespace, by digest, from every
/// namespace's groups (given in namespace order).
pub fn shared_digests<'g, 'a: 'g>(
    groups: impl Iterator<Item = &'g DigestGroup<'a>>,
) -> Vec<SharedDigest<'a>> {
    // (digest, position, namespace count): the position keeps namespace order
    // within a digest through the unstable sort.
    let mut all: Vec<(Bytes<'a>, usize, NamespaceCount<'a>)> = groups
        .enumerate()
        .map(|(i, g)| {
            let count = NamespaceCount {
                namespace: g.namespace,
                names: g.names.len(),
            };
            (g.digest, i, count)
        })
        .collect();
    all.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    all.chunk_by(|a, b| a.0 == b.0)
        .filter(|c| c.len() > 1)
        .map(|c| SharedDigest {
            digest: c.first().map(|x| x.0).unwrap_or_default(),
            namespaces: c.iter().map(|x| x.2.clone()).collect(),
        })
        .collect()
}

/// Builds the whole map.
pub fn build<'a>(db: &MetaDb<'a>) -> RefsMap<'a> {
    let per_ns: Vec<Vec<DigestGroup<'a>>> =
        db.namespaces.par_iter().map(namespace_groups).collect();
    let shared = shared_digests(per_ns.iter().flatten());
    // Groups with more than one name first; namespaces were in name order and
    // digests in order within each, and both parts keep that order.
    let (mut groups, single): (Vec<DigestGroup<'a>>, Vec<DigestGroup<'a>>) = per_ns
        .into_iter()
        .flatten()
        .partition(|g| g.names.len() > 1);
    groups.extend(single);
    RefsMap { groups, shared }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "sha256:6a48f8bd607915a989b6f3b2f396dbd2820afd030db9428b39e11b889b520cc7";

    #[test]
    fn classes() {
        let c = |n: &str| classify(n.as_bytes(), Some(T.as_bytes()));
        assert_eq!(c("docker.io/library/tiny:1.0").class, RefClass::Tag);
        assert_eq!(
            c("nginx").normalized.as_deref(),
            Some("docker.io/library/nginx:latest")
        );
        assert_eq!(c("nginx").class, RefClass::Other);
        let rd = c(&format!("127.0.0.1:5000/library/app@{T}"));
        assert_eq!(
            (rd.class, rd.digest_matches_target),
            (RefClass::RepoDigest, Some(true))
        );
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(
            c(&format!("app@{other}")).digest_matches_target,
            Some(false)
        );
        assert_eq!(c(T).class, RefClass::ImageId);
        assert_eq!(c(T).normalized, None);
        let md = c(&format!("moby-dangling@{T}"));
        assert_eq!(
            (md.class, md.digest_matches_target),
            (RefClass::MobyDangling, Some(true))
        );
        assert_eq!(c("Upper/Case:x").class, RefClass::Invalid);
        assert_eq!(c("import-2024-01-01@x").class, RefClass::Invalid);
        assert_eq!(classify(b"\xff\xfe", None).class, RefClass::Invalid);
        assert_eq!(c("sha256:abc").class, RefClass::Tag); // a short hex is a tag of library/sha256, as in Go
    }

    #[test]
    fn normalized_is_parse_docker_ref() {
        use crate::containerd::reference::parse_docker_ref;
        for n in [
            "nginx",
            "nginx:1.2",
            "docker.io/library/nginx:latest",
            "localhost:5000/a/b:c",
            &format!("app@{T}"),
            &format!("app:1@{T}"),
            &format!("moby-dangling@{T}"),
            "Upper/Case:x",
            "a//b",
            "",
        ] {
            let want = parse_docker_ref(n).ok().map(|r| r.to_string());
            let got = classify(n.as_bytes(), Some(T.as_bytes())).normalized;
            if got.is_some() || classify(n.as_bytes(), None).class != RefClass::Invalid {
                assert_eq!(got, want, "{n}");
            }
        }
    }
}
