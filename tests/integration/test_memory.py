"""Memory use under big blobs (Berth only): a 2 GiB blob pushed chunked and
monolithically and pulled back must stream through fixed buffers, never be held
in memory. The server's peak resident set (VmHWM) must stay under 100 MiB.

The blob is a deterministic pattern made on the fly (1 MiB blocks, each stamped
with its index), hashed while it is sent; the client never holds it either.
"""

import hashlib
import http.client as httpclient
import os
import random
import struct
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import RegistryTestCase, skip_unless_berth  # noqa: E402

BLOCK = 1 << 20
BLOB_SIZE = 2 << 30                 # 2 GiB: offsets and sizes past 2^31
HWM_LIMIT_KIB = 100 * 1024           # 100 MiB
CHUNK_SIZES = [64 << 20, 256 << 20, 128 << 20, 192 << 20]  # PATCH chunk sizes, cycled
IO_TIMEOUT = 600


def block_at(base, index):
    """Block `index` of the pattern: the seed block stamped with its index."""
    return struct.pack("<Q", index) + base[8:]


def pattern(seed, start, end):
    """Yields the bytes [start, end) of the pattern (in pieces of at most BLOCK)."""
    base = random.Random(seed).randbytes(BLOCK)
    pos = start
    while pos < end:
        index, off = divmod(pos, BLOCK)
        blk = block_at(base, index)
        piece = blk[off:min(BLOCK, off + end - pos)]
        yield piece
        pos += len(piece)


def pattern_digest(seed, size):
    h = hashlib.sha256()
    for piece in pattern(seed, 0, size):
        h.update(piece)
    return "sha256:" + h.hexdigest()


def path_of(base_url, loc):
    u = urllib.parse.urlsplit(urllib.parse.urljoin(base_url + "/", loc))
    return u.path + ("?" + u.query if u.query else "")


def with_query(path, **params):
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


class Conn:
    def __init__(self, reg):
        self.reg = reg

    def send(self, method, path, headers=(), pieces=None, length=0, hasher=None):
        """A request whose body (length bytes) comes from `pieces`, fed to `hasher`."""
        c = httpclient.HTTPConnection("127.0.0.1", self.reg.port, timeout=IO_TIMEOUT)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers:
                c.putheader(k, v)
            if method in ("POST", "PUT", "PATCH"):
                c.putheader("Content-Length", str(length))
            c.endheaders()
            sent = 0
            for p in pieces or ():
                if hasher:
                    hasher.update(p)
                c.send(p)
                sent += len(p)
            assert sent == length, (sent, length)
            r = c.getresponse()
            return r.status, r.msg, r.read()
        finally:
            c.close()


@skip_unless_berth
class MemoryTest(RegistryTestCase):
    figures = {}

    @classmethod
    def tearDownClass(cls):
        if cls.figures:
            sys.stderr.write("\nberth VmHWM (limit %d KiB):\n" % HWM_LIMIT_KIB)
            for k, v in sorted(cls.figures.items()):
                sys.stderr.write("  %-40s %7d KiB (%.1f MiB)\n" % (k, v, v / 1024))
        super().tearDownClass()

    def record_hwm(self, reg, label):
        hwm = reg.vm_hwm_kib()
        type(self).figures[label] = hwm
        sys.stderr.write("\n%s: berth VmHWM %d KiB (%.1f MiB), VmRSS %d KiB\n"
                         % (label, hwm, hwm / 1024, reg.vm_rss_kib()))
        return hwm

    def assert_hwm(self, reg, label):
        hwm = self.record_hwm(reg, label)
        self.assertLess(hwm, HWM_LIMIT_KIB, "%s: berth peaked at %d KiB resident (limit %d KiB)"
                        % (label, hwm, HWM_LIMIT_KIB))

    def assert_blob_file(self, reg, digest):
        hexpart = digest.split(":", 1)[1]
        path = os.path.join(reg.data_dir, "blobs", "sha256", hexpart[:2], hexpart)
        self.assertTrue(os.path.isfile(path), "no blob file at %s" % path)
        self.assertEqual(os.path.getsize(path), BLOB_SIZE)

    def pull_and_check(self, reg, repo, digest, seed):
        c = httpclient.HTTPConnection("127.0.0.1", reg.port, timeout=IO_TIMEOUT)
        try:
            t0 = time.monotonic()
            c.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Length"), str(BLOB_SIZE))
            self.assertEqual(r.getheader("Docker-Content-Digest"), digest)
            h = hashlib.sha256()
            n = 0
            while True:
                buf = r.read(BLOCK)
                if not buf:
                    break
                h.update(buf)
                n += len(buf)
            self.assertEqual(n, BLOB_SIZE)
            self.assertEqual("sha256:" + h.hexdigest(), digest, "pulled bytes differ")
            sys.stderr.write("pulled %.2f GiB in %.1fs\n" % (BLOB_SIZE / (1 << 30), time.monotonic() - t0))
        finally:
            c.close()
        # A range past 2^31.
        start, end = BLOB_SIZE - 1000 - (1 << 20), BLOB_SIZE - 1
        c = httpclient.HTTPConnection("127.0.0.1", reg.port, timeout=IO_TIMEOUT)
        try:
            c.request("GET", "/v2/%s/blobs/%s" % (repo, digest), headers={"Range": "bytes=%d-%d" % (start, end)})
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 206)
            self.assertEqual(r.getheader("Content-Range"), "bytes %d-%d/%d" % (start, end, BLOB_SIZE))
            self.assertTrue(body == b"".join(pattern(seed, start, end + 1)), "ranged read past 2 GiB differs")
        finally:
            c.close()

    def test_chunked_push_then_pull(self):
        reg = self.start_registry()
        self.record_hwm(reg, "0 idle after start")
        conn = Conn(reg)
        repo, seed = "mem/chunked", "chunked-2g"
        st, h, b = conn.send("POST", "/v2/%s/blobs/uploads/" % repo)
        self.assertEqual(st, 202, b[:300])
        loc = path_of(reg.url, h["Location"])
        hasher = hashlib.sha256()
        offset, i = 0, 0
        t0 = time.monotonic()
        while offset < BLOB_SIZE:
            n = min(CHUNK_SIZES[i % len(CHUNK_SIZES)], BLOB_SIZE - offset)
            i += 1
            st, h, b = conn.send("PATCH", loc, [("Content-Type", "application/octet-stream"),
                                                ("Content-Range", "%d-%d" % (offset, offset + n - 1))],
                                 pattern(seed, offset, offset + n), n, hasher)
            self.assertEqual(st, 202, "PATCH at %d: %r" % (offset, b[:300]))
            offset += n
            self.assertEqual(h.get("Range"), "0-%d" % (offset - 1))
            loc = path_of(reg.url, h["Location"])
        digest = "sha256:" + hasher.hexdigest()
        st, h, b = conn.send("PUT", with_query(loc, digest=digest))
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        sys.stderr.write("pushed %.2f GiB in %d chunks in %.1fs\n" % (BLOB_SIZE / (1 << 30), i, time.monotonic() - t0))
        self.assert_blob_file(reg, digest)
        self.assert_hwm(reg, "1 chunked push (PATCH 64-256 MiB)")

        st, h, b = conn.send("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Content-Length"), str(BLOB_SIZE))

        # Fresh process for the pull, so its peak is the pull's alone.
        reg.restart()
        self.pull_and_check(reg, repo, digest, seed)
        self.assert_hwm(reg, "3 pull (after restart)")

    def test_monolithic_push(self):
        reg = self.start_registry()
        conn = Conn(reg)
        repo, seed = "mem/monolithic", "monolithic-2g"
        # The digest goes in the URL, so it is computed first (a streaming pass).
        t0 = time.monotonic()
        digest = pattern_digest(seed, BLOB_SIZE)
        sys.stderr.write("\nhashed the 2 GiB pattern in %.1fs\n" % (time.monotonic() - t0))
        st, h, b = conn.send("POST", "/v2/%s/blobs/uploads/" % repo)
        self.assertEqual(st, 202, b[:300])
        loc = path_of(reg.url, h["Location"])
        hasher = hashlib.sha256()
        t0 = time.monotonic()
        st, h, b = conn.send("PUT", with_query(loc, digest=digest), [("Content-Type", "application/octet-stream")],
                             pattern(seed, 0, BLOB_SIZE), BLOB_SIZE, hasher)
        self.assertEqual("sha256:" + hasher.hexdigest(), digest)
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        sys.stderr.write("pushed %.2f GiB in one PUT in %.1fs\n" % (BLOB_SIZE / (1 << 30), time.monotonic() - t0))
        self.assert_blob_file(reg, digest)
        self.assert_hwm(reg, "2 monolithic push (POST + PUT)")
        # And it reads back.
        self.pull_and_check(reg, repo, digest, seed)
        self.assert_hwm(reg, "2 monolithic push + pull")


if __name__ == "__main__":
    unittest.main()
