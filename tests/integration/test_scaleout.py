"""Three `berth serve` nodes on one radosgw bucket and one PostgreSQL database, behind
nginx round-robin with one request per upstream connection, so that consecutive
requests of one client land on different nodes. Real clients push and pull through
the balancer; uploads continue across nodes, also after a node is SIGKILLed; tag races
across nodes have one winner; a delete on one node is seen at once on the others; a
radosgw outage gives 503s naming the storage and nothing half-written; PostgreSQL
stopped and restarted under load loses no acknowledged write and the nodes reconnect
by themselves; a stalled bucket holds up only the requests that need it.

Runs serially (CMake RUN_SERIAL): it stops radosgw and restarts PostgreSQL, which the
other tests share."""

import collections
import hashlib
import http.client as httpclient
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import (OCI_MANIFEST, Clients, get_manifest, http,
                     make_oci_layout, push_blob, put_manifest, run, sha256_digest,
                     skip_unless_berth, skopeo_raw, wait_for)
from scaleout import (Calls, Nginx, SharedStorage, SharedStorageTestCase, StallingProxy,
                      ecr_client, get_many, percentile)

REQUEST_RE = re.compile(r" info request request_id=")
# PostgreSQL restart under load: clients through the balancer, and how long it stays down.
PG_WRITERS, PG_UPLOADERS, PG_READERS, PG_OUTAGE_SECONDS = 4, 2, 2, 2.0
# A slow bucket: how long requests that do not need it are probed while it stalls, how
# fast they must stay, and the longest stall (the bucket answers again after it, so a
# request stuck behind the stall shows how long it waited).
SLOW_BUCKET_PROBE_SECONDS, SLOW_BUCKET_PROBE_PAUSE = 4.0, 0.02
SLOW_BUCKET_P99, SLOW_BUCKET_MAX_STALL = 1.0, 12.0


def upload_chunk(node_url, location, data, start):
    """One PATCH of `data` at `start`; returns (status, headers)."""
    st, h, body = http("PATCH", node_url + location, body=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": "%d-%d" % (start, start + len(data) - 1),
        "Content-Length": str(len(data))})
    return st, h, body


class Pattern:
    """Deterministic bytes (a 1 MiB random block, repeated), so that any range can be
    produced again to resume."""

    def __init__(self, size):
        self.size = size
        self.block = os.urandom(1 << 20)
        h = hashlib.sha256()
        for off in range(0, size, 1 << 20):
            h.update(self.block[:min(1 << 20, size - off)])
        self.digest = "sha256:" + h.hexdigest()

    def chunks(self, start, end, step):
        off = start
        while off < end:
            n = min(step, end - off)
            rel = off % (1 << 20)
            out = bytearray()
            while len(out) < n:
                take = min(n - len(out), (1 << 20) - rel)
                out += self.block[rel:rel + take]
                rel = 0
            yield off, bytes(out)
            off += n


def small_image(marker, layer_size=0):
    """([config, layer], manifest bytes, manifest digest) of a one-layer image that
    `marker` makes unique; the layer has layer_size random bytes after the marker."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "marker": marker}).encode()
    layer = ("layer %s" % marker).encode() + os.urandom(layer_size)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(cfg), "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256_digest(layer), "size": len(layer)}]}).encode()
    return [cfg, layer], manifest, sha256_digest(manifest)


@skip_unless_berth
class ScaleOutTest(SharedStorageTestCase):
    STORAGE = "scaleout"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nodes = [cls.start_class_registry(create_on_push=True, config=cls.storage.config(),
                                              env=cls.storage.env())
                     for _ in range(3)]
        cls.lb = Nginx([n.port for n in cls.nodes])
        cls.addClassCleanup(cls.lb.close)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp, registries=(cls.lb.host,))

    def requests_per_node(self):
        return [len(REQUEST_RE.findall(n.log_text())) for n in self.nodes]

    def node_url(self, i):
        return self.nodes[i].url

    # -- real clients through the balancer -----------------------------------------------
    def test_seed_workflow_through_the_balancer(self):
        before = self.requests_per_node()
        H, repo = self.lb.host, "seed/app"
        layout = os.path.join(self.tmp, "seed")
        amd = make_oci_layout(layout, "amd64", "amd64")
        arm = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        run(self.c.skopeo_copy(amd["ref"], "docker://%s/%s:amd64" % (H, repo), "--format", "v2s2"),
            env=self.c.env)
        run(self.c.skopeo_copy(arm["ref"], "docker://%s/%s:arm64" % (H, repo)), env=self.c.env)
        after = self.requests_per_node()
        # Round robin: every node took part in the pushes.
        for i in range(3):
            self.assertGreater(after[i] - before[i], 2, "node %d served no push requests" % i)

        lst = "%s/%s:multi" % (H, repo)
        env = self.c.env
        run(["docker", "manifest", "create", "--insecure", lst, "%s/%s:amd64" % (H, repo),
             "%s/%s:arm64" % (H, repo)], env=env, timeout=120)
        run(["docker", "manifest", "annotate", "--variant", "v8", lst, "%s/%s:arm64" % (H, repo)],
            env=env, timeout=120)
        res = run(["docker", "manifest", "push", "--insecure", lst], env=env, timeout=120)
        pushed = re.search(r"sha256:[0-9a-f]{64}", res.stdout).group(0)
        raw, digest = skopeo_raw(self.c, lst)
        self.assertEqual(digest, pushed)
        platforms = sorted((m["platform"]["architecture"], m["platform"].get("variant", ""))
                           for m in json.loads(raw)["manifests"])
        self.assertEqual(platforms, [("amd64", ""), ("arm64", "v8")])
        # Every node answers for the list and its children, straight from the shared store.
        for node in self.nodes:
            st, h, body = get_manifest(node.url, repo, "multi")
            self.assertEqual((st, h.get("Docker-Content-Digest")), (200, digest), node.url)
            for m in json.loads(body)["manifests"]:
                st, _, _ = get_manifest(node.url, repo, m["digest"])
                self.assertEqual(st, 200)

        # copy --all out of the cluster and back in under another name: same digests.
        out = os.path.join(self.tmp, "out")
        run(self.c.skopeo_copy("docker://" + lst, "dir:" + out, "--all"), env=env)
        run(self.c.skopeo_copy("dir:" + out, "docker://%s/copy/app:multi" % H, "--all"), env=env)
        _, copied = skopeo_raw(self.c, "%s/copy/app:multi" % H)
        self.assertEqual(copied, digest)

    def test_buildah_push_through_the_balancer(self):
        layout = os.path.join(self.tmp, "bud")
        img = make_oci_layout(layout, "v1", "amd64", layers=2)
        res = run(self.c.buildah("pull", img["ref"]), env=self.c.env, timeout=300)
        image_id = res.stdout.split()[-1]
        run(self.c.buildah("push", "--tls-verify=false", image_id,
                           "docker://%s/bud/app:v1" % self.lb.host), env=self.c.env, timeout=300)
        for node in self.nodes:
            st, _, body = get_manifest(node.url, "bud/app", "v1")
            self.assertEqual(st, 200)
            for layer in json.loads(body)["layers"]:
                st, _, data = http("GET", "%s/v2/bud/app/blobs/%s" % (node.url, layer["digest"]))
                self.assertEqual(st, 200)
                self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), layer["digest"])

    # -- uploads across nodes ---------------------------------------------------------------
    def test_chunked_upload_moves_between_nodes(self):
        pattern = Pattern(23 * (1 << 20) + 12345)
        st, h, _ = http("POST", self.node_url(0) + "/v2/cross/app/blobs/uploads/")
        self.assertEqual(st, 202)
        location = h["Location"]
        # Odd chunk sizes, each on the next node; the final PUT on yet another.
        sizes = [1, 6 << 20, 3 << 20, (7 << 20) + 5]
        off, i = 0, 0
        for size in sizes + [pattern.size]:
            end = min(pattern.size, off + size)
            if off >= end:
                break
            data = next(pattern.chunks(off, end, end - off))[1]
            st, h, body = upload_chunk(self.node_url(i % 3), location, data, off)
            self.assertEqual(st, 202, body)
            self.assertEqual(h["Range"], "0-%d" % (end - 1))
            off, i = end, i + 1
        st, h, body = http("PUT", "%s%s?digest=%s" % (self.node_url(i % 3), location, pattern.digest))
        self.assertEqual(st, 201, body)
        st, _, data = http("GET", "%s/v2/cross/app/blobs/%s" % (self.node_url((i + 1) % 3),
                                                               pattern.digest))
        self.assertEqual(st, 200)
        self.assertEqual(len(data), pattern.size)
        self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), pattern.digest)

    def test_killed_node_upload_finishes_on_another(self):
        """SIGKILL a node in the middle of a 1 GiB chunked upload; read the upload's
        status from another node, finish there, verify the digest."""
        node = self.start_registry(create_on_push=True, config=self.storage.config(),
                                   env=self.storage.env())
        pattern = Pattern(1 << 30)
        st, h, _ = http("POST", node.url + "/v2/killed/app/blobs/uploads/")
        self.assertEqual(st, 202)
        location = h["Location"]
        step = 64 << 20
        acked = 0
        for off, data in pattern.chunks(0, 512 << 20, step):
            st, h, body = upload_chunk(node.url, location, data, off)
            self.assertEqual(st, 202, body)
            acked = off + len(data)
        # The next PATCH dies with the node, halfway through its body.
        conn = httpclient.HTTPConnection("127.0.0.1", node.port, timeout=60)
        conn.putrequest("PATCH", location)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Range", "%d-%d" % (acked, acked + step - 1))
        conn.putheader("Content-Length", str(step))
        conn.endheaders()
        _, data = next(pattern.chunks(acked, acked + step, step))
        conn.send(data[:step // 2])
        time.sleep(0.5)
        os.kill(node.pid, signal.SIGKILL)
        node.proc.wait(10)
        conn.close()

        other = self.node_url(1)
        st, h, _ = http("GET", other + location)
        self.assertEqual(st, 204)
        self.assertEqual(h["Range"], "0-%d" % (acked - 1), "the acknowledged bytes survive")
        resumed_at = acked
        deadline = time.monotonic() + 30
        for off, data in pattern.chunks(resumed_at, pattern.size, step):
            while True:
                # The dead node's lease on the session runs out after lease_seconds (3):
                # until then the node refuses with 416 (and closes the connection, so
                # the refusal may show as a broken pipe while the body is still sent).
                try:
                    st, h, body = upload_chunk(other, location, data, off)
                except (BrokenPipeError, ConnectionResetError) as e:
                    st, body = None, repr(e)
                if st in (None, 416) and off == resumed_at and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                break
            self.assertEqual(st, 202, body)
        st, _, body = http("PUT", "%s%s?digest=%s" % (self.node_url(2), location, pattern.digest))
        self.assertEqual(st, 201, body)
        st, h, _ = http("HEAD", "%s/v2/killed/app/blobs/%s" % (self.node_url(0), pattern.digest))
        self.assertEqual((st, int(h["Content-Length"])), (200, pattern.size))
        # Stream it back and hash it.
        conn = httpclient.HTTPConnection("127.0.0.1", self.nodes[0].port, timeout=120)
        conn.request("GET", "/v2/killed/app/blobs/" + pattern.digest)
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        hasher = hashlib.sha256()
        while True:
            buf = res.read(1 << 20)
            if not buf:
                break
            hasher.update(buf)
        conn.close()
        self.assertEqual("sha256:" + hasher.hexdigest(), pattern.digest)

    # -- metadata across nodes ------------------------------------------------------------
    def push_image(self, url, repo, tag, marker):
        blobs, manifest, digest = small_image(marker)
        for blob in blobs:
            push_blob(url, repo, blob)
        return manifest, digest

    def test_concurrent_pushes_of_one_tag_have_one_winner(self):
        repo = "race/app"
        for round_ in range(5):
            bodies = [self.push_image(self.node_url(i), repo, "t", "%d-%d" % (round_, i))
                      for i in range(2)]
            results = [None, None]
            go = threading.Barrier(2)

            def put(i):
                go.wait()
                results[i] = put_manifest(self.node_url(i), repo, "latest", bodies[i][0],
                                          OCI_MANIFEST)[0]

            threads = [threading.Thread(target=put, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results, [201, 201])
            digests = {b[1] for b in bodies}
            seen = set()
            for node in self.nodes:
                st, h, _ = get_manifest(node.url, repo, "latest")
                self.assertEqual(st, 200)
                seen.add(h["Docker-Content-Digest"])
                for d in digests:  # both stay reachable by digest
                    self.assertEqual(get_manifest(node.url, repo, d)[0], 200)
            self.assertEqual(len(seen), 1, "every node resolves the tag to the same manifest")
            self.assertTrue(seen <= digests)

    def test_delete_on_one_node_is_gone_on_the_others_at_once(self):
        repo = "gone/app"
        manifest, digest = self.push_image(self.node_url(0), repo, "v1", "gone")
        self.assertEqual(put_manifest(self.node_url(0), repo, "v1", manifest, OCI_MANIFEST)[0], 201)
        for _ in range(3):  # warm whatever a node might cache
            for node in self.nodes:
                self.assertEqual(get_manifest(node.url, repo, "v1")[0], 200)
        st, _, _ = http("DELETE", "%s/v2/%s/manifests/%s" % (self.node_url(0), repo, digest))
        self.assertEqual(st, 202)
        for node in self.nodes[1:]:
            self.assertEqual(get_manifest(node.url, repo, "v1")[0], 404)
            self.assertEqual(get_manifest(node.url, repo, digest)[0], 404)

    # -- outages -----------------------------------------------------------------------------
    def test_radosgw_outage_is_a_503_naming_the_storage_and_service_resumes(self):
        rgw_dir = os.environ.get("BERTH_TEST_RADOSGW_DIR")
        script = os.path.join(os.path.dirname(__file__), "..", "services", "radosgw.sh")
        if not rgw_dir:
            self.skipTest("BERTH_TEST_RADOSGW_DIR not set")
        url = self.node_url(0)
        repo = "outage/app"
        blob = os.urandom(4096)
        d = push_blob(url, repo, blob)
        run([script, "stop-rgw", rgw_dir], timeout=120)
        try:
            st, h, body = http("GET", "%s/v2/%s/blobs/%s" % (url, repo, d))
            self.assertEqual(st, 503, body)
            err = json.loads(body)["errors"][0]
            self.assertIn("object store", err["message"])  # names the storage that failed
            st, _, body = http("GET", url + "/readyz")
            self.assertEqual(st, 503)
            self.assertIn(b"blob store", body)
            # A push fails cleanly and leaves nothing behind.
            st, h, body = http("POST", "%s/v2/%s/blobs/uploads/?digest=sha256:%s" % (
                url, repo, hashlib.sha256(b"during").hexdigest()), body=b"during",
                headers={"Content-Type": "application/octet-stream"})
            self.assertEqual(st, 503, body)
            # The ECR API says the same: a 503 ServerException naming the object store.
            import botocore.exceptions
            with self.assertRaises(botocore.exceptions.ClientError) as caught:
                ecr_client(url).initiate_layer_upload(repositoryName=repo)
            err = caught.exception.response
            self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 503, err)
            self.assertEqual(err["Error"]["Code"], "ServerException")
            self.assertIn("object store", err["Error"]["Message"])
        finally:
            run([script, "start-rgw", rgw_dir], timeout=300)
        deadline = time.monotonic() + 60
        while http("GET", url + "/readyz")[0] != 200:
            self.assertLess(time.monotonic(), deadline, "readyz did not recover")
            time.sleep(0.5)
        st, _, data = http("GET", "%s/v2/%s/blobs/%s" % (url, repo, d))
        self.assertEqual((st, data), (200, blob))
        self.assertEqual(http("HEAD", "%s/v2/%s/blobs/sha256:%s" % (
            url, repo, hashlib.sha256(b"during").hexdigest()))[0], 404)

    def readyz(self, node, want):
        """/readyz's body when it answers `want` (within 5 s), else None."""
        st, _, body = http("GET", node.url + "/readyz", timeout=5)
        return body if st == want else None

    def test_postgresql_restart_under_load_loses_no_acknowledged_write(self):
        """PostgreSQL stopped and started, then restarted as after a crash, under load.
        Clients go through the balancer all along (blob uploads; manifest PUTs by digest, a
        new tag and a moved tag per round; manifest GETs, tag lists, ECR DescribeImages).
        Every node reconnects by itself; whatever failed failed with a 5xx naming the
        metadata store (no hang, no 200 with wrong content); every acknowledged write is
        there afterwards, on every node."""
        pg_dir = os.environ.get("BERTH_TEST_PG_DIR")
        script = os.environ.get("BERTH_TEST_PG_SCRIPT")
        if not (pg_dir and script):
            self.skipTest("BERTH_TEST_PG_DIR or BERTH_TEST_PG_SCRIPT not set")
        lb, repo = self.lb.url, "pgload/app"
        base_manifest, base = self.push_image(lb, repo, "base", "pgload-base")
        self.assertEqual(put_manifest(lb, repo, "base", base_manifest, OCI_MANIFEST)[0], 201)
        calls, stop, lock = Calls(), threading.Event(), threading.Lock()
        acked = {"tags": {}, "manifests": set(), "blobs": set()}  # what got a 201
        moves = {k: [] for k in range(PG_WRITERS)}  # writer -> [(digest, status)] of w<k>-latest
        acked_at = {k: [] for k in range(PG_WRITERS)}  # writer -> when its tag PUTs were acked

        def writer(k):
            for i in itertools.count():
                if stop.is_set():
                    return
                # The base image's blobs, made a new manifest by an annotation.
                doc = json.loads(base_manifest)
                doc["annotations"] = {"org.example.round": "%d-%d" % (k, i)}
                manifest = json.dumps(doc).encode()
                digest, tag = sha256_digest(manifest), "w%d-%d" % (k, i)

                def put(ref, what):
                    return calls.http(what, "PUT", "%s/v2/%s/manifests/%s" % (lb, repo, ref),
                                      expect=201, body=manifest,
                                      headers={"Content-Type": OCI_MANIFEST})[0]

                if put(digest, "manifest PUT") == 201:
                    with lock:
                        acked["manifests"].add(digest)
                if put(tag, "tag PUT") == 201:
                    with lock:
                        acked["tags"][tag] = digest
                        acked_at[k].append(time.monotonic())
                st = put("w%d-latest" % k, "tag move")
                with lock:
                    moves[k].append((digest, st))

        def uploader():
            while not stop.is_set():
                blob = os.urandom(4096)
                if calls.http("blob upload", "POST", "%s/v2/%s/blobs/uploads/?digest=%s" % (
                        lb, repo, sha256_digest(blob)), expect=201, body=blob,
                        headers={"Content-Type": "application/octet-stream"})[0] == 201:
                    with lock:
                        acked["blobs"].add(sha256_digest(blob))

        ecr = ecr_client(lb)

        def reader():
            while not stop.is_set():
                calls.http("manifest GET", "GET", "%s/v2/%s/manifests/base" % (lb, repo),
                           headers={"Accept": OCI_MANIFEST},
                           check=lambda h, b: (h["Docker-Content-Digest"], sha256_digest(b)) ==
                           (base, base))
                calls.http("tags list", "GET", "%s/v2/%s/tags/list?n=5" % (lb, repo),
                           check=lambda h, b: "base" in json.loads(b)["tags"])
                calls.ecr("ECR DescribeImages", lambda: ecr.describe_images(
                    repositoryName=repo, imageIds=[{"imageTag": "base"}]),
                    check=lambda out: out["imageDetails"][0]["imageDigest"] == base)

        def acked_since(t):
            with lock:
                return all(any(a > t for a in acked_at[k]) for k in acked_at)

        threads = ([threading.Thread(target=writer, args=(k,)) for k in range(PG_WRITERS)] +
                   [threading.Thread(target=uploader) for _ in range(PG_UPLOADERS)] +
                   [threading.Thread(target=reader) for _ in range(PG_READERS)])
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            wait_for(lambda: acked_since(started), 30, message="writes before the outage")
            down = time.monotonic()
            run([script, "stop", pg_dir], timeout=120)
            try:
                for node in self.nodes:  # readiness fails at once, naming the store
                    body = wait_for(lambda: self.readyz(node, 503), 10,
                                    message="%s /readyz to fail" % node.url)
                    self.assertIn(b"metadata store", body)
                # The outage lasts a while: requests made now wait or fail cleanly.
                time.sleep(max(0.0, down + PG_OUTAGE_SECONDS - time.monotonic()))
            finally:
                run([script, "start", pg_dir], timeout=120)
            up = time.monotonic()
            # The nodes reconnect by themselves: every writer gets a write through again.
            wait_for(lambda: acked_since(up), 30, message="every writer acknowledged again")
            for node in self.nodes:
                wait_for(lambda: self.readyz(node, 200), 30, message="%s ready" % node.url)
            # Again as after a crash (no shutdown checkpoint: recovery replays the WAL),
            # which may cut a COMMIT off before its answer.
            run([script, "restart", pg_dir, "immediate"], timeout=120)
            crashed = time.monotonic()
            wait_for(lambda: acked_since(crashed), 30, message="writes after the crash restart")
        finally:
            stop.set()
            for t in threads:
                t.join(60)
            run([script, "start", pg_dir], timeout=120)  # up for whoever comes next
        self.assertEqual([t.name for t in threads if t.is_alive()], [], "a client hung")
        for i, node in enumerate(self.nodes):  # each node on its own is back
            wait_for(lambda: self.readyz(node, 200), 30, message="%s ready" % node.url)
            st, _, body = put_manifest(node.url, repo, "node%d" % i, base_manifest, OCI_MANIFEST)
            self.assertEqual(st, 201, body)
            acked["tags"]["node%d" % i] = base

        done = calls.calls()
        failed = [c for c in done if not c.ok]
        unclean = [c for c in failed if c.status is None or not 500 <= c.status < 600 or
                   not any("metadata store" in m for m in c.error_messages())]
        self.assertEqual(unclean, [], "a request failed other than with a 5xx naming the "
                                      "metadata store (or got wrong content)")
        in_outage = [c for c in done if c.t0 < up and c.t1 > down]
        self.assertTrue({"blob upload", "manifest PUT", "tag PUT", "tag move"} &
                        {c.what for c in in_outage}, "no write was in flight during the outage")
        if os.environ.get("BERTH_TEST_VERBOSE"):
            print("\n%d requests, %d failed cleanly %r; during the outage: %s, slowest %.2fs; "
                  "acknowledged: %d tags, %d manifests, %d blobs" % (
                      len(done), len(failed), [(c.what, c.status, c.error_messages())
                                               for c in failed],
                      collections.Counter(c.what for c in in_outage),
                      max(c.seconds for c in in_outage), len(acked["tags"]),
                      len(acked["manifests"]), len(acked["blobs"])))
        self.assert_acknowledged_writes_kept(repo, acked, moves)

    def assert_acknowledged_writes_kept(self, repo, acked, moves):
        """Through every node (reads go to the database: PostgreSQL nodes keep no cache):
        each acknowledged tag names its manifest, each acknowledged manifest and blob is
        there, and a moved tag names its last acknowledged manifest (or one whose move
        failed after it: a failed write may have been made)."""
        tags, lost = acked["tags"], []
        digests = sorted(acked["manifests"] | set(tags.values()))
        accept = {"Accept": OCI_MANIFEST}

        def check(node):
            st, _, body = http("GET", "%s/v2/%s/tags/list" % (node.url, repo))
            listed = set(json.loads(body)["tags"]) if st == 200 else set()
            missing = ["%s: tag %s not listed" % (node.url, t) for t in sorted(set(tags) - listed)]
            prefix = "/v2/%s/manifests/" % repo
            for path, st, h, body in get_many(node.url, [prefix + t for t in sorted(tags)], accept):
                tag = path[len(prefix):]
                if st != 200 or h["Docker-Content-Digest"] != tags[tag]:
                    missing.append("%s: tag %s -> %s %s, acknowledged %s" % (
                        node.url, tag, st, h.get("Docker-Content-Digest"), tags[tag]))
            for path, st, _, body in get_many(node.url, [prefix + d for d in digests], accept):
                if st != 200 or sha256_digest(body) != path[len(prefix):]:
                    missing.append("%s: %s -> %s" % (node.url, path, st))
            for path, st, _, _ in get_many(node.url, ["/v2/%s/blobs/%s" % (repo, d)
                                                      for d in sorted(acked["blobs"])],
                                           method="HEAD"):
                if st != 200:
                    missing.append("%s: HEAD %s -> %s" % (node.url, path, st))
            for k, history in moves.items():
                last = max((i for i, (_, s) in enumerate(history) if s == 201), default=None)
                if last is None:
                    continue
                st, h, _ = get_manifest(node.url, repo, "w%d-latest" % k)
                if st != 200 or h["Docker-Content-Digest"] not in {d for d, _ in history[last:]}:
                    missing.append("%s: w%d-latest -> %s %s, acknowledged %s" % (
                        node.url, k, st, h.get("Docker-Content-Digest"), history[last][0]))
            with lock:
                lost.extend(missing)

        lock = threading.Lock()
        threads = [threading.Thread(target=check, args=(node,)) for node in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(lost, [], "acknowledged writes lost (of %d tags, %d manifests, %d blobs)"
                         % (len(tags), len(digests), len(acked["blobs"])))

    # -- a slow bucket ----------------------------------------------------------------------
    def slow_bucket_round(self, repo, slow_gets, blob_threads):
        """A node with authentication on (the default) and `blob_threads`, whose S3
        goes through a StallingProxy. The bucket stalls; `slow_gets` blob GETs and one blob
        upload get stuck on it; meanwhile requests that need no bucket keep going to the
        same node, and must answer at once (p99 under SLOW_BUCKET_P99). Once the bucket
        answers again, the stuck requests finish."""
        storage = SharedStorage("slow")  # its own: this node makes the administrator
        self.addCleanup(storage.close)
        proxy = StallingProxy(storage.endpoint)
        self.addCleanup(proxy.close)
        cfg = storage.config(endpoint=proxy.url)
        cfg["http"] = {"blocking_threads": 8, "blob_threads": blob_threads}
        node = self.start_registry(create_on_push=True, auth=True, config=cfg, env=storage.env())
        self.addCleanup(node.close)  # before its bucket and database go
        url = node.url
        ecr = ecr_client(url, read_timeout=60,
                         credentials_file=os.path.join(node.data_dir, "credentials"))
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        auth = {"Authorization": "Basic " + token}
        calls, tag_numbers = Calls(), itertools.count()
        (cfg_blob, layer), manifest, digest = small_image(repo, layer_size=1 << 20)
        for blob in (cfg_blob, layer):
            calls.http("push", "POST", "%s/v2/%s/blobs/uploads/?digest=%s" % (
                url, repo, sha256_digest(blob)), expect=201, body=blob, headers=dict(
                    auth, **{"Content-Type": "application/octet-stream"}))
        calls.http("push", "PUT", "%s/v2/%s/manifests/v1" % (url, repo), expect=201,
                   body=manifest, headers=dict(auth, **{"Content-Type": OCI_MANIFEST}))
        _, h, _ = calls.http("push", "POST", "%s/v2/%s/blobs/uploads/" % (url, repo),
                             expect=202, headers=auth)
        self.assertEqual([c for c in calls.calls() if not c.ok], [])
        upload, upload_location = os.urandom(256 << 10), h["Location"]
        accept = dict(auth, Accept=OCI_MANIFEST)
        probes = {
            "GET /v2/": lambda: calls.http("GET /v2/", "GET", url + "/v2/", headers=auth),
            "manifest by tag": lambda: calls.http(
                "manifest by tag", "GET", "%s/v2/%s/manifests/v1" % (url, repo), headers=accept,
                check=lambda h, b: sha256_digest(b) == digest),
            "manifest by digest": lambda: calls.http(
                "manifest by digest", "GET", "%s/v2/%s/manifests/%s" % (url, repo, digest),
                headers=accept, check=lambda h, b: sha256_digest(b) == digest),
            "tags list": lambda: calls.http(
                "tags list", "GET", "%s/v2/%s/tags/list" % (url, repo), headers=auth,
                check=lambda h, b: "v1" in json.loads(b)["tags"]),
            "tag PUT": lambda: calls.http(
                "tag PUT", "PUT", "%s/v2/%s/manifests/t%d" % (url, repo, next(tag_numbers)),
                expect=201, body=manifest, headers=dict(auth, **{"Content-Type": OCI_MANIFEST})),
            "ECR DescribeRepositories": lambda: calls.ecr(
                "ECR DescribeRepositories", lambda: ecr.describe_repositories(
                    repositoryNames=[repo]),
                check=lambda out: out["repositories"][0]["repositoryName"] == repo),
            "ECR DescribeImages": lambda: calls.ecr(
                "ECR DescribeImages", lambda: ecr.describe_images(repositoryName=repo),
                check=lambda out: out["imageDetails"][0]["imageDigest"] == digest),
        }
        for probe in probes.values():  # warm up: connections, boto3's first-call costs
            probe()
        self.assertTrue(all(c.ok for c in calls.calls()), calls.calls())

        proxy.stall()
        release = threading.Timer(SLOW_BUCKET_MAX_STALL, proxy.release)
        release.start()
        self.addCleanup(release.cancel)
        stalled = time.monotonic()
        stuck = [threading.Thread(target=calls.http, args=(
            "blob GET", "GET", "%s/v2/%s/blobs/%s" % (url, repo, sha256_digest(layer))),
            kwargs={"check": lambda h, b: b == layer, "timeout": 120, "headers": auth})
            for _ in range(slow_gets)]
        stuck.append(threading.Thread(target=calls.http, args=(
            "blob upload", "PUT", "%s%s?digest=%s" % (url, upload_location, sha256_digest(upload))),
            kwargs={"body": upload, "expect": 201, "timeout": 120,
                    "headers": dict(auth, **{"Content-Type": "application/octet-stream"})}))
        for t in stuck:
            t.start()
        # Each stuck request waits for an answer from the bucket on a thread of the blob
        # lane (http/blocking.h); the rest queue there (a server that bounds its calls to
        # the bucket otherwise may hold fewer at a time: then at least one).
        try:
            wait_for(lambda: proxy.held() >= min(len(stuck), blob_threads), 5)
        except AssertionError:
            self.assertGreater(proxy.held(), 0, "no blob request waits on the stalled bucket")
        end = time.monotonic() + SLOW_BUCKET_PROBE_SECONDS
        first_probe = len(calls.calls())

        def keep_probing(probe):
            while time.monotonic() < end:
                probe()
                time.sleep(SLOW_BUCKET_PROBE_PAUSE)  # a client's pace, not a CPU hog

        probers = [threading.Thread(target=keep_probing, args=(p,)) for p in probes.values()]
        for t in probers:
            t.start()
        for t in probers:
            t.join(SLOW_BUCKET_MAX_STALL + 60)
        # Readiness says the bucket does not answer, in seconds, not after the stall.
        t0 = time.monotonic()
        st, _, body = http("GET", url + "/readyz", timeout=30)
        self.assertEqual(st, 503, body)
        self.assertIn(b"blob store", body)
        self.assertLess(time.monotonic() - t0, 6)
        probed = time.monotonic()
        still_stalled = proxy.stalled()
        proxy.release()
        for t in stuck:
            t.join(120)
        self.assertEqual([t.name for t in stuck + probers if t.is_alive()], [], "a client hung")
        # The bucket was slow, not broken: every stuck request completes, and each was
        # stuck (it took about as long as the stall).
        slow = [c for c in calls.calls() if c.what in ("blob GET", "blob upload")]
        self.assertEqual([c for c in slow if not c.ok], [])
        self.assertGreater(min(c.seconds for c in slow), 0.8 * (probed - stalled) - 1, slow)
        self.assertEqual(http("HEAD", "%s/v2/%s/blobs/%s" % (url, repo, sha256_digest(upload)),
                              headers=auth)[0], 200)
        by_probe = {p: [c for c in calls.calls()[first_probe:] if c.what == p] for p in probes}
        report = "; ".join("%s: %d, p50 %.3fs, p99 %.3fs, max %.3fs, %d failed" % (
            p, len(cs), percentile([c.seconds for c in cs], 50),
            percentile([c.seconds for c in cs], 99), max(c.seconds for c in cs),
            sum(not c.ok for c in cs)) for p, cs in by_probe.items() if cs)
        if os.environ.get("BERTH_TEST_VERBOSE"):
            print("\n%d slow blob GETs + 1 upload, %d blob threads, bucket stalled %.1fs: %s"
                  % (slow_gets, blob_threads, probed - stalled, report))
        for p, cs in by_probe.items():
            self.assertTrue(cs, "no %s answered while the bucket was stalled: %s" % (p, report))
            self.assertEqual([c for c in cs if not c.ok], [], p)
            self.assertLess(percentile([c.seconds for c in cs], 99), SLOW_BUCKET_P99,
                            "%s waits on the stalled bucket (%d slow blob requests, %d blob "
                            "threads): %s" % (p, slow_gets + 1, blob_threads, report))
        self.assertTrue(still_stalled, "the bucket answered again before probing ended")

    def test_slow_bucket_does_not_stall_requests_that_do_not_need_it(self):
        """A few blob requests stuck on a stalled bucket hold up nothing else.
        With fewer blob GETs and uploads stuck than the node has blob threads, the
        version check, manifests by tag and digest, the tag list, a tag PUT and ECR
        DescribeRepositories/DescribeImages on the same node keep answering at once."""
        self.slow_bucket_round("slow/few", slow_gets=3, blob_threads=8)

    def test_slow_bucket_with_more_blob_requests_than_blob_threads(self):
        """Many blob requests stuck on a stalled bucket hold up nothing else either.
        With more stuck than the node has blob threads, as in a burst of pulls of big
        layers from a slow bucket, the extra ones queue on the blob lane, and requests
        that do not need the bucket (as above, and authentication) still answer at once."""
        self.slow_bucket_round("slow/many", slow_gets=8 + 4, blob_threads=4)


if __name__ == "__main__":
    unittest.main()


@skip_unless_berth
class SharedAuthTest(SharedStorageTestCase):
    """Authentication on, two nodes on one database and bucket behind nginx: the first
    node creates the administrator key (and only it writes a credentials file), a token
    minted by one node is honoured by the other, and keys created or a token key rotated
    with `berth admin --config` reach every node within seconds."""

    STORAGE = "auth"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nodes = [cls.start_class_registry(create_on_push=False, auth=True,
                                              config=cls.storage.config(), env=cls.storage.env())
                     for _ in range(2)]
        cls.lb = Nginx([n.port for n in cls.nodes])
        cls.addClassCleanup(cls.lb.close)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp, registries=(cls.lb.host,))
        made = [os.path.exists(os.path.join(n.data_dir, "credentials")) for n in cls.nodes]
        assert made.count(True) == 1, "exactly one node creates the administrator: %r" % made
        cls.creds = os.path.join(cls.nodes[made.index(True)].data_dir, "credentials")

    def aws_env(self, creds=None):
        env = dict(self.c.env)
        env.update({"AWS_SHARED_CREDENTIALS_FILE": creds or self.creds,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_DEFAULT_REGION": "us-east-1"})
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            env.pop(k, None)
        return env

    def aws(self, url, *args, creds=None, check=True):
        return run(["aws", "ecr"] + list(args) + ["--endpoint-url", url], env=self.aws_env(creds),
                   check=check, timeout=120)

    def config_file(self):
        from harness import to_yaml
        path = os.path.join(self.tmp, "berth.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(self.storage.config()))
        return path

    def admin(self, *args):
        env = dict(os.environ)
        env.update(self.storage.env())
        return run([os.environ.get("BERTH_BIN", "berth"), "admin"] + list(args) +
                   ["--config", self.config_file(), "--data", self.tmp], env=env, timeout=120)

    def test_seed_workflow_with_auth_through_the_balancer(self):
        H = self.lb.host
        self.aws(self.lb.url, "create-repository", "--repository-name", "auth/app")
        password = self.aws(self.lb.url, "get-login-password").stdout.strip()
        run(["docker", "login", "--username", "AWS", "--password-stdin", H], env=self.c.env,
            input=password, timeout=60)
        # Each node accepts the token, whichever minted it.
        for node in self.nodes:
            st, _, _ = http("GET", node.url + "/v2/", headers={
                "Authorization": "Basic " + __import__("base64").b64encode(
                    ("AWS:" + password).encode()).decode()})
            self.assertEqual(st, 200, node.url)
        layout = os.path.join(self.tmp, "seed")
        img = make_oci_layout(layout, "amd64", "amd64")
        run(self.c.skopeo_copy(img["ref"], "docker://%s/auth/app:v1" % H,
                               "--dest-creds", "AWS:" + password), env=self.c.env)
        out = json.loads(self.aws(self.lb.url, "describe-images", "--repository-name",
                                  "auth/app").stdout)
        self.assertEqual([d["imageTags"] for d in out["imageDetails"]], [["v1"]])

    def test_keys_and_rotation_reach_every_node(self):
        res = self.admin("create-key", "--name", "ci", "--admin")
        key = re.search(r"aws_access_key_id = (\S+)", res.stdout).group(1)
        secret = re.search(r"aws_secret_access_key = (\S+)", res.stdout).group(1)
        creds = os.path.join(self.tmp, "ci-credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (key, secret))
        for node in self.nodes:
            deadline = time.monotonic() + 10
            while True:
                res = self.aws(node.url, "describe-repositories", creds=creds, check=False)
                if res.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(res.returncode, 0, res.stderr)

        password = self.aws(self.nodes[0].url, "get-login-password").stdout.strip()
        auth = {"Authorization": "Basic " + __import__("base64").b64encode(
            ("AWS:" + password).encode()).decode()}
        self.assertEqual(http("GET", self.nodes[1].url + "/v2/", headers=auth)[0], 200)
        self.admin("rotate-token-key")
        for node in self.nodes:
            deadline = time.monotonic() + 10
            while http("GET", node.url + "/v2/", headers=auth)[0] != 401:
                self.assertLess(time.monotonic(), deadline, "old token still valid on " + node.url)
                time.sleep(0.5)
