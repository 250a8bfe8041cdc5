//! `carve` on arbitrary bytes: must never panic or hang, and every record it
//! reports is one it read (deleted or an older version, with entries).
#![no_main]
use ctrdb::analysis::carve;
use ctrdb::bolt::Db;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    let found = carve::carve(&db);
    assert!(found.placed + found.fragments <= found.scan.leaves);
    for r in &found.records {
        assert!(!r.sources.is_empty(), "a carved record says where it came from");
    }
});
