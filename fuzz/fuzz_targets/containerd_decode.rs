//! containerd schema decode and the digest → references map on arbitrary bytes:
//! must never panic or hang (problems become findings).
#![no_main]
use ctrdb::bolt::Db;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    let meta = ctrdb::containerd::MetaDb::decode(&db);
    let refs = ctrdb::analysis::refs::build(&meta);
    std::hint::black_box((&meta.findings, &refs));
});
