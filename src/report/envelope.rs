//! The envelope of every JSON report: which tool wrote it, which command, and
//! the exact input file (path, size, meta txid, SHA-256 on request), followed
//! by the command's own fields.

use serde::Serialize;

use super::wire::PathBytes;
use super::Finding;
use super::REPORT_SCHEMA_VERSION;
use crate::bytes::sha256_hex;

/// A report: the envelope's fields, then those of `body` at the same level.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    /// The damage that affected the result (present on the reports of commands
    /// that read records: empty when the tree they read was intact).
    #[serde(skip_serializing_if = "Option::is_none")]
    damage: Option<Vec<Finding>>,
    #[serde(flatten)]
    body: T,
}

impl<T: Serialize> Envelope<T> {
    /// The report of `command` on `input`.
    pub fn new(command: &'static str, mut input: InputInfo, body: T) -> Envelope<T> {
        Envelope {
            schema_version: REPORT_SCHEMA_VERSION,
            tool: Tool::current(),
            command,
            damage: input.damage.take(),
            input,
            body,
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
    /// The path as given (its bytes, if it is not UTF-8).
    pub path: PathBytes,
    /// File size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes, lower-case hex; `None` unless requested (`--hash`).
    pub sha256: Option<String>,
    /// Transaction id of the meta used, if the file could be parsed.
    pub txid: Option<u64>,
    /// The damage that affected the result, written by [`Envelope`] beside
    /// `input` (not inside it); `None` for reports that do not carry it.
    #[serde(skip)]
    pub damage: Option<Vec<Finding>>,
}

impl InputInfo {
    /// Describes `data`, hashing it when `hash` is set.
    pub fn new(path: &std::path::Path, data: &[u8], hash: bool, txid: Option<u64>) -> InputInfo {
        InputInfo {
            path: PathBytes(path.to_path_buf()),
            size: data.len() as u64,
            sha256: hash.then(|| sha256_hex(data)),
            txid,
            damage: None,
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
            path: PathBytes(path.to_path_buf()),
            size,
            sha256,
            txid,
            damage: None,
        }
    }

    /// This record with the damage that affected the result.
    pub fn with_damage(mut self, damage: Vec<Finding>) -> InputInfo {
        self.damage = Some(damage);
        self
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
