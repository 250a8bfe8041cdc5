//! `diff` and the record stream on arbitrary bytes: must never panic or hang,
//! and a file compared with itself, when its tree reads whole, differs in
//! nothing.
#![no_main]
use ctrdb::analysis::diff;
use ctrdb::bolt::Db;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    let mut changes = 0usize;
    if diff::diff(&db, &db, |_| changes += 1).is_ok() {
        assert_eq!(changes, 0, "a file differs from itself");
    }
});
