#!/usr/bin/env python3
"""Runs one command and prints, every INTERVAL seconds, what the machine is doing:
dirty and under-writeback page cache (/proc/meminfo), MiB the disk has completed
writing since the start (/proc/diskstats), and CPU ticks busy, idle and in iowait
across all CPUs (/proc/stat). Shows which phase of a writer waits for what: the
production of the copy, the verification, or the final fsync.

    python3 benches/timeline.py [--interval 0.1] [--disk vda] -- COMMAND...

Linux only. The command's stdout is discarded; its stderr passes through.
"""
import argparse, os, subprocess, sys, time

# Write-only, as a shell's `> /dev/null`: ctrdb takes a read-write /dev/null on its
# standard output (what subprocess.DEVNULL opens) for a closed one and refuses to run.
DEVNULL_W = open(os.devnull, "wb")


def meminfo_mib():
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0])
    return fields["Dirty"] // 1024, fields["Writeback"] // 1024


def cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait = v[:5]
    return user + nice + system, idle + iowait, iowait


def disk_written_mib(disk):
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if p[2] == disk:
                return int(p[9]) * 512 // (1 << 20)
    raise SystemExit(f"no disk named {disk} in /proc/diskstats")


def root_disk():
    """The whole disk holding /, e.g. vda for /dev/vda1 (best effort)."""
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt = line.split()[:2]
            if mnt == "/" and dev.startswith("/dev/"):
                name = dev[5:]
                return name.rstrip("0123456789") if not name.startswith("nvme") else name.split("p")[0]
    return "vda"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--disk", default=None, help="disk name in /proc/diskstats (default: the one holding /)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command given")
    disk = a.disk or root_disk()
    t0 = time.monotonic()
    written0 = disk_written_mib(disk)
    prev = cpu_ticks()
    proc = subprocess.Popen(cmd, stdout=DEVNULL_W)
    print(f"{'t (s)':>6} {'dirty':>6} {'wback':>6} {'written':>8} {'busy':>5} {'idle':>5} {'iowait':>6}")
    while proc.poll() is None:
        time.sleep(a.interval)
        now = cpu_ticks()
        dirty, writeback = meminfo_mib()
        print(f"{time.monotonic() - t0:6.2f} {dirty:6d} {writeback:6d} "
              f"{disk_written_mib(disk) - written0:8d} {now[0] - prev[0]:5d} "
              f"{now[1] - prev[1]:5d} {now[2] - prev[2]:6d}")
        prev = now
    print(f"exit {proc.returncode} after {time.monotonic() - t0:.2f} s "
          "(MiB for dirty, wback, written; CPU ticks per interval, all CPUs)")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
