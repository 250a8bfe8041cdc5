//! bbolt file format.
