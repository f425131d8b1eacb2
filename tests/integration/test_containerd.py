"""containerd's `ctr` pulls the two-platform list (all platforms, plain HTTP)
from the registry and pushes a pulled image back under a new name, against a
private containerd started by the test (own root/state/socket, CRI off)."""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from harness import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Clients,
                     RegistryTestCase, get_manifest, http, make_oci_layout, run, sha256_digest,
                     skopeo_raw)


class Containerd:
    """A private containerd: everything under `base` (no /var/lib/containerd,
    /run/containerd or /opt/containerd)."""

    def __init__(self, base):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state = os.path.join(base, "state")
        self.sock = os.path.join(base, "c.sock")
        self.log_path = os.path.join(base, "containerd.log")
        self.config = os.path.join(base, "config.toml")
        self.proc = None

    def start(self, timeout=30):
        if not shutil.which("containerd") or not shutil.which("ctr"):
            raise unittest.SkipTest("containerd/ctr not installed")
        if os.geteuid() != 0:
            raise unittest.SkipTest("containerd needs root")
        for d in (self.root, self.state, os.path.join(self.base, "opt"), os.path.join(self.base, "tmp")):
            os.makedirs(d, exist_ok=True)
        with open(self.config, "w") as f:
            f.write("""version = 2
root = "%(root)s"
state = "%(state)s"
temp = "%(tmp)s"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "%(sock)s"

[ttrpc]
  address = "%(sock)s.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "%(opt)s"
""" % {"root": self.root, "state": self.state, "sock": self.sock,
       "opt": os.path.join(self.base, "opt"), "tmp": os.path.join(self.base, "tmp")})
        log = open(self.log_path, "ab")
        try:
            env = dict(os.environ, TMPDIR=os.path.join(self.base, "tmp"))
            self.proc = subprocess.Popen(["containerd", "--config", self.config],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise unittest.SkipTest("containerd exited with %s at start:\n%s"
                                        % (self.proc.returncode, self.log_text()[-4000:]))
            if os.path.exists(self.sock):
                res = subprocess.run(["ctr", "-a", self.sock, "version"], capture_output=True,
                                     text=True, timeout=10)
                if res.returncode == 0:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise unittest.SkipTest("containerd did not answer within %ss:\n%s"
                                        % (timeout, self.log_text()[-4000:]))
            time.sleep(0.1)

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ctr(self, *args, namespace="berth-it"):
        return ["ctr", "-a", self.sock, "-n", namespace] + list(args)


class ContainerdTest(RegistryTestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_class_tmpdir()
        cls.cd = Containerd(os.path.join(cls.tmp, "containerd"))
        cls.cd.start()
        cls.addClassCleanup(cls.cd.stop)
        cls.reg = cls.start_class_registry(create_on_push=True)
        cls.c = Clients(os.path.join(cls.tmp, "clients"))
        cls.H = cls.reg.host
        cls.repo = "ctr/app"
        layout = os.path.join(cls.tmp, "layout")
        amd = make_oci_layout(layout, "amd64", "amd64")
        arm = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        H, repo, env = cls.H, cls.repo, cls.c.env
        run(cls.c.skopeo_copy(amd["ref"], "docker://%s/%s:amd64" % (H, repo), "--format", "v2s2"), env=env)
        run(cls.c.skopeo_copy(arm["ref"], "docker://%s/%s:arm64" % (H, repo)), env=env)
        cls.amd64_raw, cls.amd64_digest = skopeo_raw(cls.c, "%s/%s:amd64" % (H, repo))
        cls.arm64_raw, cls.arm64_digest = skopeo_raw(cls.c, "%s/%s:arm64" % (H, repo))
        lst = "%s/%s:multi" % (H, repo)
        run(["docker", "manifest", "create", "--insecure", lst, "%s/%s:amd64" % (H, repo),
             "%s/%s:arm64" % (H, repo)], env=env, timeout=120)
        run(["docker", "manifest", "push", "--purge", "--insecure", lst], env=env, timeout=120)
        cls.list_raw, cls.list_digest = skopeo_raw(cls.c, lst)

    def setUp(self):
        super().setUp()
        self._cd_log_offset = len(self.cd.log_text())

    def tearDown(self):
        if self._failed():
            print("\n===== containerd log =====\n%s\n===== end =====" % self.cd.log_text()[self._cd_log_offset:][-20000:])
        super().tearDown()

    def ctr(self, *args, check=True, timeout=300):
        return run(self.cd.ctr(*args), check=check, timeout=timeout)

    def images(self):
        """{name: digest} from `ctr images ls`."""
        out = self.ctr("images", "ls").stdout.splitlines()
        self.assertTrue(out and out[0].startswith("REF"), out)
        result = {}
        for line in out[1:]:
            cols = line.split()
            if len(cols) >= 3:
                result[cols[0]] = cols[2]
        return result

    def _pull_all(self):
        ref = "%s/%s:multi" % (self.H, self.repo)
        self.ctr("images", "pull", "--plain-http", "--all-platforms", "--snapshotter", "native", ref)
        return ref

    def test_pull_all_platforms(self):
        ref = self._pull_all()
        imgs = self.images()
        self.assertIn(ref, imgs, imgs)
        self.assertEqual(imgs[ref], self.list_digest)
        # every child and every blob is in containerd's content store
        content = self.ctr("content", "ls", "-q").stdout.split()
        for d in (self.list_digest, self.amd64_digest, self.arm64_digest):
            self.assertIn(d, content)
        for raw in (self.amd64_raw, self.arm64_raw):
            man = json.loads(raw)
            for desc in [man["config"]] + man["layers"]:
                self.assertIn(desc["digest"], content)
        # and the bytes containerd stored are the registry's
        got = subprocess.run(self.cd.ctr("content", "get", self.list_digest), capture_output=True,
                             timeout=60).stdout
        self.assertEqual(got, self.list_raw)
        # platforms recorded for the image
        ls = self.ctr("images", "ls").stdout
        line = [l for l in ls.splitlines() if l.startswith(ref + " ")][0]
        self.assertIn("linux/amd64", line)
        self.assertIn("linux/arm64", line)

    def test_push_pulled_image_to_new_tag(self):
        src = self._pull_all()
        dst = "%s/ctr/pushed:v1" % self.H
        self.ctr("images", "tag", "--force", src, dst)
        self.ctr("images", "push", "--plain-http", dst)
        raw, digest = skopeo_raw(self.c, dst)
        self.assertEqual(digest, self.list_digest, "containerd pushes the list unchanged")
        self.assertEqual(raw, self.list_raw)
        for child, child_raw in ((self.amd64_digest, self.amd64_raw), (self.arm64_digest, self.arm64_raw)):
            st, h, body = get_manifest(self.reg.url, "ctr/pushed", child)
            self.assertEqual(st, 200, body)
            self.assertEqual(body, child_raw)
            man = json.loads(body)
            for desc in [man["config"]] + man["layers"]:
                st, _, blob = http("GET", "%s/v2/ctr/pushed/blobs/%s" % (self.reg.url, desc["digest"]))
                self.assertEqual(st, 200)
                self.assertEqual(sha256_digest(blob), desc["digest"])
        # a single-platform image (the arm64 child) pushed under its own tag
        single_src = "%s/%s:arm64" % (self.H, self.repo)
        self.ctr("images", "pull", "--plain-http", "--platform", "linux/arm64/v8",
                 "--snapshotter", "native", single_src)
        single_dst = "%s/ctr/pushed:arm64" % self.H
        self.ctr("images", "tag", "--force", single_src, single_dst)
        self.ctr("images", "push", "--plain-http", single_dst)
        raw, digest = skopeo_raw(self.c, single_dst)
        self.assertEqual(digest, self.arm64_digest)
        st, _, body = http("GET", "%s/v2/ctr/pushed/tags/list" % self.reg.url)
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(json.loads(body)["tags"]), ["arm64", "v1"])


if __name__ == "__main__":
    unittest.main()
