//! The structural check on arbitrary bytes: must never panic or hang.
#![no_main]
use ctrdb::bolt::{check, Db};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = Db::parse(data) {
        let r = check::check(&db);
        let _ = r.errors();
    }
});
