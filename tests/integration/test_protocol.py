"""OCI distribution-spec v1.1 endpoints (end-1 .. end-14) driven with raw HTTP.

Runs against Berth (default) or, with BERTH_TEST_TARGET=distribution, against
CNCF Distribution 2.8 to validate the choreography. Checks that Distribution 2.8
does not implement (monolithic POST, Content-Range enforcement, sorted and
paginated tag lists, tag deletion, the referrers API, sha512, index-child
protection, error messages) run only against Berth.
"""

import hashlib
import http.client as httpclient
import json
import os
import random
import re
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, IS_BERTH, OCI_CONFIG,
    OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, RegistryTestCase, http, json_error_list,
    sha256_digest, skip_unless_berth)

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = sha256_digest(EMPTY_JSON)
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


# ---------------------------------------------------------------------------
# Local helpers (raw HTTP; nothing here hides what goes over the wire)
# ---------------------------------------------------------------------------

def blob_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def absolute(base_url, location):
    """Location headers may be absolute or relative to the registry root."""
    return urllib.parse.urljoin(base_url + "/", location)


def with_query(url, **params):
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


def url_path(url):
    u = urllib.parse.urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def stream_request(method, url, headers, chunks, length, timeout=120):
    """Send a body produced chunk by chunk with an explicit Content-Length."""
    u = urllib.parse.urlsplit(url)
    conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.putrequest(method, url_path(url), skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        for c in chunks:
            conn.send(c)
        resp = conn.getresponse()
        return resp.status, resp.msg, resp.read()
    finally:
        conn.close()


def chunks_of(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def next_link(base_url, headers):
    """URL of the rel="next" Link, or None."""
    links = headers.get_all("Link") or []
    for value in links:
        m = LINK_NEXT_RE.search(value)
        if m:
            return absolute(base_url, m.group(1))
    return None


def descriptor(media_type, data):
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


class ProtocolTestCase(RegistryTestCase):
    """One registry per class; every test works in its own repositories."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = cls.start_class_registry()
        cls.url = cls.reg.url

    def repo(self, suffix=""):
        name = "proto/" + self._testMethodName[len("test_"):]
        return name + ("/" + suffix if suffix else "")

    # -- assertions --------------------------------------------------------
    def assert_error(self, status, body, expected_status, *codes, context=""):
        """An OCI error: the expected status and a JSON body
        {"errors":[{"code", "message"}]} whose code is one of `codes`."""
        msg = "%s: %d %r" % (context, status, body[:600])
        if isinstance(expected_status, (tuple, list, set)):
            self.assertIn(status, expected_status, msg)
        else:
            self.assertEqual(status, expected_status, msg)
        errors = json_error_list(body)
        self.assertTrue(errors, "no JSON error body; " + msg)
        if codes:
            self.assertIn(errors[0].get("code"), codes, msg)
        for e in errors:
            self.assertIsInstance(e.get("message"), str, msg)
            self.assertTrue(e.get("message").strip(), "empty error message; " + msg)
        return errors

    def assert_blob(self, repo, digest, data):
        st, h, b = http("GET", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 200, "GET blob %s in %s: %r" % (digest, repo, b[:300]))
        self.assertEqual(len(b), len(data))
        self.assertTrue(b == data, "blob %s content differs" % digest)
        self.assertEqual(h.get("Docker-Content-Digest"), digest)

    def assert_no_blob(self, repo, digest, *also):
        """The blob is not visible in repo: HEAD and GET 404 BLOB_UNKNOWN (or one of
        the codes in `also`, e.g. NAME_UNKNOWN for a repository that does not exist)."""
        st, _, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 404, "HEAD blob %s in %s" % (digest, repo))
        self.assertEqual(b, b"")
        st, _, b = http("GET", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assert_error(st, b, 404, "BLOB_UNKNOWN", *also, context="GET absent blob")

    def collect_pages(self, first_url, key, n):
        """Follows Link rel="next" from first_url; returns (items, page count)."""
        items, pages, url = [], 0, first_url
        while url:
            pages += 1
            self.assertLess(pages, 100, "pagination does not terminate")
            st, h, b = http("GET", url)
            self.assertEqual(st, 200, "%s: %r" % (url, b[:300]))
            page = json.loads(b).get(key) or []
            self.assertLessEqual(len(page), n, "page larger than n=%d at %s" % (n, url))
            items += page
            url = next_link(self.url, h)
            if url:
                self.assertEqual(len(page), n, "a Link to a next page after a short page")
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
                self.assertEqual(q.get("n"), [str(n)], "Link lost n: %s" % url)
                self.assertEqual(q.get("last"), [page[-1]], "Link last= is not the last item: %s" % url)
        return items, pages

    # -- client steps --------------------------------------------------------
    def start_upload(self, repo, query=""):
        st, h, b = http("POST", "%s/v2/%s/blobs/uploads/%s" % (self.url, repo, query))
        self.assertEqual(st, 202, "POST uploads: %r" % b[:300])
        self.assertTrue(h.get("Location"), "202 without Location")
        return absolute(self.url, h["Location"]), h

    def upload(self, repo, data, digest=None):
        """POST then PUT ?digest= with the whole body; returns the digest."""
        digest = digest or sha256_digest(data)
        loc, _ = self.start_upload(repo)
        st, h, b = http("PUT", with_query(loc, digest=digest),
                        headers={"Content-Type": "application/octet-stream"}, body=data)
        self.assertEqual(st, 201, "PUT upload: %r" % b[:300])
        return digest

    def put_manifest(self, repo, ref, data, media_type, expect=201):
        if isinstance(data, dict):
            data = json.dumps(data, indent=1).encode()
        st, h, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, repo, ref),
                        headers={"Content-Type": media_type}, body=data)
        if expect is not None:
            self.assertEqual(st, expect, "PUT manifest %s:%s: %r" % (repo, ref, b[:500]))
        return st, h, b

    def push_image(self, repo, tag=None, docker=False, seed=0, layers=1, extra=None):
        """Pushes config + layers + manifest; returns (digest, manifest bytes, media type)."""
        cfg = json.dumps({"architecture": "amd64", "os": "linux",
                          "rootfs": {"type": "layers", "diff_ids": []},
                          "seed": "%s-%s" % (repo, seed)}).encode()
        self.upload(repo, cfg)
        layer_descs = []
        for i in range(layers):
            data = blob_bytes(1000 + 17 * i, "%s-%s-%d" % (repo, seed, i))
            self.upload(repo, data)
            layer_descs.append(descriptor(DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP, data))
        mt = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest = {"schemaVersion": 2, "mediaType": mt,
                    "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, cfg),
                    "layers": layer_descs}
        if extra:
            manifest.update(extra)
        # Deliberately non-canonical formatting: the registry must keep the bytes.
        body = json.dumps(manifest, indent=3, separators=(",", " :  ")).encode() + b"\n"
        digest = sha256_digest(body)
        st, h, b = self.put_manifest(repo, tag or digest, body, mt)
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        return digest, body, mt

    def get_manifest(self, repo, ref, accept=(OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST),
                     method="GET"):
        return http(method, "%s/v2/%s/manifests/%s" % (self.url, repo, ref),
                    headers=[("Accept", a) for a in accept])

    def tags(self, repo):
        st, h, b = http("GET", "%s/v2/%s/tags/list" % (self.url, repo))
        self.assertEqual(st, 200, b[:300])
        doc = json.loads(b)
        self.assertEqual(doc.get("name"), repo)
        return doc.get("tags") or []

    def upload_status(self, loc):
        st, h, b = http("GET", loc)
        self.assertEqual(st, 204, "GET upload status: %r" % b[:300])
        self.assertTrue(h.get("Location"), "upload status without Location")
        return h


# ---------------------------------------------------------------------------
# end-1: API version check
# ---------------------------------------------------------------------------

class BaseEndpointTest(ProtocolTestCase):
    def test_v2_base_answers_200_with_api_version(self):
        st, h, b = http("GET", self.url + "/v2/")
        self.assertEqual(st, 200, b[:300])
        self.assertEqual(h.get("Docker-Distribution-Api-Version"), "registry/2.0")
        st, h, b = http("HEAD", self.url + "/v2/")
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Docker-Distribution-Api-Version"), "registry/2.0")

    def test_unknown_manifest_and_repository(self):
        repo = self.repo()
        st, _, b = self.get_manifest(repo, "nosuchtag")
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN", context="GET unknown tag")
        self.push_image(repo, "v1")
        st, _, b = self.get_manifest(repo, "nosuchtag")
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET unknown tag")
        st, _, b = self.get_manifest(repo, "sha256:" + "0" * 64)
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET unknown digest")
        st, _, b = self.get_manifest(repo, "nosuchtag", method="HEAD")
        self.assertEqual(st, 404)
        self.assertEqual(b, b"")

    def test_manifest_with_invalid_reference_is_unknown_on_reads(self):
        # The OCI conformance suite reads ".INVALID_MANIFEST_NAME" and expects 404: no
        # manifest can be stored under it. A push under it stays TAG_INVALID.
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "v1")
        for ref in (".INVALID_MANIFEST_NAME", "-lead", "x" * 129):
            st, _, b = self.get_manifest(repo, ref)
            self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET manifest %r" % ref)
            st, _, b = self.get_manifest(repo, ref, method="HEAD")
            self.assertEqual(st, 404, "HEAD manifest %r" % ref)
            self.assertEqual(b, b"")
            st, _, b = http("PUT", "%s/v2/%s/manifests/%s" % (self.url, repo, ref),
                            headers={"Content-Type": mt}, body=body)
            self.assert_error(st, b, 400, "TAG_INVALID", context="PUT manifest %r" % ref)


# ---------------------------------------------------------------------------
# end-4a/b, end-5, end-6, end-13, end-14: uploads
# ---------------------------------------------------------------------------

class BlobUploadTest(ProtocolTestCase):
    @skip_unless_berth
    def test_monolithic_post_with_digest(self):
        repo = self.repo()
        data = blob_bytes(300_000, "mono")
        digest = sha256_digest(data)
        st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, repo), digest=digest),
                        headers={"Content-Type": "application/octet-stream"}, body=data)
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        loc = absolute(self.url, h.get("Location") or "")
        self.assertEqual(urllib.parse.urlsplit(loc).path, "/v2/%s/blobs/%s" % (repo, digest))
        self.assert_blob(repo, digest, data)
        # The Location is where the blob can be fetched.
        st, _, b = http("GET", loc)
        self.assertEqual(st, 200)
        self.assertTrue(b == data)

    @skip_unless_berth
    def test_monolithic_post_streamed_large_body(self):
        repo = self.repo()
        data = blob_bytes(8 << 20, "mono-large")
        digest = sha256_digest(data)
        st, h, b = stream_request(
            "POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, repo), digest=digest),
            [("Content-Type", "application/octet-stream")], chunks_of(data, 1 << 20), len(data))
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assert_blob(repo, digest, data)

    def test_post_then_put_with_body(self):
        repo = self.repo()
        data = blob_bytes(5 << 20, "post-put")
        digest = sha256_digest(data)
        loc, h = self.start_upload(repo)
        self.assertIn("/v2/%s/blobs/uploads/" % repo, loc)
        st, h, b = stream_request("PUT", with_query(loc, digest=digest),
                                  [("Content-Type", "application/octet-stream")],
                                  chunks_of(data, 1 << 20), len(data))
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assertEqual(urllib.parse.urlsplit(absolute(self.url, h["Location"])).path,
                         "/v2/%s/blobs/%s" % (repo, digest))
        self.assert_blob(repo, digest, data)

    def test_chunked_with_content_range(self):
        repo = self.repo()
        data = blob_bytes(3 * (1 << 20) + 12345, "chunked-cr")
        digest = sha256_digest(data)
        loc, _ = self.start_upload(repo)
        bounds = [0, 1 << 20, 2 << 20, len(data)]
        for start, end in zip(bounds, bounds[1:]):
            st, h, b = stream_request(
                "PATCH", loc,
                [("Content-Type", "application/octet-stream"),
                 ("Content-Range", "%d-%d" % (start, end - 1))],
                chunks_of(data[start:end], 256 << 10), end - start)
            self.assertEqual(st, 202, "PATCH %d-%d: %r" % (start, end - 1, b[:300]))
            self.assertEqual(h.get("Range"), "0-%d" % (end - 1))
            self.assertTrue(h.get("Location"))
            loc = absolute(self.url, h["Location"])
            # end-13: the status of the upload
            sh = self.upload_status(loc)
            self.assertEqual(sh.get("Range"), "0-%d" % (end - 1))
            loc = absolute(self.url, sh["Location"])
        # The blob is not visible before the closing PUT.
        self.assert_no_blob(repo, digest)
        st, h, b = http("PUT", with_query(loc, digest=digest), headers={"Content-Length": "0"})
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assert_blob(repo, digest, data)

    def test_chunked_without_content_range_last_chunk_in_put(self):
        repo = self.repo()
        data = blob_bytes(2 * (1 << 20) + 999, "chunked-nocr")
        digest = sha256_digest(data)
        loc, _ = self.start_upload(repo)
        pieces = [data[:700_000], data[700_000:1_900_000]]
        offset = 0
        for piece in pieces:
            st, h, b = stream_request("PATCH", loc, [("Content-Type", "application/octet-stream")],
                                      chunks_of(piece, 64 << 10), len(piece))
            self.assertEqual(st, 202, b[:300])
            offset += len(piece)
            self.assertEqual(h.get("Range"), "0-%d" % (offset - 1))
            loc = absolute(self.url, h["Location"])
        self.assertEqual(self.upload_status(loc).get("Range"), "0-%d" % (offset - 1))
        rest = data[offset:]
        st, h, b = http("PUT", with_query(loc, digest=digest),
                        headers={"Content-Type": "application/octet-stream"}, body=rest)
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assert_blob(repo, digest, data)

    @skip_unless_berth
    def test_out_of_order_overlapping_and_gapped_chunks_are_416(self):
        repo = self.repo()
        data = blob_bytes(100, "416")
        digest = sha256_digest(data)
        loc, _ = self.start_upload(repo)
        octet = ("Content-Type", "application/octet-stream")
        # A chunk that does not start at 0 on a fresh upload: out of order.
        st, h, b = http("PATCH", loc, headers=[octet, ("Content-Range", "10-19")], body=data[10:20])
        self.assert_error(st, b, 416, context="first chunk at 10")
        st, h, b = http("PATCH", loc, headers=[octet, ("Content-Range", "0-39")], body=data[:40])
        self.assertEqual(st, 202, b[:300])
        self.assertEqual(h.get("Range"), "0-39")
        loc = absolute(self.url, h["Location"])
        for rng, piece, what in (("30-49", data[30:50], "overlapping"),
                                 ("0-39", data[0:40], "repeated"),
                                 ("50-59", data[50:60], "gapped"),
                                 ("41-60", data[41:61], "gap of one byte")):
            st, h, b = http("PATCH", loc, headers=[octet, ("Content-Range", rng)], body=piece)
            self.assert_error(st, b, 416, context="%s chunk %s" % (what, rng))
            # The upload is unchanged.
            self.assertEqual(self.upload_status(loc).get("Range"), "0-39", "after %s chunk" % what)
        st, h, b = http("PATCH", loc, headers=[octet, ("Content-Range", "40-99")], body=data[40:])
        self.assertEqual(st, 202, b[:300])
        self.assertEqual(h.get("Range"), "0-99")
        loc = absolute(self.url, h["Location"])
        st, h, b = http("PUT", with_query(loc, digest=digest))
        self.assertEqual(st, 201, b[:300])
        self.assert_blob(repo, digest, data)

    def test_delete_upload_then_unknown(self):
        repo = self.repo()
        loc, _ = self.start_upload(repo)
        st, h, b = http("PATCH", loc, headers={"Content-Type": "application/octet-stream"},
                        body=b"some bytes")
        self.assertEqual(st, 202, b[:300])
        loc = absolute(self.url, h["Location"])
        st, h, b = http("DELETE", loc)
        self.assertEqual(st, 204, b[:300])
        st, h, b = http("GET", loc)
        self.assert_error(st, b, 404, "BLOB_UPLOAD_UNKNOWN", context="status of a deleted upload")
        st, h, b = http("PATCH", loc, headers={"Content-Type": "application/octet-stream"}, body=b"x")
        self.assert_error(st, b, 404, "BLOB_UPLOAD_UNKNOWN", context="PATCH a deleted upload")
        st, h, b = http("PUT", with_query(loc, digest=sha256_digest(b"some bytes")))
        self.assert_error(st, b, 404, "BLOB_UPLOAD_UNKNOWN", context="PUT a deleted upload")
        st, h, b = http("DELETE", loc)
        self.assert_error(st, b, 404, "BLOB_UPLOAD_UNKNOWN", context="DELETE a deleted upload")
        self.assert_no_blob(repo, sha256_digest(b"some bytes"))

    def test_upload_status_reports_range_and_location(self):
        repo = self.repo()
        loc, h = self.start_upload(repo)
        if IS_BERTH:
            upload_id = urllib.parse.urlsplit(loc).path.rstrip("/").rsplit("/", 1)[1]
            self.assertRegex(upload_id, r"^[0-9a-f]{32}$")
        st, h, b = http("PATCH", loc, headers={"Content-Type": "application/octet-stream"},
                        body=b"x" * 4096)
        self.assertEqual(st, 202)
        loc = absolute(self.url, h["Location"])
        sh = self.upload_status(loc)
        self.assertEqual(sh.get("Range"), "0-4095")
        self.assertIn("/v2/%s/blobs/uploads/" % repo, absolute(self.url, sh["Location"]))
        http("DELETE", absolute(self.url, sh["Location"]))


# ---------------------------------------------------------------------------
# end-11: cross-repository mount
# ---------------------------------------------------------------------------

class MountTest(ProtocolTestCase):
    def test_mount_from_repo_that_has_the_blob(self):
        src, dst = self.repo("src"), self.repo("dst")
        data = blob_bytes(50_000, "mount")
        digest = self.upload(src, data)
        self.assert_no_blob(dst, digest, "NAME_UNKNOWN")  # dst does not exist yet
        st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, dst),
                                           mount=digest, **{"from": src}))
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assertEqual(urllib.parse.urlsplit(absolute(self.url, h["Location"])).path,
                         "/v2/%s/blobs/%s" % (dst, digest))
        st, h, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, dst, digest))
        self.assertEqual(st, 200)
        self.assert_blob(dst, digest, data)
        self.assert_blob(src, digest, data)

    def test_mount_when_source_lacks_blob_starts_upload(self):
        src, dst = self.repo("src"), self.repo("dst")
        self.upload(src, b"something else in the source")
        data = blob_bytes(20_000, "mount-miss")
        digest = sha256_digest(data)
        for source in (src, self.repo("nonexistent")):
            st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, dst),
                                               mount=digest, **{"from": source}))
            self.assertEqual(st, 202, b[:300])
            loc = absolute(self.url, h["Location"])
            self.assertIn("/v2/%s/blobs/uploads/" % dst, loc)
            self.assert_no_blob(dst, digest, "NAME_UNKNOWN")
        # The 202 is a normal upload session: finish it.
        st, h, b = http("PUT", with_query(loc, digest=digest),
                        headers={"Content-Type": "application/octet-stream"}, body=data)
        self.assertEqual(st, 201, b[:300])
        self.assert_blob(dst, digest, data)
        self.assert_no_blob(src, digest)


# ---------------------------------------------------------------------------
# end-2, end-10: blobs
# ---------------------------------------------------------------------------

class BlobReadTest(ProtocolTestCase):
    def test_get_and_head_blob(self):
        repo = self.repo()
        data = blob_bytes(123_457, "get-head")
        digest = self.upload(repo, data)
        st, h, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 200)
        self.assertEqual(b, b"")
        self.assertEqual(h.get("Content-Length"), str(len(data)))
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        st, h, b = http("GET", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Content-Length"), str(len(data)))
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        self.assertEqual(sha256_digest(b), digest)

    def test_range_requests(self):
        repo = self.repo()
        data = blob_bytes(1000, "range")
        digest = self.upload(repo, data)
        url = "%s/v2/%s/blobs/%s" % (self.url, repo, digest)
        st, h, b = http("GET", url, headers={"Range": "bytes=10-19"})
        self.assertEqual(st, 206, b[:300])
        self.assertEqual(b, data[10:20])
        self.assertEqual(h.get("Content-Range"), "bytes 10-19/1000")
        self.assertEqual(h.get("Content-Length"), "10")
        st, h, b = http("GET", url, headers={"Range": "bytes=-5"})
        self.assertEqual(st, 206, b[:300])
        self.assertEqual(b, data[-5:])
        self.assertEqual(h.get("Content-Range"), "bytes 995-999/1000")
        st, h, b = http("GET", url, headers={"Range": "bytes=990-"})
        self.assertEqual(st, 206, b[:300])
        self.assertEqual(b, data[990:])
        self.assertEqual(h.get("Content-Range"), "bytes 990-999/1000")

    @skip_unless_berth  # Distribution 2.8 sends a broken body for an unsatisfiable range
    def test_unsatisfiable_range_is_416(self):
        repo = self.repo()
        data = blob_bytes(1000, "range416")
        digest = self.upload(repo, data)
        url = "%s/v2/%s/blobs/%s" % (self.url, repo, digest)
        for rng in ("bytes=1000-1010", "bytes=5000-"):
            st, h, b = http("GET", url, headers={"Range": rng})
            self.assertEqual(st, 416, "%s: %r" % (rng, b[:300]))
            cr = h.get("Content-Range")
            if cr is not None:
                self.assertEqual(cr, "bytes */1000")
        self.assert_blob(repo, digest, data)

    def test_blob_of_another_repository_is_not_visible(self):
        a, b_repo = self.repo("a"), self.repo("b")
        data = blob_bytes(4096, "isolation")
        digest = self.upload(a, data)
        self.upload(b_repo, b"b has something else")
        self.assert_no_blob(b_repo, digest)
        self.assert_no_blob(self.repo("neverpushed"), digest, "NAME_UNKNOWN")
        self.assert_blob(a, digest, data)

    def test_delete_blob(self):
        repo = self.repo()
        data = blob_bytes(777, "delete-blob")
        digest = self.upload(repo, data)
        st, h, b = http("DELETE", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 202, b[:300])
        self.assert_no_blob(repo, digest)
        st, h, b = http("DELETE", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assert_error(st, b, 404, "BLOB_UNKNOWN", context="DELETE a deleted blob")
        # It can be pushed again.
        self.upload(repo, data)
        self.assert_blob(repo, digest, data)

    @skip_unless_berth  # Distribution 2.8 stores sha512 uploads under their sha256
    def test_sha512_blobs(self):
        repo = self.repo()
        data = blob_bytes(200_000, "sha512")
        digest = "sha512:" + hashlib.sha512(data).hexdigest()
        self.upload(repo, data, digest=digest)
        self.assert_blob(repo, digest, data)
        st, h, b = http("HEAD", "%s/v2/%s/blobs/%s" % (self.url, repo, digest))
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Content-Length"), str(len(data)))
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        # Chunked, too.
        data2 = blob_bytes(70_000, "sha512-chunked")
        digest2 = "sha512:" + hashlib.sha512(data2).hexdigest()
        loc, _ = self.start_upload(repo)
        st, h, b = http("PATCH", loc, headers={"Content-Type": "application/octet-stream",
                                                "Content-Range": "0-%d" % (len(data2) - 1)},
                        body=data2)
        self.assertEqual(st, 202, b[:300])
        st, h, b = http("PUT", with_query(absolute(self.url, h["Location"]), digest=digest2))
        self.assertEqual(st, 201, b[:300])
        self.assertEqual(h.get("Docker-Content-Digest"), digest2)
        self.assert_blob(repo, digest2, data2)
        # The sha256 of the same bytes is a different, unknown blob.
        self.assert_no_blob(repo, sha256_digest(data2))
        # Monolithic with a sha512 digest.
        data3 = blob_bytes(1234, "sha512-mono")
        digest3 = "sha512:" + hashlib.sha512(data3).hexdigest()
        st, h, b = http("POST", with_query("%s/v2/%s/blobs/uploads/" % (self.url, repo), digest=digest3),
                        headers={"Content-Type": "application/octet-stream"}, body=data3)
        self.assertEqual(st, 201, b[:300])
        self.assert_blob(repo, digest3, data3)


# ---------------------------------------------------------------------------
# end-3, end-7: manifests
# ---------------------------------------------------------------------------

class ManifestTest(ProtocolTestCase):
    def test_manifest_by_tag_and_digest_bytes_kept(self):
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "v1", layers=2)
        for ref in ("v1", digest):
            st, h, b = self.get_manifest(repo, ref)
            self.assertEqual(st, 200, b[:300])
            self.assertTrue(b == body, "manifest bytes were rewritten (ref %s)" % ref)
            self.assertEqual(h.get("Docker-Content-Digest"), digest)
            self.assertEqual(h.get("Content-Type"), mt)
            self.assertEqual(h.get("Content-Length"), str(len(body)))

    def test_pulls_right_after_a_push_or_delete_see_it(self):
        """Pulled manifests may be cached, but never past a PUT or DELETE that was
        answered: each pull below comes right after the write it must see."""
        repo = self.repo()
        a_digest, a_body, mt = self.push_image(repo, "t", seed=1)
        b_digest, b_body, _ = self.push_image(repo, None, seed=2)
        for _ in range(3):
            for ref, body in (("t", a_body), (a_digest, a_body), (b_digest, b_body)):
                for method in ("GET", "HEAD"):
                    st, h, b = self.get_manifest(repo, ref, method=method)
                    self.assertEqual(st, 200, "%s %s: %r" % (method, ref, b[:300]))
                    self.assertEqual(h.get("Docker-Content-Digest"), sha256_digest(body))
            # Move the tag back and forth.
            self.put_manifest(repo, "t", b_body, mt)
            st, h, b = self.get_manifest(repo, "t")
            self.assertEqual((st, b), (200, b_body), "GET t after moving it to b")
            st, h, b = self.get_manifest(repo, "t", method="HEAD")
            self.assertEqual(h.get("Docker-Content-Digest"), b_digest)
            self.put_manifest(repo, "t", a_body, mt)
            st, h, b = self.get_manifest(repo, "t")
            self.assertEqual((st, b), (200, a_body), "GET t after moving it back to a")
        st, h, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, a_digest))
        self.assertEqual(st, 202, b[:300])
        for ref in ("t", a_digest):
            st, _, b = self.get_manifest(repo, ref)
            self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET %s after delete" % ref)
        st, _, b = self.get_manifest(repo, b_digest)
        self.assertEqual((st, b), (200, b_body))

    def test_put_manifest_response_headers(self):
        repo = self.repo()
        cfg = b'{"architecture":"arm64","os":"linux"}'
        layer = blob_bytes(2048, "put-headers")
        self.upload(repo, cfg)
        self.upload(repo, layer)
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor(OCI_CONFIG, cfg),
                           "layers": [descriptor(OCI_LAYER_GZIP, layer)]}).encode()
        digest = sha256_digest(body)
        st, h, b = self.put_manifest(repo, "t1", body, OCI_MANIFEST)
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        loc = absolute(self.url, h.get("Location") or "")
        self.assertIn("/v2/%s/manifests/" % repo, loc)
        st, h2, b2 = http("GET", loc, headers={"Accept": OCI_MANIFEST})
        self.assertEqual(st, 200)
        self.assertEqual(b2, body)
        # PUT by digest.
        st, h, b = self.put_manifest(repo, digest, body, OCI_MANIFEST)
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        # Re-PUT the same tag: idempotent.
        self.put_manifest(repo, "t1", body, OCI_MANIFEST)
        self.assertEqual(sorted(self.tags(repo)), ["t1"])

    def test_head_manifest(self):
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "v1", docker=True)
        for ref in ("v1", digest):
            st, h, b = self.get_manifest(repo, ref, method="HEAD")
            self.assertEqual(st, 200)
            self.assertEqual(b, b"")
            self.assertEqual(h.get("Content-Length"), str(len(body)))
            self.assertEqual(h.get("Docker-Content-Digest"), digest)
            self.assertEqual(h.get("Content-Type"), mt)

    def test_content_negotiation_with_separate_accept_lines(self):
        repo = self.repo()
        d_digest, d_body, _ = self.push_image(repo, "docker", docker=True, seed=1)
        o_digest, o_body, _ = self.push_image(repo, "oci", seed=2)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [dict(descriptor(OCI_MANIFEST, o_body),
                                    platform={"architecture": "amd64", "os": "linux"})]}
        i_body = json.dumps(index).encode()
        self.put_manifest(repo, "index", i_body, OCI_INDEX)
        # docker sends one Accept line per type, in any order; the matching one last.
        orders = [
            (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST),
            (DOCKER_MANIFEST, DOCKER_LIST, OCI_INDEX, OCI_MANIFEST),
            (DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX),
        ]
        expected = {"docker": (DOCKER_MANIFEST, d_body, d_digest),
                    "oci": (OCI_MANIFEST, o_body, o_digest),
                    "index": (OCI_INDEX, i_body, sha256_digest(i_body))}
        for accept in orders:
            for tag, (mt, body, digest) in expected.items():
                st, h, b = self.get_manifest(repo, tag, accept=accept)
                self.assertEqual(st, 200, "%s with Accept lines %s: %r" % (tag, accept, b[:300]))
                self.assertEqual(h.get("Content-Type"), mt, "%s with %s" % (tag, accept))
                self.assertEqual(b, body)
                self.assertEqual(h.get("Docker-Content-Digest"), digest)
        # One Accept line listing several types, with parameters.
        st, h, b = http("GET", "%s/v2/%s/manifests/docker" % (self.url, repo),
                        headers={"Accept": "%s;q=0.5, %s, %s;q=0.9" % (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX)})
        self.assertEqual(st, 200, b[:300])
        self.assertEqual(h.get("Content-Type"), DOCKER_MANIFEST)
        self.assertEqual(b, d_body)

    def test_schema1_manifest_refused(self):
        repo = self.repo()
        layer = blob_bytes(100, "schema1")
        ld = self.upload(repo, layer)
        s1 = {"schemaVersion": 1, "name": repo, "tag": "s1", "architecture": "amd64",
              "fsLayers": [{"blobSum": ld}], "history": [{"v1Compatibility": "{\"id\":\"x\"}"}]}
        body = json.dumps(s1, indent=3).encode()
        for ct in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, "application/json"):
            st, h, b = self.put_manifest(repo, "s1", body, ct, expect=None)
            self.assertGreaterEqual(st, 400, "schema 1 accepted with %s" % ct)
            self.assertLess(st, 500, "schema 1 with %s: %d %r" % (ct, st, b[:300]))
            errors = self.assert_error(st, b, (400, 415), "MANIFEST_INVALID", "UNSUPPORTED",
                                       context="schema 1 as %s" % ct)
            if IS_BERTH:
                text = " ".join(str(e.get("message", "")) for e in errors)
                self.assertRegex(text, re.compile(r"schema[\s_-]*(version)?[\s:=]*1\b", re.I),
                                 "error message does not mention schema 1: %r" % b[:300])
        st, _, b = self.get_manifest(repo, "s1")
        self.assertEqual(st, 404)
        st, _, b = self.get_manifest(repo, sha256_digest(body))
        self.assertEqual(st, 404)


# ---------------------------------------------------------------------------
# end-8 and _catalog: listing
# ---------------------------------------------------------------------------

class ListingTest(ProtocolTestCase):
    TAGS = ["b", "a", "c10", "c2", "latest", "1.0", "Z-upper", "v1.2.3", "_under", "a-", "a.b", "zz"]

    def push_tags(self, repo):
        digest, body, mt = self.push_image(repo, None)
        for t in self.TAGS:
            self.put_manifest(repo, t, body, mt)
        return digest

    def test_tags_list_contains_all_tags(self):
        repo = self.repo()
        self.push_tags(repo)
        self.assertEqual(sorted(self.tags(repo)), sorted(self.TAGS))

    @skip_unless_berth  # Distribution 2.8: unsorted, no n/last on tags
    def test_tags_list_sorted_and_paginated(self):
        repo = self.repo()
        self.push_tags(repo)
        expected = sorted(self.TAGS)
        self.assertEqual(self.tags(repo), expected)
        for n in (1, 2, 5, len(expected), len(expected) + 3):
            items, pages = self.collect_pages("%s/v2/%s/tags/list?n=%d" % (self.url, repo, n), "tags", n)
            self.assertEqual(items, expected, "n=%d" % n)
        # First page has a Link header of the documented form.
        st, h, b = http("GET", "%s/v2/%s/tags/list?n=2" % (self.url, repo))
        self.assertEqual(json.loads(b)["tags"], expected[:2])
        link = h.get("Link")
        self.assertIsNotNone(link, "no Link header with n=2")
        self.assertRegex(link, r'^<[^>]*/v2/%s/tags/list\?[^>]*>; rel="next"$' % re.escape(repo))
        # last= alone
        st, h, b = http("GET", "%s/v2/%s/tags/list?last=%s" % (self.url, repo, expected[3]))
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b)["tags"], expected[4:])
        st, h, b = http("GET", "%s/v2/%s/tags/list?n=3&last=%s" % (self.url, repo, "c"))
        self.assertEqual(json.loads(b)["tags"], [t for t in expected if t > "c"][:3])
        st, h, b = http("GET", "%s/v2/%s/tags/list?last=%s" % (self.url, repo, expected[-1]))
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b).get("tags") or [], [])
        self.assertIsNone(h.get("Link"))

    def test_tags_list_right_after_a_push_or_delete_sees_it(self):
        """Tag lists may be cached, but never past a PUT or DELETE that was answered."""
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "one")
        for _ in range(2):  # the second read of each state may come from the cache
            self.assertEqual(sorted(self.tags(repo)), ["one"])
        self.put_manifest(repo, "two", body, mt)
        for _ in range(2):
            self.assertEqual(sorted(self.tags(repo)), ["one", "two"])
        st, _, b = http("DELETE", "%s/v2/%s/manifests/one" % (self.url, repo))
        if st == 202:  # Distribution 2.8 cannot delete a tag (405): nothing more to see
            for _ in range(2):
                self.assertEqual(sorted(self.tags(repo)), ["two"])

    def test_tags_list_unknown_repository(self):
        st, h, b = http("GET", "%s/v2/%s/tags/list" % (self.url, self.repo("nothing")))
        self.assert_error(st, b, 404, "NAME_UNKNOWN", context="tags of an unknown repository")



class CatalogTest(ProtocolTestCase):
    """Its own registry (setUpClass), so the catalog holds only these repositories."""

    def test_catalog_paginated(self):
        repos = ["cat/zeta", "cat/alpha", "cat/mid/deep", "cat/beta", "other", "cat/alpha2"]
        if IS_BERTH:
            # Byte order puts "cat-x" before "cat/..."; Distribution orders by path segment.
            repos.append("cat-x")
        for r in repos:
            self.push_image(r, "v1")
        expected = sorted(repos)
        st, h, b = http("GET", self.url + "/v2/_catalog")
        self.assertEqual(st, 200, b[:300])
        self.assertEqual(json.loads(b)["repositories"], expected)
        for n in (1, 2, 3, len(expected), len(expected) + 1):
            items, _ = self.collect_pages("%s/v2/_catalog?n=%d" % (self.url, n), "repositories", n)
            self.assertEqual(items, expected, "n=%d" % n)
        st, h, b = http("GET", self.url + "/v2/_catalog?n=2")
        self.assertEqual(json.loads(b)["repositories"], expected[:2])
        self.assertRegex(h.get("Link") or "", r'^<[^>]*/v2/_catalog\?[^>]*>; rel="next"$')
        st, h, b = http("GET", self.url + "/v2/_catalog?n=2&last=cat/beta")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(b)["repositories"], [r for r in expected if r > "cat/beta"][:2])


# ---------------------------------------------------------------------------
# end-12: referrers
# ---------------------------------------------------------------------------

@skip_unless_berth  # Distribution 2.8 has no referrers API
class ReferrersTest(ProtocolTestCase):
    SBOM = "application/vnd.example.sbom.v1"
    SIG = "application/vnd.example.signature.v1"
    CFG_TYPE = "application/vnd.example.config.v1+json"

    def push_artifact(self, repo, subject, artifact_type=None, config_type=OCI_EMPTY, seed="a",
                      annotations=None):
        if config_type == OCI_EMPTY:
            cfg = EMPTY_JSON
        else:
            cfg = json.dumps({"kind": seed}).encode()
        self.upload(repo, cfg)
        payload = ("payload %s" % seed).encode()
        self.upload(repo, payload)
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": descriptor(config_type, cfg),
             "layers": [descriptor("application/vnd.example.payload", payload)],
             "subject": subject}
        if artifact_type:
            m["artifactType"] = artifact_type
        if annotations:
            m["annotations"] = annotations
        body = json.dumps(m).encode()
        digest = sha256_digest(body)
        st, h, b = self.put_manifest(repo, digest, body, OCI_MANIFEST)
        return digest, body, h

    def referrers(self, repo, digest, artifact_type=None):
        url = "%s/v2/%s/referrers/%s" % (self.url, repo, digest)
        if artifact_type:
            url = with_query(url, artifactType=artifact_type)
        st, h, b = http("GET", url)
        self.assertEqual(st, 200, "%s: %r" % (url, b[:300]))
        self.assertTrue((h.get("Content-Type") or "").startswith(OCI_INDEX), h.get("Content-Type"))
        doc = json.loads(b)
        self.assertEqual(doc.get("schemaVersion"), 2)
        self.assertEqual(doc.get("mediaType"), OCI_INDEX)
        self.assertIsInstance(doc.get("manifests"), list)
        return doc["manifests"], h

    def test_referrers(self):
        repo = self.repo()
        s_digest, s_body, s_mt = self.push_image(repo, "v1")
        subject = {"mediaType": s_mt, "digest": s_digest, "size": len(s_body)}
        a1, a1_body, h1 = self.push_artifact(repo, subject, self.SBOM, seed="sbom",
                                             annotations={"org.example.kind": "sbom"})
        self.assertEqual(h1.get("OCI-Subject"), s_digest)
        a2, a2_body, h2 = self.push_artifact(repo, subject, self.SIG, seed="sig")
        self.assertEqual(h2.get("OCI-Subject"), s_digest)
        # No artifactType: the config media type is the artifact type.
        a3, a3_body, h3 = self.push_artifact(repo, subject, None, config_type=self.CFG_TYPE, seed="cfg")
        self.assertEqual(h3.get("OCI-Subject"), s_digest)

        refs, h = self.referrers(repo, s_digest)
        by_digest = {d["digest"]: d for d in refs}
        self.assertEqual(set(by_digest), {a1, a2, a3})
        self.assertEqual(by_digest[a1]["artifactType"], self.SBOM)
        self.assertEqual(by_digest[a1]["mediaType"], OCI_MANIFEST)
        self.assertEqual(by_digest[a1]["size"], len(a1_body))
        self.assertEqual(by_digest[a1].get("annotations"), {"org.example.kind": "sbom"})
        self.assertEqual(by_digest[a2]["artifactType"], self.SIG)
        self.assertEqual(by_digest[a3]["artifactType"], self.CFG_TYPE)
        self.assertIsNone(h.get("OCI-Filters-Applied"))

        refs, h = self.referrers(repo, s_digest, artifact_type=self.SBOM)
        self.assertEqual([d["digest"] for d in refs], [a1])
        self.assertEqual((h.get("OCI-Filters-Applied") or "").strip(), "artifactType")
        refs, h = self.referrers(repo, s_digest, artifact_type="application/vnd.example.none")
        self.assertEqual(refs, [])
        self.assertEqual((h.get("OCI-Filters-Applied") or "").strip(), "artifactType")

        # The referrers are manifests in their own right.
        st, _, b = self.get_manifest(repo, a1)
        self.assertEqual(st, 200)
        self.assertEqual(b, a1_body)

        # Deleting a referrer removes it from the list.
        st, _, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, a2))
        self.assertEqual(st, 202, b[:300])
        refs, _ = self.referrers(repo, s_digest)
        self.assertEqual({d["digest"] for d in refs}, {a1, a3})

        # Another repository does not see them.
        other = self.repo("other")
        self.push_image(other, "v1", seed=9)
        refs, _ = self.referrers(other, s_digest)
        self.assertEqual(refs, [])

    def test_referrers_of_unknown_digest_is_empty_index(self):
        repo = self.repo()
        self.push_image(repo, "v1")
        refs, h = self.referrers(repo, "sha256:" + "ab" * 32)
        self.assertEqual(refs, [])

    def test_subject_that_does_not_exist_is_accepted(self):
        repo = self.repo()
        # The future subject: its blobs pushed, the manifest itself not yet.
        cfg = b'{"architecture":"amd64","os":"linux","later":true}'
        layer = blob_bytes(3000, "later")
        self.upload(repo, cfg)
        self.upload(repo, layer)
        later = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                            "config": descriptor(OCI_CONFIG, cfg),
                            "layers": [descriptor(OCI_LAYER_GZIP, layer)]}).encode()
        later_digest = sha256_digest(later)
        subject = {"mediaType": OCI_MANIFEST, "digest": later_digest, "size": len(later)}
        a, a_body, h = self.push_artifact(repo, subject, self.SBOM, seed="early")
        self.assertEqual(h.get("OCI-Subject"), later_digest)
        st, _, b = self.get_manifest(repo, later_digest)
        self.assertEqual(st, 404)
        refs, _ = self.referrers(repo, later_digest)
        self.assertEqual([d["digest"] for d in refs], [a])
        # Now push the subject; the referrer is still listed.
        self.put_manifest(repo, "later", later, OCI_MANIFEST)
        refs, _ = self.referrers(repo, later_digest)
        self.assertEqual([d["digest"] for d in refs], [a])


# ---------------------------------------------------------------------------
# end-9: deletion
# ---------------------------------------------------------------------------

class DeleteTest(ProtocolTestCase):
    @skip_unless_berth  # Distribution 2.8 refuses to delete by tag
    def test_delete_tag_removes_only_the_tag(self):
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "v1")
        self.put_manifest(repo, "v2", body, mt)
        st, h, b = http("DELETE", "%s/v2/%s/manifests/v1" % (self.url, repo))
        self.assertEqual(st, 202, b[:300])
        st, _, b = self.get_manifest(repo, "v1")
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET a deleted tag")
        self.assertEqual(self.tags(repo), ["v2"])
        for ref in ("v2", digest):
            st, _, b = self.get_manifest(repo, ref)
            self.assertEqual(st, 200, "GET %s after deleting tag v1" % ref)
            self.assertEqual(b, body)
        st, _, b = http("DELETE", "%s/v2/%s/manifests/v1" % (self.url, repo))
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="DELETE a deleted tag")

    def test_delete_manifest_by_digest_removes_its_tags(self):
        repo = self.repo()
        digest, body, mt = self.push_image(repo, "v1", seed=1)
        self.put_manifest(repo, "v1-alias", body, mt)
        other_digest, other_body, _ = self.push_image(repo, "keep", seed=2)
        st, h, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, digest))
        self.assertEqual(st, 202, b[:300])
        for ref in ("v1", "v1-alias", digest):
            st, _, b = self.get_manifest(repo, ref)
            self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="GET %s after delete" % ref)
        self.assertEqual(self.tags(repo), ["keep"])
        st, _, b = self.get_manifest(repo, "keep")
        self.assertEqual(st, 200)
        self.assertEqual(b, other_body)
        st, _, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, digest))
        self.assert_error(st, b, 404, "MANIFEST_UNKNOWN", context="DELETE a deleted manifest")

    @skip_unless_berth  # Distribution 2.8 lets an index lose its children
    def test_delete_child_of_index_is_refused(self):
        repo = self.repo()
        c_digest, c_body, c_mt = self.push_image(repo, None, seed=1)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [dict(descriptor(c_mt, c_body),
                                    platform={"architecture": "amd64", "os": "linux"})]}
        i_body = json.dumps(index).encode()
        i_digest = sha256_digest(i_body)
        self.put_manifest(repo, "multi", i_body, OCI_INDEX)
        st, h, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, c_digest))
        self.assertTrue(400 <= st < 500, "deleting an index child: %d %r" % (st, b[:300]))
        errors = self.assert_error(st, b, st, context="deleting an index child")
        msg = " ".join(e["message"] for e in errors).lower()
        self.assertTrue(any(w in msg for w in ("index", "referenced", "list", "parent")),
                        "message does not say why: %r" % msg)
        st, _, b = self.get_manifest(repo, c_digest)
        self.assertEqual(st, 200, "the child was deleted anyway")
        self.assertEqual(b, c_body)
        st, _, b = self.get_manifest(repo, "multi")
        self.assertEqual(st, 200)
        # Delete the index first; then the child can go.
        st, _, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, i_digest))
        self.assertEqual(st, 202, b[:300])
        st, _, b = http("DELETE", "%s/v2/%s/manifests/%s" % (self.url, repo, c_digest))
        self.assertEqual(st, 202, b[:300])
        st, _, b = self.get_manifest(repo, c_digest)
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main()
