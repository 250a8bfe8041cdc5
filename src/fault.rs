//! Fault injection for crash and lock tests, selected at run time by the
//! environment variable `CTRDB_FAULT=<point>:<action>[,<point>:<action>…]`.
//!
//! Actions: `abort` ends the process at once (no cleanup, no unwinding — as a
//! SIGKILL would), `sleep=<ms>` pauses there (to hold a lock or widen a window),
//! `error` makes the operation at that point fail with an injected I/O error.
//! Points are named where they are called. Without the variable this is a no-op.

use std::sync::OnceLock;

fn faults() -> &'static [(String, String)] {
    static FAULTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FAULTS.get_or_init(|| {
        std::env::var("CTRDB_FAULT")
            .unwrap_or_default()
            .split(',')
            .filter_map(|s| s.split_once(':'))
            .map(|(p, a)| (p.trim().to_string(), a.trim().to_string()))
            .collect()
    })
}

/// Runs the action configured for `point`, if any. Returns an injected error for
/// the `error` action.
pub fn point(point: &str) -> std::io::Result<()> {
    for (p, action) in faults() {
        if p != point {
            continue;
        }
        if action == "abort" {
            std::process::abort();
        } else if let Some(ms) = action.strip_prefix("sleep=") {
            std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap_or(0)));
        } else if action == "error" {
            return Err(std::io::Error::other(format!("injected fault at {point}")));
        }
    }
    Ok(())
}
