"""Bad input on the /v2 API: every case gets its error status and code, a JSON
error body with a message, and leaves the registry exactly as it was.

Runs against Berth (default) or, with BERTH_TEST_TARGET=distribution, against
CNCF Distribution 2.8; there only the choreography is checked (the request is
refused and nothing changes), since Distribution's codes and limits differ.
"""

import hashlib
import http.client as httpclient
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    DOCKER_MANIFEST, IS_BERTH, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST,
    RegistryTestCase, http, json_error_list, sha256_digest, skip_unless_berth)

SEED_REPO = "seed/app"


# ---------------------------------------------------------------------------
# Local helpers
# ---------------------------------------------------------------------------

def blob_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def absolute(base_url, location):
    return urllib.parse.urljoin(base_url + "/", location)


def with_query(url, **params):
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


def descriptor(media_type, data):
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


class RawConnection:
    """A raw TCP connection to the registry, for requests http.client will not
    send (oversized headers, stalled bodies, TLS hellos) and for watching the
    server close the connection."""

    def __init__(self, host, port, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sender = None
        self.send_error = None

    def send(self, data):
        """sendall; False if the server already closed/reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError as e:  # reset, broken pipe, timeout, or closed by us
            self.send_error = e
            return False

    def send_in_background(self, chunks):
        """Send chunks from a thread (the server may answer before reading them all)."""
        def run():
            for c in chunks:
                if not self.send(c):
                    return
        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def read_response(self, method="GET", timeout=30):
        """(status, headers, body) of the next response, or None if the server
        closed the connection without one."""
        self.sock.settimeout(timeout)
        resp = httpclient.HTTPResponse(self.sock, method=method)
        try:
            resp.begin()
            body = resp.read()
        except (httpclient.RemoteDisconnected, ConnectionResetError, httpclient.IncompleteRead,
                httpclient.BadStatusLine):
            return None
        return resp.status, resp.msg, body

    def wait_closed(self, timeout):
        """Seconds until the server closes the connection (EOF or reset), reading
        and discarding anything it sends first; None if it stays open."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - start
            if not data:
                return time.monotonic() - start
            self.received = getattr(self, "received", b"") + data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self._sender:
            self._sender.join(10)


def request_head(method, path, host, headers=(), content_length=None, chunked=False):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % host]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if content_length is not None:
        lines.append("Content-Length: %d" % content_length)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked_encoding(chunks):
    for c in chunks:
        if c:
            yield b"%x\r\n" % len(c) + c + b"\r\n"
    yield b"0\r\n\r\n"


class BadInputTestCase(RegistryTestCase):
    """A registry per class, seeded with one image; helpers to check that bad
    requests change nothing."""

    CONFIG = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = cls.start_class_registry(config=cls.CONFIG if IS_BERTH else None)
        cls.url = cls.reg.url
        cls.seed = cls.push_seed(cls.url)

    @staticmethod
    def push_seed(url):
        cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        layer = blob_bytes(4096, "seed-layer")
        for data in (cfg, layer):
            digest = sha256_digest(data)
            st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (url, SEED_REPO))
            assert st == 202, (st, b)
            st, h, b = http("PUT", with_query(absolute(url, h["Location"]), digest=digest), body=data)
            assert st == 201, (st, b)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, cfg),
                               "layers": [descriptor(OCI_LAYER_GZIP, layer)]}).encode()
        st, h, b = http("PUT", "%s/v2/%s/manifests/v1" % (url, SEED_REPO),
                        headers={"Content-Type": OCI_MANIFEST}, body=manifest)
        assert st == 201, (st, b)
        return {"config": cfg, "layer": layer, "manifest": manifest,
                "digest": sha256_digest(manifest)}

    def setUp(self):
        super().setUp()
        self.before = self.snapshot()

    # -- state -------------------------------------------------------------
    def blob_files(self):
        """Names of the committed blob files (Berth's layout)."""
        out = set()
        root = os.path.join(self.reg.data_dir, "blobs")
        for dirpath, _, files in os.walk(root):
            for f in files:
                out.add(os.path.relpath(os.path.join(dirpath, f), root))
        return out

    def snapshot(self):
        st, h, b = http("GET", self.url + "/v2/_catalog")
        self.assertEqual(st, 200, b[:300])
        repos = json.loads(b).get("repositories") or []
        tags = {}
        for r in repos:
            st, h, b = http("GET", "%s/v2/%s/tags/list" % (self.url, r))
            tags[r] = sorted(json.loads(b).get("tags") or []) if st == 200 else st
        return {"repos": repos, "tags": tags, "blobs": self.blob_files() if IS_BERTH else None}

    def assert_unchanged(self, what=""):
        self.assert_healthy()
        after = self.snapshot()
        self.assertEqual(after["repos"], self.before["repos"], "catalog changed %s" % what)
        self.assertEqual(after["tags"], self.before["tags"], "tags changed %s" % what)
        if IS_BERTH:
            self.assertEqual(after["blobs"] - self.before["blobs"], set(),
                             "blob files appeared %s" % what)
            self.assertEqual(self.before["blobs"] - after["blobs"], set(),
                             "blob files vanished %s" % what)
        st, _, b = http("GET", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, self.seed["digest"]),
                        headers={"Accept": OCI_MANIFEST})
        self.assertEqual(st, 200)
        self.assertEqual(b, self.seed["manifest"])

    def assert_healthy(self):
        self.assertIsNone(self.reg.proc.poll(), "the server exited (code %s)" % self.reg.proc.poll())
        st, h, b = http("GET", self.url + "/v2/", timeout=10)
        self.assertEqual(st, 200, "server unhealthy after bad input: %r" % b[:300])

    def assert_no_manifest(self, repo, ref):
        if not IS_BERTH and ":" in ref:
            return  # Distribution 2.8 keeps the bytes of some refused manifests
        st, _, b = http("GET", "%s/v2/%s/manifests/%s" % (self.url, repo, ref),
                        headers=[("Accept", OCI_MANIFEST), ("Accept", OCI_INDEX),
                                 ("Accept", DOCKER_MANIFEST)])
        self.assertIn(st, (400, 404), "manifest %s:%s exists (%d)" % (repo, ref, st))

    def assert_no_blob(self, repo, digest):
        st, _, _ = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertIn(st, (400, 404), "blob %s visible in %s" % (digest, repo))
        if IS_BERTH:
            alg, _, hexpart = digest.partition(":")
            self.assertFalse(os.path.exists(os.path.join(self.reg.data_dir, "blobs", alg,
                                                         hexpart[:2], hexpart)),
                             "blob file for %s exists" % digest)

    # -- errors ------------------------------------------------------------
    def assert_error(self, status, body, expected_status, *codes, context="", head=False):
        """Berth: exactly the status, a JSON error body whose first code is in
        `codes` and whose messages are non-empty. Distribution: refused (not 2xx)."""
        msg = "%s: %d %r" % (context, status, body[:600])
        if not IS_BERTH:
            self.assertFalse(200 <= status < 300, "accepted: " + msg)
            return []
        self.assertNotEqual(status // 100, 5, "server error: " + msg)
        if isinstance(expected_status, (tuple, list, set)):
            self.assertIn(status, expected_status, msg)
        else:
            self.assertEqual(status, expected_status, msg)
        if head:
            self.assertEqual(body, b"", "HEAD response with a body: " + msg)
            return []
        errors = json_error_list(body)
        self.assertTrue(errors, "no JSON error body {\"errors\":[...]}: " + msg)
        if codes:
            self.assertIn(errors[0].get("code"), codes, msg)
        for e in errors:
            self.assertIsInstance(e.get("code"), str, msg)
            self.assertIsInstance(e.get("message"), str, msg)
            self.assertTrue(e["message"].strip(), "empty error message: " + msg)
        return errors

    # -- client steps --------------------------------------------------------
    def start_upload(self, repo=SEED_REPO):
        st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (self.url, repo))
        self.assertEqual(st, 202, b[:300])
        return absolute(self.url, h["Location"])

    def patch(self, loc, data, content_range=None):
        headers = [("Content-Type", "application/octet-stream")]
        if content_range:
            headers.append(("Content-Range", content_range))
        return http("PATCH", loc, headers=headers, body=data)

    def upload_range(self, loc):
        st, h, b = http("GET", loc)
        self.assertEqual(st, 204, b[:300])
        return h.get("Range"), absolute(self.url, h.get("Location") or loc)

    def raw(self, timeout=30):
        conn = RawConnection("127.0.0.1", self.reg.port, timeout=timeout)
        self.addCleanup(conn.close)
        return conn

    def valid_manifest(self, salt):
        """A valid manifest over the seed blobs that is not stored yet."""
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor(OCI_CONFIG, self.seed["config"]),
                           "layers": [descriptor(OCI_LAYER_GZIP, self.seed["layer"])],
                           "annotations": {"salt": salt}}).encode()


# ---------------------------------------------------------------------------
# Names, digests, tags
# ---------------------------------------------------------------------------

class NameDigestTagTest(BadInputTestCase):
    def test_invalid_repository_names(self):
        body = self.valid_manifest("names")
        data = b"blob for a bad name"
        digest = sha256_digest(data)
        strict = ["Upper", "seed/App", "UPPER/CASE", "a..b", "a//b", "seed//app", "a" * 256,
                  "seed/" + "x" * 251, "-lead", "trail-", "a__-b", "a.-b", "a$b", "a%20b"]
        routing = ["/leading", "trailing/", "a/../seed/app", "./seed", "a/./b"]  # may be 404
        for name in strict + routing:
            expected = 400 if name in strict else (400, 404)
            codes = ("NAME_INVALID",) if name in strict else ()
            ctx = "repository name %r" % name
            st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (self.url, name))
            self.assert_error(st, b, expected, *codes, context="POST upload, " + ctx)
            st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, name), digest=digest),
                            body=data)
            self.assert_error(st, b, expected, *codes, context="monolithic POST, " + ctx)
            st, h, b = http("PUT", "%s/v2/%s/manifests/v1" % (self.url, name),
                            headers={"Content-Type": OCI_MANIFEST}, body=body)
            self.assert_error(st, b, expected, *codes, context="PUT manifest, " + ctx)
            st, h, b = http("GET", "%s/v2/%s/tags/list" % (self.url, name))
            self.assert_error(st, b, expected, *codes, context="tags list, " + ctx)
            st, h, b = http("GET", "%s/v2/%s/manifests/v1" % (self.url, name))
            self.assert_error(st, b, expected, *codes, context="GET manifest, " + ctx)
            st, h, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, name, self.seed["digest"]))
            self.assert_error(st, b, expected, context="HEAD blob, " + ctx, head=True)
            st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, name),
                                               mount=sha256_digest(self.seed["layer"]), **{"from": SEED_REPO}))
            self.assert_error(st, b, expected, *codes, context="mount into, " + ctx)
        self.assert_no_blob(SEED_REPO, digest)
        self.assert_unchanged("after requests with invalid names")
        # The boundary: 255 characters is a valid name.
        if IS_BERTH:
            name = "seed/" + "y" * 250
            self.assertEqual(len(name), 255)
            st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (self.url, name))
            self.assertEqual(st, 202, "a 255-character name: %r" % b[:300])

    @skip_unless_berth  # Distribution decodes %2F too
    def test_encoded_slash_in_repository_name_is_name_invalid(self):
        # "seed%2Fapp" was decoded to "seed/app": a second spelling of the repository
        # that a proxy's path rules (or a policy on the raw path) would not recognise.
        for name in ("seed%2Fapp", "seed%2fapp"):
            ctx = "repository name %r" % name
            for method, path in (("GET", "manifests/v1"), ("GET", "tags/list"),
                                 ("DELETE", "manifests/" + self.seed["digest"]),
                                 ("DELETE", "manifests/v1"),
                                 ("GET", "blobs/" + sha256_digest(self.seed["layer"]))):
                st, h, b = http(method, "%s/v2/%s/%s" % (self.url, name, path))
                self.assert_error(st, b, 400, "NAME_INVALID", context="%s %s, %s" % (method, path, ctx))
            st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (self.url, name))
            self.assert_error(st, b, 400, "NAME_INVALID", context="POST upload, " + ctx)
            st, h, b = http("PUT", "%s/v2/%s/manifests/v2" % (self.url, name),
                            headers={"Content-Type": OCI_MANIFEST}, body=self.valid_manifest("slash"))
            self.assert_error(st, b, 400, "NAME_INVALID", context="PUT manifest, " + ctx)
        self.assert_no_manifest(SEED_REPO, "v2")
        self.assert_unchanged("after names with an encoded slash")

    def test_invalid_digests(self):
        bad = ["sha256:totallywrong", "sha256:" + "a" * 63, "sha256:" + "a" * 65, "md5:" + "a" * 32,
               "sha256:" + "A" * 64, "sha512:" + "a" * 64, "sha256:", ":" + "a" * 64,
               "sha256:" + "g" * 64, "sha256-" + "a" * 64, "SHA256:" + "a" * 64]
        data = b"a blob pushed with a bad digest"
        loc = self.start_upload()
        st, h, b = self.patch(loc, data)
        self.assertEqual(st, 202, b[:300])
        loc = absolute(self.url, h["Location"])
        body = self.valid_manifest("digests")
        for d in bad:
            ctx = "digest %r" % d
            has_colon = ":" in d
            st, h, b = http("GET", "%s/v2/%s/blobs/%s" % (self.url, SEED_REPO, d))
            self.assert_error(st, b, 400, "DIGEST_INVALID", context="GET blob, " + ctx)
            st, h, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, SEED_REPO, d))
            self.assert_error(st, b, 400, context="HEAD blob, " + ctx, head=True)
            st, h, b = http("DELETE", "%s/v2/%s/blobs/%s" % (self.url, SEED_REPO, d))
            self.assert_error(st, b, 400, "DIGEST_INVALID", context="DELETE blob, " + ctx)
            if IS_BERTH:  # Distribution 2.8 ignores ?digest= on POST
                st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, SEED_REPO), digest=d),
                                body=data)
                self.assert_error(st, b, 400, "DIGEST_INVALID", context="monolithic POST, " + ctx)
            st, h, b = http("PUT", with_query(loc, digest=d))
            self.assert_error(st, b, 400, "DIGEST_INVALID", context="closing PUT, " + ctx)
            if has_colon:
                # A reference containing ':' is a digest.
                st, h, b = http("GET", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, d))
                self.assert_error(st, b, 400, "DIGEST_INVALID", context="GET manifest, " + ctx)
                st, h, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, d))
                self.assert_error(st, b, 400, "DIGEST_INVALID", context="DELETE manifest, " + ctx)
                st, h, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, d),
                                headers={"Content-Type": OCI_MANIFEST}, body=body)
                self.assert_error(st, b, 400, "DIGEST_INVALID", context="PUT manifest, " + ctx)
            if IS_BERTH:
                st, h, b = http("GET", "%s/v2/%s/referrers/%s" % (self.url, SEED_REPO, d))
                self.assert_error(st, b, 400, "DIGEST_INVALID", context="referrers, " + ctx)
        # A well-formed digest that is not the manifest's.
        wrong = sha256_digest(body + b" ")
        st, h, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, wrong),
                        headers={"Content-Type": OCI_MANIFEST}, body=body)
        self.assert_error(st, b, 400, "DIGEST_INVALID", context="PUT manifest under another digest")
        self.assert_no_manifest(SEED_REPO, wrong)
        self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_no_blob(SEED_REPO, sha256_digest(data))
        # The upload survived the refused PUTs and still completes.
        rng, loc = self.upload_range(loc)
        self.assertEqual(rng, "0-%d" % (len(data) - 1))
        self.assert_unchanged("after requests with invalid digests")
        st, h, b = http("PUT", with_query(loc, digest=sha256_digest(data)))
        self.assertEqual(st, 201, b[:300])

    def test_invalid_tags(self):
        bad = ["-lead", ".lead", "x" * 129, "bad+tag", "bad%21tag", "bad~tag", "tag@x", "%C3%A9t%C3%A9",
               "bad%20tag"]
        body = self.valid_manifest("tags")
        for t in bad:
            ctx = "tag %r" % t
            st, h, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, t),
                            headers={"Content-Type": OCI_MANIFEST}, body=body)
            self.assert_error(st, b, 400, "TAG_INVALID", "MANIFEST_INVALID", context="PUT manifest, " + ctx)
            st, h, b = http("GET", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, t))
            self.assert_error(st, b, (400, 404), "TAG_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_INVALID",
                              context="GET manifest, " + ctx)
            st, h, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, t))
            self.assert_error(st, b, (400, 404), "TAG_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_INVALID",
                              "UNSUPPORTED", context="DELETE manifest, " + ctx)
        self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_unchanged("after PUTs with invalid tags")
        # The boundary: 128 characters is a valid tag.
        st, h, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, SEED_REPO, "x" * 128),
                        headers={"Content-Type": OCI_MANIFEST}, body=body)
        self.assertEqual(st, 201, b[:300])


# ---------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------

class ManifestInputTest(BadInputTestCase):
    # Cases Distribution 2.8 lets through (checked against Berth only).
    DISTRIBUTION_ACCEPTS = {"config size negative", "config without mediaType"}

    def put(self, ref, body, content_type=OCI_MANIFEST, repo=SEED_REPO):
        headers = {"Content-Type": content_type} if content_type else {}
        return http("PUT", "%s/v2/%s/manifests/%s" % (self.url, repo, ref), headers=headers, body=body)

    def test_malformed_and_truncated_manifests(self):
        good = self.seed["manifest"]
        cfg = descriptor(OCI_CONFIG, self.seed["config"])
        lay = descriptor(OCI_LAYER_GZIP, self.seed["layer"])

        def m(**kw):
            doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg, "layers": [lay]}
            for k, v in kw.items():
                if v is None:
                    doc.pop(k, None)
                else:
                    doc[k] = v
            return json.dumps(doc).encode()

        cases = {
            "not JSON": b"{not json",
            "truncated": good[:len(good) // 2],
            "truncated by one byte": good[:-1],
            "empty body": b"",
            "JSON array": b"[]",
            "JSON null": b"null",
            "JSON string": b'"manifest"',
            "trailing garbage": good + b"}",
            "invalid UTF-8": good.replace(OCI_MANIFEST.encode(), OCI_MANIFEST.encode() + b"\xff\xfe"),
            "deeply nested": b"[" * 200000 + b"]" * 200000,
            "deeply nested object": b'{"a":' * 100000 + b"1" + b"}" * 100000,
            "schemaVersion 3": m(schemaVersion=3),
            "schemaVersion string": m(schemaVersion="2"),
            "no schemaVersion": m(schemaVersion=None),
            "no config": m(config=None),
            "config not an object": m(config="sha256:abc"),
            "config digest invalid": m(config=dict(cfg, digest="sha256:nothex")),
            "config size negative": m(config=dict(cfg, size=-1)),
            "config size not a number": m(config=dict(cfg, size="12")),
            "config without mediaType": m(config={"digest": cfg["digest"], "size": cfg["size"]}),
            "layers not an array": m(layers=lay),
            "layer not an object": m(layers=[lay["digest"]]),
            "huge size": m(layers=[dict(lay, size=10 ** 400)]),
            "unknown mediaType": m(mediaType="application/vnd.example.unknown+json"),
        }
        for name, body in cases.items():
            if not IS_BERTH and name in self.DISTRIBUTION_ACCEPTS:
                continue
            ct = "application/vnd.example.unknown+json" if name == "unknown mediaType" else OCI_MANIFEST
            st, h, b = self.put("bad", body, content_type=ct)
            self.assert_error(st, b, 400, "MANIFEST_INVALID", *(("DIGEST_INVALID",) if "digest" in name else ()),
                              context="manifest %s" % name)
            self.assert_healthy()
            self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_no_manifest(SEED_REPO, "bad")
        self.assert_unchanged("after malformed manifests")

    def test_content_type_contradicting_media_type(self):
        cfg = descriptor(OCI_CONFIG, self.seed["config"])
        lay = descriptor(OCI_LAYER_GZIP, self.seed["layer"])
        salt = {"org.example.test": "content-type"}  # not the seed manifest's bytes
        oci = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                          "layers": [lay], "annotations": salt}).encode()
        docker = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cfg,
                             "layers": [lay], "annotations": salt}).encode()
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [descriptor(OCI_MANIFEST, self.seed["manifest"])],
                            "annotations": salt}).encode()
        for body, ct in ((oci, DOCKER_MANIFEST), (docker, OCI_MANIFEST), (index, OCI_MANIFEST),
                         (oci, OCI_INDEX)):
            st, h, b = self.put("ct", body, content_type=ct)
            self.assert_error(st, b, 400, "MANIFEST_INVALID",
                              context="mediaType %s sent as %s" % (json.loads(body)["mediaType"], ct))
            self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_no_manifest(SEED_REPO, "ct")
        self.assert_unchanged("after Content-Type mismatches")

    def test_manifest_referencing_missing_blobs(self):
        cfg = descriptor(OCI_CONFIG, self.seed["config"])
        missing = descriptor(OCI_LAYER_GZIP, b"never pushed")
        other_repo_blob = b"only in another repository"
        st, h, b = http("POST", with_query("%s/v2/other/repo/blobs/uploads/" % self.url,
                                           digest=sha256_digest(other_repo_blob)), body=other_repo_blob)
        if st == 202:  # monolithic POST not supported: finish with PUT
            st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]),
                                              digest=sha256_digest(other_repo_blob)), body=other_repo_blob)
        self.assertEqual(st, 201, b[:300])
        self.before = self.snapshot()
        cases = {
            "missing layer": {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                              "layers": [missing]},
            "missing config": {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, b'{"missing":1}'),
                               "layers": [descriptor(OCI_LAYER_GZIP, self.seed["layer"])]},
            "layer of another repository": {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg,
                                            "layers": [descriptor(OCI_LAYER_GZIP, other_repo_blob)]},
        }
        for name, doc in cases.items():
            body = json.dumps(doc).encode()
            st, h, b = self.put("missing", body)
            self.assert_error(st, b, 400, "MANIFEST_BLOB_UNKNOWN", context=name)
            self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": [dict(descriptor(OCI_MANIFEST, b'{"not":"pushed"}'),
                                               platform={"architecture": "amd64", "os": "linux"})]}).encode()
        st, h, b = self.put("missing", index, content_type=OCI_INDEX)
        self.assert_error(st, b, 400, "MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "MANIFEST_INVALID",
                          context="index with a missing child")
        self.assert_no_manifest(SEED_REPO, sha256_digest(index))
        self.assert_no_manifest(SEED_REPO, "missing")
        self.assert_unchanged("after manifests with missing references")

    def test_oversized_manifest_is_413(self):
        pad = 5 * 1024 * 1024
        body = self.valid_manifest("x" * pad)
        self.assertGreater(len(body), 5 << 20)
        path = "/v2/%s/manifests/huge" % SEED_REPO
        for chunked in (False, True):
            conn = self.raw()
            conn.send(request_head("PUT", path, self.reg.host, [("Content-Type", OCI_MANIFEST)],
                                   content_length=None if chunked else len(body), chunked=chunked))
            pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
            conn.send_in_background(chunked_encoding(pieces) if chunked else pieces)
            resp = conn.read_response("PUT", timeout=60)
            self.assertIsNotNone(resp, "no response to a 5 MiB manifest (chunked=%s)" % chunked)
            st, h, b = resp
            if IS_BERTH:
                self.assert_error(st, b, 413, context="5 MiB manifest, chunked=%s" % chunked)
            else:
                self.assertFalse(200 <= st < 300)
            conn.close()
        self.assert_no_manifest(SEED_REPO, "huge")
        self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_unchanged("after a 5 MiB manifest")

    @skip_unless_berth
    def test_manifest_of_exactly_4_mib_is_accepted(self):
        base = self.valid_manifest("")
        body = self.valid_manifest("z" * ((4 << 20) - len(base)))
        self.assertEqual(len(body), 4 << 20)
        st, h, b = self.put("four-mib", body)
        self.assertEqual(st, 201, b[:300])
        st, h, b = http("GET", "%s/v2/%s/manifests/four-mib" % (self.url, SEED_REPO),
                        headers={"Accept": OCI_MANIFEST})
        self.assertEqual(st, 200)
        self.assertTrue(b == body)


# ---------------------------------------------------------------------------
# Uploads and ranges
# ---------------------------------------------------------------------------

class UploadInputTest(BadInputTestCase):
    @skip_unless_berth  # Distribution 2.8 does not check Content-Range
    def test_content_range_gaps_and_overlaps_are_416(self):
        data = blob_bytes(1000, "cr")
        loc = self.start_upload()
        st, h, b = self.patch(loc, data[:100], "0-99")
        self.assertEqual(st, 202, b[:300])
        loc = absolute(self.url, h["Location"])
        for rng, piece in (("150-199", data[150:200]), ("101-200", data[101:201]),
                           ("50-149", data[50:150]), ("0-99", data[:100]), ("99-198", data[99:199])):
            st, h, b = self.patch(loc, piece, rng)
            self.assert_error(st, b, 416, context="Content-Range %s after 0-99" % rng)
            rng_now, _ = self.upload_range(loc)
            self.assertEqual(rng_now, "0-99", "upload changed by a refused chunk %s" % rng)
        # Malformed or inconsistent ranges.
        for rng, piece in (("100-149", data[100:120]), ("100-99", b""),
                           ("abc", data[100:150]), ("149-100", data[100:150])):
            st, h, b = self.patch(loc, piece, rng)
            self.assert_error(st, b, (400, 416), context="Content-Range %r with %d bytes" % (rng, len(piece)))
            rng_now, _ = self.upload_range(loc)
            self.assertEqual(rng_now, "0-99", "upload changed by a refused chunk %r" % rng)
        self.assert_no_blob(SEED_REPO, sha256_digest(data))
        self.assert_unchanged("after bad Content-Ranges")
        st, h, b = self.patch(loc, data[100:], "100-999")
        self.assertEqual(st, 202, b[:300])
        st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]), digest=sha256_digest(data)))
        self.assertEqual(st, 201, b[:300])

    @skip_unless_berth
    def test_content_range_overflow_is_refused(self):
        # 0-18446744073709551615 spans 2^64 bytes, which wrapped to 0 and matched an
        # empty body's Content-Length.
        data = blob_bytes(100, "overflow")
        loc = self.start_upload()
        top = 2 ** 64 - 1
        for rng, piece in (("0-%d" % top, b""), ("0-%d" % top, data[:1]),
                           ("%d-%d" % (top, top), data[:1]), ("1-%d" % top, b""),
                           ("0-%d" % (2 ** 64), b""), ("0-%d" % (2 ** 63 - 1), b"")):
            st, h, b = self.patch(loc, piece, rng)
            self.assert_error(st, b, (400, 416), context="Content-Range %s with %d bytes" % (rng, len(piece)))
            rng_now, _ = self.upload_range(loc)
            self.assertEqual(rng_now, "0-0", "upload changed by a refused chunk %s" % rng)
            if piece:  # an empty closing PUT carries no chunk: its range is not used
                st, h, b = http("PUT", with_query(loc, digest=sha256_digest(piece)),
                                headers=[("Content-Range", rng)], body=piece)
                self.assert_error(st, b, (400, 416), context="closing PUT, Content-Range %s" % rng)
        self.assert_unchanged("after overflowing Content-Ranges")
        st, h, b = self.patch(loc, data, "0-99")
        self.assertEqual(st, 202, b[:300])
        st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]), digest=sha256_digest(data)))
        self.assertEqual(st, 201, b[:300])

    def test_wrong_digest_on_closing_put(self):
        data = blob_bytes(100_000, "wrong-digest")
        other = blob_bytes(100_000, "the other one")
        wrong = sha256_digest(other)
        # Chunked, then an empty closing PUT with the wrong digest.
        loc = self.start_upload()
        st, h, b = self.patch(loc, data)
        self.assertEqual(st, 202, b[:300])
        st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]), digest=wrong))
        self.assert_error(st, b, 400, "DIGEST_INVALID", context="closing PUT with the wrong digest")
        # POST then PUT with the body and the wrong digest.
        loc = self.start_upload()
        st, h, b = http("PUT", with_query(loc, digest=wrong), body=data)
        self.assert_error(st, b, 400, "DIGEST_INVALID", context="PUT with body and the wrong digest")
        # A wrong sha512.
        loc = self.start_upload()
        st, h, b = http("PUT", with_query(loc, digest="sha512:" + hashlib.sha512(other).hexdigest()), body=data)
        self.assert_error(st, b, 400, "DIGEST_INVALID", context="PUT with the wrong sha512")
        if IS_BERTH:
            st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, SEED_REPO), digest=wrong),
                            body=data)
            self.assert_error(st, b, 400, "DIGEST_INVALID", context="monolithic POST with the wrong digest")
            # No digest at all on the closing PUT.
            loc = self.start_upload()
            st, h, b = http("PUT", loc, body=data)
            self.assert_error(st, b, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID",
                              context="closing PUT without ?digest=")
        for d in (wrong, sha256_digest(data), "sha512:" + hashlib.sha512(data).hexdigest()):
            self.assert_no_blob(SEED_REPO, d)
        self.assert_unchanged("after wrong digests")

    def test_unknown_upload_ids(self):
        ids = ["%032x" % random.getrandbits(128), "0" * 32, "nonexistent", "..%2F..%2Fmeta.db",
               "%2E%2E", "a" * 300]
        # An upload of another repository is unknown here.
        other = self.start_upload("other/repo")
        self.before = self.snapshot()
        other_path = urllib.parse.urlsplit(other)
        foreign = "%s/v2/%s/blobs/uploads/%s%s" % (
            self.url, SEED_REPO, other_path.path.rstrip("/").rsplit("/", 1)[1],
            "?" + other_path.query if other_path.query else "")
        urls = ["%s/v2/%s/blobs/uploads/%s" % (self.url, SEED_REPO, i) for i in ids] + [foreign]
        for u in urls:
            strict = not any(x in u for x in ("%2F", "%2E", "a" * 300))
            expected = 404 if strict else (400, 404)
            codes = ("BLOB_UPLOAD_UNKNOWN",) if strict else ()
            st, h, b = http("GET", u)
            self.assert_error(st, b, expected, *codes, context="GET " + u)
            st, h, b = self.patch(u, b"data")
            self.assert_error(st, b, expected, *codes, context="PATCH " + u)
            st, h, b = http("PUT", with_query(u, digest=sha256_digest(b"data")), body=b"data")
            self.assert_error(st, b, expected, *codes, context="PUT " + u)
            st, h, b = http("DELETE", u)
            self.assert_error(st, b, expected, *codes, context="DELETE " + u)
        self.assert_no_blob(SEED_REPO, sha256_digest(b"data"))
        self.assert_unchanged("after requests to unknown uploads")
        # The foreign upload is still alive in its own repository.
        st, h, b = http("GET", other)
        self.assertEqual(st, 204, b[:300])

    @skip_unless_berth  # Distribution 2.8 answers an unsatisfiable range with a broken body
    def test_out_of_range_range_is_416(self):
        digest = sha256_digest(self.seed["layer"])
        size = len(self.seed["layer"])
        url = "%s/v2/%s/blobs/%s" % (self.url, SEED_REPO, digest)
        for rng in ("bytes=%d-%d" % (size, size + 10), "bytes=%d-" % (size * 2), "bytes=99999999-"):
            st, h, b = http("GET", url, headers={"Range": rng})
            self.assert_error(st, b, 416, context="Range %s of a %d-byte blob" % (rng, size))
        st, h, b = http("GET", url)
        self.assertEqual(st, 200)
        self.assertEqual(b, self.seed["layer"])
        self.assert_unchanged("after unsatisfiable ranges")


# ---------------------------------------------------------------------------
# HTTP-level abuse
# ---------------------------------------------------------------------------

class HttpInputTest(BadInputTestCase):
    def oversized(self, head_extra_lines, path="/v2/"):
        conn = self.raw()
        head = ("GET %s HTTP/1.1\r\nHost: %s\r\n" % (path, self.reg.host)).encode() + head_extra_lines + b"\r\n"
        conn.send_in_background([head])
        resp = conn.read_response("GET", timeout=30)
        return conn, resp

    @skip_unless_berth  # Distribution allows 1 MiB of headers
    def test_oversized_headers(self):
        cases = {
            "one 100 KiB header": b"X-Big: " + b"x" * (100 << 10) + b"\r\n",
            "2000 headers": b"".join(b"X-H%d: %s\r\n" % (i, b"y" * 50) for i in range(2000)),
            "100 KiB cookie": b"Cookie: " + b"c=" + b"z" * (100 << 10) + b"\r\n",
        }
        for name, lines in cases.items():
            with self.subTest(name):
                conn, resp = self.oversized(lines)
                self.assertIsNotNone(resp, "%s: connection closed without a response" % name)
                st, h, b = resp
                self.assertIn(st, (431, 400), "%s: %d %r" % (name, st, b[:300]))
                closed = conn.wait_closed(10)
                self.assertIsNotNone(closed, "%s: connection left open after %d" % (name, st))
                conn.close()
                self.assert_healthy()
                self.assert_error(st, b, st, context=name)
        # A 100 KiB request target.
        conn, resp = self.oversized(b"", path="/v2/" + "a" * (100 << 10) + "/tags/list")
        self.assertIsNotNone(resp, "long URL: closed without a response")
        self.assertIn(resp[0], (414, 431, 400), resp[2][:300])
        self.assertIsNotNone(conn.wait_closed(10), "long URL: connection left open")
        self.assert_unchanged("after oversized headers")

    def test_tls_client_hello_gets_http_400(self):
        # docker's plain-HTTP fallback needs an HTTP answer to a TLS ClientHello.
        ctx = ssl.create_default_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        self.assertEqual(hello[:1], b"\x16")
        conn = self.raw()
        conn.send(hello)
        conn.sock.settimeout(10)
        data = b""
        try:
            while len(data) < 12:
                chunk = conn.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertTrue(data.startswith(b"HTTP/1."), "answer to a ClientHello: %r" % data[:100])
        self.assertEqual(data[9:12], b"400", data[:100])
        conn.close()
        self.assert_unchanged("after a TLS ClientHello")

    def test_garbage_requests(self):
        cases = [
            b"\x00\x01\x02garbage\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n",
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"PUT /v2/seed/app/manifests/v9 HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"PUT /v2/seed/app/manifests/v9 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
            b"PATCH /v2/seed/app/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]
        for raw in cases:
            conn = self.raw(timeout=10)
            conn.send(raw)
            resp = conn.read_response("GET", timeout=10)
            if resp is not None:
                st = resp[0]
                if IS_BERTH:
                    self.assertTrue(400 <= st < 500 or st == 505, "%r: %d %r" % (raw[:60], st, resp[2][:200]))
                else:
                    self.assertGreaterEqual(st, 400, raw[:60])
            self.assertIsNotNone(conn.wait_closed(10), "%r: connection left open" % raw[:60])
            conn.close()
            self.assert_healthy()
        self.assert_no_manifest(SEED_REPO, "v9")
        self.assert_unchanged("after garbage requests")

    def path_of(self, url):
        u = urllib.parse.urlsplit(url)
        return u.path + ("?" + u.query if u.query else "")

    def assert_refused_and_closed(self, conn, resp, statuses, context):
        self.assertIsNotNone(resp, "%s: connection closed without a response" % context)
        st, h, b = resp
        msg = "%s: %d %r" % (context, st, b[:600])
        self.assertIn(st, statuses, msg)  # 501 is right for an unimplemented coding
        errors = json_error_list(b)
        self.assertTrue(errors and errors[0].get("message", "").strip(), "no JSON error: " + msg)
        self.assertIsNotNone(conn.wait_closed(10), "%s: connection left open after %d" % (context, st))

    @skip_unless_berth
    def test_request_smuggling_ambiguous_framing_is_refused(self):
        # The body of each PATCH is a whole DELETE request. "Transfer-Encoding: gzip" was
        # read as "no body": the PATCH was answered 202 and the DELETE ran as a request
        # of its own; "chunked, chunked" made the body be ignored the same way.
        def smuggle(victim):
            return ("DELETE %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                    % (self.path_of(victim), self.reg.host)).encode()
        smuggled = smuggle(self.start_upload())  # for its length
        cases = {
            "TE gzip": ([("Transfer-Encoding", "gzip")], (400,)),
            "TE identity": ([("Transfer-Encoding", "identity")], (400,)),
            "TE chunked, chunked": ([("Transfer-Encoding", "chunked, chunked")], (400,)),
            "TE chunked, gzip": ([("Transfer-Encoding", "chunked, gzip")], (400,)),
            "TE gzip, chunked": ([("Transfer-Encoding", "gzip, chunked")], (501,)),
            "TE gzip + chunked lines": ([("Transfer-Encoding", "gzip"),
                                         ("Transfer-Encoding", "chunked")], (501,)),
            "TE gzip + CL": ([("Transfer-Encoding", "gzip"),
                              ("Content-Length", str(len(smuggled)))], (400,)),
            "CL + TE chunked": ([("Content-Length", str(len(smuggled))),
                                 ("Transfer-Encoding", "chunked")], (400,)),
            "TE chunked + CL": ([("Transfer-Encoding", "chunked"),
                                 ("Content-Length", str(len(smuggled)))], (400,)),
            "CL twice": ([("Content-Length", "0"), ("Content-Length", "0")], (400,)),
            "CL list": ([("Content-Length", "0, 0")], (400,)),
            "CL conflicting": ([("Content-Length", "0"), ("Content-Length", str(len(smuggled)))], (400,)),
        }
        for name, (headers, statuses) in cases.items():
            with self.subTest(name):
                loc, victim = self.start_upload(), self.start_upload()
                conn = self.raw(timeout=10)
                conn.send(request_head("PATCH", self.path_of(loc), self.reg.host,
                                       [("Content-Type", "application/octet-stream")] + headers)
                          + smuggle(victim))
                resp = conn.read_response("PATCH", timeout=10)
                self.assert_refused_and_closed(conn, resp, statuses, name)
                conn.close()
                # The smuggled DELETE never ran, and the PATCH wrote nothing.
                st, h, b = http("GET", victim)
                self.assertEqual(st, 204, "%s: the smuggled DELETE ran: %d %r" % (name, st, b[:200]))
                rng, _ = self.upload_range(loc)
                self.assertEqual(rng, "0-0", name)
        self.assert_unchanged("after ambiguous framing")

    @skip_unless_berth
    def test_malformed_chunked_bodies_get_400(self):
        # These closed the connection without any response.
        cases = {
            "bad hex size": (b"zz\r\nhello\r\n0\r\n\r\n", False),
            "size of 2^72": (b"1000000000000000000\r\nhello\r\n0\r\n\r\n", False),
            "negative size": (b"-5\r\nhello\r\n0\r\n\r\n", False),
            "short chunk": (b"10\r\nhello\r\n0\r\n\r\n", True),
            "missing last chunk": (b"5\r\nhello\r\n", True),
            "junk extension": (b"5;\x01\x02\r\nhello\r\n0\r\n\r\n", False),
            "chunk longer than its size": (b"3\r\nhello\r\n0\r\n\r\n", False),
        }
        for name, (body, half_close) in cases.items():
            with self.subTest(name):
                loc = self.start_upload()
                conn = self.raw(timeout=10)
                conn.send(request_head("PATCH", self.path_of(loc), self.reg.host,
                                       [("Content-Type", "application/octet-stream")], chunked=True)
                          + body)
                if half_close:  # the body ends here: the server sees EOF mid-body
                    conn.sock.shutdown(socket.SHUT_WR)
                resp = conn.read_response("PATCH", timeout=10)
                self.assert_refused_and_closed(conn, resp, (400,), name)
                self.assertIn(b"chunk", resp[2], name)
                conn.close()
        self.assert_unchanged("after malformed chunked bodies")

    @skip_unless_berth
    def test_unknown_routes_and_methods_have_json_errors(self):
        for method, path, expected in (
                ("GET", "/v2/seed/app/unknown", (404,)),
                ("GET", "/v2/seed/app/blobs", (404, 405)),
                ("GET", "/notv2", (404,)),
                ("PATCH", "/v2/seed/app/manifests/v1", (404, 405)),
                ("POST", "/v2/seed/app/manifests/v1", (404, 405)),
                ("PATCH", "/v2/seed/app/tags/list", (404, 405)),
                ("PUT", "/v2/seed/app/blobs/" + self.seed["digest"], (404, 405))):
            st, h, b = http(method, self.url + path, body=b"x" if method in ("PUT", "PATCH", "POST") else None)
            self.assert_error(st, b, expected, context="%s %s" % (method, path))
        self.assert_unchanged("after unknown routes")


# ---------------------------------------------------------------------------
# Slow and stalled clients (Berth config: read/idle timeouts of 2 s)
# ---------------------------------------------------------------------------

@skip_unless_berth
class StalledClientTest(BadInputTestCase):
    READ_TIMEOUT = 2
    CONFIG = {"http": {"read_timeout_seconds": READ_TIMEOUT, "idle_timeout_seconds": 2}}
    SLACK = 10

    def stall(self, method, path, headers, length, send):
        """Sends a request announcing `length` body bytes, only `send` of them, then
        waits. Returns seconds until the server closed the connection."""
        conn = self.raw(timeout=30)
        self.assertTrue(conn.send(request_head(method, path, self.reg.host, headers, content_length=length)))
        self.assertTrue(conn.send(send))
        start = time.monotonic()
        closed = conn.wait_closed(self.READ_TIMEOUT + self.SLACK)
        self.assertIsNotNone(closed, "%s %s: server kept a stalled connection open for %ss"
                             % (method, path, self.READ_TIMEOUT + self.SLACK))
        self.assertGreaterEqual(time.monotonic() - start, self.READ_TIMEOUT * 0.5,
                                "closed too early for a read timeout")
        conn.close()
        return closed

    def test_stalled_bodies_are_cut_off_and_not_committed(self):
        size = 1 << 20
        data = blob_bytes(size, "stall")
        digest = sha256_digest(data)
        path_of = lambda loc: urllib.parse.urlsplit(loc).path + (
            "?" + urllib.parse.urlsplit(loc).query if urllib.parse.urlsplit(loc).query else "")
        octet = [("Content-Type", "application/octet-stream")]

        # 1. Monolithic POST stalls halfway.
        self.stall("POST", "/v2/%s/blobs/uploads/?digest=%s" % (SEED_REPO, digest), octet, size, data[:size // 2])
        self.assert_no_blob(SEED_REPO, digest)

        # 2. The closing PUT stalls halfway.
        loc = self.start_upload()
        self.stall("PUT", path_of(with_query(loc, digest=digest)), octet, size, data[:size // 2])
        self.assert_no_blob(SEED_REPO, digest)

        # 3. A manifest PUT stalls halfway.
        body = self.valid_manifest("stalled")
        self.stall("PUT", "/v2/%s/manifests/stalled" % SEED_REPO, [("Content-Type", OCI_MANIFEST)],
                   len(body), body[:len(body) // 2])
        self.assert_no_manifest(SEED_REPO, "stalled")
        self.assert_no_manifest(SEED_REPO, sha256_digest(body))
        self.assert_unchanged("after stalled bodies")

        # 4. A PATCH stalls halfway: the upload keeps a consistent prefix and resumes.
        loc = self.start_upload()
        st, h, b = self.patch(loc, data[:1000], "0-999")
        self.assertEqual(st, 202, b[:300])
        loc = absolute(self.url, h["Location"])
        self.stall("PATCH", path_of(loc), octet + [("Content-Range", "1000-%d" % (1000 + size // 2 - 1))],
                   size // 2, data[1000:1000 + size // 4])
        rng, loc = self.upload_range(loc)
        m = re.fullmatch(r"0-(\d+)", rng or "")
        self.assertIsNotNone(m, "Range after a stalled PATCH: %r" % rng)
        offset = int(m.group(1)) + 1
        self.assertTrue(1000 <= offset <= 1000 + size // 4, "offset %d after a stalled PATCH" % offset)
        self.assert_no_blob(SEED_REPO, digest)
        st, h, b = self.patch(loc, data[offset:], "%d-%d" % (offset, size - 1))
        self.assertEqual(st, 202, b[:300])
        st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]), digest=digest))
        self.assertEqual(st, 201, "resuming after a stalled PATCH: %r" % b[:300])
        st, h, b = http("GET", "%s/v2/%s/blobs/%s" % (self.url, SEED_REPO, digest))
        self.assertEqual(st, 200)
        self.assertTrue(b == data, "blob differs after resuming a stalled upload")
        self.assert_healthy()

    def test_stalled_headers_and_idle_connections_are_closed(self):
        # Headers that never finish.
        conn = self.raw()
        conn.send(b"GET /v2/ HTTP/1.1\r\nHost: %s\r\nX-Slow: " % self.reg.host.encode())
        self.assertIsNotNone(conn.wait_closed(self.READ_TIMEOUT + self.SLACK),
                             "a connection with unfinished headers stayed open")
        conn.close()
        # A keep-alive connection left idle after a response.
        conn = self.raw()
        conn.send(request_head("GET", "/v2/", self.reg.host))
        resp = conn.read_response("GET")
        self.assertIsNotNone(resp)
        self.assertEqual(resp[0], 200)
        start = time.monotonic()
        closed = conn.wait_closed(2 + self.SLACK)
        self.assertIsNotNone(closed, "an idle keep-alive connection stayed open")
        self.assertGreaterEqual(time.monotonic() - start, 1.0, "idle connection closed too early")
        conn.close()
        # Many stalled connections at once do not block other clients.
        conns = []
        for _ in range(50):
            c = self.raw()
            c.send(request_head("PUT", "/v2/%s/manifests/x" % SEED_REPO, self.reg.host,
                                [("Content-Type", OCI_MANIFEST)], content_length=1000) + b"{")
            conns.append(c)
        t0 = time.monotonic()
        self.assert_healthy()
        self.assertLess(time.monotonic() - t0, 2.0, "stalled clients delay others")
        for c in conns:
            self.assertIsNotNone(c.wait_closed(self.READ_TIMEOUT + self.SLACK))
            c.close()
        self.assert_unchanged("after stalled connections")


@skip_unless_berth
class HeaderDeadlineTest(BadInputTestCase):
    # Idle and read timeouts stay long: only the header deadline may cut these.
    HEADER_TIMEOUT = 2
    CONFIG = {"http": {"header_timeout_seconds": HEADER_TIMEOUT, "idle_timeout_seconds": 60}}
    SLACK = 8

    def test_header_deadline_cuts_silent_and_slowloris_connections(self):
        # A connection that never sends a byte was never closed at all.
        silent = self.raw()
        # One header byte a second kept a connection for the whole idle timeout.
        slow = self.raw()
        head = request_head("GET", "/v2/", self.reg.host, [("X-Slow", "s" * 100)])

        def trickle():
            for i in range(len(head) - 2):  # never the final CRLF
                yield head[i:i + 1]
                time.sleep(0.5)
        slow.send_in_background(trickle())
        for name, conn in (("silent", silent), ("slowloris", slow)):
            closed = conn.wait_closed(self.HEADER_TIMEOUT + self.SLACK)
            self.assertIsNotNone(closed, "%s connection still open after %ss"
                                 % (name, self.HEADER_TIMEOUT + self.SLACK))
            conn.close()
        # A prompt client is not affected, also past the deadline on a kept-alive connection.
        conn = self.raw()
        conn.send(request_head("GET", "/v2/", self.reg.host))
        self.assertEqual(conn.read_response("GET")[0], 200)
        time.sleep(self.HEADER_TIMEOUT + 1)
        conn.send(request_head("GET", "/v2/", self.reg.host))
        resp = conn.read_response("GET")
        self.assertIsNotNone(resp, "a kept-alive connection was cut by the header deadline")
        self.assertEqual(resp[0], 200)
        self.assert_unchanged("after slow headers")


# ---------------------------------------------------------------------------
# Configured limits
# ---------------------------------------------------------------------------

@skip_unless_berth
class ConfiguredLimitsTest(BadInputTestCase):
    CONFIG = {"limits": {"max_manifest_bytes": 65536}, "http": {"max_header_bytes": 8192}}

    def test_max_manifest_bytes(self):
        body = self.valid_manifest("m" * 70000)
        st, h, b = http("PUT", "%s/v2/%s/manifests/big" % (self.url, SEED_REPO),
                        headers={"Content-Type": OCI_MANIFEST}, body=body)
        self.assert_error(st, b, 413, context="70 KB manifest over a 64 KiB limit")
        self.assert_no_manifest(SEED_REPO, "big")
        self.assert_unchanged("after a manifest over the configured limit")
        body = self.valid_manifest("m" * 60000)
        st, h, b = http("PUT", "%s/v2/%s/manifests/fits" % (self.url, SEED_REPO),
                        headers={"Content-Type": OCI_MANIFEST}, body=body)
        self.assertEqual(st, 201, b[:300])

    def test_max_header_bytes(self):
        st, h, b = http("GET", self.url + "/v2/", headers={"X-Small": "s" * 4000})
        self.assertEqual(st, 200, "4 KB of headers under an 8 KiB limit")
        conn = self.raw()
        conn.send_in_background([request_head("GET", "/v2/", self.reg.host, [("X-Big", "b" * 10000)])])
        resp = conn.read_response("GET")
        self.assertIsNotNone(resp, "closed without a response")
        self.assert_error(resp[0], resp[2], (431, 400), context="10 KB header over an 8 KiB limit")
        self.assertIsNotNone(conn.wait_closed(10), "connection left open")
        self.assert_unchanged("after headers over the configured limit")


@skip_unless_berth
class NoCreateOnPushTest(RegistryTestCase):
    def test_push_to_missing_repository_is_name_unknown(self):
        reg = self.start_registry(create_on_push=False)
        data = b"blob for a repository that does not exist"
        digest = sha256_digest(data)
        st, h, b = http("POST", "%s/v2/nowhere/app/blobs/uploads/" % reg.url)
        self.assertEqual(st, 404, b[:300])
        self.assertEqual([e.get("code") for e in json_error_list(b)], ["NAME_UNKNOWN"])
        st, h, b = http("POST", with_query("%s/v2/nowhere/app/blobs/uploads/" % reg.url, digest=digest), body=data)
        self.assertEqual(st, 404, b[:300])
        st, h, b = http("PUT", "%s/v2/nowhere/app/manifests/v1" % reg.url,
                        headers={"Content-Type": OCI_MANIFEST},
                        body=json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                         "config": descriptor(OCI_CONFIG, b"{}"), "layers": []}))
        self.assertEqual(st, 404, b[:300])
        self.assertEqual([e.get("code") for e in json_error_list(b)], ["NAME_UNKNOWN"])
        st, h, b = http("GET", reg.url + "/v2/_catalog")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b).get("repositories") or [], [])
        self.assertFalse(os.path.exists(os.path.join(reg.data_dir, "blobs", "sha256", digest[7:9], digest[7:])))


if __name__ == "__main__":
    unittest.main()
