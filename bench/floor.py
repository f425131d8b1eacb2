#!/usr/bin/env python3
"""bench/floor.py: what this machine's kernel and CPU charge for moving a GiB, with no
registry in the way; bench/compare prints these next to the servers' figures.

  pull: a 32 MiB page-cached file sent with sendfile(2) over one loopback TCP
        connection (a client process receives it). On loopback the sender's CPU also
        pays for the receiver's TCP processing, which a real network would move to
        another machine.
  push: the same bytes received over loopback into 1 MiB blocks, hashed with SHA-256
        (hashlib = OpenSSL, SHA-NI where the CPU has it) and written to a file with
        O_DIRECT, then fdatasync: the least work a registry that verifies digests and
        makes blobs durable can do, in one thread.
  sha256: hashing alone, from memory.

Each figure is the measuring process's own user + system CPU seconds per GiB.
Usage: bench/floor.py [--dir DIR] [--gib 1] [--json]
"""

import argparse
import hashlib
import json
import mmap
import os
import resource
import socket
import sys
import tempfile
import time

BLOCK = 1 << 20
FILE_SIZE = 32 << 20


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pair():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    return ls, ls.getsockname()[1]


def sink(port, total):
    """Child: connects and reads `total` bytes, then exits."""
    c = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(BLOCK)
    mv = memoryview(buf)
    got = 0
    while got < total:
        n = c.recv_into(mv)
        if n == 0:
            break
        got += n
    os._exit(0)


def source(port, total):
    """Child: connects and sends `total` bytes from one repeated 1 MiB block."""
    c = socket.create_connection(("127.0.0.1", port))
    block = os.urandom(BLOCK)
    sent = 0
    while sent < total:
        c.sendall(block)
        sent += BLOCK
    c.close()
    os._exit(0)


def floor_pull(d, total):
    path = os.path.join(d, "floor-pull.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(FILE_SIZE))
    fd = os.open(path, os.O_RDONLY)
    os.pread(fd, FILE_SIZE, 0)  # in the page cache, as a hot blob is
    ls, port = pair()
    pid = os.fork()
    if pid == 0:
        sink(port, total)
    conn, _ = ls.accept()
    c0, t0 = cpu(), time.time()
    sent = 0
    while sent < total:
        off = 0
        while off < FILE_SIZE:
            off += os.sendfile(conn.fileno(), fd, off, FILE_SIZE - off)
        sent += FILE_SIZE
    c1, t1 = cpu(), time.time()
    os.waitpid(pid, 0)
    os.close(fd)
    os.unlink(path)
    return (c1 - c0) / (total / 2**30), total / (t1 - t0) / 1e6


def floor_push(d, total):
    path = os.path.join(d, "floor-push.bin")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    except OSError:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    mv = memoryview(buf)
    ls, port = pair()
    pid = os.fork()
    if pid == 0:
        source(port, total)
    conn, _ = ls.accept()
    h = hashlib.sha256()
    c0, t0 = cpu(), time.time()
    off = 0
    while True:
        filled = 0
        while filled < BLOCK:
            n = conn.recv_into(mv[filled:])
            if n == 0:
                break
            filled += n
        if filled == 0:
            break
        h.update(mv[:filled])
        os.pwrite(fd, mv[:filled], off)
        off += filled
        if filled < BLOCK:
            break
    os.fdatasync(fd)
    c1, t1 = cpu(), time.time()
    h.hexdigest()
    os.waitpid(pid, 0)
    os.close(fd)
    os.unlink(path)
    mv.release()
    buf.close()
    return (c1 - c0) / (off / 2**30), off / (t1 - t0) / 1e6


def floor_sha256(total):
    block = os.urandom(BLOCK)
    h = hashlib.sha256()
    c0 = cpu()
    for _ in range(total // BLOCK):
        h.update(block)
    return (cpu() - c0) / (total / 2**30)


def measure(d, gib=1.0):
    total = int(gib * 2**30) // FILE_SIZE * FILE_SIZE
    pull_cpu, pull_mbs = floor_pull(d, total)
    push_cpu, push_mbs = floor_push(d, total)
    return {"pull_cpu_s_per_gib": pull_cpu, "pull_mb_per_s": pull_mbs,
            "push_cpu_s_per_gib": push_cpu, "push_mb_per_s": push_mbs,
            "sha256_cpu_s_per_gib": floor_sha256(total)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    d = args.dir or tempfile.mkdtemp(prefix="berth-floor-")
    r = measure(d, args.gib)
    if not args.dir:
        os.rmdir(d)
    if args.json:
        print(json.dumps(r))
    else:
        print("pull (sendfile, loopback):        %.3f CPU-s/GiB  %.0f MB/s" % (r["pull_cpu_s_per_gib"], r["pull_mb_per_s"]))
        print("push (recv+SHA-256+O_DIRECT):     %.3f CPU-s/GiB  %.0f MB/s" % (r["push_cpu_s_per_gib"], r["push_mb_per_s"]))
        print("SHA-256 alone:                    %.3f CPU-s/GiB" % r["sha256_cpu_s_per_gib"])


if __name__ == "__main__":
    sys.exit(main())
