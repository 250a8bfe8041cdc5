//! ctrdb: offline inspection, checking and repair of containerd's `meta.db`.
//!
//! Layers, data flowing one way: [`bolt`] (the bbolt file format, no containerd
//! knowledge) → `containerd` (schema decode) → analysis, dedup plan and GC model →
//! [`report`] and [`app`] (the commands). `main.rs` only parses arguments and maps
//! the outcome to an exit code.

#![deny(missing_debug_implementations)]

pub mod analysis;
pub mod app;
pub mod bytes;
pub mod bolt;
pub mod cli;
pub mod containerd;
pub mod fault;
pub mod fsio;
#[cfg(feature = "heap-stats")]
pub mod heapstats;
pub mod report;
pub mod time;
