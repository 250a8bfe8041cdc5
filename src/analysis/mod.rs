//! Analyses and planners over decoded records ([`crate::containerd`]): the
//! digest → references map, containerd's garbage collector, and the dedup plan.
//! Pure: no decoding, no file writes, no output formatting here.

pub mod carve;
pub mod dedup;
pub mod diff;
pub mod gc;
pub mod refs;
pub mod timeline;
