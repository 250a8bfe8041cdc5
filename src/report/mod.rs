//! Shared pieces of the JSON reports: the envelope that ties a report to the exact
//! input file, and lossless byte-string encoding. The wire format is documented in
//! `docs/report.md`.

pub mod table;

use base64::Engine as _;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Version of the JSON report format. Bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// A byte string that serializes as a JSON string when it is UTF-8 and as
/// `{"bytes": "<base64>"}` otherwise, so nothing is ever replaced or lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteStr(pub Vec<u8>);

impl ByteStr {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl Serialize for ByteStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(&self.0, s)
    }
}

/// A borrowed byte string (a slice of the mapped file) with the same JSON
/// encoding as [`ByteStr`]: a string when UTF-8, `{"bytes": "<base64>"}` otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// An owned copy.
    pub fn to_byte_str(self) -> ByteStr {
        ByteStr::new(self.0)
    }

    /// Whether it is empty.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_bytes(self.0, s)
    }
}

impl<'a> From<&'a [u8]> for Bytes<'a> {
    fn from(b: &'a [u8]) -> Self {
        Bytes(b)
    }
}

/// Serializes bytes as a string if UTF-8, else `{"bytes": base64}`.
pub fn serialize_bytes<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(b) {
        Ok(t) => s.serialize_str(t),
        Err(_) => {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry(
                "bytes",
                &base64::engine::general_purpose::STANDARD.encode(b),
            )?;
            m.end()
        }
    }
}

/// The tool that wrote a report.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// Always "ctrdb".
    pub name: &'static str,
    /// The crate version.
    pub version: &'static str,
}

impl Tool {
    /// This build.
    pub fn current() -> Tool {
        Tool {
            name: "ctrdb",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Identifies the input file exactly.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputInfo {
    /// The path as given.
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes, lower-case hex; `None` unless requested (`--hash`).
    pub sha256: Option<String>,
    /// Transaction id of the meta used, if the file could be parsed.
    pub txid: Option<u64>,
}

impl InputInfo {
    /// Describes `data`, hashing it when `hash` is set.
    pub fn new(path: &std::path::Path, data: &[u8], hash: bool, txid: Option<u64>) -> InputInfo {
        InputInfo {
            path: path.display().to_string(),
            size: data.len() as u64,
            sha256: hash.then(|| sha256_hex(data)),
            txid,
        }
    }
}

impl InputInfo {
    /// Builds the record from a hash computed elsewhere (e.g. on another thread,
    /// alongside the analysis).
    pub fn with_sha256(
        path: &std::path::Path,
        size: u64,
        sha256: Option<String>,
        txid: Option<u64>,
    ) -> InputInfo {
        InputInfo {
            path: path.display().to_string(),
            size,
            sha256,
            txid,
        }
    }
}

/// Runs `work` and, when `want_hash`, hashes `data` in parallel with it (the hash
/// of a large file costs about as much as the analysis itself).
pub fn hash_alongside<T: Send>(
    want_hash: bool,
    data: &[u8],
    work: impl FnOnce() -> T + Send,
) -> (Option<String>, T) {
    if want_hash {
        let (h, v) = rayon::join(|| sha256_hex(data), work);
        (Some(h), v)
    } else {
        (None, work())
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::bytes::hex(&Sha256::digest(data))
}
