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

With --s3 ENV (the env file tests/services/up.sh writes), it measures instead what an
S3 store itself delivers (`bench/compare --storage s3` runs this as the floor of its
S3 mode): PUT and GET of 32 MiB objects straight to the endpoint, from 1 and 4
client processes (each one keep-alive connection; Python's http.client with
presigned URLs, so the payload is unsigned and the client never hashes it). The
figure that matters there is the storage engine's CPU, which the caller measures.
Usage: bench/floor.py [--dir DIR] [--gib 1] [--json]
       bench/floor.py --s3 DIR/env [--streams 1,4] [--count 32]
"""

import argparse
import hashlib
import http.client
import json
import mmap
import os
import resource
import socket
import sys
import tempfile
import time
import urllib.parse

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


# ---------------------------------------------------------------------------- S3

def s3_client(endpoint, access_key, secret_key, region="us-east-1"):
    """boto3 client for setup and presigning (path-style, as radosgw is addressed)."""
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name=region,
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


def _s3_stream(urls, method, body, go_fd, out_fd):
    """Child: waits for the go byte, sends `method` to each presigned URL in turn over
    one keep-alive connection, reports bytes moved, then exits."""
    u = urllib.parse.urlsplit(urls[0])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    conn.connect()
    buf = bytearray(4 << 20)
    mv = memoryview(buf)
    os.read(go_fd, 1)
    moved = 0
    for url in urls:
        p = urllib.parse.urlsplit(url)
        conn.request(method, p.path + "?" + p.query, body=body if method == "PUT" else None)
        r = conn.getresponse()
        if r.status != 200:
            os.write(out_fd, ("ERR %s %s: %d %s" % (method, p.path, r.status, r.read()[:300])).encode())
            os._exit(1)
        if method == "GET":
            while True:
                n = r.readinto(mv)
                if not n:
                    break
                moved += n
        else:
            r.read()
            moved += len(body)
    os.write(out_fd, str(moved).encode())
    os._exit(0)


def s3_transfer(s3, bucket, keys, method, streams, body=None, probe=None):
    """Moves every key once (PUT of `body`, or GET), split round-robin over `streams`
    forked client processes started together. Returns (bytes, seconds, counters): the
    change in each of probe()'s CPU counters and in "client" (the client processes'
    CPU) from the start signal until the last client has exited."""
    urls = [s3.generate_presigned_url("put_object" if method == "PUT" else "get_object",
                                      Params={"Bucket": bucket, "Key": k}, ExpiresIn=7200) for k in keys]
    probe = probe or (lambda: {})
    go_r, go_w = os.pipe()
    kids = []
    for i in range(streams):
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                _s3_stream(urls[i::streams], method, body, go_r, out_w)
            finally:
                os._exit(1)
        os.close(out_w)
        kids.append((pid, out_r))
    time.sleep(0.3)  # every child connected and waiting
    c0 = dict(probe(), client=cpu_children())
    t0 = time.time()
    os.write(go_w, b"x" * streams)
    moved, errors = 0, []
    for pid, out_r in kids:
        _, st = os.waitpid(pid, 0)
        msg = os.read(out_r, 4096).decode(errors="replace")
        os.close(out_r)
        if st != 0 or not msg.isdigit():
            errors.append(msg or "client exited with status %d" % st)
        else:
            moved += int(msg)
    seconds = time.time() - t0
    c1 = dict(probe(), client=cpu_children())
    os.close(go_r)
    os.close(go_w)
    if errors:
        raise RuntimeError("S3 floor: " + "; ".join(errors))
    return moved, seconds, {k: c1[k] - c0[k] for k in c1}


def measure_s3_one(s3, bucket, kind, streams, count=32, body=None, probe=None):
    """One floor transfer, like `berth bench -w blob-push|blob-pull --size 32M -n count
    -c streams`: `count` PUTs of distinct objects, or `count` GETs over min(streams, 16)
    objects, each read once untimed first. Returns MB/s and, per GiB, the CPU seconds
    of each of probe()'s counters (key_cpu_s_per_gib) and of the client."""
    body = body or os.urandom(FILE_SIZE)
    tag = "%s-c%d-%s" % (kind, streams, os.urandom(4).hex())
    if kind == "push":
        keys = ["floor/%s/%d" % (tag, i) for i in range(count)]
    else:
        pool = ["floor/%s/%d" % (tag, i) for i in range(min(16, streams, count))]
        s3_transfer(s3, bucket, pool, "PUT", streams, body)
        s3_transfer(s3, bucket, pool, "GET", streams)
        keys = [pool[i % len(pool)] for i in range(count)]
    moved, seconds, cpu = s3_transfer(s3, bucket, keys, "PUT" if kind == "push" else "GET", streams, body, probe)
    gib = moved / 2**30
    r = {"mb_per_s": moved / seconds / 1e6, "seconds": seconds, "bytes": moved}
    for k, v in cpu.items():
        r[k + "_cpu_s_per_gib"] = v / gib
    return r


def measure_s3(s3, bucket, streams=(1, 4), count=32, probe=None):
    """measure_s3_one for push and pull at each stream count: {"push c1": {...}, ...}."""
    body = os.urandom(FILE_SIZE)
    return {"%s c%d" % (kind, c): measure_s3_one(s3, bucket, kind, c, count, body, probe)
            for c in streams for kind in ("push", "pull")}


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--s3", metavar="ENV", help="measure S3 PUT/GET against the services of this env file")
    ap.add_argument("--streams", default="1,4")
    ap.add_argument("--count", type=int, default=32)
    args = ap.parse_args()
    if args.s3:
        env = read_env(args.s3)
        s3 = s3_client(env["BERTH_TEST_S3_ENDPOINT"], env["BERTH_TEST_S3_ACCESS_KEY"],
                       env["BERTH_TEST_S3_SECRET_KEY"], env.get("BERTH_TEST_S3_REGION", "us-east-1"))
        bucket = "berth-floor-%d" % os.getpid()
        s3.create_bucket(Bucket=bucket)
        r = measure_s3(s3, bucket, [int(x) for x in args.streams.split(",")], args.count)
        print(json.dumps(r, indent=1))
        return 0
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
