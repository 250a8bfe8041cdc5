//! The blob files of containerd's local content store
//! (`ROOT/io.containerd.content.v1.content/blobs/<algorithm>/<hex>`), read
//! without the metadata: which files there are, and whether a file's bytes
//! hash to its name. A repair re-creates content records only for blobs that
//! pass [`BlobFiles::verify`].
//!
//! Names that are not a digest containerd accepts are never opened (see
//! [`super::store`]); hashing streams the file through a fixed buffer, so a
//! blob of any size costs no more memory than that.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::store::{relative_path, ALGORITHMS, CONTENT_UNDER_ROOT};

/// How a blob file failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a digest containerd accepts (so it names no file).
    InvalidDigest,
    /// No file of that name.
    Missing,
    /// The name is there but is not a regular file.
    NotAFile,
    /// The file's bytes hash to another digest: bit rot, or a torn write.
    Mismatch {
        /// What the bytes hash to.
        actual: String,
    },
    /// Reading the file failed.
    Io(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::InvalidDigest => write!(f, "not a digest containerd accepts"),
            VerifyError::Missing => write!(f, "no blob file"),
            VerifyError::NotAFile => write!(f, "not a regular file"),
            VerifyError::Mismatch { actual } => write!(f, "the file's bytes hash to {actual}"),
            VerifyError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A blob file whose bytes hash to its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedBlob {
    /// Its size in bytes, as hashed.
    pub size: u64,
}

/// The blob files of one containerd root.
#[derive(Debug, Clone)]
pub struct BlobFiles {
    blobs: PathBuf,
}

impl BlobFiles {
    /// The content store of the containerd root `root`.
    pub fn of_root(root: &Path) -> BlobFiles {
        BlobFiles {
            blobs: root.join(CONTENT_UNDER_ROOT).join("blobs"),
        }
    }

    /// The directory holding the algorithms' directories.
    pub fn dir(&self) -> &Path {
        &self.blobs
    }

    /// The file a digest names, if it is one containerd accepts.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        relative_path(digest).map(|rel| self.blobs.join(rel))
    }

    /// The size of the regular file `digest` names, if there is one.
    pub fn size(&self, digest: &str) -> Option<u64> {
        let meta = std::fs::metadata(self.path(digest)?).ok()?;
        meta.is_file().then_some(meta.len())
    }

    /// Every digest a file of the store is named after, sorted; names that are
    /// not digests containerd accepts are left out. A store without the
    /// directory has none.
    pub fn digests(&self) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        for alg in ALGORITHMS {
            let dir = self.blobs.join(alg);
            let entries = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let Some(hex) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let digest = format!("{alg}:{hex}");
                if relative_path(&digest).is_some() {
                    out.push(digest);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether the file `digest` names holds bytes that hash to it.
    pub fn verify(&self, digest: &str) -> Result<VerifiedBlob, VerifyError> {
        let path = self.path(digest).ok_or(VerifyError::InvalidDigest)?;
        let (alg, want) = digest.split_once(':').ok_or(VerifyError::InvalidDigest)?;
        let io = |e: std::io::Error| VerifyError::Io(format!("{}: {e}", path.display()));
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(VerifyError::Missing),
            Err(e) => return Err(io(e)),
        };
        if !file.metadata().map_err(io)?.is_file() {
            return Err(VerifyError::NotAFile);
        }
        let (size, hex) = match alg {
            "sha256" => hash::<Sha256>(file),
            "sha384" => hash::<Sha384>(file),
            "sha512" => hash::<Sha512>(file),
            _ => return Err(VerifyError::InvalidDigest),
        }
        .map_err(io)?;
        if hex == want {
            Ok(VerifiedBlob { size })
        } else {
            Err(VerifyError::Mismatch {
                actual: format!("{alg}:{hex}"),
            })
        }
    }
}

/// The size of what `r` yields and the lower-case hex of its hash.
fn hash<D: Digest>(mut r: impl Read) -> std::io::Result<(u64, String)> {
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size = size.saturating_add(n as u64);
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobFiles) {
        let dir = tempfile::tempdir().unwrap();
        let files = BlobFiles::of_root(dir.path());
        std::fs::create_dir_all(files.dir().join("sha256")).unwrap();
        (dir, files)
    }

    fn sha256(b: &[u8]) -> String {
        Sha256::digest(b)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_file_verifies_only_when_its_bytes_hash_to_its_name() {
        let (_d, files) = store();
        let good = format!("sha256:{}", sha256(b"hello"));
        std::fs::write(files.dir().join("sha256").join(sha256(b"hello")), b"hello").unwrap();
        assert_eq!(files.verify(&good), Ok(VerifiedBlob { size: 5 }));
        assert_eq!(files.size(&good), Some(5));

        let rotten = sha256(b"world");
        std::fs::write(files.dir().join("sha256").join(&rotten), b"worle").unwrap();
        assert_eq!(
            files.verify(&format!("sha256:{rotten}")),
            Err(VerifyError::Mismatch {
                actual: format!("sha256:{}", sha256(b"worle"))
            })
        );
        let absent = format!("sha256:{}", sha256(b"absent"));
        assert_eq!(files.verify(&absent), Err(VerifyError::Missing));
        assert_eq!(files.size(&absent), None);
        assert_eq!(
            files.verify("sha256:../../etc/passwd"),
            Err(VerifyError::InvalidDigest)
        );
        let dir = sha256(b"dir");
        std::fs::create_dir(files.dir().join("sha256").join(&dir)).unwrap();
        assert_eq!(
            files.verify(&format!("sha256:{dir}")),
            Err(VerifyError::NotAFile)
        );
        // the store lists what is named like a digest, sorted
        std::fs::write(files.dir().join("sha256").join("not-a-digest"), b"").unwrap();
        let mut want = vec![good, format!("sha256:{rotten}"), format!("sha256:{dir}")];
        want.sort();
        assert_eq!(files.digests().unwrap(), want);
    }

    #[test]
    fn a_root_without_a_content_store_has_no_blobs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            BlobFiles::of_root(dir.path()).digests().unwrap(),
            Vec::<String>::new()
        );
    }
}
