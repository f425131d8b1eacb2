"""`berth admin migrate`: from `berth serve` on a laptop (files + SQLite) to three nodes
on one radosgw bucket and one PostgreSQL database, without re-pushing, and back.

The laptop runs with authentication on. Real clients (aws, boto3, skopeo, docker
manifest) push two platforms, a manifest list and give the repository every attribute
ECR has. The first migration runs while the laptop still serves; a push lands after it;
the laptop stops and a second run copies only that. Then three nodes behind nginx serve
it all: the same access keys and even the laptop's registry tokens work, DescribeImages
and the repository's attributes are identical, and `skopeo copy --all` gives back the
same digests. Finally the shared registry is migrated back into a new data directory.

Needs the services of tests/services/up.sh (skips without them, fails under CI)."""

import base64
import json
import os
import re
import subprocess

import boto3
from botocore.config import Config

from harness import (Clients, http, make_oci_layout, run, sha256_digest,
                     skip_unless_berth, to_yaml)
from scaleout import Nginx, SharedStorageTestCase

REGION = "us-east-1"
REPO = "team/app"


def read_default_profile(path):
    text = open(path).read()
    return (re.search(r"aws_access_key_id = (\S+)", text).group(1),
            re.search(r"aws_secret_access_key = (\S+)", text).group(1))


@skip_unless_berth
class MigrateTest(SharedStorageTestCase):
    STORAGE = "migrate"

    def setUp(self):
        super().setUp()
        self.maxDiff = None
        self.tmp = self.make_tmpdir()
        self.c = Clients(self.tmp)

    def write_yaml(self, name, cfg):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        return path

    def migrate(self, src, dst):
        env = dict(os.environ)
        env.update(self.storage.env())
        res = run([os.environ.get("BERTH_BIN", "berth"), "admin", "migrate", "--from", src,
                   "--to", dst], env=env, timeout=600)
        self.assertIn("Verified:", res.stdout)
        return res.stdout

    def ecr(self, url, key, secret):
        return boto3.client("ecr", endpoint_url=url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))

    def raw_digest(self, ref, password):
        cmd = self.c.skopeo("inspect", "--raw", "--creds", "AWS:" + password, "docker://" + ref)
        res = subprocess.run(cmd, env=self.c.env, stdout=subprocess.PIPE, check=True, timeout=120)
        return sha256_digest(res.stdout)

    def snapshot(self, ecr):
        """What a user sees of the registry through the ECR API."""
        repo = ecr.describe_repositories(repositoryNames=[REPO])["repositories"][0]
        repo["repositoryUri"] = repo["repositoryUri"].split("/", 1)[1]  # names the node
        images = ecr.describe_images(repositoryName=REPO)["imageDetails"]
        for d in images:
            d.pop("registryId", None)
            d["imageTags"] = sorted(d.get("imageTags", []))
        return {
            "repository": repo,
            "images": sorted(images, key=lambda d: d["imageDigest"]),
            "policy": ecr.get_repository_policy(repositoryName=REPO)["policyText"],
            "tags": ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"],
            "repositories": sorted(r["repositoryName"]
                                   for r in ecr.describe_repositories()["repositories"]),
        }

    def test_laptop_to_three_nodes_and_back(self):
        # ---- the laptop: files + SQLite, authentication on
        laptop = self.start_registry(auth=True, create_on_push=False)
        key, secret = read_default_profile(os.path.join(laptop.data_dir, "credentials"))
        ecr = self.ecr(laptop.url, key, secret)
        ecr.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True},
                              tags=[{"Key": "team", "Value": "a"}])
        ecr.create_repository(repositoryName="empty/repo")
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})
        ecr.set_repository_policy(repositoryName=REPO, policyText=policy)
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().split(":", 1)[1]
        creds = ["--dest-creds", "AWS:" + password]
        layout = os.path.join(self.tmp, "layout")
        amd = make_oci_layout(layout, "amd64", "amd64", layers=2)
        arm = make_oci_layout(layout, "arm64", "arm64", variant="v8")
        H = laptop.host
        run(self.c.skopeo_copy(amd["ref"], "docker://%s/%s:amd64" % (H, REPO), *creds),
            env=self.c.env)
        run(self.c.skopeo_copy(arm["ref"], "docker://%s/%s:arm64" % (H, REPO), *creds),
            env=self.c.env)
        docker_env = dict(self.c.env)
        run(["docker", "login", "--username", "AWS", "--password-stdin", H], env=docker_env,
            input=password, timeout=60)
        lst = "%s/%s:multi" % (H, REPO)
        run(["docker", "manifest", "create", "--insecure", lst, "%s/%s:amd64" % (H, REPO),
             "%s/%s:arm64" % (H, REPO)], env=docker_env, timeout=120)
        run(["docker", "manifest", "annotate", "--variant", "v8", lst, "%s/%s:arm64" % (H, REPO)],
            env=docker_env, timeout=120)
        run(["docker", "manifest", "push", "--insecure", lst], env=docker_env, timeout=120)
        list_digest = self.raw_digest(lst, password)
        # A pull, so that there is a pull time to carry over.
        auth = {"Authorization": "Basic " + base64.b64encode(("AWS:" + password).encode()).decode()}
        st, _, _ = http("GET", laptop.url + "/v2/%s/manifests/amd64" % REPO, headers=auth)
        self.assertEqual(st, 200)

        laptop_yaml = self.write_yaml("laptop.yaml", {"data_dir": laptop.data_dir})
        shared_cfg = self.storage.config()
        shared_cfg["data_dir"] = os.path.join(self.tmp, "unused")
        shared_yaml = self.write_yaml("shared.yaml", shared_cfg)

        # ---- first pass while the laptop serves, then one more push, then the delta
        out = self.migrate(laptop_yaml, shared_yaml)
        self.assertRegex(out, r"identities: 1 added")
        self.assertRegex(out, r"token key copied")
        late = make_oci_layout(layout, "late", "amd64", layers=1)
        run(self.c.skopeo_copy(late["ref"], "docker://%s/%s:late" % (H, REPO), *creds),
            env=self.c.env)
        before = self.snapshot(ecr)
        self.assertEqual(len(before["images"]), 4)
        self.assertIn("lastRecordedPullTime",
                      next(d for d in before["images"] if "amd64" in d["imageTags"]))
        laptop.stop()
        out = self.migrate(laptop_yaml, shared_yaml)
        # Only the late image's blobs moved this time (its config and one layer).
        self.assertRegex(out, r"blobs: 2 copied")
        self.assertRegex(out, r"manifests: 1 copied")

        # ---- three nodes on the bucket and the database
        nodes = [self.start_registry(auth=True, create_on_push=False, config=self.storage.config(),
                                     env=self.storage.env()) for _ in range(3)]
        for node in nodes:  # the migrated administrator exists: no node makes a new one
            self.assertFalse(os.path.exists(os.path.join(node.data_dir, "credentials")))
        lb = Nginx([n.port for n in nodes])
        self.addCleanup(lb.close)
        after = self.snapshot(self.ecr(lb.url, key, secret))
        self.assertEqual(after, before)
        for node in nodes:  # a token the laptop minted still works: the key moved too
            self.assertEqual(http("GET", node.url + "/v2/", headers=auth)[0], 200, node.url)
        # The list and every platform, byte for byte, through the balancer.
        lb_list = "%s/%s:multi" % (lb.host, REPO)
        out_dir = os.path.join(self.tmp, "copied")
        run(self.c.skopeo_copy("docker://" + lb_list, "dir:" + out_dir, "--all", "--src-creds",
                               "AWS:" + password), env=self.c.env)
        self.assertEqual(self.raw_digest(lb_list, password), list_digest)

        # ---- and back to one machine
        for node in nodes:
            node.stop()
        back_dir = os.path.join(self.tmp, "back")
        back_yaml = self.write_yaml("back.yaml", {"data_dir": back_dir})
        out = self.migrate(shared_yaml, back_yaml)
        self.assertRegex(out, r"blobs: \d+ copied")
        back = self.start_registry(auth=True, create_on_push=False, data_dir=back_dir)
        # As before, but the pulls through the balancer above moved some pull times on.
        again = self.snapshot(self.ecr(back.url, key, secret))
        for then, now in zip(before["images"], again["images"]):
            self.assertGreaterEqual(now.pop("lastRecordedPullTime", 0),
                                    then.pop("lastRecordedPullTime", 0))
        self.assertEqual(again, before)
        st, _, _ = http("GET", back.url + "/v2/", headers=auth)
        self.assertEqual(st, 200)
        run(self.c.skopeo_copy("docker://%s/%s:multi" % (back.host, REPO),
                               "dir:" + os.path.join(self.tmp, "back-copy"), "--all",
                               "--src-creds", "AWS:" + password), env=self.c.env)
