//! Shared test helpers: a seeded std-only PRNG, an in-memory bucket-tree model, and
//! writing/reading that model through ctrdb's writer and reader.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;

use ctrdb::bolt::writer::{BoltWriter, FreelistMode, WriteSummary, WriterOptions};
use ctrdb::bolt::{Db, Walk, WalkEvent};

pub use super::common::Rng;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Value(Vec<u8>),
    Bucket(Tree),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub sequence: u64,
    pub entries: BTreeMap<Vec<u8>, Node>,
}

impl Tree {
    pub fn counts(&self) -> (u64, u64) {
        let (mut b, mut k) = (0, 0);
        for n in self.entries.values() {
            match n {
                Node::Value(_) => k += 1,
                Node::Bucket(t) => {
                    let (cb, ck) = t.counts();
                    b += 1 + cb;
                    k += ck;
                }
            }
        }
        (b, k)
    }

    /// The bucket at `path` below this one; missing buckets on the way are created
    /// if `create`, else the call panics (as Go's `Bucket` lookup fails).
    pub fn bucket_mut(&mut self, path: &[&[u8]], create: bool) -> &mut Tree {
        let mut t = self;
        for name in path {
            if create && !t.entries.contains_key(*name) {
                t.entries
                    .insert(name.to_vec(), Node::Bucket(Tree::default()));
            }
            t = match t.entries.get_mut(*name) {
                Some(Node::Bucket(b)) => b,
                other => panic!(
                    "{:?}: not a bucket: {other:?}",
                    String::from_utf8_lossy(name)
                ),
            };
        }
        t
    }

    /// Go's `Bucket.inlineable` for this bucket at `page_size`.
    pub fn inlineable(&self, page_size: usize) -> bool {
        let mut size = 16;
        for (k, n) in &self.entries {
            match n {
                Node::Bucket(_) => return false,
                Node::Value(v) => size += 16 + k.len() + v.len(),
            }
        }
        size <= page_size / 4 && self.entries.len() < 0xFFFF
    }
}

pub fn options(page_size: u32, freelist: FreelistMode) -> WriterOptions {
    WriterOptions {
        page_size,
        freelist,
        after_txid: 41,
        root_sequence: 0,
    }
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

/// Writes `root` (its entries are the top-level buckets) with ctrdb's writer.
pub fn write_tree(root: &Tree, opts: WriterOptions) -> (Vec<u8>, WriteSummary) {
    let mut w = BoltWriter::new(
        Cursor::new(Vec::new()),
        WriterOptions {
            root_sequence: root.sequence,
            ..opts
        },
    )
    .expect("writer");
    feed(&mut w, root);
    let (c, s) = w.finish().expect("finish");
    (c.into_inner(), s)
}

/// `(bucket path, inline)` for every bucket, in walk order.
pub type InlineFlags = Vec<(Vec<Vec<u8>>, bool)>;

/// Reads a whole file back into the model; also returns, per bucket path, whether the
/// reader found it inline.
pub fn read_tree(data: &[u8]) -> (Tree, InlineFlags) {
    let db = Db::parse(data).expect("parse");
    let mut walk = Walk::new(&db).expect("walk");
    let mut stack = vec![(
        Vec::new(),
        Tree {
            sequence: walk.root_sequence(),
            ..Tree::default()
        },
    )];
    let mut inline = Vec::new();
    while let Some(ev) = walk.next_event() {
        match ev.expect("walk event") {
            WalkEvent::BucketStart {
                key,
                sequence,
                inline: il,
            } => {
                let mut path: Vec<Vec<u8>> = stack.iter().skip(1).map(|(k, _)| k.clone()).collect();
                path.push(key.to_vec());
                inline.push((path, il));
                stack.push((
                    key.to_vec(),
                    Tree {
                        sequence,
                        ..Tree::default()
                    },
                ));
            }
            WalkEvent::Value { key, value } => {
                let top = &mut stack.last_mut().expect("stack").1;
                assert!(
                    top.entries
                        .insert(key.to_vec(), Node::Value(value.to_vec()))
                        .is_none(),
                    "duplicate key"
                );
            }
            WalkEvent::BucketEnd => {
                let (k, t) = stack.pop().expect("stack");
                let top = &mut stack.last_mut().expect("stack").1;
                assert!(
                    top.entries.insert(k, Node::Bucket(t)).is_none(),
                    "duplicate bucket"
                );
            }
        }
    }
    assert_eq!(stack.len(), 1, "unbalanced walk");
    (stack.pop().expect("root").1, inline)
}

/// The expected inline flag of every bucket, in walk order.
pub fn expected_inline(t: &Tree, page_size: usize, path: &mut Vec<Vec<u8>>, out: &mut InlineFlags) {
    for (k, n) in &t.entries {
        if let Node::Bucket(b) = n {
            path.push(k.clone());
            out.push((path.clone(), b.inlineable(page_size)));
            expected_inline(b, page_size, path, out);
            path.pop();
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The Go oracle's `dumpdb -lines` output for this tree.
pub fn go_lines(t: &Tree, path: &mut Vec<String>, out: &mut String) {
    for (k, n) in &t.entries {
        match n {
            Node::Value(v) => {
                let v = if v.is_empty() {
                    "-".to_string()
                } else {
                    hex(v)
                };
                out.push_str(&format!("K {} {} {}\n", path.join("/"), hex(k), v));
            }
            Node::Bucket(b) => {
                path.push(hex(k));
                out.push_str(&format!("B {} seq={}\n", path.join("/"), b.sequence));
                go_lines(b, path, out);
                path.pop();
            }
        }
    }
}

/// Parameters of a random tree.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub max_depth: usize,
    pub max_entries: u64,
    pub bucket_percent: u64,
    pub big_key_percent: u64,
    pub big_value_percent: u64,
    pub huge_value_percent: u64,
}

pub fn random_key(rng: &mut Rng, shape: &Shape) -> Vec<u8> {
    let n = if rng.chance(shape.big_key_percent) {
        rng.range(1024, 32 * 1024)
    } else {
        rng.range(1, 40)
    };
    rng.bytes(n as usize)
}

pub fn random_value(rng: &mut Rng, shape: &Shape) -> Vec<u8> {
    let n = if rng.chance(shape.huge_value_percent) {
        rng.range(64 * 1024, 1 << 20)
    } else if rng.chance(shape.big_value_percent) {
        rng.range(1000, 20_000)
    } else {
        rng.range(0, 120)
    };
    rng.bytes(n as usize)
}

pub fn random_sequence(rng: &mut Rng) -> u64 {
    match rng.range(0, 5) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.next(),
        _ => rng.range(0, 1000),
    }
}

pub fn random_tree(rng: &mut Rng, shape: &Shape, depth: usize) -> Tree {
    let mut t = Tree {
        sequence: random_sequence(rng),
        ..Tree::default()
    };
    let n = rng.range(0, shape.max_entries);
    for _ in 0..n {
        let k = random_key(rng, shape);
        let node = if depth < shape.max_depth && rng.chance(shape.bucket_percent) {
            let sub = Shape {
                max_entries: (shape.max_entries / 2).max(3),
                ..*shape
            };
            Node::Bucket(random_tree(rng, &sub, depth + 1))
        } else {
            Node::Value(random_value(rng, shape))
        };
        t.entries.insert(k, node);
    }
    t
}

/// A root (sequence 0, only buckets at the top) around random sub-trees.
pub fn random_root(rng: &mut Rng, shape: &Shape, top: u64) -> Tree {
    let mut root = Tree::default();
    for i in 0..top {
        let mut name = format!("top{i:03}-").into_bytes();
        let n = rng.range(0, 8) as usize;
        name.extend(rng.bytes(n));
        root.entries
            .insert(name, Node::Bucket(random_tree(rng, shape, 1)));
    }
    root
}

/// Go's `node.split` (fill percent 1.0) over element sizes, returning the nodes as
/// index ranges, plus ctrdb's cap of 0xFFFE elements per page. A plain, non-streaming
/// model of the rule, to check the streaming writer against.
pub fn go_split(sizes: &[usize], ps: usize) -> Vec<std::ops::Range<usize>> {
    const CAP: usize = 0xFFFE;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let rest = &sizes[start..];
        let n = rest.len();
        let total: usize = 16 + rest.iter().sum::<usize>();
        if (n <= 4 || total < ps) && n <= CAP {
            out.push(start..sizes.len());
            return out;
        }
        let (mut sz, mut index) = (16, 0);
        for (i, &el) in rest.iter().enumerate().take(n - 2) {
            index = i;
            if i >= 2 && (sz + el > ps || i >= CAP) {
                break;
            }
            sz += el;
        }
        out.push(start..start + index);
        start += index;
    }
}

/// Pages Go bbolt (one transaction, fill percent 1.0) would allocate for this bucket's
/// own tree and all sub-buckets; also the size of the bucket's value in its parent.
pub fn go_pages(t: &Tree, ps: usize, is_root: bool) -> (u64, usize) {
    if !is_root && t.inlineable(ps) {
        let size = 16
            + t.entries
                .iter()
                .map(|(k, n)| 16 + k.len() + if let Node::Value(v) = n { v.len() } else { 0 })
                .sum::<usize>();
        return (0, 16 + size);
    }
    let mut pages = 0;
    let mut elems = Vec::new(); // (first key length, element size)
    for (k, n) in &t.entries {
        let vlen = match n {
            Node::Value(v) => v.len(),
            Node::Bucket(b) => {
                let (p, v) = go_pages(b, ps, false);
                pages += p;
                v
            }
        };
        elems.push((k.len(), 16 + k.len() + vlen));
    }
    if elems.is_empty() {
        return (pages + 1, 16);
    }
    loop {
        let sizes: Vec<usize> = elems.iter().map(|e| e.1).collect();
        let nodes = go_split(&sizes, ps);
        for r in &nodes {
            let size = 16 + sizes[r.clone()].iter().sum::<usize>();
            pages += size.div_ceil(ps) as u64;
        }
        if nodes.len() == 1 {
            return (pages, 16);
        }
        elems = nodes
            .iter()
            .map(|r| (elems[r.start].0, 16 + elems[r.start].0))
            .collect();
    }
}

/// The `ctrdb` binary under test.
pub fn ctrdb() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ctrdb"))
}

/// The repo's Go-written fixtures (`fixtures/*/meta*.db`); `CTRDB_FIXTURES_DIR` points
/// elsewhere (e.g. a fixtures worktree) for local runs.
pub fn fixture_dbs() -> Vec<std::path::PathBuf> {
    let dir = super::common::fixtures_dir();
    let mut out = Vec::new();
    for case in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(case.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with("meta") && name.ends_with(".db") && !name.contains("compact") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// Writes `root` to `path` with the writer.
pub fn write_tree_file(path: &std::path::Path, root: &Tree, opts: WriterOptions) {
    let (data, _) = write_tree(root, opts);
    std::fs::write(path, data).expect("write test db");
}
