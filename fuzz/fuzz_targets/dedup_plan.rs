//! Dedup planning and the GC model on arbitrary bytes: decode, plan under every
//! policy, and compute the GC impact. Must never panic or hang.
#![no_main]
use std::collections::BTreeSet;
use std::time::SystemTime;

use ctrdb::bolt::Db;
use ctrdb::containerd::MetaDb;
use ctrdb::analysis::dedup::{self, PlanOptions, Policy};
use ctrdb::analysis::gc::{self, GcOptions, GcRules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    let meta = MetaDb::decode(&db);
    let opts = GcOptions { now: SystemTime::UNIX_EPOCH, rules: GcRules::for_file(&meta, db.meta().has_freelist()) };
    for policy in [Policy::Safe, Policy::Tagged, Policy::OnePerDigest] {
        let plan = dedup::plan(&meta, &PlanOptions { policy, keep: Vec::new(), namespaces: Vec::new() });
        let removed: BTreeSet<_> = plan.removed();
        let before = gc::collectable(&meta, &opts);
        let after = gc::collectable_without(&meta, &removed, &opts);
        std::hint::black_box(after.minus(&before).len());
    }
});
