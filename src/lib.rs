//! ctrdb: offline inspection, checking and repair of containerd's `meta.db`.
//!
//! Layers, data flowing one way: [`bolt`] (the bbolt file format, no containerd
//! knowledge) → `containerd` (schema decode) → analysis, dedup plan and GC model →
//! report and CLI.

pub mod bolt;
