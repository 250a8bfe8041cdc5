//! Shared by the timing examples (not an example itself: Cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`).

use std::time::Instant;

/// Runs `f` `rounds` times; the best wall time in milliseconds and the last result.
pub fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        last = Some(v);
    }
    (best, last.expect("at least one round"))
}

/// A writer that discards what is written (to time packing alone).
#[allow(dead_code)] // not every example packs
pub struct Null;

impl std::io::Write for Null {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Null {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Ok(0)
    }
}
