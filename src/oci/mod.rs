//! OCI image documents in containerd's content store, read the way
//! containerd's `images` package reads them, so that `ctrdb images --root`
//! shows what `ctr images ls` shows: an image's size for the default platform
//! (`Image.Size` with `platforms.Default()`) and its platforms
//! (`images.Platforms`).
//!
//! Only manifests, indexes and configs are read (never layers), each bounded
//! by [`MAX_DOCUMENT`]; a blob that is missing, too large, or not the JSON its
//! descriptor says is an error for that image, never a panic. The documents
//! are a foreign format parsed with `serde_json`'s value tree: this module
//! gives nothing of ctrdb's own a wire form.

pub mod blobs;
pub mod platform;
pub mod runtime;
pub mod store;

use serde_json::{Map, Value};

pub use blobs::{BlobFiles, VerifiedBlob, VerifyError};
pub use platform::{Matcher, Platform};
pub use store::{BlobError, ContentStore};

/// The largest manifest, index or config read (16 MiB): real ones are a few
/// KiB; containerd's registry client refuses manifests over 4 MiB.
pub const MAX_DOCUMENT: u64 = 16 << 20;

/// Docker's image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI's image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI's image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI's image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

fn is_manifest(mt: &str) -> bool {
    mt == DOCKER_MANIFEST || mt == OCI_MANIFEST
}

fn is_index(mt: &str) -> bool {
    mt == DOCKER_MANIFEST_LIST || mt == OCI_INDEX
}

fn is_config(mt: &str) -> bool {
    mt == DOCKER_CONFIG || mt == OCI_CONFIG
}

/// A content descriptor (`ocispec.Descriptor`, the fields containerd uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// `mediaType`.
    pub media_type: String,
    /// `digest`, as written (validated when the blob is read).
    pub digest: String,
    /// `size`.
    pub size: i64,
    /// `platform`, in an index.
    pub platform: Option<Platform>,
}

/// Why a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A blob could not be read.
    Blob(BlobError),
    /// A document is not what its descriptor says (containerd's words).
    Invalid {
        /// The document's digest.
        digest: String,
        /// What is wrong.
        what: String,
    },
    /// A descriptor with a negative size.
    NegativeSize {
        /// The size.
        size: i64,
        /// The digest.
        digest: String,
        /// The media type.
        media_type: String,
    },
    /// No manifest of an index matches the platform.
    NoMatch {
        /// The index's digest.
        digest: String,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Blob(e) => write!(f, "{e}"),
            Error::Invalid { digest, what } => write!(f, "{digest}: {what}"),
            Error::NegativeSize {
                size,
                digest,
                media_type,
            } => write!(f, "invalid size {size} in {digest} ({media_type})"),
            Error::NoMatch { digest } => {
                write!(f, "{digest}: no match for platform in manifest: not found")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Where blobs come from: a namespace's view of the content store.
pub trait Provider {
    /// The blob `desc` names, at most [`MAX_DOCUMENT`] bytes.
    fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, BlobError>;
}

/// What `ctr images ls` shows for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    /// The SIZE column in bytes: the sizes of the target and, for the default
    /// platform, one manifest, its config and its layers, summed in walk order
    /// up to the first error (ctr prints that partial sum).
    pub size: i64,
    /// The PLATFORMS column: each platform formatted, unique, sorted; empty
    /// where ctr prints `-` (none found, or an error).
    pub platforms: Vec<String>,
    /// The first error of the size walk, else of the platforms walk (ctr logs
    /// them and prints the row anyway).
    pub error: Option<Error>,
}

/// Where containerd releases differ in what `ctr images ls` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `images.Platforms` leaves out descriptors whose platform has an
    /// `unknown` OS or architecture (BuildKit's attestation manifests): since
    /// containerd 1.7; 1.6 lists them as `unknown/unknown`.
    pub skip_unknown_platforms: bool,
}

impl Rules {
    /// containerd 1.7 and later.
    pub const CURRENT: Rules = Rules {
        skip_unknown_platforms: true,
    };
    /// containerd 1.6 and earlier.
    pub const V1_6: Rules = Rules {
        skip_unknown_platforms: false,
    };
}

/// The SIZE and PLATFORMS of the image whose target is `target`, matching
/// manifests of an index with `platform` as `ctr` does with the default one.
pub fn view(
    provider: &dyn Provider,
    target: &Descriptor,
    platform: &Matcher,
    rules: Rules,
) -> ImageView {
    let mut size = 0i64;
    let size_err = walk_size(provider, target, platform, &mut size, 0).err();
    let (platforms, platforms_err) = match platforms(provider, target, rules) {
        Ok(specs) => {
            let mut names: Vec<String> = specs.iter().map(Platform::format).collect();
            names.sort_unstable();
            names.dedup();
            (names, None)
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    ImageView {
        size,
        platforms,
        error: size_err.or(platforms_err),
    }
}

/// containerd nests no deeper than index → manifest → config/layers; a bound
/// keeps a crafted index that names itself from recursing without end.
const MAX_DEPTH: usize = 16;

/// `Image.Size`: `Walk(Handlers(add size, LimitManifests(FilterPlatforms(Children), p, 1)))`.
fn walk_size(
    provider: &dyn Provider,
    desc: &Descriptor,
    platform: &Matcher,
    size: &mut i64,
    depth: usize,
) -> Result<(), Error> {
    if desc.size < 0 {
        return Err(Error::NegativeSize {
            size: desc.size,
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
        });
    }
    *size = size.saturating_add(desc.size);
    let mut children: Vec<Descriptor> = children(provider, desc, depth)?
        .into_iter()
        .filter(|d| d.platform.as_ref().is_none_or(|p| platform.matches(p)))
        .collect();
    if is_index(&desc.media_type) {
        // sort.SliceStable: descriptors without a platform last, the others by
        // the first of the platform's matchers they match.
        children.sort_by_key(|d| d.platform.as_ref().map_or(usize::MAX, |p| platform.rank(p)));
        if children.is_empty() {
            return Err(Error::NoMatch {
                digest: desc.digest.clone(),
            });
        }
        children.truncate(1);
    }
    for c in &children {
        walk_size(provider, c, platform, size, depth + 1)?;
    }
    Ok(())
}

/// `images.Platforms`: a descriptor's own platform (its children are not
/// visited), else a config's OS and architecture, normalized.
pub fn platforms(
    provider: &dyn Provider,
    target: &Descriptor,
    rules: Rules,
) -> Result<Vec<Platform>, Error> {
    let mut out = Vec::new();
    walk_platforms(provider, target, rules, &mut out, 0)?;
    Ok(out)
}

fn walk_platforms(
    provider: &dyn Provider,
    desc: &Descriptor,
    rules: Rules,
    out: &mut Vec<Platform>,
    depth: usize,
) -> Result<(), Error> {
    if let Some(p) = &desc.platform {
        let unknown = p.os == "unknown" || p.architecture == "unknown";
        if !(unknown && rules.skip_unknown_platforms) {
            out.push(p.clone());
        }
        return Ok(());
    }
    if is_config(&desc.media_type) {
        let doc = read_document(provider, desc)?;
        let os = string_field(&doc, "os", desc)?;
        let architecture = string_field(&doc, "architecture", desc)?;
        out.push(Platform::new(&os, &architecture, "").normalize());
    }
    for c in children(provider, desc, depth)? {
        walk_platforms(provider, &c, rules, out, depth + 1)?;
    }
    Ok(())
}

/// The descriptors a pull of `roots` for `platform` fetches, each digest once,
/// in the order met: the root, and through manifests and indexes their
/// children whose platform matches, of an index only the best-matching
/// manifest (containerd's `Pull`: `LimitManifests(FilterPlatforms(Children),
/// platform, 1)`). A document that cannot be read, or is not what its
/// descriptor says, names nothing; the walk goes on with the others.
pub fn fetched(
    provider: &dyn Provider,
    roots: &[Descriptor],
    platform: &Matcher,
) -> Vec<Descriptor> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        walk_fetched(provider, r, platform, &mut seen, &mut out, 0);
    }
    out
}

fn walk_fetched(
    provider: &dyn Provider,
    desc: &Descriptor,
    platform: &Matcher,
    seen: &mut std::collections::BTreeSet<String>,
    out: &mut Vec<Descriptor>,
    depth: usize,
) {
    if !seen.insert(desc.digest.clone()) {
        return;
    }
    out.push(desc.clone());
    let Ok(children) = children(provider, desc, depth) else {
        return;
    };
    let mut children: Vec<Descriptor> = children
        .into_iter()
        .filter(|d| d.platform.as_ref().is_none_or(|p| platform.matches(p)))
        .collect();
    if is_index(&desc.media_type) {
        children.sort_by_key(|d| d.platform.as_ref().map_or(usize::MAX, |p| platform.rank(p)));
        children.truncate(1);
    }
    for c in &children {
        walk_fetched(provider, c, platform, seen, out, depth + 1);
    }
}

/// `images.Children`: a manifest's config and layers, an index's manifests;
/// nothing for anything else (layers and configs are never read for this).
fn children(
    provider: &dyn Provider,
    desc: &Descriptor,
    depth: usize,
) -> Result<Vec<Descriptor>, Error> {
    let mt = desc.media_type.as_str();
    if !is_manifest(mt) && !is_index(mt) {
        return Ok(Vec::new());
    }
    if depth >= MAX_DEPTH {
        return Err(invalid(
            desc,
            format!("nested deeper than {MAX_DEPTH} documents"),
        ));
    }
    let doc = read_document(provider, desc)?;
    validate_media_type(&doc, desc)?;
    if is_manifest(mt) {
        let mut out = vec![descriptor_field(&doc, "config", desc)?.unwrap_or_default()];
        out.extend(descriptor_list(&doc, "layers", desc)?);
        Ok(out)
    } else {
        descriptor_list(&doc, "manifests", desc)
    }
}

fn invalid(desc: &Descriptor, what: impl Into<String>) -> Error {
    Error::Invalid {
        digest: desc.digest.clone(),
        what: what.into(),
    }
}

/// The blob as a JSON object; `null` reads as an empty one (Go's
/// `json.Unmarshal` leaves the struct zero).
fn read_document(provider: &dyn Provider, desc: &Descriptor) -> Result<Map<String, Value>, Error> {
    let blob = provider.read_blob(desc).map_err(Error::Blob)?;
    match serde_json::from_slice::<Value>(&blob) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(invalid(desc, "not a JSON object")),
        Err(e) => Err(invalid(desc, format!("not JSON: {e}"))),
    }
}

/// A field as Go's decoder finds it: the exact key, else one equal to it
/// ignoring ASCII case.
fn field<'m>(m: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    m.get(key)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn string_field(m: &Map<String, Value>, key: &str, desc: &Descriptor) -> Result<String, Error> {
    match field(m, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(desc, format!("{key} is not a string"))),
    }
}

/// `validateMediaType`: a manifest must not look like an index, nor an index
/// like a manifest; schema 1 is not supported. A key counts when present,
/// even as `null` (Go reads it as a non-empty `json.RawMessage`).
fn validate_media_type(m: &Map<String, Value>, desc: &Descriptor) -> Result<(), Error> {
    let has = |k: &str| m.contains_key(k) || m.keys().any(|x| x.eq_ignore_ascii_case(k));
    if has("fsLayers") {
        return Err(invalid(desc, "media-type: schema 1 not supported"));
    }
    let declared = string_field(m, "mediaType", desc)?;
    let mt = desc.media_type.as_str();
    if is_manifest(mt) && (has("manifests") || is_index(&declared)) {
        return Err(invalid(
            desc,
            format!("media-type: expected manifest but found index ({mt})"),
        ));
    }
    if is_index(mt) && (has("config") || has("layers") || is_manifest(&declared)) {
        return Err(invalid(
            desc,
            format!("media-type: expected index but found manifest ({mt})"),
        ));
    }
    Ok(())
}

fn descriptor_field(
    m: &Map<String, Value>,
    key: &str,
    desc: &Descriptor,
) -> Result<Option<Descriptor>, Error> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::Object(d)) => descriptor(d, desc).map(Some),
        Some(_) => Err(invalid(desc, format!("{key} is not a descriptor"))),
    }
}

fn descriptor_list(
    m: &Map<String, Value>,
    key: &str,
    desc: &Descriptor,
) -> Result<Vec<Descriptor>, Error> {
    match field(m, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Object(d) => descriptor(d, desc),
                Value::Null => Ok(Descriptor::default()),
                _ => Err(invalid(
                    desc,
                    format!("an entry of {key} is not a descriptor"),
                )),
            })
            .collect(),
        Some(_) => Err(invalid(desc, format!("{key} is not a list"))),
    }
}

/// A descriptor object inside the document `parent`.
fn descriptor(d: &Map<String, Value>, parent: &Descriptor) -> Result<Descriptor, Error> {
    let size = match field(d, "size") {
        None => 0,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| invalid(parent, format!("size {v} is not a 64-bit integer")))?,
    };
    let platform = match field(d, "platform") {
        None => None,
        Some(Value::Object(p)) => Some(Platform {
            os: string_field(p, "os", parent)?,
            architecture: string_field(p, "architecture", parent)?,
            variant: string_field(p, "variant", parent)?,
        }),
        Some(_) => return Err(invalid(parent, "platform is not an object")),
    };
    Ok(Descriptor {
        media_type: string_field(d, "mediaType", parent)?,
        digest: string_field(d, "digest", parent)?,
        size,
        platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Blobs(BTreeMap<String, Vec<u8>>);

    impl Provider for Blobs {
        fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, BlobError> {
            self.0
                .get(&desc.digest)
                .cloned()
                .ok_or_else(|| BlobError::NotFound(desc.digest.clone()))
        }
    }

    fn desc(media_type: &str, digest: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            ..Descriptor::default()
        }
    }

    #[test]
    fn a_pull_fetches_the_best_matching_manifest_and_goes_past_unreadable_documents() {
        let manifest = |config: &str, layer: &str| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":3}}]}}"#
            )
        };
        let index = format!(
            r#"{{"mediaType":"{OCI_INDEX}","manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"m1","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"m2","size":1,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
        );
        let blobs = Blobs(BTreeMap::from([
            ("i".to_string(), index.into_bytes()),
            ("m1".to_string(), manifest("c1", "l1").into_bytes()),
            ("m2".to_string(), manifest("c2", "l1").into_bytes()),
            ("m3".to_string(), b"not json".to_vec()),
        ]));
        let arm64 = Matcher::only(&Platform::new("linux", "arm64", ""));
        let got = |roots: &[Descriptor]| -> Vec<String> {
            fetched(&blobs, roots, &arm64)
                .into_iter()
                .map(|d| d.digest)
                .collect()
        };
        assert_eq!(got(&[desc(OCI_INDEX, "i")]), ["i", "m2", "c2", "l1"]);
        assert_eq!(
            got(&[
                desc(OCI_MANIFEST, "m3"),
                desc(OCI_MANIFEST, "gone"),
                desc(OCI_MANIFEST, "m1")
            ]),
            ["m3", "gone", "m1", "c1", "l1"]
        );
    }
}
