//! The repair on arbitrary bytes: must never panic or hang, and whatever it
//! writes must be a file ctrdb's check finds nothing in.
#![no_main]
use ctrdb::bolt::{check, Db};
use ctrdb::ops::repair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    let Ok((out, _ledger)) = repair::repair_in_memory(&db) else {
        return;
    };
    let repaired = Db::parse(&out).expect("the repaired file parses");
    let report = check::check(&repaired);
    assert!(
        report.findings.is_empty(),
        "ctrdb check finds problems in the repaired file: {:?}",
        report.findings.first()
    );
});
