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
