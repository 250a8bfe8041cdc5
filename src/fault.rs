//! Fault injection for crash and lock tests, selected at run time by the
//! environment variable `CTRDB_FAULT=<point>:<action>[,<point>:<action>…]`.
//!
//! Only a build with the cargo feature `fault-injection` reads the variable: the
//! test binaries enable it (the package's dev-dependency on itself), so
//! `CARGO_BIN_EXE_ctrdb` in the integration tests has it. Without the feature
//! [`point`] is an inline `Ok(())`: a default or release build has no hook, reads
//! no environment here and cannot be made to abort or fail by it.
//!
//! Actions: `abort` ends the process at once (no cleanup, no unwinding — as a
//! SIGKILL would), `sleep=<ms>` pauses there (to hold a lock or widen a window),
//! `error` makes the operation at that point fail with an injected I/O error.
//! An action may end in `@N`: it then fires only the N-th time (1-based) the point
//! is reached, e.g. `write-pages:abort@7`.
//! With the feature and without the variable a point is a no-op: the variable is
//! parsed once (a `OnceLock`), and a point is then one atomic load and an
//! empty-slice check.
//!
//! Points (each named where it is called):
//!
//! | point | where |
//! |---|---|
//! | `after-lock` | the input is open and locked, before it is read |
//! | `write-begin` | the temporary output file exists, nothing written yet |
//! | `write-pages` | every [`WRITE_PAGES_EVERY`] pages handed to the writer's output |
//! | `before-fsync` / `after-fsync` | around the temporary file's `fsync` |
//! | `after-verify` | the temporary file was re-read and verified |
//! | `before-rename` / `after-rename` | around the rename onto the target |
//! | `before-dir-fsync` | renamed, the directory not yet synced |
//! | `after-backup` | in-place: the backup copy is written, the DB not yet replaced |
//! | `gc-proof` | `dedup`: the GC proof is judged (`error` makes it fail: refusal path) |

/// The writer reaches `write-pages` once per this many pages written.
pub const WRITE_PAGES_EVERY: u64 = 64;

/// Runs the action configured for `point`, if any. Returns an injected error for
/// the `error` action.
#[cfg(feature = "fault-injection")]
pub fn point(point: &str) -> std::io::Result<()> {
    injection::point(point)
}

/// A fault point in a build without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_point: &str) -> std::io::Result<()> {
    Ok(())
}

#[cfg(feature = "fault-injection")]
mod injection {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    #[derive(Debug)]
    struct Fault {
        point: String,
        action: String,
        /// Fire only on this hit (1-based); `None`: every hit.
        nth: Option<u64>,
        hits: AtomicU64,
    }

    fn faults() -> &'static [Fault] {
        static FAULTS: OnceLock<Vec<Fault>> = OnceLock::new();
        FAULTS.get_or_init(|| {
            std::env::var("CTRDB_FAULT")
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.split_once(':'))
                .map(|(p, a)| {
                    let (action, nth) = match a.trim().rsplit_once('@') {
                        Some((act, n)) => (act.to_string(), n.parse().ok()),
                        None => (a.trim().to_string(), None),
                    };
                    Fault {
                        point: p.trim().to_string(),
                        action,
                        nth,
                        hits: AtomicU64::new(0),
                    }
                })
                .collect()
        })
    }

    pub(super) fn point(point: &str) -> std::io::Result<()> {
        for f in faults() {
            if f.point != point {
                continue;
            }
            let hit = f.hits.fetch_add(1, Ordering::Relaxed) + 1;
            if f.nth.is_some_and(|n| n != hit) {
                continue;
            }
            if f.action == "abort" {
                std::process::abort();
            } else if let Some(ms) = f.action.strip_prefix("sleep=") {
                std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(0)));
            } else if f.action == "error" {
                return Err(std::io::Error::other(format!("injected fault at {point}")));
            }
        }
        Ok(())
    }
}
