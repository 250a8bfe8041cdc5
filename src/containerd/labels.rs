//! Every label key ctrdb reads, once: containerd's GC labels
//! (`metadata/gc.go`, `labels` package) and CRI's image labels. How the GC
//! matches them (prefix rules per key) is `analysis::gc::labels`.

/// Prefix of every GC label key.
pub const GC_LABEL_PREFIX: &[u8] = b"containerd.io/gc.";
/// `containerd.io/gc.root`: a content blob or snapshot is a root.
pub const GC_ROOT: &[u8] = b"containerd.io/gc.root";
/// `containerd.io/gc.expire` (RFC 3339): lease expiry; 2.x also image expiry.
pub const GC_EXPIRE: &[u8] = b"containerd.io/gc.expire";
/// `containerd.io/gc.flat`: a lease whose resources' references are not followed.
pub const GC_FLAT: &[u8] = b"containerd.io/gc.flat";
/// `containerd.io/gc.ref.content[.|/…]` → content by digest.
pub const REF_CONTENT: &[u8] = b"containerd.io/gc.ref.content";
/// `containerd.io/gc.ref.snapshot.<snapshotter>[/…]` → snapshot by key.
pub const REF_SNAPSHOT: &[u8] = b"containerd.io/gc.ref.snapshot.";
/// 2.0+: `containerd.io/gc.ref.image[.|/…]` → image by name.
pub const REF_IMAGE: &[u8] = b"containerd.io/gc.ref.image";
/// 2.2+: back reference to the container named in the value.
pub const BREF_CONTAINER: &[u8] = b"containerd.io/gc.bref.container";
/// 2.2+: back reference to the content digest in the value.
pub const BREF_CONTENT: &[u8] = b"containerd.io/gc.bref.content";
/// 2.2+: back reference to the image named in the value.
pub const BREF_IMAGE: &[u8] = b"containerd.io/gc.bref.image";
/// 2.2+: back reference to a snapshot `<snapshotter>/<value>`.
pub const BREF_SNAPSHOT: &[u8] = b"containerd.io/gc.bref.snapshot.";
/// 2.3+: conditional reference from content/image to a snapshot.
pub const COND_SNAPSHOT: &[u8] = b"containerd.io/gc.cond.snapshot";
/// 2.3+: the "used at" time (RFC 3339) on a snapshot that conditions test.
pub const COND_VALUE_USEDAT: &[u8] = b"containerd.io/gc.cond.value-usedat";
/// 2.2+: prefix of every back reference (`gc.bref.*`).
pub const BREF_PREFIX: &[u8] = b"containerd.io/gc.bref.";
/// 2.3+: prefix of every conditional reference (`gc.cond.*`).
pub const COND_PREFIX: &[u8] = b"containerd.io/gc.cond.";
/// Label key prefixes that name an image by name (2.0+ `gc.ref.image`, 2.2+ `gc.bref.image`).
pub const IMAGE_REF_LABEL_PREFIXES: [&[u8]; 2] = [REF_IMAGE, BREF_IMAGE];

/// CRI's managed-image label (`io.cri-containerd.image=managed`).
pub const CRI_MANAGED: &[u8] = b"io.cri-containerd.image";
/// CRI's pinned-image label (`io.cri-containerd.pinned=pinned`).
pub const CRI_PINNED: &[u8] = b"io.cri-containerd.pinned";
