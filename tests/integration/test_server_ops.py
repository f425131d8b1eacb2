"""Operability of `berth serve`: TLS, graceful shutdown, metrics, access log,
health endpoints, upload expiry, configuration precedence."""

import os
import re
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

from harness import (Clients, Registry, RegistryTestCase, http, json_errors, make_oci_layout,
                     push_blob, run, sha256_digest, skip_unless_berth, wait_for)


def make_cert(tmp):
    cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", key, "-out", cert])
    return cert, key


@skip_unless_berth
class TlsTest(RegistryTestCase):
    def test_tls_and_plain_http_on_one_port(self):
        tmp = self.make_tmpdir()
        cert, key = make_cert(tmp)
        reg = self.start_registry(config={"tls": {"cert": cert, "key": key}})
        self.assertTrue(reg.url.startswith("https://"), reg.url)
        ctx = ssl.create_default_context(cafile=cert)
        with urllib.request.urlopen(reg.url + "/v2/", context=ctx, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Docker-Distribution-Api-Version"], "registry/2.0")
        # An untrusted client refuses the certificate: it really is TLS.
        with self.assertRaises(Exception):
            urllib.request.urlopen(reg.url + "/v2/", context=ssl.create_default_context(),
                                   timeout=10)
        # Plain HTTP still works on the same port.
        st, _, body = http("GET", "http://127.0.0.1:%d/v2/" % reg.port)
        self.assertEqual(st, 200)
        # A real client pushes over TLS, verifying the certificate.
        certs = os.path.join(tmp, "certs")
        os.makedirs(certs)
        with open(cert) as src, open(os.path.join(certs, "ca.crt"), "w") as dst:
            dst.write(src.read())
        layout = os.path.join(tmp, "layout")
        info = make_oci_layout(layout, "v1", "amd64")
        clients = Clients(tmp)
        run(["skopeo", "copy", "--dest-cert-dir", certs, "oci:%s:v1" % layout,
             "docker://%s/tls/app:v1" % reg.host], env=clients.env)
        out = run(["skopeo", "inspect", "--raw", "--cert-dir", certs,
                   "docker://%s/tls/app:v1" % reg.host], env=clients.env).stdout
        self.assertEqual(sha256_digest(out.encode()), info["digest"])

    def test_bad_tls_files_fail_fast(self):
        tmp = self.make_tmpdir()
        missing = os.path.join(tmp, "nope.pem")
        with self.assertRaises(AssertionError) as ctx:
            Registry(config={"tls": {"cert": missing, "key": missing}}).start()
        self.assertIn("tls.cert", str(ctx.exception))


@skip_unless_berth
class ShutdownTest(RegistryTestCase):
    def test_sigterm_finishes_in_flight_request_and_refuses_new_ones(self):
        reg = self.start_registry()
        st, h, _ = http("POST", reg.url + "/v2/app/blobs/uploads/")
        self.assertEqual(st, 202)
        loc = h["Location"]
        data = os.urandom(200_000)
        s = socket.create_connection(("127.0.0.1", reg.port))
        s.sendall(("PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: %d\r\n\r\n" % (loc, reg.host, len(data))).encode())
        s.sendall(data[:100_000])
        time.sleep(0.3)
        os.kill(reg.pid, signal.SIGTERM)
        # New connections are refused once the listener is closed.
        def refused():
            try:
                socket.create_connection(("127.0.0.1", reg.port), timeout=1).close()
                return False
            except OSError:
                return True
        wait_for(refused, timeout=5, message="listener closed after SIGTERM")
        # The in-flight request still completes.
        s.sendall(data[100_000:])
        s.settimeout(10)
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
        s.close()
        self.assertTrue(resp.startswith(b"HTTP/1.1 202"), resp[:200])
        self.assertIn(b"Range: 0-199999", resp)
        reg.proc.wait(timeout=15)
        self.assertEqual(reg.proc.returncode, 0)
        # What it accepted is durable: after a restart the upload continues from there.
        reg.start()
        st, h, _ = http("GET", reg.url + loc)
        self.assertEqual(st, 204)
        self.assertEqual(h["Range"], "0-199999")


@skip_unless_berth
class MetricsAndLogsTest(RegistryTestCase):
    def test_metrics_health_and_access_log(self):
        reg = self.start_registry()
        self.assertEqual(http("GET", reg.url + "/healthz")[0], 200)
        self.assertEqual(http("GET", reg.url + "/readyz")[0], 200)
        digest = push_blob(reg.url, "app", b"metrics")
        st, h, _ = http("GET", "%s/v2/app/blobs/%s" % (reg.url, digest))
        self.assertEqual(st, 200)
        request_id = h["X-Request-Id"]
        self.assertRegex(request_id, r"^[0-9a-f]{16}$")
        http("GET", reg.url + "/v2/app/manifests/missing")
        st, h, _ = http("POST", reg.url + "/v2/app/blobs/uploads/")  # left open
        text = reg.metrics()
        self.assertRegex(text, r'berth_http_requests_total\{route="blob",method="GET",status="200"\} 1\b')
        self.assertRegex(text, r'berth_http_requests_total\{route="manifest",method="GET",status="404"\} 1\b')
        self.assertRegex(text, r'berth_http_request_duration_seconds_bucket\{route="blob",le="\+Inf"\} \d+')
        self.assertRegex(text, r'berth_http_request_duration_seconds_count\{route="upload_start"\} [2-9]')
        m = re.search(r"^berth_http_received_bytes_total (\d+)$", text, re.M)
        self.assertGreaterEqual(int(m.group(1)), len(b"metrics"))
        m = re.search(r"^berth_http_sent_bytes_total (\d+)$", text, re.M)
        self.assertGreaterEqual(int(m.group(1)), len(b"metrics"))
        self.assertRegex(text, r"(?m)^berth_uploads_in_progress 1$")
        self.assertRegex(text, r"(?m)^berth_storage_errors_total 0$")
        # One structured access-log line per request, carrying the request id.
        wait_for(lambda: request_id in reg.log_text(), timeout=5, message="access log line")
        line = next(l for l in reg.log_text().splitlines() if request_id in l)
        for field in ("request_id=" + request_id, "method=GET", "route=blob", "status=200",
                      "bytes_out=7", "duration_ms="):
            self.assertIn(field, line)

    def test_unknown_endpoint_is_a_json_404(self):
        reg = self.start_registry()
        st, _, body = http("GET", reg.url + "/nope")
        self.assertEqual(st, 404)
        self.assertEqual(json_errors(body), ["NOT_FOUND"])
        st, _, body = http("POST", reg.url + "/v2/app/tags/list")
        self.assertEqual(st, 405)
        self.assertEqual(json_errors(body), ["UNSUPPORTED"])


@skip_unless_berth
class UploadExpiryTest(RegistryTestCase):
    def test_stale_upload_sessions_are_removed_with_their_files(self):
        reg = self.start_registry(config={"uploads": {"expiry_seconds": 1,
                                                      "sweep_interval_seconds": 1}})
        st, h, _ = http("POST", reg.url + "/v2/app/blobs/uploads/")
        self.assertEqual(st, 202)
        loc = h["Location"]
        upload_id = loc.rsplit("/", 1)[1]
        st, h, _ = http("PATCH", reg.url + loc, body=b"x" * 1000,
                        headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 202)
        path = os.path.join(reg.data_dir, "uploads", upload_id)
        self.assertTrue(os.path.exists(path))
        wait_for(lambda: not os.path.exists(path), timeout=10, message="upload file swept")
        st, _, body = http("GET", reg.url + loc)
        self.assertEqual(st, 404)
        self.assertEqual(json_errors(body), ["BLOB_UPLOAD_UNKNOWN"])
        self.assertRegex(reg.metrics(), r"(?m)^berth_uploads_expired_total [1-9]")


@skip_unless_berth
class ConfigurationTest(RegistryTestCase):
    def test_environment_overrides_file_and_flags_override_environment(self):
        # File says create_on_push: false, the environment turns it on.
        reg = self.start_registry(create_on_push=False, config={"create_on_push": False},
                                  env={"BERTH_CREATE_ON_PUSH": "true"})
        self.assertEqual(http("POST", reg.url + "/v2/envrepo/blobs/uploads/")[0], 202)

    def test_second_server_on_the_same_data_directory_is_refused(self):
        # The manifest cache trusts that this process makes every write to meta.db.
        first = self.start_registry()
        with self.assertRaises(AssertionError) as ctx:
            Registry(data_dir=first.data_dir).start()
        self.assertIn("in use by another berth serve (pid %d)" % first.pid, str(ctx.exception))
        # The first one is unaffected, and the lock goes with the process.
        self.assertEqual(http("GET", first.url + "/v2/")[0], 200)
        first.stop()
        second = Registry(data_dir=first.data_dir).start()
        try:
            self.assertEqual(http("GET", second.url + "/v2/")[0], 200)
        finally:
            second.close()

    def test_serve_runs_without_the_client_libraries(self):
        # `berth serve` execs berth-serve: same pid and command line, but none of the
        # client's libraries (libcurl, libarchive and what they pull in) are mapped.
        def libraries(pid):
            with open("/proc/%d/maps" % pid) as f:
                return {os.path.basename(line.split()[-1]) for line in f if ".so" in line}

        lean = self.start_registry()
        self.assertTrue(os.readlink("/proc/%d/exe" % lean.pid).endswith("/berth-serve"))
        with open("/proc/%d/cmdline" % lean.pid, "rb") as f:
            self.assertEqual(f.read().split(b"\0")[1], b"serve")
        libs = libraries(lean.pid)
        self.assertTrue(any(l.startswith("libsqlite3") for l in libs), libs)
        # (libgnutls and libkrb5 came with libcurl once; libpq now maps them in the
        # server too, for its LDAP and GSSAPI support, so they are no longer the client's.)
        self.assertTrue(any(l.startswith("libpq") for l in libs), libs)
        for client_only in ("libcurl", "libarchive", "libxml2"):
            self.assertFalse(any(l.startswith(client_only) for l in libs), (client_only, libs))
        self.assertEqual(http("GET", lean.url + "/v2/")[0], 200)
        # BERTH_SERVE_IN_PROCESS=1 (or a berth without berth-serve beside it) still serves.
        full = self.start_registry(env={"BERTH_SERVE_IN_PROCESS": "1"})
        self.assertTrue(os.readlink("/proc/%d/exe" % full.pid).endswith("/berth"))
        self.assertTrue(any(l.startswith("libcurl") for l in libraries(full.pid)))
        self.assertEqual(http("GET", full.url + "/v2/")[0], 200)

    def test_invalid_configuration_fails_fast_naming_the_key(self):
        with self.assertRaises(AssertionError) as ctx:
            Registry(config={"http": {"idle_timout_seconds": 5}}).start()
        self.assertIn("http.idle_timout_seconds", str(ctx.exception))
        with self.assertRaises(AssertionError) as ctx:
            Registry(env={"BERTH_HTTP_IO_THREADS": "lots"}).start()
        self.assertIn("BERTH_HTTP_IO_THREADS", str(ctx.exception))

    def test_push_to_missing_repository_is_name_unknown_by_default(self):
        reg = self.start_registry(create_on_push=False)
        st, _, body = http("POST", reg.url + "/v2/team/app/blobs/uploads/")
        self.assertEqual(st, 404)
        self.assertEqual(json_errors(body), ["NAME_UNKNOWN"])
        self.assertIn("team/app", body.decode())


if __name__ == "__main__":
    unittest.main()
