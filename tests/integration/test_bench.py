"""`berth bench`: it must exit non-zero, saying what failed, on any protocol error
(a wrong status, a wrong digest, a missing header), answer auth challenges (Basic and
Bearer), and against a real registry exit 0 with JSON whose fields are sane.

The misbehaving registries are tiny http.server instances in this process.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import RegistryTestCase, berth_bin  # noqa: E402

BAD_DIGEST = "sha256:" + "0" * 64


class FakeRegistry:
    """A loopback HTTP/1.1 server whose answers the test chooses.

    `routes` maps (method, path-prefix) to a function (handler) -> (status, headers, body);
    the longest matching prefix wins. Unmatched requests get 404."""

    def __init__(self, routes):
        self.routes = routes
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    remaining = length
                    while remaining:
                        chunk = self.rfile.read(min(remaining, 1 << 20))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                outer.requests.append((self.command, self.path, dict(self.headers)))
                best = None
                for (method, prefix), fn in outer.routes.items():
                    if method == self.command and self.path.startswith(prefix):
                        if best is None or len(prefix) > len(best[0]):
                            best = (prefix, fn)
                status, headers, body = best[1](self) if best else (404, {}, b'{"errors":[]}')
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def ok_ping(_):
    return 200, {"Content-Type": "application/json"}, b"{}"


def bench(url, *args, timeout=300):
    cmd = [berth_bin(), "bench", "--url", url] + [str(a) for a in args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


class BenchProtocolErrorTest(unittest.TestCase):
    """A registry that breaks the protocol makes `berth bench` fail loudly."""

    def assertFails(self, res, *needles):
        self.assertNotEqual(res.returncode, 0, "bench succeeded:\n%s\n%s" % (res.stdout, res.stderr))
        for n in needles:
            self.assertIn(n, res.stderr)

    def test_unexpected_status_on_ping(self):
        with FakeRegistry({("GET", "/v2/"): lambda h: (500, {}, b"boom")}) as fake:
            res = bench(fake.url, "-w", "ping", "-n", 5, "-c", 1)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertFails(res, "FAILED ping", "GET /v2/", "expected status 200, got 500", "boom")

    def test_wrong_manifest_digest_header(self):
        def manifest(h):
            body = b'{"schemaVersion":2}'
            return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                         "Docker-Content-Digest": BAD_DIGEST}, body
        routes = {("GET", "/v2/"): ok_ping, ("GET", "/v2/r/manifests/"): manifest}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "manifest-get-tag", "--repository", "r", "--skip-setup",
                        "-n", 3, "-c", 1)
        self.assertFails(res, "FAILED manifest-get-tag", "Docker-Content-Digest mismatch", BAD_DIGEST)

    def test_missing_digest_header_on_head(self):
        def head(h):
            return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                         "Content-Length": "100"}, b""
        routes = {("GET", "/v2/"): ok_ping, ("HEAD", "/v2/r/manifests/"): head}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "manifest-head-tag", "--repository", "r", "--skip-setup",
                        "-n", 3, "-c", 1)
        self.assertFails(res, "HEAD /v2/r/manifests/t", "no Docker-Content-Digest header")

    def test_blob_body_not_matching_its_digest(self):
        size = 4096

        def blob(h):
            return 200, {"Content-Type": "application/octet-stream"}, b"\0" * size
        routes = {("GET", "/v2/"): ok_ping, ("GET", "/v2/r/blobs/"): blob}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "blob-pull", "--repository", "r", "--skip-setup",
                        "--size", size, "-n", 4, "-c", 1)
            self.assertFails(res, "FAILED blob-pull", "blob body digest mismatch")
            # --no-verify does not hash, so the same bytes pass.
            res = bench(fake.url, "-w", "blob-pull", "--repository", "r", "--skip-setup",
                        "--size", size, "-n", 4, "-c", 1, "--no-verify")
            self.assertEqual(res.returncode, 0, res.stderr)

    def test_wrong_length_blob(self):
        def blob(h):
            return 200, {"Content-Type": "application/octet-stream"}, b"x" * 10
        routes = {("GET", "/v2/"): ok_ping, ("GET", "/v2/r/blobs/"): blob}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "blob-pull", "--repository", "r", "--skip-setup",
                        "--size", "1K", "-n", 1, "-c", 1, "--no-verify")
        self.assertFails(res, "Content-Length mismatch")

    def test_push_answered_with_another_digest(self):
        def start(h):
            return 202, {"Location": "/v2/r/blobs/uploads/u1"}, b""

        def finish(h):
            return 201, {"Location": "/v2/r/blobs/x", "Docker-Content-Digest": BAD_DIGEST}, b""
        routes = {("GET", "/v2/"): ok_ping, ("POST", "/v2/r/blobs/uploads/"): start,
                  ("PUT", "/v2/r/blobs/uploads/u1"): finish}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "blob-push", "--repository", "r", "--size", "64K",
                        "-n", 2, "-c", 1)
        self.assertFails(res, "FAILED blob-push", "PUT /v2/r/blobs/uploads/u1?digest=sha256",
                         "Docker-Content-Digest mismatch")

    def test_upload_without_location(self):
        routes = {("GET", "/v2/"): ok_ping,
                  ("POST", "/v2/r/blobs/uploads/"): lambda h: (202, {}, b"")}
        with FakeRegistry(routes) as fake:
            res = bench(fake.url, "-w", "blob-push-chunked", "--repository", "r", "--size", "1K",
                        "-n", 1, "-c", 1)
        self.assertFails(res, "POST /v2/r/blobs/uploads/", "no Location header")

    def test_connection_refused_is_an_error(self):
        with FakeRegistry({}) as fake:
            url = fake.url
        res = bench(url, "-w", "ping", "-n", 1, "-c", 1)
        self.assertFails(res, "cannot connect")


class BenchAuthTest(unittest.TestCase):
    """401 challenges: Basic with the given user, Bearer with a token from the realm."""

    def test_basic_challenge(self):
        good = "Basic " + base64.b64encode(b"alice:s3cret").decode()

        def ping(h):
            if h.headers.get("Authorization") != good:
                return 401, {"WWW-Authenticate": 'Basic realm="fake"'}, b'{"errors":[]}'
            return 200, {}, b"{}"
        with FakeRegistry({("GET", "/v2/"): ping}) as fake:
            res = bench(fake.url, "-w", "ping", "-n", 20, "-c", 2, "-u", "alice", "-p", "s3cret")
            self.assertEqual(res.returncode, 0, res.stderr)
            res = bench(fake.url, "-w", "ping", "-n", 2, "-c", 1)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("--user", res.stderr)
            res = bench(fake.url, "-w", "ping", "-n", 2, "-c", 1, "-u", "alice", "-p", "wrong")
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("refused", res.stderr)

    def test_bearer_challenge(self):
        state = {"token_requests": []}

        def token(h):
            state["token_requests"].append(h.path)
            return 200, {"Content-Type": "application/json"}, json.dumps({"token": "tok123"}).encode()

        with FakeRegistry({("GET", "/token"): token}) as auth:
            def ping(h):
                if h.headers.get("Authorization") != "Bearer tok123":
                    return 401, {"WWW-Authenticate": 'Bearer realm="%s/token",service="fake"' % auth.url}, b""
                return 200, {}, b"{}"
            with FakeRegistry({("GET", "/v2/"): ping}) as fake:
                res = bench(fake.url, "-w", "ping", "-n", 50, "-c", 4)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertGreaterEqual(len(state["token_requests"]), 1)
        self.assertIn("service=fake", state["token_requests"][0])


class BenchOverTlsTest(unittest.TestCase):
    """https:// URLs: requests with bodies must arrive whole (regression: a two-buffer
    write over TLS once sent the header and silently dropped the body)."""

    @unittest.skipUnless(shutil.which("openssl"), "openssl CLI not installed")
    def test_bodies_survive_tls(self):
        tmp = tempfile.mkdtemp(prefix="berth-bench-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = dict(os.environ, BERTH_TLS_CERT=cert, BERTH_TLS_KEY=key, BERTH_LOG_ACCESS_LOG="false",
                   BERTH_AUTH_ENABLED="false")
        proc = subprocess.Popen([berth_bin(), "serve", "--listen", "127.0.0.1:0", "--data",
                                 os.path.join(tmp, "data"), "--create-on-push"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait, 30)
        self.addCleanup(proc.terminate)
        line = proc.stdout.readline().decode()
        m = re.search(r"listening on (https://\S+)", line)
        self.assertTrue(m, "no ready line: %r" % line)
        url = m.group(1)
        res = bench(url, "-w", "blob-push,blob-push-chunked,blob-pull,manifest-put,index-push",
                    "-n", 8, "-c", 2, "--size", "300K", "--chunk-size", "100K", "--cacert", cert,
                    "--timeout", 20, "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        got = {r["workload"]: r["ops"] for r in json.loads(res.stdout)["results"]}
        self.assertEqual(got, {"blob-push": 8, "blob-push-chunked": 8, "blob-pull": 8,
                               "manifest-put": 8, "index-push": 8})
        # Without the CA the certificate is refused; -k skips the check.
        res = bench(url, "-w", "ping", "-n", 2, "-c", 1)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn("certificate verify failed", res.stderr)
        res = bench(url, "-w", "ping", "-n", 2, "-c", 1, "-k")
        self.assertEqual(res.returncode, 0, res.stderr)


class BenchAgainstRealRegistryTest(RegistryTestCase):
    """A normal run against the real server exits 0 and reports sane numbers."""

    def test_json_fields_are_sane(self):
        reg = self.start_registry()
        workloads = "ping,blob-push,blob-push-chunked,blob-pull,manifest-put,manifest-get-tag," \
                    "manifest-head-digest,index-push,tags-list,catalog,mixed"
        res = bench(reg.url, "-w", workloads, "-n", 24, "-c", 4, "--size", "256K",
                    "--chunk-size", "100K", "--tags", 10, "--repos", 5, "--json",
                    "--server-pid", reg.pid)
        self.assertEqual(res.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (res.stdout, res.stderr))
        doc = json.loads(res.stdout)
        self.assertEqual(doc["target"], reg.url)
        got = {r["workload"]: r for r in doc["results"]}
        self.assertEqual(sorted(got), sorted(workloads.split(",")))
        for name, r in got.items():
            with self.subTest(workload=name):
                self.assertEqual(r["ops"], 24)
                self.assertEqual(r["concurrency"], 4)
                self.assertGreater(r["seconds"], 0)
                self.assertGreater(r["ops_per_s"], 0)
                lat = r["latency_ms"]
                self.assertGreater(lat["p50"], 0)
                self.assertLessEqual(lat["min"], lat["p50"])
                self.assertLessEqual(lat["p50"], lat["p90"])
                self.assertLessEqual(lat["p90"], lat["p99"])
                self.assertLessEqual(lat["p99"], lat["max"])
                s = r["server"]
                self.assertEqual(s["pid"], reg.pid)
                self.assertGreaterEqual(s["cpu_s"], 0)
                self.assertAlmostEqual(s["cpu_s"], s["cpu_user_s"] + s["cpu_system_s"], places=2)
                self.assertGreater(s["vm_hwm_kib"], 0)
                self.assertGreater(s["vm_rss_kib"], 0)
                self.assertGreaterEqual(s["vm_hwm_kib"], s["vm_rss_kib"])
                self.assertGreaterEqual(s["vm_rss_max_kib"], s["vm_rss_kib"])
        for name in ("blob-push", "blob-push-chunked", "blob-pull"):
            r = got[name]
            self.assertEqual(r["size"], 256 * 1024)
            self.assertEqual(r["bytes"], 24 * 256 * 1024)
            self.assertGreater(r["mb_per_s"], 0)
            self.assertIsNotNone(r["server"]["cpu_s_per_gib"])
        self.assertIsNone(got["ping"]["server"]["cpu_s_per_gib"])
        self.assertEqual(got["ping"]["bytes"], 0)

    def test_table_output_and_duration(self):
        reg = self.start_registry()
        res = bench(reg.url, "-w", "ping", "-d", 0.5, "-c", 2)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.strip().splitlines()
        self.assertEqual(len(lines), 2, res.stdout)
        self.assertIn("p99 ms", lines[0])
        self.assertTrue(lines[1].startswith("ping"))

    def test_unknown_workload_is_a_usage_error(self):
        res = bench("http://127.0.0.1:1", "-w", "nonsense")
        self.assertEqual(res.returncode, 2)
        self.assertIn("unknown workload 'nonsense'", res.stderr)


if __name__ == "__main__":
    unittest.main()
