//! The writer on arbitrary trees: a tree decoded from the fuzz input by a tiny
//! hand-rolled decoder is written with `BoltWriter` into memory, parsed back, walked
//! (must equal the tree, sequences included) and checked (must be clean).
//!
//! Input layout: byte 0 picks the page size (1024 << (b % 4)), byte 1 the freelist
//! mode and the root sequence; then operations, one tag byte each:
//! `0` put (key length byte, value length u16, value filler byte), `1` begin bucket
//! (key length byte, sequence byte), `2` end bucket, `3` put a large value
//! (length byte × page size / 8 + 1). Keys are derived from the input bytes;
//! duplicates replace the earlier entry, as in a map.
#![no_main]
use std::collections::BTreeMap;
use std::io::Cursor;

use ctrdb::bolt::writer::{BoltWriter, FreelistMode, WriterOptions};
use ctrdb::bolt::{check, Db, Walk, WalkEvent};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Value(Vec<u8>),
    Bucket(Tree),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tree {
    sequence: u64,
    entries: BTreeMap<Vec<u8>, Node>,
}

/// Deepest nesting the decoder builds (the reader's limit is tested elsewhere).
const MAX_DEPTH: usize = 48;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn key(&mut self) -> Option<Vec<u8>> {
        let n = usize::from(self.byte()? % 40) + 1;
        let take = n.min(self.0.len());
        let mut k: Vec<u8> = self.0.get(..take)?.to_vec();
        self.0 = self.0.get(take..)?;
        k.resize(n, b'k');
        Some(k)
    }
}

/// Decodes the tree; returns it with the page size, freelist mode.
fn decode(data: &[u8]) -> Option<(Tree, u32, FreelistMode)> {
    let mut inp = Input(data);
    let ps = 1024u32 << (inp.byte()? % 4);
    let b1 = inp.byte()?;
    let fl = if b1 & 1 == 0 { FreelistMode::Page } else { FreelistMode::None };
    let mut stack: Vec<(Vec<u8>, Tree)> = vec![(Vec::new(), Tree { sequence: u64::from(b1 >> 1), ..Tree::default() })];
    let mut ops = 0;
    while let Some(tag) = inp.byte() {
        ops += 1;
        if ops > 4_000 {
            break;
        }
        match tag % 4 {
            0 => {
                let k = inp.key()?;
                let hi = inp.byte()?;
                let lo = inp.byte()?;
                let len = usize::from(u16::from_le_bytes([lo, hi]) % 3000);
                let fill = inp.byte().unwrap_or(0);
                let v: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                // the root bucket holds only buckets (check reports a plain key there)
                if stack.len() > 1 {
                    stack.last_mut()?.1.entries.insert(k, Node::Value(v));
                }
            }
            1 => {
                let k = inp.key()?;
                let seq = u64::from(inp.byte()?);
                if stack.len() <= MAX_DEPTH {
                    stack.push((k, Tree { sequence: seq, ..Tree::default() }));
                }
            }
            2 => {
                if stack.len() > 1 {
                    let (k, t) = stack.pop()?;
                    stack.last_mut()?.1.entries.insert(k, Node::Bucket(t));
                }
            }
            _ => {
                let k = inp.key()?;
                let n = usize::from(inp.byte()?) * (ps as usize / 8) + 1;
                if stack.len() > 1 {
                    stack.last_mut()?.1.entries.insert(k, Node::Value(vec![0xA5; n]));
                }
            }
        }
    }
    while stack.len() > 1 {
        let (k, t) = stack.pop()?;
        stack.last_mut()?.1.entries.insert(k, Node::Bucket(t));
    }
    let (_, root) = stack.pop()?;
    Some((root, ps, fl))
}

fn feed<'a>(w: &mut BoltWriter<'a, Cursor<Vec<u8>>>, t: &'a Tree) {
    for (k, n) in &t.entries {
        match n {
            Node::Value(v) => w.put(k.as_slice(), v.as_slice()).expect("put"),
            Node::Bucket(b) => {
                w.begin_bucket(k.as_slice(), b.sequence).expect("begin");
                feed(w, b);
                w.end_bucket().expect("end");
            }
        }
    }
}

fn read_back(data: &[u8]) -> Tree {
    let db = Db::parse(data).expect("parse");
    let mut walk = Walk::new(&db).expect("walk");
    let mut stack = vec![(Vec::new(), Tree { sequence: walk.root_sequence(), ..Tree::default() })];
    while let Some(ev) = walk.next_event() {
        match ev.expect("walk event") {
            WalkEvent::BucketStart { key, sequence, .. } => {
                stack.push((key.to_vec(), Tree { sequence, ..Tree::default() }));
            }
            WalkEvent::Value { key, value } => {
                stack.last_mut().expect("open bucket").1.entries.insert(key.to_vec(), Node::Value(value.to_vec()));
            }
            WalkEvent::BucketEnd => {
                let (k, t) = stack.pop().expect("bucket");
                stack.last_mut().expect("parent").1.entries.insert(k, Node::Bucket(t));
            }
        }
    }
    assert_eq!(stack.len(), 1);
    stack.pop().expect("root").1
}

fuzz_target!(|data: &[u8]| {
    let Some((root, ps, fl)) = decode(data) else { return };
    let opts = WriterOptions { page_size: ps, freelist: fl, after_txid: 41, root_sequence: root.sequence };
    let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).expect("writer");
    feed(&mut w, &root);
    let (c, summary) = w.finish().expect("finish");
    let file = c.into_inner();
    assert_eq!(file.len() as u64, summary.bytes, "file length vs summary");
    let db = Db::parse(&file).expect("parse");
    let report = check::check(&db);
    assert!(report.findings.is_empty(), "check finds {:?}", report.findings.first());
    assert!(read_back(&file) == root, "the file's tree differs from the tree written");
});
