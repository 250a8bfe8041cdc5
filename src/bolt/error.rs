//! Typed errors of the bbolt layer. Every corruption names where it was found.

use std::fmt;
use std::path::PathBuf;

use crate::bytes::escape_controls;

/// A page number.
pub type Pgid = u64;

/// A path of bucket names from the root, e.g. `v1/k8s.io/images`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketPath(pub Vec<Vec<u8>>);

impl BucketPath {
    /// The root bucket.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path with `name` appended.
    pub fn child(&self, name: &[u8]) -> Self {
        let mut v = self.0.clone();
        v.push(name.to_vec());
        Self(v)
    }

    /// Components as byte slices.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(Vec::as_slice)
    }
}

impl fmt::Display for BucketPath {
    /// Components joined by `/`; bytes that are not printable ASCII (and `/`, `\`)
    /// are written as `\xNN` so the output is unambiguous.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            for &b in c {
                if (0x20..0x7f).contains(&b) && b != b'/' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\x{b:02x}")?;
                }
            }
        }
        Ok(())
    }
}

/// A bucket path that is not in [`BucketPath`]'s text form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad bucket path '{text}': {reason} at byte {offset} (write '/' inside a name as \\x2f and '\\' as \\x5c, as ctrdb prints them)")]
pub struct PathSyntaxError {
    /// The text given (control characters escaped).
    pub text: String,
    /// The byte offset of the bad escape.
    pub offset: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

impl std::str::FromStr for BucketPath {
    type Err = PathSyntaxError;

    /// The inverse of `Display`: components separated by `/`, `\xNN` (two hex
    /// digits, either case) for any byte, other characters as their UTF-8 bytes.
    /// Empty components are dropped (bbolt has no empty bucket names), so `/`
    /// and `` are the root. A `\` that does not start `\xNN` is an error
    /// rather than a literal, so a path copied from ctrdb's output never means
    /// something else.
    fn from_str(s: &str) -> Result<Self, PathSyntaxError> {
        let bad = |offset: usize, reason: &'static str| PathSyntaxError {
            text: escape_controls(s).into_owned(),
            offset,
            reason,
        };
        let mut components = Vec::new();
        let mut current = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'/' => {
                    if !current.is_empty() {
                        components.push(std::mem::take(&mut current));
                    }
                    i += 1;
                }
                b'\\' => {
                    if bytes.get(i + 1) != Some(&b'x') {
                        return Err(bad(i, "a backslash that does not start \\xNN"));
                    }
                    let hex = bytes
                        .get(i + 2..i + 4)
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| bad(i, "\\x not followed by two hex digits"))?;
                    current.push(hex);
                    i += 4;
                }
                _ => {
                    current.push(b);
                    i += 1;
                }
            }
        }
        if !current.is_empty() {
            components.push(current);
        }
        Ok(BucketPath(components))
    }
}

/// What kind of damage was found. Each kind has a stable code, documented in
/// `docs/format.md`, used in `check` findings and JSON reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CorruptKind {
    /// A meta page failed validation (magic, version or checksum).
    MetaInvalid,
    /// A meta page's header has the wrong id or flags.
    MetaPageHeader,
    /// The selected meta's geometry is unusable (page size, root, freelist, high-water mark).
    MetaGeometry,
    /// Pages below the high-water mark lie beyond the end of the file.
    FileTruncated,
    /// A page id at or beyond the high-water mark.
    PageOutOfBounds,
    /// A page, or its overflow, lies beyond the end of the file.
    PageBeyondFile,
    /// A page header's id differs from its position.
    PageIdMismatch,
    /// A page has a type that is not allowed where it is referenced.
    PageType,
    /// A page is referenced more than once.
    PageMultipleReferences,
    /// A branch refers back to one of its ancestors.
    PageCycle,
    /// The tree is deeper than the reader allows.
    TreeTooDeep,
    /// A branch page has no elements.
    BranchEmpty,
    /// The element array does not fit in the page.
    ElementsOverflow,
    /// An element's key or value lies outside its page.
    ElementOutOfPage,
    /// A key of length zero.
    KeyEmpty,
    /// Keys are not strictly increasing within a page.
    KeyOrder,
    /// A key is outside the range its ancestors' branch keys allow.
    KeyOrderAncestor,
    /// A branch element's key differs from the first key of the page it
    /// points to: bbolt sets the one to the other whenever it writes the child,
    /// so the child is a stale or misplaced page.
    BranchKeyMismatch,
    /// A bucket value is shorter than the 16-byte bucket header.
    BucketValueShort,
    /// An inline bucket's value is malformed.
    InlineBucketMalformed,
    /// The root bucket holds a key that is not a bucket.
    RootNonBucket,
    /// The freelist page is not a freelist or cannot be decoded.
    FreelistMalformed,
    /// A freelist id is out of range (meta pages or at/after the high-water mark).
    FreelistOutOfRange,
    /// A page is listed twice in the freelist.
    FreelistDuplicate,
    /// A page is both reachable and free.
    PageReachableFreed,
    /// A page below the high-water mark is neither reachable nor free.
    PageUnreachableUnfreed,
    /// An element's flags have bits other than the bucket flag.
    ElementFlags,
    /// A well-formed page whose keys cannot belong to the bucket that reaches
    /// it (judged by the caller's schema): a stale or misdirected page.
    PageMisplaced,
}

impl CorruptKind {
    /// The stable kebab-case code of this kind.
    pub fn code(self) -> &'static str {
        use CorruptKind::*;
        match self {
            MetaInvalid => "meta-invalid",
            MetaPageHeader => "meta-page-header",
            MetaGeometry => "meta-geometry",
            FileTruncated => "file-truncated",
            PageOutOfBounds => "page-out-of-bounds",
            PageBeyondFile => "page-beyond-file",
            PageIdMismatch => "page-id-mismatch",
            PageType => "page-type",
            PageMultipleReferences => "page-multiple-references",
            PageCycle => "page-cycle",
            TreeTooDeep => "tree-too-deep",
            BranchEmpty => "branch-empty",
            ElementsOverflow => "elements-overflow",
            ElementOutOfPage => "element-out-of-page",
            KeyEmpty => "key-empty",
            KeyOrder => "key-order",
            KeyOrderAncestor => "key-order-ancestor",
            BranchKeyMismatch => "branch-key-mismatch",
            BucketValueShort => "bucket-value-short",
            InlineBucketMalformed => "inline-bucket-malformed",
            RootNonBucket => "root-non-bucket",
            FreelistMalformed => "freelist-malformed",
            FreelistOutOfRange => "freelist-out-of-range",
            FreelistDuplicate => "freelist-duplicate",
            PageReachableFreed => "page-reachable-freed",
            PageUnreachableUnfreed => "page-unreachable-unfreed",
            ElementFlags => "element-flags",
            PageMisplaced => "page-misplaced",
        }
    }
}

/// A piece of structural damage: what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// What is wrong.
    pub kind: CorruptKind,
    /// The page it was found on, if any.
    pub page: Option<Pgid>,
    /// Absolute byte offset in the file, if known.
    pub offset: Option<u64>,
    /// The bucket it was found in, if known.
    pub path: Option<BucketPath>,
    /// A human-readable description.
    pub message: String,
}

impl Corruption {
    /// A corruption of `kind` with a message and no location yet.
    pub fn new(kind: CorruptKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            page: None,
            offset: None,
            path: None,
            message: message.into(),
        }
    }

    /// Sets the page.
    pub fn page(mut self, page: Pgid) -> Self {
        self.page = Some(page);
        self
    }

    /// Sets the absolute byte offset.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets the bucket path unless one is already set (the innermost wins).
    pub fn in_bucket(mut self, path: &BucketPath) -> Self {
        if self.path.is_none() {
            self.path = Some(path.clone());
        }
        self
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(p) = self.page {
            write!(f, " (page {p}")?;
            if let Some(o) = self.offset {
                write!(f, ", offset {o:#x}")?;
            }
            f.write_str(")")?;
        } else if let Some(o) = self.offset {
            write!(f, " (offset {o:#x})")?;
        }
        if let Some(path) = &self.path {
            write!(f, " in bucket {path}")?;
        }
        write!(f, " [{}]", self.kind.code())
    }
}

/// Why a meta page was not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaProblem {
    /// The file is too short to hold this meta page.
    Missing,
    /// The magic number is wrong.
    BadMagic(u32),
    /// The version is not 2.
    BadVersion(u32),
    /// The checksum does not match.
    BadChecksum {
        /// Checksum stored in the page.
        stored: u64,
        /// Checksum computed over the meta fields.
        computed: u64,
    },
}

impl fmt::Display for MetaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaProblem::Missing => f.write_str("not present (file too short)"),
            MetaProblem::BadMagic(m) if m.swap_bytes() == crate::bolt::layout::MAGIC => {
                write!(
                    f,
                    "magic {m:#010x} is byte-swapped: the file was written on a big-endian machine"
                )
            }
            MetaProblem::BadMagic(m) => write!(f, "bad magic {m:#010x} (want 0xed0cdaed)"),
            MetaProblem::BadVersion(v) => write!(f, "unsupported version {v} (want 2)"),
            MetaProblem::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
                )
            }
        }
    }
}

/// Whether a lock is shared (a reader's) or exclusive (a writer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A shared lock: bbolt takes it for a read-only open.
    Read,
    /// An exclusive lock: bbolt takes it for a read-write open, for as long as
    /// the database is open.
    Write,
}

/// The process that holds a lock, as `/proc/locks` and `/proc/PID/comm` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The lock's kind.
    pub kind: LockKind,
    /// The process that took the lock and its command name, when it still runs
    /// (a lock outlives its taker when a child inherited the descriptor; a dead
    /// pid is not named).
    pub process: Option<(u32, String)>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            LockKind::Read => "a read lock",
            LockKind::Write => "a write lock",
        };
        match &self.process {
            Some((pid, comm)) => write!(f, "{} (pid {pid}, {kind})", escape_controls(comm)),
            None => write!(f, "another process ({kind})"),
        }
    }
}

/// Errors of the bbolt layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{op} '{path}': {cause}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause (kept out of the error chain: the message already says it).
        cause: std::io::Error,
    },
    /// Another process holds a conflicting lock on the file.
    #[error("'{path}' is in use: it is locked by {}", holder.as_ref().map(|h| h.to_string()).unwrap_or_else(|| "another process".into()))]
    Locked {
        /// The file.
        path: PathBuf,
        /// The lock holder, when `/proc/locks` names a live one.
        holder: Option<LockHolder>,
    },
    /// The file is not a bbolt database.
    #[error("not a bbolt database: {reason}")]
    NotBolt {
        /// Why.
        reason: String,
    },
    /// Neither meta page is valid.
    #[error("no valid meta page: meta 0: {meta0}; meta 1: {meta1}")]
    NoValidMeta {
        /// Problem with meta page 0.
        meta0: MetaProblem,
        /// Problem with meta page 1.
        meta1: MetaProblem,
    },
    /// Structural damage.
    #[error("corrupt database: {0}")]
    Corrupt(Box<Corruption>),
}

impl From<Corruption> for Error {
    fn from(c: Corruption) -> Self {
        Error::Corrupt(Box::new(c))
    }
}

impl Error {
    /// The corruption, if this is one.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            Error::Corrupt(c) => Some(c),
            _ => None,
        }
    }

    /// Attaches a bucket path to a corruption that has none.
    pub fn in_bucket(self, path: &BucketPath) -> Self {
        match self {
            Error::Corrupt(c) => Error::Corrupt(Box::new(c.in_bucket(path))),
            e => e,
        }
    }
}

/// Result of the bbolt layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn bucket_path_text_round_trips_every_byte() {
        let all: Vec<u8> = (1..=255).collect();
        let p = BucketPath(vec![b"v1".to_vec(), all, b"a/b\\c".to_vec(), vec![0]]);
        assert_eq!(p.to_string().parse::<BucketPath>(), Ok(p));
        assert_eq!("/".parse::<BucketPath>(), Ok(BucketPath::root()));
        assert_eq!("".parse::<BucketPath>(), Ok(BucketPath::root()));
        assert_eq!(
            "/v1//k8s.io/".parse::<BucketPath>(),
            Ok(BucketPath(vec![b"v1".to_vec(), b"k8s.io".to_vec()]))
        );
        // literal UTF-8 is its bytes; hex digits in either case
        assert_eq!(
            "\u{e9}\\xE9".parse::<BucketPath>(),
            Ok(BucketPath(vec![vec![0xc3, 0xa9, 0xe9]]))
        );
        for bad in ["a\\", "a\\x", "a\\x2", "a\\x+f", "a\\xg0", "a\\\\b"] {
            let e = bad.parse::<BucketPath>().unwrap_err();
            assert_eq!(e.offset, 1, "{bad}");
        }
    }
}
