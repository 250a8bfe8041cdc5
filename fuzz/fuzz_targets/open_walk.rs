//! Open + full walk + lookups on arbitrary bytes: must never panic or hang.
#![no_main]
use ctrdb::bolt::{BucketPath, Db, Walk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::parse(data) else { return };
    if let Ok(mut w) = Walk::new(&db) {
        while let Some(ev) = w.next_event() {
            if ev.is_err() {
                break;
            }
        }
    }
    if let Ok(Some(b)) = db.bucket(&"v1/k8s.io/images".parse::<BucketPath>().expect("a bucket path")) {
        for e in b.iter() {
            if e.is_err() {
                break;
            }
        }
        let _ = b.get(b"docker.io/library/nginx:latest");
    }
    let _ = db.freelist();
});
