//! Times each phase of the read path on one file, best of N rounds:
//! structural check, schema decode (records only, and with the cross-record
//! checks), digest-map build, its JSON report (as `refs --format json` writes it), input hash.
//! `RAYON_NUM_THREADS=N cargo run --release --example phases -- DB [ROUNDS]`.

use ctrdb::analysis::refs;
use ctrdb::bolt::{check, DbFile, LockMode};
use ctrdb::containerd::MetaDb;
use ctrdb::report::{self, InputInfo};
use sha2::Digest;

mod common;
use common::best;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: phases DB [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let file = DbFile::open(path.as_ref(), LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let (t_check, report) = best(rounds, || check::check(&db));
    let (t_records, _) = best(rounds, || MetaDb::decode_records(&db));
    let (t_decode, meta) = best(rounds, || MetaDb::decode(&db));
    let (t_build, map) = best(rounds, || refs::build(&meta));
    let info = || InputInfo::with_sha256(path.as_ref(), db.data().len() as u64, None, None);
    let (t_json, json) = best(rounds, || {
        let mut out = Vec::new();
        report::refs::write_json(&mut out, info(), &map, report::refs::JSON_CHUNK).expect("json");
        out
    });
    let (t_hash, _) = best(rounds, || sha2::Sha256::digest(db.data()));
    println!(
        "threads={} findings={} records_ns={} groups={} check_ms={t_check:.1} decode_records_ms={t_records:.1} decode_ms={t_decode:.1} build_ms={t_build:.1} json_ms={t_json:.1} json_bytes={} sha256_ms={t_hash:.1}",
        rayon::current_num_threads(),
        report.findings.len(),
        meta.namespaces.len(),
        map.groups.len(),
        json.len(),
    );
}
