//! containerd's local content store as a namespace sees it: a blob is
//! readable when the namespace's metadata records it (containerd's metadata
//! content store answers "not found" otherwise, whatever is on disk) and its
//! file `ROOT/io.containerd.content.v1.content/blobs/<algorithm>/<hex>` is.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Descriptor, Provider, MAX_DOCUMENT};

/// The content store's place under a containerd root.
pub const CONTENT_UNDER_ROOT: &str = "io.containerd.content.v1.content";

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// Not a digest containerd accepts (so it names no file).
    InvalidDigest(String),
    /// The namespace has no such content, or its file is missing.
    NotFound(String),
    /// Larger than any document ctrdb reads.
    TooLarge {
        /// The digest.
        digest: String,
        /// The file's size.
        size: u64,
    },
    /// Reading the file failed.
    Io {
        /// The digest.
        digest: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: String,
    },
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::InvalidDigest(d) => write!(f, "invalid digest {d:?}"),
            BlobError::NotFound(d) => write!(f, "content digest {d}: not found"),
            BlobError::TooLarge { digest, size } => write!(
                f,
                "content digest {digest}: {size} bytes, more than the {MAX_DOCUMENT} a manifest, index or config may have"
            ),
            BlobError::Io { digest, path, cause } => {
                write!(f, "content digest {digest}: {}: {cause}", path.display())
            }
        }
    }
}

/// The blobs of one containerd root, as one namespace sees them.
pub struct ContentStore<F> {
    blobs: PathBuf,
    known: F,
}

impl<F> std::fmt::Debug for ContentStore<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentStore")
            .field("blobs", &self.blobs)
            .finish()
    }
}

impl<F: Fn(&str) -> bool> ContentStore<F> {
    /// The store of the containerd root `root`; `known(digest)` says whether
    /// the namespace records the content.
    pub fn new(root: &Path, known: F) -> ContentStore<F> {
        ContentStore {
            blobs: root.join(CONTENT_UNDER_ROOT).join("blobs"),
            known,
        }
    }
}

/// The digest algorithms containerd's content store accepts.
pub(super) const ALGORITHMS: [&str; 3] = ["sha256", "sha384", "sha512"];

/// The file of a digest: `algorithm/hex`, for the [`ALGORITHMS`] and their
/// exact lengths (nothing else can reach the file system).
pub(super) fn relative_path(digest: &str) -> Option<PathBuf> {
    let (alg, hex) = digest.split_once(':')?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return None,
    };
    let ok = hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| Path::new(alg).join(hex))
}

impl<F: Fn(&str) -> bool> Provider for ContentStore<F> {
    fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, BlobError> {
        let digest = desc.digest.as_str();
        // containerd's order: the namespace's record first (a digest it does
        // not hold is "not found", however odd), then the digest's form.
        if !(self.known)(digest) {
            return Err(BlobError::NotFound(digest.into()));
        }
        let rel = relative_path(digest).ok_or_else(|| BlobError::InvalidDigest(digest.into()))?;
        let path = self.blobs.join(rel);
        let io = |e: std::io::Error| BlobError::Io {
            digest: digest.into(),
            path: path.clone(),
            cause: e.to_string(),
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(digest.into()))
            }
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        if meta.len() > MAX_DOCUMENT {
            return Err(BlobError::TooLarge {
                digest: digest.into(),
                size: meta.len(),
            });
        }
        // The size can change under a live store: the read is bounded too.
        let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.len() as u64 > MAX_DOCUMENT {
            return Err(BlobError::TooLarge {
                digest: digest.into(),
                size: buf.len() as u64,
            });
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_digests_name_files() {
        let hex = "a".repeat(64);
        assert_eq!(
            relative_path(&format!("sha256:{hex}")),
            Some(Path::new("sha256").join(&hex))
        );
        assert_eq!(relative_path("sha256:../../etc/passwd"), None);
        assert_eq!(relative_path(&format!("sha256:{}", "A".repeat(64))), None);
        assert_eq!(relative_path(&format!("md5:{hex}")), None);
        assert_eq!(relative_path("sha256"), None);
    }
}
