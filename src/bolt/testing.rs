//! Page-level access for tests, benchmarks and fuzz targets.
//!
//! They build damaged files byte by byte and must find the pages and elements
//! to damage, or time the page accessors alone; programs use the typed API
//! ([`super::Db`], [`super::Bucket`], [`super::Walk`], [`super::check`]) and
//! nothing here. What is here is the reader's own code, re-exported, so a test
//! sees exactly what the reader sees:
//!
//! - [`Pages`] (from [`super::Db::pages`]), [`Page`], [`PageKind`]: a page and
//!   its header;
//! - [`LeafElement`], [`BranchElement`] (from [`Page::leaf_element`] and
//!   [`Page::branch_element`]): the elements, with their file offsets;
//! - [`fnv1a64`]: the meta checksum, to forge a meta Go accepts;
//! - [`check_split_everywhere`]: the check with its walk split at every
//!   descent, to show the report does not depend on the split.

pub use super::bytes::fnv1a64;
pub use super::page::{Page, PageKind, Pages};
pub use super::tree::{BranchElement, LeafElement};

use super::check::{check_with, CheckReport, Mode};
use super::Db;

/// [`super::check::check`] with the tree walk split at every descent, even on one
/// thread; its report must equal `check`'s.
pub fn check_split_everywhere(db: &Db<'_>) -> CheckReport {
    check_with(db, Mode::Always)
}
