"""The `aws ecr` CLI (v1, on PATH) against Berth, with images pushed by skopeo.

create-repository and describe-repositories; describe-images, list-images and
batch-get-image after skopeo pushes (sizes as ECR reports them); batch-delete-image
of a child a manifest list still references (ImageReferencedByManifestList);
put-image-tag-mutability, after which a skopeo push that would move an immutable
tag is refused on /v2 (TAG_INVALID) while a tag matching an exclusion filter still
moves; get-login-password; the ECR wording of a push to a missing repository.

The server accepts any AWS credentials for now; the CLI signs with fake ones."""

import json
import os
import unittest

from harness import (DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Clients, RegistryTestCase,
                     get_manifest, make_oci_layout, put_manifest, run, skip_unless_berth,
                     skopeo_raw)

ACCOUNT = "000000000000"


@skip_unless_berth
class EcrCliTest(RegistryTestCase):

    @classmethod
    def setUpClass(cls):
        # As on ECR: repositories are created first, a push does not create them.
        cls.reg = cls.start_class_registry(create_on_push=False)
        cls.tmp = cls.make_class_tmpdir()
        cls.c = Clients(cls.tmp)
        cls.H = cls.reg.host
        home = os.path.join(cls.tmp, "aws-home")
        os.makedirs(home, exist_ok=True)
        cls.aws_env = dict(os.environ)
        cls.aws_env.update({
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.path.join(home, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "credentials"),
            "AWS_PAGER": "",
            "HOME": home,
        })
        cls.aws_env.pop("AWS_PROFILE", None)
        cls.aws_env.pop("AWS_SESSION_TOKEN", None)
        layout = os.path.join(cls.tmp, "layout")
        cls.amd64 = make_oci_layout(layout, "amd64", "amd64", layers=2)
        cls.arm64 = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        cls.other = make_oci_layout(layout, "other", "amd64", files={"etc/other": "another image"})

    # -- helpers ------------------------------------------------------------
    def aws(self, *args, check=True):
        """Runs `aws ecr ARGS` against the registry; (exit code, parsed JSON or None, stderr)."""
        cmd = ["aws", "ecr"] + list(args) + ["--endpoint-url", self.reg.url, "--region",
                                             "us-east-1", "--output", "json"]
        res = run(cmd, env=self.aws_env, check=check, timeout=120)
        out = res.stdout.strip()
        try:
            doc = json.loads(out) if out else None
        except ValueError:
            doc = out
        return res.returncode, doc, res.stderr

    def skopeo_push(self, src, dst, *extra, check=True):
        return run(self.c.skopeo_copy(src, "docker://%s/%s" % (self.H, dst), *extra),
                   env=self.c.env, check=check)

    # -- tests --------------------------------------------------------------
    def test_create_and_describe_repositories(self):
        rc, doc, _ = self.aws("create-repository", "--repository-name", "cli/created",
                              "--image-scanning-configuration", "scanOnPush=true",
                              "--tags", "Key=team,Value=platform")
        self.assertEqual(rc, 0)
        repo = doc["repository"]
        self.assertEqual(repo["repositoryName"], "cli/created")
        self.assertEqual(repo["repositoryUri"], "%s/cli/created" % self.H)
        self.assertEqual(repo["repositoryArn"], "arn:aws:ecr:us-east-1:%s:repository/cli/created" % ACCOUNT)
        self.assertEqual(repo["imageScanningConfiguration"], {"scanOnPush": True})
        rc, doc, _ = self.aws("describe-repositories", "--repository-names", "cli/created")
        self.assertEqual([r["repositoryName"] for r in doc["repositories"]], ["cli/created"])
        self.assertEqual(doc["repositories"][0]["imageTagMutability"], "MUTABLE")
        rc, doc, _ = self.aws("describe-repositories")
        self.assertIn("cli/created", [r["repositoryName"] for r in doc["repositories"]])
        rc, doc, _ = self.aws("list-tags-for-resource", "--resource-arn", repo["repositoryArn"])
        self.assertEqual(doc["tags"], [{"Key": "team", "Value": "platform"}])
        # Errors: exit code 255 and the exception named, as against ECR.
        rc, _, err = self.aws("create-repository", "--repository-name", "cli/created", check=False)
        self.assertEqual(rc, 255)
        self.assertIn("RepositoryAlreadyExistsException", err)
        rc, _, err = self.aws("describe-repositories", "--repository-names", "cli/missing",
                              check=False)
        self.assertEqual(rc, 255)
        self.assertIn("An error occurred (RepositoryNotFoundException) when calling the "
                      "DescribeRepositories operation", err)
        self.assertIn("cli/missing", err)

    def test_get_login_password(self):
        res = run(["aws", "ecr", "get-login-password", "--endpoint-url", self.reg.url,
                   "--region", "us-east-1"], env=self.aws_env, timeout=120)
        self.assertEqual(res.stdout.strip(), "unauthenticated")

    def test_push_to_missing_repository_names_the_registry(self):
        res = self.skopeo_push(self.amd64["ref"], "cli/never-created:v1", check=False)
        out = res.stdout + res.stderr
        self.assertNotEqual(res.returncode, 0, out)
        self.assertIn("cli/never-created", out)
        self.assertIn("does not exist in the registry with id '%s'" % ACCOUNT, out)

    def test_images_after_skopeo_pushes_and_list_deletion_rules(self):
        repo = "cli/images"
        self.aws("create-repository", "--repository-name", repo)
        self.skopeo_push(self.amd64["ref"], repo + ":amd64", "--format", "v2s2")
        self.skopeo_push(self.arm64["ref"], repo + ":arm64")
        amd_raw, amd_digest = skopeo_raw(self.c, "%s/%s:amd64" % (self.H, repo))
        arm_raw, arm_digest = skopeo_raw(self.c, "%s/%s:arm64" % (self.H, repo))
        amd, arm = json.loads(amd_raw), json.loads(arm_raw)

        rc, doc, _ = self.aws("describe-images", "--repository-name", repo)
        details = {d["imageDigest"]: d for d in doc["imageDetails"]}
        self.assertEqual(set(details), {amd_digest, arm_digest})
        da, dr = details[amd_digest], details[arm_digest]
        self.assertEqual(da["imageTags"], ["amd64"])
        self.assertEqual(da["imageManifestMediaType"], DOCKER_MANIFEST)
        self.assertEqual(da["artifactMediaType"], amd["config"]["mediaType"])
        # ECR's imageSizeInBytes: the sum of the layers, as the manifest describes them.
        self.assertEqual(da["imageSizeInBytes"], sum(l["size"] for l in amd["layers"]))
        self.assertEqual(dr["imageSizeInBytes"], sum(l["size"] for l in arm["layers"]))
        self.assertEqual(dr["imageManifestMediaType"], OCI_MANIFEST)
        self.assertEqual(dr["registryId"], ACCOUNT)
        self.assertIn("imagePushedAt", dr)

        rc, doc, _ = self.aws("list-images", "--repository-name", repo)
        self.assertEqual(sorted((i["imageTag"], i["imageDigest"]) for i in doc["imageIds"]),
                         sorted([("amd64", amd_digest), ("arm64", arm_digest)]))

        rc, doc, _ = self.aws("batch-get-image", "--repository-name", repo,
                              "--image-ids", "imageTag=amd64", "imageDigest=" + arm_digest)
        self.assertEqual(doc["failures"], [])
        got = {i["imageId"]["imageDigest"]: i for i in doc["images"]}
        self.assertEqual(got[amd_digest]["imageManifest"].encode(), amd_raw)
        self.assertEqual(got[arm_digest]["imageManifest"].encode(), arm_raw)
        self.assertEqual(got[amd_digest]["imageManifestMediaType"], DOCKER_MANIFEST)

        # A manifest list of both; a child it references cannot be deleted by digest.
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": amd_digest, "size": len(amd_raw),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm_digest, "size": len(arm_raw),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}).encode()
        st, h, body = put_manifest(self.reg.url, repo, "multi", index, OCI_INDEX)
        self.assertEqual(st, 201, body)
        list_digest = h["Docker-Content-Digest"]
        rc, doc, _ = self.aws("describe-images", "--repository-name", repo,
                              "--image-ids", "imageTag=multi")
        self.assertEqual(doc["imageDetails"][0]["imageSizeInBytes"],
                         max(da["imageSizeInBytes"], dr["imageSizeInBytes"]))
        rc, doc, _ = self.aws("batch-delete-image", "--repository-name", repo,
                              "--image-ids", "imageDigest=" + arm_digest)
        self.assertEqual(rc, 0)
        self.assertEqual(doc["imageIds"], [])
        self.assertEqual(len(doc["failures"]), 1)
        self.assertEqual(doc["failures"][0]["failureCode"], "ImageReferencedByManifestList")
        self.assertEqual(doc["failures"][0]["imageId"], {"imageDigest": arm_digest})
        self.assertIn(list_digest, doc["failures"][0]["failureReason"])
        st, _, _ = get_manifest(self.reg.url, repo, arm_digest, method="HEAD")
        self.assertEqual(st, 200, "the child is still there")
        # The list first, then the child goes.
        rc, doc, _ = self.aws("batch-delete-image", "--repository-name", repo,
                              "--image-ids", "imageTag=multi", "imageDigest=" + arm_digest)
        self.assertEqual(doc["failures"], [])
        self.assertEqual(sorted(i["imageDigest"] for i in doc["imageIds"]),
                         sorted([list_digest, arm_digest]))
        st, _, _ = get_manifest(self.reg.url, repo, "arm64", method="HEAD")
        self.assertEqual(st, 404)

    def test_immutable_tags_refuse_a_skopeo_push_except_excluded_ones(self):
        repo = "cli/frozen"
        self.aws("create-repository", "--repository-name", repo)
        self.skopeo_push(self.amd64["ref"], repo + ":v1")
        self.skopeo_push(self.amd64["ref"], repo + ":latest")
        _, first = skopeo_raw(self.c, "%s/%s:v1" % (self.H, repo))
        rc, doc, _ = self.aws("put-image-tag-mutability", "--repository-name", repo,
                              "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION",
                              "--image-tag-mutability-exclusion-filters",
                              "filterType=WILDCARD,filter=lat*")
        self.assertEqual(doc["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION")
        self.assertEqual(doc["imageTagMutabilityExclusionFilters"],
                         [{"filterType": "WILDCARD", "filter": "lat*"}])
        rc, doc, _ = self.aws("describe-repositories", "--repository-names", repo)
        self.assertEqual(doc["repositories"][0]["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION")

        # Moving v1 to another image is refused on /v2: TAG_INVALID, and v1 stays.
        res = self.skopeo_push(self.other["ref"], repo + ":v1", check=False)
        out = res.stdout + res.stderr
        self.assertNotEqual(res.returncode, 0, out)
        self.assertTrue("tag invalid" in out.lower() or "TAG_INVALID" in out, out)
        self.assertIn("immutable", out)
        _, still = skopeo_raw(self.c, "%s/%s:v1" % (self.H, repo))
        self.assertEqual(still, first)
        # Pushing the very same image to v1 again is not a move.
        self.skopeo_push(self.amd64["ref"], repo + ":v1")
        # "latest" matches the exclusion filter: it moves.
        self.skopeo_push(self.other["ref"], repo + ":latest")
        _, latest = skopeo_raw(self.c, "%s/%s:latest" % (self.H, repo))
        self.assertEqual(latest, self.other["digest"])
        # And back to MUTABLE: v1 moves.
        self.aws("put-image-tag-mutability", "--repository-name", repo,
                 "--image-tag-mutability", "MUTABLE")
        self.skopeo_push(self.other["ref"], repo + ":v1")
        _, moved = skopeo_raw(self.c, "%s/%s:v1" % (self.H, repo))
        self.assertEqual(moved, self.other["digest"])


if __name__ == "__main__":
    unittest.main()
