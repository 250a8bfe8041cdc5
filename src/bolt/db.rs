//! Opening a bbolt file: locking, mapping and selecting the meta.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::bucket::Bucket;
use super::error::{BucketPath, Corruption, Error, LockHolder, LockKind, Result};
use super::freelist::{self, Freelist};
use super::layout::*;
use super::meta::{self, Meta, MetaSelection};
use super::page::Pages;

/// How to lock the file while it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// A shared lock, taken without waiting (`LOCK_SH|LOCK_NB`). containerd holds an
    /// exclusive lock while it runs, so this fails at once instead of blocking it.
    Shared,
    /// An exclusive lock, taken without waiting (`LOCK_EX|LOCK_NB`), for in-place repair.
    Exclusive,
    /// No lock: the file is read into memory instead of mapped, so a concurrent
    /// writer cannot fault the process. Only for copies (e.g. on read-only media);
    /// reading a live file this way may see a torn state.
    None,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An open database file: the file handle (which holds the lock) and its bytes.
pub struct DbFile {
    path: PathBuf,
    file: File,
    bytes: Bytes,
}

impl std::fmt::Debug for DbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbFile")
            .field("path", &self.path)
            .field("len", &self.bytes().len())
            .finish()
    }
}

impl DbFile {
    /// Opens `path` read-only and locks it as `lock` says, never waiting for a lock.
    pub fn open(path: &Path, lock: LockMode) -> Result<DbFile> {
        let io = |op: &'static str| {
            move |cause| Error::Io {
                op,
                path: path.to_path_buf(),
                cause,
            }
        };
        let meta = std::fs::metadata(path).map_err(io("cannot stat"))?;
        if meta.is_dir() {
            return Err(Error::Io {
                op: "cannot open",
                path: path.to_path_buf(),
                cause: std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
            });
        }
        if !meta.is_file() {
            return Err(Error::Io {
                op: "cannot open",
                path: path.to_path_buf(),
                cause: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file (a FIFO, socket or device)",
                ),
            });
        }
        let file = match lock {
            LockMode::Exclusive => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path),
            _ => File::open(path),
        }
        .map_err(io("cannot open"))?;
        DbFile::locked(file, path, lock)
    }

    /// A file this process has just written (a new file under a temporary
    /// name, or an unnamed one), read back through a second handle under a
    /// shared lock: mapped, so a file as large as the input costs no heap.
    /// `path` names it in errors.
    pub fn reopen(file: &File, path: &Path) -> Result<DbFile> {
        let handle = file.try_clone().map_err(|cause| Error::Io {
            op: "cannot reopen",
            path: path.to_path_buf(),
            cause,
        })?;
        DbFile::locked(handle, path, LockMode::Shared)
    }

    /// Locks the open `file` as `lock` says (never waiting) and maps or reads it.
    fn locked(file: File, path: &Path, lock: LockMode) -> Result<DbFile> {
        let io = |op: &'static str| {
            move |cause| Error::Io {
                op,
                path: path.to_path_buf(),
                cause,
            }
        };
        let locked = match lock {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
            LockMode::None => Ok(()),
        };
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    holder: lock_holder(&file),
                });
            }
            Err(std::fs::TryLockError::Error(cause)) => {
                return Err(Error::Io {
                    op: "cannot lock",
                    path: path.to_path_buf(),
                    cause,
                });
            }
        }
        crate::fault::point("after-lock").map_err(io("cannot read"))?;
        let len = file.metadata().map_err(io("cannot stat"))?.len();
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else if lock == LockMode::None {
            let mut v = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            (&file).read_to_end(&mut v).map_err(io("cannot read"))?;
            Bytes::Owned(v)
        } else {
            Bytes::Mapped(map(&file).map_err(io("cannot map"))?)
        };
        Ok(DbFile {
            path: path.to_path_buf(),
            file,
            bytes,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file (holding the lock until dropped).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Parses the database.
    pub fn db(&self) -> Result<Db<'_>> {
        Db::parse(self.bytes())
    }

    /// Hints the kernel that the whole map will be read soon, in order.
    pub fn advise_sequential(&self) {
        if let Bytes::Mapped(m) = &self.bytes {
            let _ = m.advise(memmap2::Advice::Sequential);
            let _ = m.advise(memmap2::Advice::WillNeed);
        }
    }
}

/// Maps the file read-only.
#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and we hold a flock that every bbolt writer
    // (containerd included) takes exclusively before writing, so the file's bytes
    // cannot change under us while the lock is held. A process that ignores the
    // lock and truncates the file could still raise SIGBUS; `LockMode::None`
    // therefore reads into memory instead of mapping.
    unsafe { memmap2::MmapOptions::new().map(file) }
}

/// Finds who holds a lock on `file` from `/proc/locks`: the lock's kind, and
/// the process while it still runs (`/proc/PID/comm`). Lines of waiters (`->`)
/// are skipped: they hold nothing.
fn lock_holder(file: &File) -> Option<LockHolder> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata().ok()?;
    let dev = md.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = format!("{major:02x}:{minor:02x}:{}", md.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| parse_lock_line(line, &want))
}

/// One `/proc/locks` line, "`1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`",
/// when it is a held lock on the file `want` (`major:minor:inode`).
fn parse_lock_line(line: &str, want: &str) -> Option<LockHolder> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.get(1) == Some(&"->") {
        return None;
    }
    let pos = f.iter().position(|x| *x == want)?;
    let pid = f.get(pos.checked_sub(1)?)?;
    let kind = match *f.get(pos.checked_sub(2)?)? {
        "READ" => LockKind::Read,
        "WRITE" => LockKind::Write,
        _ => return None,
    };
    let process = pid.parse::<u32>().ok().and_then(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some((pid, comm.trim_end_matches('\n').to_string()))
    });
    Some(LockHolder { kind, process })
}

/// The tree one valid meta page names.
#[derive(Debug, Clone, Copy)]
pub struct MetaTree<'a> {
    /// The meta page (0 or 1).
    pub slot: usize,
    /// Its contents.
    pub meta: Meta,
    pages: Pages<'a>,
}

impl<'a> MetaTree<'a> {
    /// The pages, bounded by this meta's high-water mark.
    pub fn pages(&self) -> Pages<'a> {
        self.pages
    }

    /// The root bucket. Fails if the meta's root is not a usable page id.
    pub fn root(&self) -> Result<Bucket<'a>, Corruption> {
        let m = self.meta;
        if m.root < 2 || m.root >= m.pgid {
            return Err(Corruption::new(
                super::error::CorruptKind::MetaGeometry,
                format!(
                    "meta {} names root page {}, outside 2..{}",
                    self.slot, m.root, m.pgid
                ),
            )
            .page(self.slot as u64));
        }
        Ok(Bucket::root(self.pages, m.root, m.root_sequence))
    }
}

/// A parsed view of a bbolt file: the selected meta and the page geometry.
#[derive(Debug, Clone)]
pub struct Db<'a> {
    data: &'a [u8],
    selection: MetaSelection,
    pages: Pages<'a>,
}

impl<'a> Db<'a> {
    /// Parses `data`: selects a meta with Go's rule and validates the geometry that
    /// every later offset computation depends on.
    pub fn parse(data: &'a [u8]) -> Result<Db<'a>> {
        if data.is_empty() {
            return Err(Error::NotBolt {
                reason: "the file is empty".into(),
            });
        }
        if data.len() < META_END {
            return Err(Error::NotBolt {
                reason: format!(
                    "the file is {} bytes, too small to hold a meta page",
                    data.len()
                ),
            });
        }
        let selection =
            meta::select(data).map_err(|[meta0, meta1]| Error::NoValidMeta { meta0, meta1 })?;
        let m = selection.meta();
        // Like Go, address pages with the size `getPageSize` found (meta 0's when it
        // is valid), even if the selected meta records another; `check` reports that.
        let size = selection.page_size;
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&size) || size % 16 != 0 {
            return Err(Error::NotBolt {
                reason: format!(
                    "page size {size} is outside the supported {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE} (multiple of 16)"
                ),
            });
        }
        let ps = size as usize;
        if data.len() < 2 * ps {
            return Err(Error::NotBolt {
                reason: format!(
                    "the file is {} bytes, smaller than two {ps}-byte pages",
                    data.len()
                ),
            });
        }
        let pages = Pages::new(data, ps, m.pgid);
        Ok(Db {
            data,
            selection,
            pages,
        })
    }

    /// The file bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The meta selection (both slots, which was used and why).
    pub fn selection(&self) -> &MetaSelection {
        &self.selection
    }

    /// The selected meta.
    pub fn meta(&self) -> Meta {
        self.selection.meta()
    }

    /// The page accessor.
    pub fn pages(&self) -> Pages<'a> {
        self.pages
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.pages.page_size()
    }

    /// The root bucket. Fails if the meta's root is not a usable page id.
    pub fn root(&self) -> Result<Bucket<'a>, Corruption> {
        let m = self.meta();
        if m.root < 2 || m.root >= m.pgid {
            return Err(Corruption::new(
                super::error::CorruptKind::MetaGeometry,
                format!(
                    "meta {} names root page {}, outside 2..{}",
                    self.selection.used, m.root, m.pgid
                ),
            )
            .page(self.selection.used as u64));
        }
        Ok(Bucket::root(self.pages, m.root, m.root_sequence))
    }

    /// The trees of the valid meta pages: the selected meta's first, then the
    /// other one's when it is valid and names another tree (bbolt's previous
    /// transaction, whose pages copy-on-write left in place). Each is read with
    /// its own meta's high-water mark.
    pub fn trees(&self) -> Vec<MetaTree<'a>> {
        let used = self.selection.used;
        let mut out = vec![MetaTree {
            slot: used,
            meta: self.meta(),
            pages: self.pages,
        }];
        let other = 1 - used.min(1);
        if let Some(m) = self.selection.slots.get(other).and_then(|s| s.valid()) {
            let first = self.meta();
            if (m.root, m.txid) != (first.root, first.txid) {
                out.push(MetaTree {
                    slot: other,
                    meta: *m,
                    pages: Pages::new(self.data, self.pages.page_size(), m.pgid),
                });
            }
        }
        out
    }

    /// Follows a bucket path from the root.
    pub fn bucket(&self, path: &BucketPath) -> Result<Option<Bucket<'a>>> {
        self.root()?
            .bucket_at(path.components())
            .map_err(|c| Error::from(c.in_bucket(path)))
    }

    /// The persisted freelist, or `None` when the file has none (`NoFreelistSync`).
    pub fn freelist(&self) -> Result<Option<Freelist>, Corruption> {
        let m = self.meta();
        if !m.has_freelist() {
            return Ok(None);
        }
        freelist::read(&self.pages, m.freelist).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_lines_give_kind_and_only_a_live_process() {
        let me = std::process::id();
        let line = format!("1: FLOCK  ADVISORY  WRITE {me} fd:01:5678 0 EOF");
        let h = parse_lock_line(&line, "fd:01:5678").expect("a held lock");
        assert_eq!(h.kind, LockKind::Write);
        let (pid, comm) = h.process.expect("this process runs");
        assert_eq!(pid, me);
        assert!(!comm.is_empty() && !comm.ends_with('\n'));

        // pid_max is at most 2^22: this pid cannot run, so it is not named
        let dead = "2: FLOCK  ADVISORY  READ  4294967295 fd:01:5678 0 EOF";
        let h = parse_lock_line(dead, "fd:01:5678").expect("a held lock");
        assert_eq!((h.kind, &h.process), (LockKind::Read, &None));
        assert_eq!(h.to_string(), "another process (a read lock)");

        let waiter = format!("1: -> FLOCK  ADVISORY  WRITE {me} fd:01:5678 0 EOF");
        assert_eq!(parse_lock_line(&waiter, "fd:01:5678"), None);
        assert_eq!(parse_lock_line(&line, "fd:01:9999"), None);
    }
}
