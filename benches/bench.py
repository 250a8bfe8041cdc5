#!/usr/bin/env python3
"""ctrdb benchmark: ctrdb against named anchors on the same file in the same run.

    python3 benches/bench.py [--datasets small,medium,large] [--rounds N]

Generates containerd-shaped meta.db files with Go's own bbolt (benches/perfgen, the
exact flags are in DATASETS below) into bench-data/ (git-ignored), then runs every
contender round-robin (interleaved: one run of each per round, so drift in the
machine's state hits all of them alike), each run starting from a warm page cache
in one defined state (`settle`, before every run: evicted and read back, as after
a reboot), and the readers once more on
a copy whose cache was filled by 4 KiB writes. Prints, per
dataset, median wall time, ratios to `cat`, `cp`, `cp` + `sync` (a durable copy:
ctrdb fsyncs what it writes), Go walk, Go tx.Check and Go bolt.Compact (writers
also with their output on tmpfs, where fsync is free, against `cp` and Go's
Compact to tmpfs: that separates compute from the disk), peak RSS (includes the mapped file) and, for ctrdb, peak heap
(counting allocator, feature `heap-stats`). Also thread scaling (RAYON_NUM_THREADS
1 vs 2). Needs: cargo, golang-go, golang-github-coreos-bbolt-dev.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time

# Write-only, as a shell's `> /dev/null`: ctrdb takes a read-write /dev/null on its
# standard output (what subprocess.DEVNULL opens) for a closed one and refuses to run.
DEVNULL_W = open(os.devnull, "wb")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "bench-data")
BIN = os.path.join(DATA, "bin")
CTRDB = os.path.join(DATA, "target", "release", "ctrdb")
# Heap is measured with a second build whose counting allocator would slow the timed runs.
CTRDB_HEAP = os.path.join(DATA, "target-heap", "release", "ctrdb")

# The exact generator flags (benches/perfgen/README.md).
DATASETS = {
    "small": ["-namespaces", "4", "-images-per-ns", "64"],                    # ~20 MB
    "medium": ["-namespaces", "8", "-images-per-ns", "330", "-churn", "30"],  # ~250 MB, ~23 % free
    "large": ["-namespaces", "16", "-images-per-ns", "720", "-churn", "30"],  # ~1.1 GB, ~22 % free
}


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def build():
    os.makedirs(BIN, exist_ok=True)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(DATA, "target"))
    sh(["cargo", "build", "--release", "--locked"], cwd=REPO, env=env)
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(DATA, "target-heap"))
    sh(["cargo", "build", "--release", "--locked", "--features", "heap-stats"], cwd=REPO, env=env)
    if not all(os.path.exists(os.path.join(BIN, t)) for t in ("gen", "walk", "check", "compact")):
        sh(["sh", os.path.join(REPO, "benches", "perfgen", "build.sh"), BIN])


def dataset(name):
    path = os.path.join(DATA, f"{name}.db")
    if not os.path.exists(path):
        tmp = path + ".gen"
        sh([os.path.join(BIN, "gen"), "-out", tmp] + DATASETS[name])
        os.rename(tmp, path)
    return path


def run_once(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS bytes, peak heap bytes or None)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=DEVNULL_W, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{cmd} failed with {code}: {err}")
    heap = None
    for line in err.splitlines():
        if line.startswith("ctrdb-heap-peak-bytes:"):
            heap = int(line.split(":")[1])
    return wall, ru.ru_maxrss * 1024, heap


def lost_a_range(path):
    """Whether a repair of `path` finds a key range both trees lost, so that it
    scans the pages no tree reaches."""
    r = subprocess.run([CTRDB, "repair", "--format", "json", path], capture_output=True)
    return r.returncode == 1 and json.loads(r.stdout).get("orphans") is not None


def damaged_copy(name, db, suffix="leaf-damaged", wanted=None):
    """A copy of `db` with one leaf page of its tree zeroed: the input of the
    repair rows. Leaf pages are tried from the middle of the file until
    `ctrdb check --fail-on error` finds the damage (a free page's would not
    count) and `wanted(path)`, if given, holds."""
    path = os.path.join(DATA, f"{name}.{suffix}.db")
    if os.path.exists(path):
        return path
    tmp = path + ".tmp"
    shutil.copyfile(db, tmp)
    ps = 4096
    pages = os.path.getsize(tmp) // ps
    with open(tmp, "r+b") as f:
        for i in list(range(pages // 2, pages)) + list(range(2, pages // 2)):
            f.seek(i * ps)
            head = f.read(16)
            if int.from_bytes(head[0:8], "little") != i or int.from_bytes(head[8:10], "little") != 0x02:
                continue
            f.seek(i * ps)
            page = f.read(ps)
            f.seek(i * ps)
            f.write(bytes(ps))
            f.flush()
            if subprocess.run([CTRDB, "check", "--fail-on", "error", tmp], stdout=DEVNULL_W, stderr=subprocess.DEVNULL).returncode == 1 and (
                wanted is None or wanted(tmp)
            ):
                print(f"+ {name}: leaf page {i} zeroed for the {suffix} repair rows", file=sys.stderr)
                break
            f.seek(i * ps)
            f.write(page)
    os.rename(tmp, path)
    return path


def contenders(db, out, shm_out):
    """(name, command, file it writes). `shm_out` is on tmpfs (None if there is
    none): there fsync is free, so those rows are the writers' compute alone."""
    g = lambda t: os.path.join(BIN, t)
    rows = [
        ("cat", ["sh", "-c", f"cat '{db}' >/dev/null"], None),
        ("cp", ["cp", db, out], out),
        # ctrdb's writers fsync their output before the rename; this is the durable copy.
        ("cp + sync", ["sh", "-c", f"cp '{db}' '{out}' && sync '{out}'"], out),
        ("Go walk", [g("walk"), db], None),
        ("Go tx.Check", [g("check"), db], None),
        ("Go bolt.Compact", [g("compact"), "-f", db, out], out),
        ("ctrdb inspect", [CTRDB, "inspect", db], None),
        ("ctrdb refs --format json", [CTRDB, "refs", "--format", "json", db], None),
        ("ctrdb refs --format json --hash", [CTRDB, "refs", "--format", "json", "--hash", db], None),
        ("ctrdb check", [CTRDB, "check", db], None),
        ("ctrdb compact --output", [CTRDB, "compact", db, "--output", out, "--force"], out),
        ("ctrdb dedup --output", [CTRDB, "dedup", db, "--output", out, "--force"], out),
        # Against `refs` on both files: the two damage decodes and the joined walk.
        ("ctrdb diff (the file with itself)", [CTRDB, "diff", db, db, "--format", "json"], None),
        ("ctrdb timeline --format jsonl", [CTRDB, "timeline", "--format", "jsonl", db], None),
        # Against `cat`: both trees walked to mark what they reach, every other
        # page read once, the other tree joined with the newest.
        ("ctrdb carve --format json", [CTRDB, "carve", "--format", "json", db], None),
    ]
    if DAMAGED.get(db):
        bad = DAMAGED[db]
        rows += [
            ("ctrdb repair (dry run, one leaf zeroed)", [CTRDB, "repair", bad], None),
            ("ctrdb repair --output (one leaf zeroed)", [CTRDB, "repair", bad, "--output", out, "--force"], out),
        ]
    if RANGE_DAMAGED.get(db):
        # Against the row above, the cost of the orphan-page scan: both trees
        # walked once more and every page they do not reach read once.
        bad = RANGE_DAMAGED[db]
        rows += [("ctrdb repair (dry run, a range both trees lost: page scan)", [CTRDB, "repair", bad], None)]
    if shm_out:
        rows += [
            ("cp (tmpfs)", ["cp", db, shm_out], shm_out),
            ("Go bolt.Compact (tmpfs)", [g("compact"), "-f", db, shm_out], shm_out),
            ("ctrdb compact --output (tmpfs)", [CTRDB, "compact", db, "--output", shm_out, "--force"], shm_out),
            ("ctrdb dedup --output (tmpfs)", [CTRDB, "dedup", db, "--output", shm_out, "--force"], shm_out),
        ]
    return rows


# dataset path -> its copy with one leaf zeroed (the repair rows' input)
DAMAGED = {}
# dataset path -> its copy with a leaf zeroed whose key range both trees lose
RANGE_DAMAGED = {}


def supported(cmd):
    if cmd[0] != CTRDB:
        return True
    r = subprocess.run([CTRDB, cmd[1], "--help"], capture_output=True, text=True)
    return r.returncode == 0 and ("--hash" not in cmd or "--hash" in r.stdout)


def settle(db):
    """Puts `db` in a defined page-cache state: synced, evicted
    (POSIX_FADV_DONTNEED, no root needed) and read back sequentially, as after a
    reboot or a fresh copy. Read-ahead then fills the cache in large folios where
    the kernel can (ext4 from Linux 6.16, up to 2 MiB with a large read_ahead_kb),
    and mapped readers (ctrdb, Go) map those with one fault per folio."""
    fd = os.open(db, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 20):
            pass
    finally:
        os.close(fd)


def thp_file_mapped():
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("thp_file_mapped "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def small_write_table(name, db, rounds, env):
    """The readers again on a copy written 4 KiB at a time (as bbolt writes its
    pages): its page cache is in 4 KiB folios, so a mapped reader takes a fault
    per 16 pages (fault-around) instead of one per large folio."""
    copy = os.path.join(DATA, f"{name}.4k.db")
    sh(["dd", f"if={db}", f"of={copy}", "bs=4k", "status=none"])
    g = lambda t: os.path.join(BIN, t)
    rows = [
        ("cat", ["sh", "-c", f"cat '{copy}' >/dev/null"]),
        ("Go walk", [g("walk"), copy]),
        ("Go tx.Check", [g("check"), copy]),
        ("ctrdb inspect", [CTRDB, "inspect", copy]),
        ("ctrdb refs --format json", [CTRDB, "refs", "--format", "json", copy]),
        ("ctrdb check", [CTRDB, "check", copy]),
    ]
    rows = [(n, c) for n, c in rows if supported(c)]
    t = {n: [] for n, _ in rows}
    try:
        for r in range(rounds + 1):
            for n, c in rows:
                res = run_once(c, env)
                if r > 0:
                    t[n].append(res[0])
    finally:
        os.remove(copy)
    med = {n: statistics.median(v) for n, v in t.items()}
    lines = ["", "Readers on a copy whose page cache was filled by 4 KiB writes (no large folios), medians:", "",
             "| command | median | ×cat | ×Go walk | ×Go Check |", "|---|---|---|---|---|"]
    for n, m in med.items():
        r = lambda a: f"{m / med[a]:.2f}" if med.get(a) else "-"
        lines.append(f"| {n} | {m * 1000:.0f} ms | {r('cat')} | {r('Go walk')} | {r('Go tx.Check')} |")
    return lines


def bench(name, rounds):
    db = dataset(name)
    out = os.path.join(DATA, f"{name}.out.db")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 3 * os.path.getsize(db) else None
    shm_out = os.path.join(shm, f"ctrdb-bench-{name}.out.db") if shm else None
    size = os.path.getsize(db)
    DAMAGED[db] = damaged_copy(name, db)
    RANGE_DAMAGED[db] = damaged_copy(name, db, "range-damaged", lost_a_range)
    settle(db)
    thp0 = thp_file_mapped()
    items = [(n, c, o) for n, c, o in contenders(db, out, shm_out) if supported(c)]
    env = dict(os.environ, CTRDB_HEAP_STATS="1")
    results = {n: [] for n, _, _ in items}
    for r in range(rounds + 1):  # round 0 is a warm-up, not counted
        for n, c, o in items:
            # Every contender starts from the same page-cache state: within a
            # round the file sits unread for seconds at a time, and this VM pages
            # out idle memory (DAMON); what a mapped reader faults back in then
            # comes in small folios, which costs it more than it costs `cat`.
            settle(next((d[db] for d in (DAMAGED, RANGE_DAMAGED) if d.get(db) in c), db))
            res = run_once(c, env)
            if o and os.path.exists(o):
                os.remove(o)
            if r > 0:
                results[n].append(res)
    heap = {}
    for n, c, o in items:
        if c[0] == CTRDB:
            heap[n] = run_once([CTRDB_HEAP] + c[1:], env)[2]
            if o and os.path.exists(o):
                os.remove(o)
    med = {n: statistics.median(x[0] for x in v) for n, v in results.items()}
    lines = [f"### {name}: {size / 1e6:.1f} MB, {rounds} rounds, medians", "",
             "| command | median | ×cat | ×cp | ×cp+sync | ×Go walk | ×Go Check | ×Go Compact | peak RSS | peak heap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, v in results.items():
        m = med[n]
        rss = max(x[1] for x in v) / 2**20
        h = f"{heap[n] / 2**20:.1f} MiB" if heap.get(n) is not None else "-"
        ratio = lambda a: f"{m / med[a]:.2f}" if a in med and med[a] > 0 else "-"
        if n.endswith("(tmpfs)"):  # compare tmpfs writers with tmpfs anchors
            ratio = lambda a: f"{m / med[a + ' (tmpfs)']:.2f}" if med.get(a + " (tmpfs)") else (f"{m / med[a]:.2f}" if a in ("cat", "Go walk", "Go tx.Check") else "-")
        lines.append(f"| {n} | {m * 1000:.0f} ms | {ratio('cat')} | {ratio('cp')} | {ratio('cp + sync')} | {ratio('Go walk')} | "
                     f"{ratio('Go tx.Check')} | {ratio('Go bolt.Compact')} | {rss:.0f} MiB | {h} |")
    thp = thp_file_mapped()
    if thp is not None and thp0 is not None:
        lines += ["", f"Page cache: read back from disk (evicted, then read sequentially); "
                      f"{thp - thp0} PMD (2 MiB) file mappings made during the runs (`thp_file_mapped`)."]
    lines += small_write_table(name, db, rounds, env)
    lines += ["", "Thread scaling (RAYON_NUM_THREADS, medians):", "",
              "| command | 1 thread | 2 threads | speed-up |", "|---|---|---|---|"]
    for n, c in [("ctrdb check", [CTRDB, "check", db]), ("ctrdb refs --format json", [CTRDB, "refs", "--format", "json", db])]:
        if not supported(c):
            continue
        t = {1: [], 2: []}
        for _ in range(rounds):
            for k in (1, 2):
                settle(db)
                t[k].append(run_once(c, dict(env, RAYON_NUM_THREADS=str(k)))[0])
        m1, m2 = statistics.median(t[1]), statistics.median(t[2])
        lines.append(f"| {n} | {m1 * 1000:.0f} ms | {m2 * 1000:.0f} ms | {m1 / m2:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(DATA, f"results-{name}.md"), "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="small,medium,large")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    build()
    print(f"machine: {os.cpu_count()} CPUs, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    for d in a.datasets.split(","):
        bench(d, a.rounds)


if __name__ == "__main__":
    main()
