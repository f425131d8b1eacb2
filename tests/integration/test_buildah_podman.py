"""buildah and podman assemble the two-platform list from images already in
the registry (pushed by skopeo) and push it with --all; skopeo verifies."""

import json
import os
import unittest

from harness import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Clients,
                     RegistryTestCase, get_manifest, http, make_oci_layout, run, sha256_digest,
                     skopeo_raw)


class BuildahPodmanManifestTest(RegistryTestCase):

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.H = cls.reg.host
        cls.repo = "bp/app"
        layout = os.path.join(cls.tmp, "layout")
        cls.amd64_src = make_oci_layout(layout, "amd64", "amd64", layers=2)
        cls.arm64_src = make_oci_layout(layout, "arm64", "arm64", variant="v8", layers=2)
        run(cls.c.skopeo_copy(cls.amd64_src["ref"], "docker://%s/%s:amd64" % (cls.H, cls.repo),
                              "--format", "v2s2"), env=cls.c.env)
        run(cls.c.skopeo_copy(cls.arm64_src["ref"], "docker://%s/%s:arm64" % (cls.H, cls.repo)),
            env=cls.c.env)
        cls.amd64_raw, cls.amd64_digest = skopeo_raw(cls.c, "%s/%s:amd64" % (cls.H, cls.repo))
        cls.arm64_raw, cls.arm64_digest = skopeo_raw(cls.c, "%s/%s:arm64" % (cls.H, cls.repo))

    def _build_and_push(self, tool, dest_repo, dest_tag):
        c, H = self.c, self.H
        build = c.buildah if tool == "buildah" else c.podman
        name = "berth-it-%s-%s-%s" % (tool, dest_repo.replace("/", "-"), dest_tag)
        run(build("manifest", "create", name), env=c.env, timeout=120)
        self.addCleanup(run, build("manifest", "rm", name), env=c.env, check=False, timeout=60)
        run(build("manifest", "add", "--tls-verify=false", name,
                  "docker://%s/%s:amd64" % (H, self.repo)), env=c.env, timeout=120)
        run(build("manifest", "add", "--tls-verify=false", "--variant", "v8", name,
                  "docker://%s/%s:arm64" % (H, self.repo)), env=c.env, timeout=120)
        local = json.loads(run(build("manifest", "inspect", name), env=c.env, timeout=60).stdout)
        self.assertEqual(len(local.get("manifests") or []), 2, local)
        run(build("manifest", "push", "--all", "--tls-verify=false", name,
                  "docker://%s/%s:%s" % (H, dest_repo, dest_tag)), env=c.env, timeout=300)
        return local

    def _verify_pushed(self, dest_repo, dest_tag):
        raw, digest = skopeo_raw(self.c, "%s/%s:%s" % (self.H, dest_repo, dest_tag))
        doc = json.loads(raw)
        self.assertIn(doc.get("mediaType"), (DOCKER_LIST, OCI_INDEX))
        entries = {m["platform"]["architecture"]: m for m in doc["manifests"]}
        self.assertEqual(set(entries), {"amd64", "arm64"}, doc)
        self.assertEqual(entries["amd64"]["platform"]["os"], "linux")
        self.assertEqual(entries["arm64"]["platform"]["os"], "linux")
        self.assertEqual(entries["arm64"]["platform"].get("variant"), "v8")
        # the children are the images skopeo pushed, unchanged
        self.assertEqual(entries["amd64"]["digest"], self.amd64_digest)
        self.assertEqual(entries["amd64"]["size"], len(self.amd64_raw))
        self.assertEqual(entries["amd64"]["mediaType"], DOCKER_MANIFEST)
        self.assertEqual(entries["arm64"]["digest"], self.arm64_digest)
        self.assertEqual(entries["arm64"]["size"], len(self.arm64_raw))
        self.assertEqual(entries["arm64"]["mediaType"], OCI_MANIFEST)
        # registry view: list by tag and by digest, children and their blobs retrievable
        st, h, body = get_manifest(self.reg.url, dest_repo, dest_tag)
        self.assertEqual(st, 200, body)
        self.assertEqual(body, raw)
        self.assertEqual(h.get("Docker-Content-Digest"), digest)
        st, _, body = get_manifest(self.reg.url, dest_repo, digest)
        self.assertEqual(st, 200, body)
        for arch, child_raw in (("amd64", self.amd64_raw), ("arm64", self.arm64_raw)):
            d = entries[arch]["digest"]
            st, h, body = get_manifest(self.reg.url, dest_repo, d)
            self.assertEqual(st, 200, "%s child %s: %r" % (arch, d, body))
            self.assertEqual(body, child_raw)
            self.assertEqual(sha256_digest(body), d)
            man = json.loads(body)
            for desc in [man["config"]] + man["layers"]:
                st, h, blob = http("GET", "%s/v2/%s/blobs/%s" % (self.reg.url, dest_repo, desc["digest"]))
                self.assertEqual(st, 200, "%s blob %s" % (arch, desc["digest"]))
                self.assertEqual(len(blob), desc["size"])
                self.assertEqual(sha256_digest(blob), desc["digest"])
            # skopeo can pull each platform out of the list
            flags = ["--override-arch", arch, "--override-os", "linux"]
            if arch == "arm64":
                flags += ["--override-variant", "v8"]
            out = os.path.join(self.tmp, "pulled-%s-%s-%s" % (dest_repo.replace("/", "_"), dest_tag, arch))
            run(self.c.skopeo(*flags, "copy", "--src-tls-verify=false",
                              "docker://%s/%s:%s" % (self.H, dest_repo, dest_tag), "dir:" + out),
                env=self.c.env)
            with open(os.path.join(out, "manifest.json"), "rb") as f:
                self.assertEqual(sha256_digest(f.read()), d)
        return digest

    def test_buildah_manifest_push_all(self):
        # into the same repository (children already there) ...
        self._build_and_push("buildah", self.repo, "buildah")
        self._verify_pushed(self.repo, "buildah")
        # ... and into a new repository: --all copies the children first
        self._build_and_push("buildah", "bp/buildah-dest", "multi")
        self._verify_pushed("bp/buildah-dest", "multi")

    def test_podman_manifest_push_all(self):
        self._build_and_push("podman", self.repo, "podman")
        self._verify_pushed(self.repo, "podman")
        self._build_and_push("podman", "bp/podman-dest", "multi")
        self._verify_pushed("bp/podman-dest", "multi")


if __name__ == "__main__":
    unittest.main()
