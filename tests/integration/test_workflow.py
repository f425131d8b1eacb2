"""Seed workflow without a Docker daemon: skopeo pushes two single-platform
images (Docker v2s2 amd64, OCI arm64/v8), the docker CLI assembles, inspects
and pushes a manifest list, skopeo resolves and copies it.

Also: ECR's rule that every child of a list must already be in the same
repository, and (Berth only) create-on-push off refusing unknown repositories."""

import json
import os
import re
import threading
import unittest

from harness import (ALL_MANIFEST_TYPES, DOCKER_LIST, DOCKER_MANIFEST, IS_BERTH, OCI_INDEX,
                     OCI_MANIFEST, Clients, RegistryTestCase, get_manifest, http, json_error_list,
                     json_errors, make_oci_layout, put_manifest, run, sha256_digest, skip_unless_berth,
                     skopeo_raw)

LIST_TYPES = (DOCKER_LIST, OCI_INDEX)


class SeedWorkflowTest(RegistryTestCase):
    """One registry for the class; the docker manifest list is built once
    (lazily, by _ensure_list) and reused by the tests that need it."""

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.H = cls.reg.host
        layout = os.path.join(cls.tmp, "layout")
        cls.amd64_src = make_oci_layout(layout, "amd64", "amd64")
        cls.arm64_src = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        cls.repo = "seed/app"
        # amd64 as Docker v2 schema 2, arm64/v8 as OCI (unchanged from the layout)
        cls.skopeo_push(cls.amd64_src["ref"], "%s/%s:amd64" % (cls.H, cls.repo), "--format", "v2s2")
        cls.skopeo_push(cls.arm64_src["ref"], "%s/%s:arm64" % (cls.H, cls.repo))
        cls.amd64_raw, cls.amd64_digest = skopeo_raw(cls.c, "%s/%s:amd64" % (cls.H, cls.repo))
        cls.arm64_raw, cls.arm64_digest = skopeo_raw(cls.c, "%s/%s:arm64" % (cls.H, cls.repo))
        cls._list_lock = threading.Lock()
        cls._list_state = None  # ("ok", info) or ("err", exception)

    @classmethod
    def skopeo_push(cls, src, dst_ref, *extra):
        return run(cls.c.skopeo_copy(src, "docker://" + dst_ref, *extra), env=cls.c.env)

    def docker(self, *args, check=True):
        return run(["docker"] + list(args), env=self.c.env, check=check, timeout=120)

    # -- the single-image pushes ------------------------------------------------
    def test_single_platform_pushes(self):
        amd = json.loads(self.amd64_raw)
        self.assertEqual(amd.get("mediaType"), DOCKER_MANIFEST, "amd64 was pushed with --format v2s2")
        arm = json.loads(self.arm64_raw)
        self.assertEqual(arm.get("mediaType"), OCI_MANIFEST)
        # the OCI image is stored byte-for-byte as skopeo sent it
        self.assertEqual(self.arm64_digest, self.arm64_src["digest"])
        self.assertEqual(self.arm64_raw, self.arm64_src["manifest"])
        # Docker-Content-Digest on GET and HEAD agrees with the bytes served
        for tag, raw, digest, mt in (("amd64", self.amd64_raw, self.amd64_digest, DOCKER_MANIFEST),
                                     ("arm64", self.arm64_raw, self.arm64_digest, OCI_MANIFEST)):
            st, h, body = get_manifest(self.reg.url, self.repo, tag)
            self.assertEqual(st, 200, body)
            self.assertEqual(body, raw)
            self.assertEqual(h.get("Docker-Content-Digest"), digest)
            self.assertEqual((h.get("Content-Type") or "").split(";")[0].strip(), mt)
            st, h, body = get_manifest(self.reg.url, self.repo, tag, method="HEAD")
            self.assertEqual(st, 200)
            self.assertEqual(h.get("Docker-Content-Digest"), digest)
            self.assertEqual(int(h.get("Content-Length")), len(raw))
        # the arm64 config carries the variant docker will read
        st, _, cfg = http("GET", "%s/v2/%s/blobs/%s" % (self.reg.url, self.repo,
                                                          arm["config"]["digest"]))
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(cfg).get("variant"), "v8")

    # -- docker manifest create / annotate / inspect / push ------------------------
    @classmethod
    def _build_and_push_list(cls):
        env = cls.c.env
        H, repo = cls.H, cls.repo
        lst, amd, arm = ("%s/%s:multi" % (H, repo), "%s/%s:amd64" % (H, repo),
                         "%s/%s:arm64" % (H, repo))
        info = {}
        res = run(["docker", "manifest", "create", "--insecure", lst, amd, arm], env=env, timeout=120)
        info["create_out"] = res.stdout
        run(["docker", "manifest", "annotate", "--variant", "v8", lst, arm], env=env, timeout=120)
        res = run(["docker", "manifest", "inspect", "--insecure", lst], env=env, timeout=120)
        info["local"] = json.loads(res.stdout)
        res = run(["docker", "manifest", "push", "--insecure", lst], env=env, timeout=120)
        m = re.search(r"sha256:[0-9a-f]{64}", res.stdout)
        if not m:
            raise AssertionError("docker manifest push printed no digest: %r %r" % (res.stdout, res.stderr))
        info["pushed_digest"] = m.group(0)
        # forget the local copy so that inspect goes to the registry
        run(["docker", "manifest", "rm", lst], env=env, timeout=60)
        res = run(["docker", "manifest", "inspect", "--insecure", lst], env=env, timeout=120)
        info["remote"] = json.loads(res.stdout)
        info["raw"], info["digest"] = skopeo_raw(cls.c, lst)
        return info

    def _ensure_list(self):
        cls = type(self)
        with cls._list_lock:
            if cls._list_state is None:
                try:
                    cls._list_state = ("ok", cls._build_and_push_list())
                except Exception as e:  # remembered: every dependent test fails with it
                    cls._list_state = ("err", e)
            kind, val = cls._list_state
        if kind == "err":
            raise AssertionError("building/pushing the docker manifest list failed: %s" % (val,))
        return val

    def _check_entries(self, doc, where):
        self.assertIn(doc.get("mediaType"), LIST_TYPES, where)
        self.assertEqual(doc.get("schemaVersion"), 2, where)
        entries = doc.get("manifests") or []
        self.assertEqual(len(entries), 2, "%s: %r" % (where, doc))
        by_arch = {e["platform"]["architecture"]: e for e in entries}
        self.assertEqual(set(by_arch), {"amd64", "arm64"}, where)
        amd, arm = by_arch["amd64"], by_arch["arm64"]
        self.assertEqual(amd["digest"], self.amd64_digest, where)
        self.assertEqual(amd["size"], len(self.amd64_raw), where)
        self.assertEqual(amd["mediaType"], DOCKER_MANIFEST, where)
        self.assertEqual(amd["platform"]["os"], "linux", where)
        self.assertEqual(arm["digest"], self.arm64_digest, where)
        self.assertEqual(arm["size"], len(self.arm64_raw), where)
        self.assertEqual(arm["mediaType"], OCI_MANIFEST, where)
        self.assertEqual(arm["platform"]["os"], "linux", where)
        self.assertEqual(arm["platform"].get("variant"), "v8", where)

    def test_docker_manifest_list(self):
        info = self._ensure_list()
        self.assertIn("Created manifest list", info["create_out"])
        self._check_entries(info["local"], "docker manifest inspect (local)")
        self._check_entries(info["remote"], "docker manifest inspect (remote)")
        # the digest docker printed is the digest of the bytes the registry serves
        self.assertEqual(info["pushed_digest"], info["digest"])
        self._check_entries(json.loads(info["raw"]), "skopeo inspect --raw")
        st, h, body = get_manifest(self.reg.url, self.repo, "multi", method="HEAD")
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Docker-Content-Digest"), info["digest"])
        self.assertIn((h.get("Content-Type") or "").split(";")[0].strip(), LIST_TYPES)
        # by digest, too
        st, h, body = get_manifest(self.reg.url, self.repo, info["digest"])
        self.assertEqual(st, 200, body)
        self.assertEqual(body, info["raw"])
        # the tag list has all three tags
        st, _, body = http("GET", "%s/v2/%s/tags/list" % (self.reg.url, self.repo))
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(json.loads(body)["tags"]), ["amd64", "arm64", "multi"])

    def test_skopeo_resolves_platform_from_list(self):
        info = self._ensure_list()
        ref = "docker://%s/%s:multi" % (self.H, self.repo)
        expect = {"arm64": (["--override-arch", "arm64", "--override-variant", "v8"],
                            self.arm64_raw, self.arm64_digest),
                  "amd64": (["--override-arch", "amd64"], self.amd64_raw, self.amd64_digest)}
        for arch, (flags, raw, digest) in expect.items():
            with self.subTest(arch=arch):
                # `skopeo inspect` reports the list's digest but the chosen image's details
                res = run(self.c.skopeo(*flags, "--override-os", "linux", "inspect", ref), env=self.c.env)
                doc = json.loads(res.stdout)
                self.assertEqual(doc["Digest"], info["digest"])
                self.assertEqual(doc["Architecture"], arch)
                if arch == "arm64" and "Variant" in doc:  # skopeo 1.9 does not print it
                    self.assertEqual(doc["Variant"], "v8")
                self.assertEqual(doc["Layers"], [l["digest"] for l in json.loads(raw)["layers"]])
                self.assertEqual(doc["Labels"].get("org.example.berth.tag"), arch)
                # copying the single platform out of the list yields exactly that image
                out = os.path.join(self.tmp, "resolved-" + arch)
                run(self.c.skopeo(*flags, "--override-os", "linux", "copy",
                                  "--src-tls-verify=false", ref, "dir:" + out), env=self.c.env)
                with open(os.path.join(out, "manifest.json"), "rb") as f:
                    got = f.read()
                self.assertEqual(sha256_digest(got), digest)
                self.assertEqual(got, raw)

    def test_skopeo_copy_all_to_other_repo_and_oci_layout(self):
        info = self._ensure_list()
        src = "docker://%s/%s:multi" % (self.H, self.repo)
        run(self.c.skopeo_copy(src, "docker://%s/seed/copy:multi" % self.H, "--all"), env=self.c.env)
        raw, digest = skopeo_raw(self.c, "%s/seed/copy:multi" % self.H)
        self.assertEqual(digest, info["digest"], "copy --all between repositories keeps the list digest")
        self.assertEqual(raw, info["raw"])
        for child, child_raw in ((self.amd64_digest, self.amd64_raw), (self.arm64_digest, self.arm64_raw)):
            st, h, body = get_manifest(self.reg.url, "seed/copy", child)
            self.assertEqual(st, 200, "child %s in seed/copy: %r" % (child, body))
            self.assertEqual(body, child_raw)
            self.assertEqual(h.get("Docker-Content-Digest"), child)

        # into an OCI layout
        out = os.path.join(self.tmp, "oci-out")
        run(self.c.skopeo_copy("docker://%s/seed/copy:multi" % self.H, "oci:%s:multi" % out, "--all"),
            env=self.c.env)
        with open(os.path.join(out, "index.json")) as f:
            top = json.load(f)
        [entry] = [m for m in top["manifests"]
                   if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "multi"]

        def blob(d):
            with open(os.path.join(out, "blobs", "sha256", d.split(":", 1)[1]), "rb") as f:
                return f.read()

        layout_index_raw = blob(entry["digest"])
        self.assertEqual(sha256_digest(layout_index_raw), entry["digest"])
        layout_index = json.loads(layout_index_raw)
        children = {m["platform"]["architecture"]: m for m in layout_index["manifests"]}
        self.assertEqual(set(children), {"amd64", "arm64"})
        self.assertEqual(children["arm64"]["platform"].get("variant"), "v8")
        if json.loads(info["raw"])["mediaType"] == OCI_INDEX and all(
                m["mediaType"] == OCI_MANIFEST for m in json.loads(info["raw"])["manifests"]):
            # nothing to convert: the layout holds exactly the registry's bytes
            self.assertEqual(entry["digest"], info["digest"])
            self.assertEqual(layout_index_raw, info["raw"])
        else:
            # c/image's oci: destination only stores OCI types, so a Docker list
            # (and the v2s2 child) are converted; the OCI child is kept as is,
            # and every layer blob keeps its digest.
            self.assertEqual(entry["mediaType"], OCI_INDEX)
            self.assertEqual(children["arm64"]["digest"], self.arm64_digest)
            self.assertEqual(blob(self.arm64_digest), self.arm64_raw)
            conv = json.loads(blob(children["amd64"]["digest"]))
            self.assertEqual([l["digest"] for l in conv["layers"]],
                             [l["digest"] for l in json.loads(self.amd64_raw)["layers"]])
        for arch, m in children.items():
            self.assertEqual(sha256_digest(blob(m["digest"])), m["digest"], arch)
            self.assertEqual(len(blob(m["digest"])), m["size"], arch)

        # and back: the registry stores the layout's bytes unchanged
        run(self.c.skopeo_copy("oci:%s:multi" % out, "docker://%s/seed/roundtrip:multi" % self.H, "--all"),
            env=self.c.env)
        raw, digest = skopeo_raw(self.c, "%s/seed/roundtrip:multi" % self.H)
        self.assertEqual(digest, entry["digest"])
        self.assertEqual(raw, layout_index_raw)
        for arch, m in children.items():
            st, h, body = get_manifest(self.reg.url, "seed/roundtrip", m["digest"])
            self.assertEqual(st, 200, body)
            self.assertEqual(body, blob(m["digest"]))

    # -- ECR: children of a list must be in the same repository ---------------------
    def test_list_with_child_in_other_repository_is_refused(self):
        layout = os.path.join(self.tmp, "layout-s390x")
        img = make_oci_layout(layout, "s390x", "s390x")
        self.skopeo_push(img["ref"], "%s/seed/only-a:s390x" % self.H)
        st, _, _ = get_manifest(self.reg.url, "seed/only-a", img["digest"], method="HEAD")
        self.assertEqual(st, 200)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": img["digest"], "size": img["size"],
             "platform": {"architecture": "s390x", "os": "linux"}}]}
        body_bytes = json.dumps(index).encode()
        st, h, body = put_manifest(self.reg.url, "seed/only-b", "multi", body_bytes, OCI_INDEX)
        self.assertEqual(st, 400, body)
        self.assertIn("MANIFEST_BLOB_UNKNOWN", json_errors(body), body)
        err = [e for e in json_error_list(body) if e.get("code") == "MANIFEST_BLOB_UNKNOWN"][0]
        self.assertIn(img["digest"], json.dumps(err), "the error names the missing child")
        # nothing was stored in only-b, by tag or by digest
        st, _, _ = get_manifest(self.reg.url, "seed/only-b", "multi", method="HEAD")
        self.assertEqual(st, 404)
        st, _, _ = get_manifest(self.reg.url, "seed/only-b", sha256_digest(body_bytes), method="HEAD")
        self.assertEqual(st, 404)
        # the same list into repo A (where the child is) is accepted
        st, h, body = put_manifest(self.reg.url, "seed/only-a", "multi", body_bytes, OCI_INDEX)
        self.assertEqual(st, 201, body)
        self.assertEqual(h.get("Docker-Content-Digest"), sha256_digest(body_bytes))

    def test_docker_manifest_push_with_missing_child_fails(self):
        repo = "seed/gone"
        H = self.H
        self.skopeo_push(self.amd64_src["ref"], "%s/%s:amd64" % (H, repo), "--format", "v2s2")
        self.skopeo_push(self.arm64_src["ref"], "%s/%s:arm64" % (H, repo))
        lst = "%s/%s:multi" % (H, repo)
        self.docker("manifest", "create", "--insecure", lst, "%s/%s:amd64" % (H, repo),
                    "%s/%s:arm64" % (H, repo))
        self.addCleanup(self.docker, "manifest", "rm", lst, check=False)
        # the arm64 child disappears from the repository before the push
        st, _, body = http("DELETE", "%s/v2/%s/manifests/%s" % (self.reg.url, repo, self.arm64_digest))
        self.assertEqual(st, 202, body)
        st, _, _ = get_manifest(self.reg.url, repo, self.arm64_digest, method="HEAD")
        self.assertEqual(st, 404)
        res = self.docker("manifest", "push", "--insecure", lst, check=False)
        out = res.stdout + res.stderr
        self.assertNotEqual(res.returncode, 0, "push of a list with a missing child must fail: %s" % out)
        low = out.lower()
        self.assertTrue("manifest_blob_unknown" in low or "manifest blob unknown" in low
                        or self.arm64_digest in out, out)
        if IS_BERTH:  # Berth's message names the missing child
            self.assertIn(self.arm64_digest, out)
        st, _, _ = get_manifest(self.reg.url, repo, "multi", method="HEAD")
        self.assertEqual(st, 404, "the refused list must not be tagged")


class CreateOnPushOffTest(RegistryTestCase):

    @skip_unless_berth
    def test_push_to_unknown_repository_fails(self):
        reg = self.start_registry(create_on_push=False)
        tmp = self.make_tmpdir()
        c = Clients(tmp)
        img = make_oci_layout(os.path.join(tmp, "layout"), "amd64", "amd64")
        res = run(c.skopeo_copy(img["ref"], "docker://%s/nosuch/repo:v1" % reg.host), env=c.env, check=False)
        out = res.stdout + res.stderr
        self.assertNotEqual(res.returncode, 0, out)
        self.assertIn("nosuch/repo", out)
        self.assertTrue("NAME_UNKNOWN" in out or "name unknown" in out.lower(), out)
        # the data plane says NAME_UNKNOWN, and nothing was created
        st, _, body = http("POST", "%s/v2/nosuch/repo/blobs/uploads/" % reg.url)
        self.assertEqual(st, 404, body)
        self.assertIn("NAME_UNKNOWN", json_errors(body), body)
        st, _, body = get_manifest(reg.url, "nosuch/repo", "v1")
        self.assertEqual(st, 404, body)
        self.assertIn(json_errors(body)[:1], (["NAME_UNKNOWN"], ["MANIFEST_UNKNOWN"]), body)
        st, _, body = http("GET", "%s/v2/nosuch/repo/tags/list" % reg.url)
        self.assertEqual(st, 404, body)
        self.assertIn("NAME_UNKNOWN", json_errors(body), body)
        st, _, body = http("GET", "%s/v2/_catalog" % reg.url)
        if st == 200:
            self.assertNotIn("nosuch/repo", json.loads(body).get("repositories") or [])
        # and the server exits cleanly on SIGTERM
        self.assertEqual(reg.stop(), 0, "berth should exit 0 on SIGTERM")


if __name__ == "__main__":
    unittest.main()
