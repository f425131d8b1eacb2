"""Three `berth serve` nodes on one radosgw bucket and one PostgreSQL database, behind
nginx round-robin with one request per upstream connection, so that consecutive
requests of one client land on different nodes. Real clients push and pull through
the balancer; uploads continue across nodes, also after a node is SIGKILLed; tag races
across nodes have one winner; a delete on one node is seen at once on the others; a
radosgw outage gives 503s naming the storage and nothing half-written.

Runs serially (CMake RUN_SERIAL): it stops radosgw and restarts PostgreSQL, which the
other tests share."""

import hashlib
import http.client as httpclient
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

from harness import (OCI_MANIFEST, Clients, RegistryTestCase, get_manifest, http,
                     make_oci_layout, push_blob, put_manifest, run, skip_unless_berth,
                     skopeo_raw)
from scaleout import Nginx, SharedStorage, require_services

REQUEST_RE = re.compile(r" info request request_id=")


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


@skip_unless_berth
class ScaleOutTest(RegistryTestCase):
    @classmethod
    def setUpClass(cls):
        require_services()
        cls.storage = SharedStorage("scaleout")
        cls.addClassCleanup(cls.storage.close)
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
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "marker": marker}).encode()
        cd = push_blob(url, repo, cfg)
        layer = ("layer %s" % marker).encode()
        ld = push_blob(url, repo, layer)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                       "size": len(cfg)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld,
                        "size": len(layer)}]}).encode()
        return manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()

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


if __name__ == "__main__":
    unittest.main()


@skip_unless_berth
class SharedAuthTest(RegistryTestCase):
    """Authentication on, two nodes on one database and bucket behind nginx: the first
    node creates the administrator key (and only it writes a credentials file), a token
    minted by one node is honoured by the other, and keys created or a token key rotated
    with `berth admin --config` reach every node within seconds."""

    @classmethod
    def setUpClass(cls):
        require_services()
        cls.storage = SharedStorage("auth")
        cls.addClassCleanup(cls.storage.close)
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
