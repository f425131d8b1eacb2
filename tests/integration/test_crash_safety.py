"""Crash safety (Berth only): SIGKILL the server in the middle of concurrent
pushes, again and again on the same data directory, and check after every
restart that

  * every tag resolves to a complete manifest whose blobs exist and hash to
    their digests;
  * every file under DATA/blobs/ hashes to its own name (no partial blob);
  * everything the clients saw a 201 for (blobs, manifests, tags) is still there.

Set BERTH_CRASH_SEED to replay a run; BERTH_CRASH_ITERATIONS to change the count.
"""

import hashlib
import http.client as httpclient
import json
import os
import random
import re
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_LIST,
    Registry, RegistryTestCase, sha256_digest, skip_unless_berth)

ITERATIONS = int(os.environ.get("BERTH_CRASH_ITERATIONS", "22"))
THREADS = 5
SHARED_REPO = "crash/shared"
LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
BLOB_PATH_RE = re.compile(r"^(sha256)/([0-9a-f]{2})/([0-9a-f]{64})$|^(sha512)/([0-9a-f]{2})/([0-9a-f]{128})$")
ACCEPT = [("Accept", t) for t in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)]

# Errors that mean "the server went away" (it was killed), not a failure.
CONNECTION_ERRORS = (OSError, httpclient.HTTPException)


class UnexpectedResponse(Exception):
    pass


def request(base, method, path, headers=(), body=None, timeout=30):
    u = urllib.parse.urlsplit(base)
    conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.msg, resp.read()
    finally:
        conn.close()


def location_path(base, loc):
    u = urllib.parse.urlsplit(urllib.parse.urljoin(base + "/", loc))
    return u.path + ("?" + u.query if u.query else "")


def with_query(path, **params):
    return path + ("&" if "?" in path else "?") + urllib.parse.urlencode(params)


class Ledger:
    """What the clients saw committed (a 201), shared by the worker threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.blobs = {}       # (repo, digest) -> size
        self.manifests = {}   # (repo, digest) -> bytes
        self.tags = {}        # (repo, tag) -> digest, for tags written once
        self.moving = {}      # (repo, tag) -> set of digests ever pushed to a contested tag
        self.errors = []      # unexpected responses (bugs, not crashes)
        self.ops = 0

    def note_error(self, text):
        with self.lock:
            self.errors.append(text)


class Worker(threading.Thread):
    def __init__(self, base, index, iteration, seed, ledger, stop):
        super().__init__(daemon=True)
        self.base = base
        self.index = index
        self.iteration = iteration
        self.rng = random.Random("%s-%d-%d" % (seed, iteration, index))
        self.ledger = ledger
        self.stop = stop
        self.counter = 0

    # -- uploads -------------------------------------------------------------
    def blob_data(self):
        r = self.rng.random()
        if r < 0.05:
            return b""
        if r < 0.15:  # shared between threads: concurrent uploads of one digest
            k = self.rng.randrange(4)
            return (("common blob %d " % k).encode()) * (1000 + 5000 * k)
        if r < 0.70:
            n = self.rng.randint(1, 64 << 10)
        elif r < 0.93:
            n = self.rng.randint(64 << 10, 512 << 10)
        else:
            n = self.rng.randint(512 << 10, 3 << 20)
        return self.rng.randbytes(n)

    def check(self, what, status, body, expected):
        if status not in expected:
            raise UnexpectedResponse("%s: %d %r" % (what, status, body[:300]))

    def push_blob(self, repo, data):
        digest = sha256_digest(data)
        how = self.rng.choice(("monolithic", "post-put", "chunked", "chunked-last-in-put"))
        base = "/v2/%s/blobs/uploads/" % repo
        octet = [("Content-Type", "application/octet-stream")]
        if how == "monolithic":
            st, h, b = request(self.base, "POST", with_query(base, digest=digest), octet, data)
            self.check("monolithic POST", st, b, (201,))
        else:
            st, h, b = request(self.base, "POST", base)
            self.check("POST upload", st, b, (202,))
            loc = location_path(self.base, h["Location"])
            if how == "post-put":
                final = data
            else:
                cuts = sorted(self.rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
                if how == "chunked":
                    cuts.append(len(data))
                pieces, prev = [], 0
                for c in cuts:
                    if c > prev:
                        pieces.append((prev, data[prev:c]))
                    prev = max(prev, c)
                sent = 0
                for start, piece in pieces:
                    st, h, b = request(self.base, "PATCH", loc,
                                       octet + [("Content-Range", "%d-%d" % (start, start + len(piece) - 1))],
                                       piece)
                    self.check("PATCH %d+%d" % (start, len(piece)), st, b, (202,))
                    loc = location_path(self.base, h["Location"])
                    sent = start + len(piece)
                final = data[sent:]
            st, h, b = request(self.base, "PUT", with_query(loc, digest=digest), octet, final)
            self.check("closing PUT (%s)" % how, st, b, (201,))
        if h.get("Docker-Content-Digest") not in (None, digest):
            raise UnexpectedResponse("blob 201 with Docker-Content-Digest %s for %s"
                                     % (h.get("Docker-Content-Digest"), digest))
        with self.ledger.lock:
            self.ledger.blobs[(repo, digest)] = len(data)
            self.ledger.ops += 1
        return digest

    def push_image(self):
        self.counter += 1
        shared = self.rng.random() < 0.3
        repo = SHARED_REPO if shared else "crash/r%d" % self.index
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []},
                             "made_by": [self.iteration, self.index, self.counter]}).encode()
        layers = [self.blob_data() for _ in range(self.rng.randint(1, 3))]
        descs = []
        self.push_blob(repo, config)
        for data in layers:
            self.push_blob(repo, data)
            descs.append({"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(data), "size": len(data)})
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config),
                                          "size": len(config)},
                               "layers": descs}, indent=1).encode()
        digest = sha256_digest(manifest)
        if shared and self.rng.random() < 0.5:
            tag, moving = "latest", True  # contested by every thread
        else:
            tag, moving = "i%d-t%d-n%d" % (self.iteration, self.index, self.counter), False
        if moving:
            with self.ledger.lock:
                self.ledger.moving.setdefault((repo, tag), set()).add(digest)
        st, h, b = request(self.base, "PUT", "/v2/%s/manifests/%s" % (repo, tag),
                           [("Content-Type", OCI_MANIFEST)], manifest)
        self.check("PUT manifest", st, b, (201,))
        if h.get("Docker-Content-Digest") != digest:
            raise UnexpectedResponse("manifest 201 with Docker-Content-Digest %s for %s"
                                     % (h.get("Docker-Content-Digest"), digest))
        with self.ledger.lock:
            self.ledger.manifests[(repo, digest)] = manifest
            if not moving:
                self.ledger.tags[(repo, tag)] = digest
            self.ledger.ops += 1

    def run(self):
        try:
            while not self.stop.is_set():
                self.push_image()
        except UnexpectedResponse as e:
            if not self.stop.is_set():
                self.ledger.note_error("thread %d iteration %d: %s" % (self.index, self.iteration, e))
        except CONNECTION_ERRORS:
            pass  # the server was killed under us
        except Exception as e:  # noqa: BLE001 - report anything else
            self.ledger.note_error("thread %d iteration %d: %r" % (self.index, self.iteration, e))


@skip_unless_berth
class CrashSafetyTest(RegistryTestCase):
    def setUp(self):
        super().setUp()
        self.verified_files = {}   # path -> (size, mtime_ns) already hashed
        self.verified_blobs = set()  # (repo, digest) fetched and hashed through the API

    # -- verification ----------------------------------------------------------
    def get(self, reg, path, headers=()):
        return request(reg.url, "GET", path, headers)

    def paginate(self, reg, path, key):
        items, url, pages = [], path, 0
        while url:
            pages += 1
            self.assertLess(pages, 10000)
            st, h, b = self.get(reg, url)
            self.assertEqual(st, 200, "%s: %r" % (url, b[:300]))
            items += json.loads(b).get(key) or []
            url = None
            for link in h.get_all("Link") or []:
                m = LINK_NEXT_RE.search(link)
                if m:
                    url = location_path(reg.url, m.group(1))
        return items

    def check_blob_files(self, reg):
        """Every file under DATA/blobs is a complete blob named by its digest."""
        root = os.path.join(reg.data_dir, "blobs")
        count = 0
        for dirpath, _, files in os.walk(root):
            for f in files:
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                m = BLOB_PATH_RE.match(rel)
                self.assertIsNotNone(m, "unexpected file in the blob store: blobs/%s" % rel)
                st = os.stat(path)
                key = (st.st_size, st.st_mtime_ns)
                count += 1
                if self.verified_files.get(path) == key:
                    continue
                alg = m.group(1) or m.group(4)
                hexpart = m.group(3) or m.group(6)
                self.assertEqual(hexpart[:2], m.group(2) or m.group(5))
                h = hashlib.new(alg)
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                self.assertEqual(h.hexdigest(), hexpart,
                                 "blobs/%s does not hash to its name (%d bytes): a partial blob" % (rel, st.st_size))
                self.verified_files[path] = key
        return count

    def check_blob(self, reg, repo, digest, size, full):
        if full or (repo, digest) not in self.verified_blobs:
            st, h, b = self.get(reg, "/v2/%s/blobs/%s" % (repo, digest))
            self.assertEqual(st, 200, "blob %s of %s: %r" % (digest, repo, b[:300]))
            self.assertEqual(len(b), size, "blob %s of %s has %d bytes, expected %d" % (digest, repo, len(b), size))
            self.assertEqual(sha256_digest(b), digest, "blob %s of %s is corrupt" % (digest, repo))
            self.verified_blobs.add((repo, digest))
        else:
            st, h, b = request(reg.url, "HEAD", "/v2/%s/blobs/%s" % (repo, digest))
            self.assertEqual(st, 200, "blob %s of %s vanished" % (digest, repo))
            self.assertEqual(h.get("Content-Length"), str(size))

    def check_manifest_complete(self, reg, repo, ref, body, digest):
        self.assertEqual(sha256_digest(body), digest, "%s:%s: body does not match its digest" % (repo, ref))
        doc = json.loads(body)
        blobs = [doc["config"]] + list(doc.get("layers") or [])
        for d in blobs:
            self.check_blob(reg, repo, d["digest"], d["size"], full=False)

    def verify(self, reg, ledger, label):
        t0 = time.monotonic()
        files = self.check_blob_files(reg)
        repos = self.paginate(reg, "/v2/_catalog?n=50", "repositories")
        n_tags = 0
        for repo in repos:
            for tag in self.paginate(reg, "/v2/%s/tags/list?n=100" % repo, "tags"):
                n_tags += 1
                st, h, b = self.get(reg, "/v2/%s/manifests/%s" % (repo, tag), ACCEPT)
                self.assertEqual(st, 200, "%s: tag %s:%s is listed but does not resolve: %r"
                                 % (label, repo, tag, b[:300]))
                digest = h.get("Docker-Content-Digest")
                self.check_manifest_complete(reg, repo, tag, b, digest)
                if (repo, tag) in ledger.tags:
                    self.assertEqual(digest, ledger.tags[(repo, tag)], "%s: tag %s:%s moved" % (label, repo, tag))
                if (repo, tag) in ledger.moving:
                    self.assertIn(digest, ledger.moving[(repo, tag)],
                                  "%s: %s:%s points to a manifest never pushed to it" % (label, repo, tag))
        with ledger.lock:
            tags = dict(ledger.tags)
            manifests = dict(ledger.manifests)
            blobs = dict(ledger.blobs)
        for (repo, tag), digest in tags.items():
            st, h, b = self.get(reg, "/v2/%s/manifests/%s" % (repo, tag), ACCEPT)
            self.assertEqual(st, 200, "%s: committed tag %s:%s lost (%d %r)" % (label, repo, tag, st, b[:200]))
            self.assertEqual(h.get("Docker-Content-Digest"), digest)
        for (repo, digest), body in manifests.items():
            st, h, b = self.get(reg, "/v2/%s/manifests/%s" % (repo, digest), ACCEPT)
            self.assertEqual(st, 200, "%s: committed manifest %s@%s lost (%d %r)" % (label, repo, digest, st, b[:200]))
            self.assertTrue(b == body, "%s: manifest %s@%s changed" % (label, repo, digest))
            self.check_manifest_complete(reg, repo, digest, b, digest)
        for (repo, digest), size in blobs.items():
            self.check_blob(reg, repo, digest, size, full=False)
        return {"files": files, "repos": len(repos), "tags": n_tags, "manifests": len(manifests),
                "blobs": len(blobs), "seconds": round(time.monotonic() - t0, 2)}

    # -- the test ----------------------------------------------------------------
    def test_sigkill_during_concurrent_pushes(self):
        seed = os.environ.get("BERTH_CRASH_SEED") or str(random.randrange(1 << 30))
        sys.stderr.write("\ncrash-safety seed %s (BERTH_CRASH_SEED to replay)\n" % seed)
        rng = random.Random(seed)
        data_dir = self.make_tmpdir("berth-crash-data-")
        reg = Registry(data_dir=data_dir)
        self._test_registries.append(reg)
        self._log_offsets[id(reg)] = 0
        self.addCleanup(reg.close)
        ledger = Ledger()
        started = time.monotonic()
        for it in range(ITERATIONS):
            reg.port = None  # a fresh port: no fight with the killed process's sockets
            reg.start()
            if it:
                stats = self.verify(reg, ledger, "after kill %d" % it)
            else:
                stats = {}
            ops_before = ledger.ops
            stop = threading.Event()
            workers = [Worker(reg.url, t, it, seed, ledger, stop) for t in range(THREADS)]
            for w in workers:
                w.start()
            delay = rng.uniform(0.05, 1.0)
            time.sleep(delay)
            reg.kill()
            stop.set()
            for w in workers:
                w.join(60)
                self.assertFalse(w.is_alive(), "a client thread hung after the kill")
            self.assertEqual(ledger.errors, [], "unexpected responses before the kill")
            sys.stderr.write("iteration %2d: killed after %.2fs, %d commits; verified %s\n"
                             % (it, delay, ledger.ops - ops_before, stats))
        # A last crash recovery, then a clean stop and start.
        reg.port = None
        reg.start()
        stats = self.verify(reg, ledger, "after the last kill")
        self.assertGreater(len(ledger.manifests), ITERATIONS, "too few pushes succeeded to test anything")
        self.assertEqual(reg.stop(), 0, "berth did not exit cleanly on SIGTERM")
        reg.port = None
        reg.start()
        final = self.verify(reg, ledger, "after a clean restart")
        sys.stderr.write("final: %s; %d iterations in %.1fs\n" % (final, ITERATIONS, time.monotonic() - started))
        # Nothing committed is gone, nothing unexpected appeared.
        self.assertGreaterEqual(final["tags"], len(ledger.tags))


if __name__ == "__main__":
    unittest.main()
