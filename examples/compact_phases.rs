//! Times each phase of `compact --output` on one file, best of N rounds:
//! walk+pack into memory (compute only), write to a file in DIR (syscalls), fsync,
//! re-read + parse, structural check, lockstep compare, SHA-256 of the output.
//! `cargo run --release --example compact_phases -- DB DIR [ROUNDS]`.

use std::io::{Cursor, Write};
use std::time::Instant;

use ctrdb::bolt::writer::{self, BoltWriter, Filtered, WriterOptions};
use ctrdb::bolt::{check, Db, DbFile, LockMode, Walk};
use sha2::Digest;

mod common;
use common::{best, Null};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: compact_phases DB DIR [ROUNDS]");
    let dir = args.next().expect("usage: compact_phases DB DIR [ROUNDS]");
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let file = DbFile::open(path.as_ref(), LockMode::Shared).expect("open");
    let db = file.db().expect("parse");
    let opts = WriterOptions::copy_of(&db).expect("root");
    let copy = |out: &mut dyn FnMut(Cursor<Vec<u8>>)| {
        let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).expect("writer");
        let mut src = Filtered::new(Walk::new(&db).expect("walk"), writer::keep_all);
        writer::copy_walk(&mut src, &mut w).expect("copy");
        out(w.finish().expect("finish").0);
    };
    let (t_pack_null, ()) = best(rounds, || {
        let mut w = BoltWriter::new(Null, opts).expect("writer");
        let mut src = Filtered::new(Walk::new(&db).expect("walk"), writer::keep_all);
        writer::copy_walk(&mut src, &mut w).expect("copy");
        w.finish().expect("finish");
    });
    let mut mem = Vec::new();
    let (t_pack, ()) = best(1, || copy(&mut |c| mem = c.into_inner()));
    let out_path = std::path::Path::new(&dir).join("compact_phases.out.db");
    let (t_write, ()) = best(rounds, || {
        let mut f = std::fs::File::create(&out_path).expect("create");
        for ch in mem.chunks(4 << 20) {
            f.write_all(ch).expect("write");
        }
    });
    let (t_fsync, ()) = best(1, || {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&out_path)
            .expect("open");
        f.sync_all().expect("sync")
    });
    let (t_write_fsync, ()) = best(rounds, || {
        let mut f = std::fs::File::create(&out_path).expect("create");
        for ch in mem.chunks(4 << 20) {
            f.write_all(ch).expect("write");
        }
        f.sync_all().expect("sync")
    });
    // Early writeback: a second thread fdatasyncs every 64 MiB written.
    let mut t_w_done = 0.0;
    let (t_w_bg, ()) = best(rounds, || {
        let t0 = Instant::now();
        let mut f = std::fs::File::create(&out_path).expect("create");
        let g = f.try_clone().expect("clone");
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let h = std::thread::spawn(move || {
            while rx.recv().is_ok() {
                g.sync_data().expect("sync");
            }
        });
        for (i, ch) in mem.chunks(4 << 20).enumerate() {
            f.write_all(ch).expect("write");
            if i % 16 == 15 {
                let _ = tx.try_send(());
            }
        }
        t_w_done = t0.elapsed().as_secs_f64() * 1e3;
        drop(tx);
        h.join().expect("join");
        f.sync_all().expect("sync")
    });
    println!("bg-sync: writes done at {t_w_done:.0} ms, durable at {t_w_bg:.0} ms");
    let outf = DbFile::open(&out_path, LockMode::Shared).expect("open out");
    let (t_check, report) = best(rounds, || {
        let cdb = Db::parse(outf.bytes()).expect("parse out");
        check::check(&cdb)
    });
    let (t_cmp, sum) = best(rounds, || {
        let cdb = Db::parse(outf.bytes()).expect("parse out");
        let mut a = Filtered::new(Walk::new(&db).expect("walk"), writer::keep_all);
        let mut b = Walk::new(&cdb).expect("walk");
        writer::compare(&mut a, &mut b).expect("compare")
    });
    let (t_hash, _) = best(rounds, || sha2::Sha256::digest(outf.bytes()));
    let _ = std::fs::remove_file(&out_path);
    println!(
        "bytes={} findings={} keys={} pack_null_ms={t_pack_null:.0} pack_vec_ms={t_pack:.0} write_ms={t_write:.0} fsync_after_write_ms={t_fsync:.0} write+fsync_ms={t_write_fsync:.0} check_ms={t_check:.0} compare_ms={t_cmp:.0} sha256_ms={t_hash:.0}",
        mem.len(),
        report.findings.len(),
        sum.keys,
    );
}
