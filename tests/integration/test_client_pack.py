"""`berth pack`: reproducible single-layer images, read back by skopeo."""

import json
import os
import unittest

from client_helpers import EXIT_OK, EXIT_USAGE, berth, berth_env, describe, distribution_available
from harness import Clients, RegistryTestCase, run, skopeo_raw


class PackTest(RegistryTestCase):

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True, target="berth")
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.env = berth_env(cls.c)

    def make_tree(self, reverse=False):
        root = self.make_tmpdir()
        files = [("bin/hello", "#!/bin/sh\necho hello\n", 0o755), ("etc/app.conf", "a=1\n", 0o644),
                 ("share/doc/README", "doc\n", 0o644)]
        for path, data, mode in (reversed(files) if reverse else files):
            p = os.path.join(root, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(data)
            os.chmod(p, mode)
            if reverse:
                os.utime(p, (1e9, 1e9))  # other mtimes must not change the digest
        return root

    def pack(self, root, target, *extra):
        res = berth(self.env, "pack", root, "--platform", "linux/arm64/v8", "--entrypoint",
                    '["/bin/hello","--loud"]', "--env", "GREETING=hi", "--env", "MODE=prod",
                    "-t", target, *extra)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        return res.stdout.strip()

    def test_same_input_same_digest_everywhere(self):
        a, b = self.make_tree(), self.make_tree(reverse=True)
        d1 = self.pack(a, "oci:%s:v1" % os.path.join(self.make_tmpdir(), "l1"))
        d2 = self.pack(b, "oci:%s:v1" % os.path.join(self.make_tmpdir(), "l2"))
        self.assertEqual(d1, d2)
        ref = "%s/packed:v1" % self.reg.host
        d3 = self.pack(a, "docker://" + ref)
        self.assertEqual(d3, d1)
        raw, digest = skopeo_raw(self.c, ref)
        self.assertEqual(digest, d1)
        info = json.loads(run(self.c.skopeo("inspect", "docker://" + ref), env=self.c.env).stdout)
        self.assertEqual(info["Architecture"], "arm64")
        self.assertEqual(info["Os"], "linux")
        self.assertIn("GREETING=hi", info["Env"])
        self.assertIn("MODE=prod", info["Env"])
        cfg = json.loads(run(self.c.skopeo("inspect", "--config", "docker://" + ref),
                             env=self.c.env).stdout)
        self.assertEqual(cfg["config"]["Entrypoint"], ["/bin/hello", "--loud"])
        self.assertEqual(cfg.get("variant"), "v8")
        self.assertEqual(cfg["created"], "1970-01-01T00:00:00Z")
        # a different SOURCE_DATE_EPOCH is a different (but again stable) image
        env = dict(self.env, SOURCE_DATE_EPOCH="1700000000")
        res = berth(env, "pack", a, "--platform", "linux/arm64/v8", "-t",
                    "oci:%s:v2" % os.path.join(self.make_tmpdir(), "l3"))
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertNotEqual(res.stdout.strip(), d1)

    def test_pack_to_distribution(self):
        if not distribution_available():
            self.skipTest("docker-registry not installed")
        dist = self.start_registry(target="distribution")
        a = self.make_tree()
        d1 = self.pack(a, "oci:%s:v1" % os.path.join(self.make_tmpdir(), "l1"))
        self.assertEqual(self.pack(a, "docker://%s/packed:v1" % dist.host), d1)

    def test_bad_arguments(self):
        root = self.make_tree()
        for args in (["--platform", "linux"], ["--platform", "linux/amd64", "--env", "NOVALUE"],
                     ["--platform", "linux/amd64", "--entrypoint", "[1,2]"]):
            res = berth(self.env, "pack", root, *args, "-t", "oci:%s:x" % self.make_tmpdir())
            self.assertEqual(res.returncode, EXIT_USAGE, describe(res))
        res = berth(self.env, "pack", "/nonexistent/dir", "--platform", "linux/amd64", "-t",
                    "oci:%s:x" % self.make_tmpdir())
        self.assertEqual(res.returncode, EXIT_USAGE, describe(res))
        self.assertIn("not a directory", res.stderr)


if __name__ == "__main__":
    unittest.main()
