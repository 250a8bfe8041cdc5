//! Analyses over decoded records ([`crate::containerd`]); no decoding and no
//! output formatting here.

pub mod refs;
