"""`berth manifest create/annotate/inspect/push/rm` against the real `berth serve`
and CNCF Distribution, checked with the docker CLI and skopeo.

Images: amd64 (Docker v2s2) and arm64/v8 (OCI) pushed by skopeo into one repository,
plus a copy of amd64 in another repository (for the ECR rule)."""

import json
import os
import unittest

from client_helpers import (EXIT_FAILURE, EXIT_NETWORK, EXIT_NOT_FOUND, EXIT_OK, berth,
                            berth_env, describe)
from harness import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Clients,
                     RegistryTestCase, free_port, get_manifest, make_oci_layout, run, skopeo_raw)


class ManifestMixin:
    TARGET = "berth"

    @classmethod
    def setUpClass(cls):
        cls.reg = cls.start_class_registry(create_on_push=True, target=cls.TARGET)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.env = berth_env(cls.c)
        cls.H = cls.reg.host
        layout = os.path.join(cls.tmp, "layout")
        cls.amd = make_oci_layout(layout, "amd64", "amd64")
        cls.arm = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        cls.repo = "%s/app" % cls.H
        run(cls.c.skopeo_copy(cls.amd["ref"], "docker://%s:amd64" % cls.repo, "--format", "v2s2"),
            env=cls.c.env)
        run(cls.c.skopeo_copy(cls.arm["ref"], "docker://%s:arm64" % cls.repo), env=cls.c.env)
        run(cls.c.skopeo_copy(cls.amd["ref"], "docker://%s/other:amd64" % cls.H, "--format", "v2s2"),
            env=cls.c.env)
        cls.amd_raw, cls.amd_digest = skopeo_raw(cls.c, cls.repo + ":amd64")
        cls.arm_raw, cls.arm_digest = skopeo_raw(cls.c, cls.repo + ":arm64")

    def b(self, *args, **kw):
        return berth(self.env, *args, **kw)

    def ok(self, *args, **kw):
        res = self.b(*args, **kw)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        return res

    def docker(self, *args, check=True):
        return run(["docker"] + list(args), env=self.c.env, check=check, timeout=120)

    def test_create_annotate_push_seen_by_docker_and_skopeo(self):
        lst = self.repo + ":multi"
        self.ok("manifest", "create", lst, self.repo + ":amd64", self.repo + ":arm64")
        self.ok("manifest", "annotate", lst, self.repo + ":amd64", "--os-features", "sse4")
        local = json.loads(self.ok("manifest", "inspect", lst).stdout)
        # docker's rule: the first entry (amd64, Docker v2s2) decides the list type
        self.assertEqual(local["mediaType"], DOCKER_LIST)
        pushed = self.ok("manifest", "push", "--purge", lst).stdout.strip()
        self.assertFalse(os.path.exists(os.path.join(self.c.docker_config, "manifests",
                                                     self.H.replace(":", "-") + "_app-multi")))
        raw, digest = skopeo_raw(self.c, lst)
        self.assertEqual(pushed, digest)
        doc = json.loads(raw)
        by_arch = {m["platform"]["architecture"]: m for m in doc["manifests"]}
        self.assertEqual(by_arch["amd64"]["digest"], self.amd_digest)
        self.assertEqual(by_arch["amd64"]["size"], len(self.amd_raw))
        self.assertEqual(by_arch["amd64"]["platform"].get("os.features"), ["sse4"])
        self.assertEqual(by_arch["arm64"]["digest"], self.arm_digest)
        self.assertEqual(by_arch["arm64"]["size"], len(self.arm_raw))
        self.assertEqual(by_arch["arm64"]["platform"]["variant"], "v8")
        self.assertEqual(by_arch["arm64"]["mediaType"], OCI_MANIFEST)
        # docker reads the pushed list from the registry
        dk = json.loads(self.docker("manifest", "inspect", "--insecure", lst).stdout)
        self.assertEqual([(m["digest"], m["size"], m["platform"]["architecture"])
                          for m in dk["manifests"]],
                         [(m["digest"], m["size"], m["platform"]["architecture"])
                          for m in doc["manifests"]])

    def test_local_list_is_shared_with_docker_and_identical(self):
        lst = self.repo + ":fromdocker"
        self.docker("manifest", "create", "--insecure", lst, self.repo + ":amd64",
                    self.repo + ":arm64")
        self.addCleanup(self.docker, "manifest", "rm", lst, check=False)
        self.assertEqual(self.ok("manifest", "inspect", lst).stdout,
                         self.docker("manifest", "inspect", lst).stdout)
        self.assertEqual(json.loads(self.ok("manifest", "inspect", "-v", lst).stdout),
                         json.loads(self.docker("manifest", "inspect", "-v", lst).stdout))
        # and the other way round: a berth list is pushed by docker with the same digest
        lst2 = self.repo + ":fromberth"
        self.ok("manifest", "create", lst2, self.repo + ":amd64", self.repo + ":arm64")
        self.addCleanup(self.b, "manifest", "rm", lst2)
        docker_digest = self.docker("manifest", "push", "--insecure", lst2).stdout.strip()
        berth_digest = self.ok("manifest", "push", lst).stdout.strip()
        self.assertEqual(docker_digest, berth_digest)
        self.assertEqual(berth_digest, skopeo_raw(self.c, lst)[1])

    def test_remote_inspect_matches_docker(self):
        lst = self.repo + ":remote"
        self.ok("manifest", "create", lst, self.repo + ":amd64", self.repo + ":arm64")
        self.ok("manifest", "push", "--purge", lst)
        mine = self.ok("manifest", "inspect", "--insecure", "-v", lst).stdout
        theirs = self.docker("manifest", "inspect", "--insecure", "-v", lst).stdout
        strip = lambda doc: [(e["Descriptor"], e.get("SchemaV2Manifest") or e.get("OCIManifest"))
                             for e in json.loads(doc)]
        self.assertEqual(strip(mine), strip(theirs))
        img = json.loads(self.ok("manifest", "inspect", self.repo + ":arm64").stdout)
        self.assertEqual(img["mediaType"], OCI_MANIFEST)

    def test_format_oci(self):
        lst = self.repo + ":ocilist"
        self.ok("manifest", "create", "--format", "oci", lst, self.repo + ":amd64")
        self.ok("manifest", "push", "--purge", lst)
        st, h, body = get_manifest(self.reg.url, "app", "ocilist")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["mediaType"], OCI_INDEX)

    def test_amend_required(self):
        lst = self.repo + ":amend"
        self.ok("manifest", "create", lst, self.repo + ":amd64")
        self.addCleanup(self.b, "manifest", "rm", lst)
        res = self.b("manifest", "create", lst, self.repo + ":arm64")
        self.assertEqual(res.returncode, EXIT_FAILURE, describe(res))
        self.assertIn("refusing to amend an existing manifest list with no --amend flag", res.stderr)
        self.ok("manifest", "create", "--amend", lst, self.repo + ":arm64")
        self.assertEqual(len(json.loads(self.ok("manifest", "inspect", lst).stdout)["manifests"]), 2)

    def test_source_from_other_repository_is_refused_then_copied(self):
        lst = self.repo + ":cross"
        src = "%s/other:amd64" % self.H
        res = self.b("manifest", "create", lst, src)
        self.assertEqual(res.returncode, EXIT_FAILURE, describe(res))
        self.assertIn("source %s is not in repository %s" % (src, self.repo), res.stderr)
        self.assertIn("--copy-children", res.stderr)
        self.assertFalse(os.path.isdir(os.path.join(self.c.docker_config, "manifests",
                                                    self.H.replace(":", "-") + "_app-cross")))
        # --copy-children: the child is mounted into app, then the list pushed
        self.ok("manifest", "create", "--copy-children", lst, src, self.repo + ":arm64")
        self.ok("manifest", "push", "--purge", lst)
        st, _, _ = get_manifest(self.reg.url, "app", self.amd_digest, method="HEAD")
        self.assertEqual(st, 200)
        doc = json.loads(skopeo_raw(self.c, lst)[0])
        self.assertEqual(len(doc["manifests"]), 2)

    def test_list_as_source_is_refused(self):
        lst = self.repo + ":inner"
        self.ok("manifest", "create", lst, self.repo + ":amd64")
        self.ok("manifest", "push", "--purge", lst)
        res = self.b("manifest", "create", self.repo + ":outer", lst)
        self.assertEqual(res.returncode, EXIT_FAILURE, describe(res))
        self.assertIn("%s is a manifest list" % lst, res.stderr)

    def test_missing_sources_and_lists(self):
        res = self.b("manifest", "create", self.repo + ":x", self.repo + ":nosuchtag")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        self.assertIn("no such manifest: %s:nosuchtag" % self.repo, res.stderr)
        res = self.b("manifest", "push", self.repo + ":nevermade")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        self.assertIn("No such manifest: %s:nevermade" % self.repo, res.stderr)
        res = self.b("manifest", "rm", self.repo + ":nevermade")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        res = self.b("manifest", "annotate", self.repo + ":nevermade", self.repo + ":amd64",
                     "--arch", "arm64")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        lst = self.repo + ":ann"
        self.ok("manifest", "create", lst, self.repo + ":amd64")
        self.addCleanup(self.b, "manifest", "rm", lst)
        res = self.b("manifest", "annotate", lst, self.repo + ":arm64", "--arch", "arm64")
        self.assertIn("manifest for image %s:arm64 does not exist in %s" % (self.repo, lst),
                      res.stderr)
        res = self.b("manifest", "annotate", lst, self.repo + ":amd64", "--arch", "foo")
        self.assertIn("unsupported os/arch combination: /foo", res.stderr)

    def test_unreachable_host(self):
        port = free_port()
        res = self.b("manifest", "create", "127.0.0.1:%d/app:l" % port,
                     "127.0.0.1:%d/app:x" % port)
        self.assertEqual(res.returncode, EXIT_NETWORK, describe(res))
        self.assertIn("cannot reach registry 127.0.0.1:%d" % port, res.stderr)


class BerthManifestTest(ManifestMixin, RegistryTestCase):
    TARGET = "berth"


class DistributionManifestTest(ManifestMixin, RegistryTestCase):
    TARGET = "distribution"


if __name__ == "__main__":
    unittest.main()
