//! Golden listings: `images` (table, jsonl, collapsed) and `refs` of every real
//! fixture equal the committed expected files. Regenerate on purpose with
//! `CTRDB_UPDATE=1 cargo test schema_golden`.

use super::common::*;
use super::golden::golden;

#[test]
fn listings_of_every_fixture_match_golden() {
    for (name, path) in fixtures() {
        for (args, ext) in [
            (&["images"][..], "images.txt"),
            (&["images", "--format", "jsonl"][..], "images.jsonl"),
            (&["images", "--collapse"][..], "images-collapse.txt"),
            (&["refs"][..], "refs.txt"),
            (&["refs", "--format", "jsonl"][..], "refs.jsonl"),
        ] {
            let o = ctrdb_path(args, &path);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name} {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            golden(
                &format!("{name}.{ext}"),
                &String::from_utf8(o.stdout).unwrap(),
            );
        }
    }
}
