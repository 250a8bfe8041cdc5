//! The one wire form of a finding, for `check`'s report and for the `damage`
//! that other reports carry: severity, stable code, page, offset, bucket path
//! (in the text form `dump --path` takes) and message.

use serde::Serialize;

use crate::bolt::check::Finding as StructureFinding;
use crate::bytes::escape_controls;
use crate::containerd::SchemaFinding;

/// One finding on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// "error" or "warning".
    pub severity: &'static str,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// Page id.
    pub page: Option<u64>,
    /// Absolute byte offset.
    pub offset: Option<u64>,
    /// Bucket path.
    pub path: Option<String>,
    /// Description.
    pub message: String,
}

impl Finding {
    /// A finding of the containerd schema decode.
    pub fn schema(f: &SchemaFinding) -> Finding {
        Finding {
            severity: f.severity().name(),
            code: f.code.code(),
            page: f.page,
            offset: f.offset,
            path: Some(f.path.to_string()),
            message: f.message.clone(),
        }
    }

    /// Where and what, in one phrase: "bucket P, page N: message".
    pub fn describe(&self) -> String {
        let path = self.path.as_deref().unwrap_or("/");
        let page = self.page.map(|p| format!(", page {p}")).unwrap_or_default();
        format!("bucket {path}{page}: {}", escape_controls(&self.message))
    }

    /// A finding of the structural check.
    pub fn structure(f: &StructureFinding) -> Finding {
        Finding {
            severity: f.severity.name(),
            code: f.corruption.kind.code(),
            page: f.corruption.page,
            offset: f.corruption.offset,
            path: f.corruption.path.as_ref().map(|p| p.to_string()),
            message: f.corruption.message.clone(),
        }
    }
}
