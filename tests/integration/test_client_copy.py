"""`berth copy` between the real `berth serve`, CNCF Distribution, OCI layouts and
docker-archive tarballs; digests preserved; skips, mounts, resumable uploads."""

import json
import os
import signal
import subprocess
import tarfile
import time
import unittest

from client_helpers import (EXIT_NETWORK, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, berth, berth_env,
                            describe, distribution_available, upload_state_offset)
from harness import (Clients, Registry, RegistryTestCase, berth_bin, free_port, get_manifest,
                     make_oci_layout, run, sha256_digest, skopeo_raw, wait_for)


class CopyTest(RegistryTestCase):

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True, target="berth")
        cls.dist = None
        if distribution_available():
            cls.dist = cls.start_class_registry(create_on_push=True, target="distribution")
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.env = berth_env(cls.c)
        cls.B = cls.reg.host
        layout = os.path.join(cls.tmp, "layout")
        cls.amd = make_oci_layout(layout, "amd64", "amd64", layers=3)
        cls.arm = make_oci_layout(layout, "arm64", "arm64", variant="v8", layers=2)
        run(cls.c.skopeo_copy(cls.amd["ref"], "docker://%s/app:amd64" % cls.B), env=cls.c.env)
        # arm64 as Docker v2s2: the list mixes both manifest formats
        run(cls.c.skopeo_copy(cls.arm["ref"], "docker://%s/app:arm64" % cls.B, "--format", "v2s2"),
            env=cls.c.env)
        cls.arm_digest = skopeo_raw(cls.c, "%s/app:arm64" % cls.B)[1]
        cls.list = "%s/app:list" % cls.B
        for args in (("manifest", "create", cls.list, "%s/app:amd64" % cls.B, "%s/app:arm64" % cls.B),
                     ("manifest", "push", "--purge", cls.list)):
            res = berth(cls.env, *args)
            assert res.returncode == 0, describe(res)
        cls.list_raw, cls.list_digest = skopeo_raw(cls.c, cls.list)

    def b(self, *args, **kw):
        return berth(self.env, *args, **kw)

    def ok(self, *args, **kw):
        res = self.b(*args, **kw)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        return res

    def config_of(self, ref):
        return json.loads(run(self.c.skopeo("inspect", "--config", ref), env=self.c.env).stdout)

    def test_copy_all_to_distribution_and_oci_layout_and_back(self):
        if self.dist is None:
            self.skipTest("docker-registry not installed")
        D = self.dist.host
        out = self.ok("copy", "--all", "docker://" + self.list, "docker://%s/app:list" % D)
        self.assertEqual(out.stdout.strip(), self.list_digest)
        raw, digest = skopeo_raw(self.c, "%s/app:list" % D)
        self.assertEqual((raw, digest), (self.list_raw, self.list_digest))
        for child in json.loads(raw)["manifests"]:
            st, _, _ = get_manifest(self.dist.url, "app", child["digest"], method="HEAD")
            self.assertEqual(st, 200, child)
        layout = os.path.join(self.make_tmpdir(), "oci")
        self.ok("copy", "--all", "docker://%s/app:list" % D, "oci:%s:list" % layout)
        with open(os.path.join(layout, "index.json")) as f:
            index = json.load(f)
        self.assertEqual(index["manifests"][0]["digest"], self.list_digest)
        # skopeo reads the layout berth wrote
        run(self.c.skopeo("inspect", "--raw", "oci:%s:list" % layout), env=self.c.env)
        out = self.ok("copy", "--all", "oci:%s:list" % layout, "docker://%s/back:list" % self.B)
        self.assertEqual(out.stdout.strip(), self.list_digest)
        self.assertEqual(skopeo_raw(self.c, "%s/back:list" % self.B), (self.list_raw, self.list_digest))

    def test_platform_to_docker_archive_and_back_keeps_config_and_diff_ids(self):
        archive = os.path.join(self.make_tmpdir(), "arm.tar")
        out = self.ok("copy", "--platform", "linux/arm64", "docker://" + self.list,
                      "docker-archive:%s:app:arm64" % archive)
        self.assertEqual(out.stdout.strip(), self.arm_digest)
        with tarfile.open(archive) as t:
            manifest = json.load(t.extractfile("manifest.json"))
        self.assertEqual(manifest[0]["RepoTags"], ["app:arm64"])
        self.assertEqual(manifest[0]["Config"], self.arm["config_digest"].split(":")[1] + ".json")
        want_cfg = json.loads(self.arm["config"])
        # skopeo reads the archive
        self.assertEqual(self.config_of("docker-archive:" + archive)["rootfs"], want_cfg["rootfs"])
        self.ok("copy", "docker-archive:" + archive, "docker://%s/fromarchive:arm64" % self.B)
        raw, _ = skopeo_raw(self.c, "%s/fromarchive:arm64" % self.B)
        self.assertEqual(json.loads(raw)["config"]["digest"], self.arm["config_digest"])
        cfg = self.config_of("docker://%s/fromarchive:arm64" % self.B)
        self.assertEqual(cfg["rootfs"]["diff_ids"], [l["diff_id"] for l in self.arm["layers"]])
        # an archive written by skopeo is read by berth
        sk_archive = os.path.join(self.make_tmpdir(), "sk.tar")
        run(self.c.skopeo_copy("docker://%s/app:amd64" % self.B, "docker-archive:%s:x/y:z" % sk_archive),
            env=self.c.env)
        self.ok("copy", "docker-archive:%s:x/y:z" % sk_archive, "docker://%s/fromskopeo:amd64" % self.B)
        cfg = self.config_of("docker://%s/fromskopeo:amd64" % self.B)
        self.assertEqual(cfg["rootfs"]["diff_ids"], [l["diff_id"] for l in self.amd["layers"]])

    def test_existing_blobs_skipped_and_mounted_across_repositories(self):
        res = self.ok("copy", "docker://%s/app:amd64" % self.B, "docker://%s/mounted:amd64" % self.B)
        self.assertIn("0 blob(s) sent", res.stderr)
        self.assertIn("4 mounted", res.stderr)  # config + 3 layers
        res = self.ok("copy", "docker://%s/app:amd64" % self.B, "docker://%s/mounted:amd64" % self.B)
        self.assertIn("4 already present", res.stderr)
        res = self.ok("copy", "--json" if False else "--quiet", "docker://%s/app:amd64" % self.B,
                      "docker://%s/mounted:again" % self.B)
        self.assertEqual(res.stderr, "")
        self.assertEqual(res.stdout.strip(), self.amd["digest"])

    def test_default_platform_is_host(self):
        out = self.ok("copy", "docker://" + self.list, "docker://%s/host:latest" % self.B)
        self.assertEqual(out.stdout.strip(), self.amd["digest"])  # this machine is linux/amd64

    def test_errors_have_documented_exit_codes(self):
        res = self.b("copy", "docker://%s/app:nosuchtag" % self.B, "oci:%s" % self.make_tmpdir())
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        self.assertIn("no such manifest: %s/app:nosuchtag" % self.B, res.stderr)
        port = free_port()
        res = self.b("copy", "docker://127.0.0.1:%d/app:x" % port, "oci:%s" % self.make_tmpdir())
        self.assertEqual(res.returncode, EXIT_NETWORK, describe(res))
        self.assertIn("cannot reach registry 127.0.0.1:%d" % port, res.stderr)
        res = self.b("copy", "--all", "docker://" + self.list,
                     "docker-archive:%s/x.tar" % self.make_tmpdir())
        self.assertEqual(res.returncode, EXIT_USAGE, describe(res))
        self.assertIn("single image", res.stderr)
        res = self.b("copy", "--platform", "linux/s390x", "docker://" + self.list, "oci:/tmp/nope")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        self.assertIn("linux/arm64/v8", res.stderr)
        res = self.b("copy", "--platform", "linux", "docker://" + self.list, "oci:/tmp/nope")
        self.assertEqual(res.returncode, EXIT_USAGE, describe(res))
        res = self.b("copy", "oci:/nonexistent/layout", "docker://%s/x:y" % self.B)
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        res = self.b("copy", "--bogus-flag", "a", "b")
        self.assertEqual(res.returncode, EXIT_USAGE, describe(res))

    def test_inspect_tags_catalog_rm(self):
        res = self.ok("inspect", "--json", "docker://" + self.list)
        doc = json.loads(res.stdout)
        self.assertEqual(doc["Digest"], self.list_digest)
        self.assertEqual(sorted(m["Platform"] for m in doc["Manifests"]),
                         ["linux/amd64", "linux/arm64/v8"])
        raw = self.ok("inspect", "--raw", self.list).stdout
        self.assertEqual(raw.encode(), self.list_raw)
        res = self.ok("inspect", "--json", "--platform", "linux/arm64", self.list)
        self.assertEqual(json.loads(res.stdout)["Digest"], self.arm_digest)
        tags = json.loads(self.ok("tags", "--json", "%s/app" % self.B).stdout)["Tags"]
        self.assertTrue({"amd64", "arm64", "list"} <= set(tags), tags)
        repos = self.ok("catalog", self.B).stdout.split()
        self.assertIn("app", repos)
        self.ok("copy", "docker://%s/app:amd64" % self.B, "docker://%s/todelete:v1" % self.B)
        res = self.ok("rm", "%s/todelete:v1" % self.B)
        self.assertIn(self.amd["digest"], res.stdout)
        res = self.b("inspect", "%s/todelete:v1" % self.B)
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        res = self.b("tags", "%s/nosuchrepo" % self.B)
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))

    def test_interrupted_copy_resumes_without_resending(self):
        size = 40 * 1024 * 1024
        layout = os.path.join(self.make_tmpdir(), "big")
        img = make_oci_layout(layout, "big", "amd64", files={"big.bin": os.urandom(size)})
        layer = img["layers"][0]
        chunk = 2 * 1024 * 1024
        received = lambda: sum(self.reg.metric_values("berth_http_received_bytes_total").values())
        before = received()
        state_dir = os.path.join(self.env["XDG_CACHE_HOME"], "berth", "uploads")
        cmd = [berth_bin(), "copy", "--chunk-size", "2", "--limit-rate", "8", img["ref"],
               "docker://%s/resume:v1" % self.B]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: upload_state_offset(state_dir) >= 12 * 1024 * 1024, timeout=60,
                     message="12 MiB uploaded")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        first = received() - before
        self.assertLess(first, layer["size"], "the first run must not have finished")
        res = self.ok("copy", "--chunk-size", "2", img["ref"], "docker://%s/resume:v1" % self.B)
        self.assertEqual(res.stdout.strip(), img["digest"])
        second = received() - before - first
        # The second run sends what the registry did not have (plus the config and
        # manifest), never the whole layer again.
        self.assertLess(second, layer["size"] - first + chunk + 64 * 1024,
                        "first run %d bytes, second %d, layer %d" % (first, second, layer["size"]))
        self.assertLess(first + second, layer["size"] + 2 * chunk + 64 * 1024)
        self.assertEqual(os.listdir(state_dir), [])
        raw, digest = skopeo_raw(self.c, "%s/resume:v1" % self.B)
        self.assertEqual(digest, img["digest"])


if __name__ == "__main__":
    unittest.main()
