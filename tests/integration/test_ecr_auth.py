"""The seed workflow with authentication on, end to end with unmodified clients:
aws ecr get-login-password | docker login, aws ecr create-repository, skopeo pushes
with docker's credentials, docker manifest create/annotate/push, aws ecr
describe-images / batch-get-image / batch-delete-image. Plus registry-token,
SigV4 and policy cases."""

import base64
import json
import os
import re
import unittest

import boto3
import botocore.exceptions
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from harness import (Clients, RegistryTestCase, berth_bin, http, json_errors, make_oci_layout,
                     run, sha256_digest, skip_unless_berth)

REGION = "us-east-1"
ACCOUNT = "000000000000"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."


def read_profile(path, profile):
    text = open(path).read()
    section = re.search(r"\[%s\]\n(.*?)(?:\n\[|\Z)" % re.escape(profile), text, re.S).group(1)
    key = re.search(r"aws_access_key_id = (\S+)", section).group(1)
    secret = re.search(r"aws_secret_access_key = (\S+)", section).group(1)
    return key, secret


@skip_unless_berth
class AuthWorkflowTest(RegistryTestCase):
    def setUp(self):
        super().setUp()
        self.reg = self.start_registry(auth=True, create_on_push=False)
        self.tmp = self.make_tmpdir()
        self.creds = os.path.join(self.reg.data_dir, "credentials")
        self.clients = Clients(self.tmp)
        self.env = dict(self.clients.env)
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": self.creds,
                         "AWS_CONFIG_FILE": os.path.join(self.tmp, "aws-config"),
                         "AWS_DEFAULT_REGION": REGION})
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            self.env.pop(k, None)

    def aws(self, *args, check=True):
        return run(["aws", "ecr", *args, "--endpoint-url", self.reg.url, "--region", REGION,
                    "--output", "json"], env=self.env, check=check)

    def boto(self, key, secret):
        return boto3.client("ecr", endpoint_url=self.reg.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}))

    def docker_login(self):
        pw = self.aws("get-login-password").stdout.strip()
        self.assertNotIn(":", pw)
        out = run(["docker", "login", "--username", "AWS", "--password-stdin", self.reg.host],
                  env=self.env, input=pw)
        self.assertIn("Login Succeeded", out.stdout + out.stderr)
        return pw

    def test_first_run_writes_admin_credentials_mode_0600(self):
        self.assertEqual(os.stat(self.creds).st_mode & 0o777, 0o600)
        self.assertIn("[default]", open(self.creds).read())
        self.assertIn("created an administrator access key", self.reg.log_text())

    def test_seed_workflow_with_real_clients(self):
        # /v2/ challenges with Basic, as docker needs before it sends credentials.
        st, h, body = http("GET", self.reg.url + "/v2/")
        self.assertEqual(st, 401)
        self.assertRegex(h["WWW-Authenticate"], r'^Basic realm="[^"]+",service="ecr.amazonaws.com"$')
        self.assertEqual(json_errors(body), ["UNAUTHORIZED"])
        self.docker_login()
        # A push before the repository exists fails, naming it.
        layout_amd = os.path.join(self.tmp, "amd64")
        amd = make_oci_layout(layout_amd, "v1", "amd64")
        layout_arm = os.path.join(self.tmp, "arm64")
        arm = make_oci_layout(layout_arm, "v1", "arm64", variant="v8")
        res = run(self.clients.skopeo("copy", "oci:%s:v1" % layout_amd,
                                      "docker://%s/team/app:amd64" % self.reg.host),
                  env=self.env, check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("team/app", res.stdout + res.stderr)
        out = json.loads(self.aws("create-repository", "--repository-name", "team/app").stdout)
        self.assertEqual(out["repository"]["repositoryUri"], "%s/team/app" % self.reg.host)
        # skopeo uses the credentials docker wrote.
        run(self.clients.skopeo("copy", "--format", "v2s2", "oci:%s:v1" % layout_amd,
                                "docker://%s/team/app:amd64" % self.reg.host), env=self.env)
        run(self.clients.skopeo("copy", "oci:%s:v1" % layout_arm,
                                "docker://%s/team/app:arm64" % self.reg.host), env=self.env)
        images = json.loads(self.aws("describe-images", "--repository-name", "team/app").stdout)
        tags = sorted(t for d in images["imageDetails"] for t in d.get("imageTags", []))
        self.assertEqual(tags, ["amd64", "arm64"])
        # docker manifest create/annotate/push with the same login.
        ref = "%s/team/app" % self.reg.host
        run(["docker", "manifest", "create", "--insecure", ref + ":multi", ref + ":amd64",
             ref + ":arm64"], env=self.env)
        run(["docker", "manifest", "annotate", "--variant", "v8", ref + ":multi", ref + ":arm64"],
            env=self.env)
        pushed = run(["docker", "manifest", "push", "--insecure", ref + ":multi"],
                     env=self.env).stdout.strip().splitlines()[-1]
        self.assertRegex(pushed, r"^sha256:[0-9a-f]{64}$")
        images = json.loads(self.aws("describe-images", "--repository-name", "team/app",
                                     "--image-ids", "imageTag=multi").stdout)
        detail = images["imageDetails"][0]
        self.assertEqual(detail["imageDigest"], pushed)
        self.assertIn(detail["imageManifestMediaType"],
                      ("application/vnd.docker.distribution.manifest.list.v2+json",
                       "application/vnd.oci.image.index.v1+json"))
        sizes = {d["imageDigest"]: d["imageSizeInBytes"] for d in json.loads(
            self.aws("describe-images", "--repository-name", "team/app").stdout)["imageDetails"]}
        # A list's size is its largest child's (ECR's rule).
        self.assertEqual(len(sizes), 3)
        self.assertEqual(detail["imageSizeInBytes"],
                         max(v for k, v in sizes.items() if k != pushed))
        got = json.loads(self.aws("batch-get-image", "--repository-name", "team/app",
                                  "--image-ids", "imageTag=multi").stdout)
        manifest = got["images"][0]["imageManifest"]
        self.assertEqual(sha256_digest(manifest.encode()), pushed)
        out = json.loads(self.aws("batch-delete-image", "--repository-name", "team/app",
                                  "--image-ids", "imageDigest=%s" % arm["digest"]).stdout)
        self.assertEqual(out["failures"][0]["failureCode"], "ImageReferencedByManifestList")

    def test_wrong_password_and_forged_or_rotated_tokens_are_refused(self):
        res = run(["docker", "login", "--username", "AWS", "--password-stdin", self.reg.host],
                  env=self.env, input="v1.000000000000.bogus.bogus", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("401", res.stdout + res.stderr)
        pw = self.aws("get-login-password").stdout.strip()
        auth = "Basic " + base64.b64encode(("AWS:" + pw).encode()).decode()
        st, _, _ = http("GET", self.reg.url + "/v2/_catalog", headers={"Authorization": auth})
        self.assertEqual(st, 200)
        forged = pw[:-2] + ("AA" if not pw.endswith("AA") else "BB")
        st, _, body = http("GET", self.reg.url + "/v2/_catalog", headers={
            "Authorization": "Basic " + base64.b64encode(("AWS:" + forged).encode()).decode()})
        self.assertEqual(st, 401)
        run([berth_bin(), "admin", "rotate-token-key", "--data", self.reg.data_dir])
        def refused():
            return http("GET", self.reg.url + "/v2/_catalog", headers={"Authorization": auth})[0] == 401
        import time
        deadline = time.time() + 5
        while not refused() and time.time() < deadline:
            time.sleep(0.2)
        self.assertTrue(refused(), "a token minted before key rotation still works")

    def test_expired_token_is_refused(self):
        reg = self.start_registry(auth=True, config={"auth": {"token_ttl_seconds": 1}})
        key, secret = read_profile(os.path.join(reg.data_dir, "credentials"), "default")
        client = boto3.client("ecr", endpoint_url=reg.url, region_name=REGION,
                              aws_access_key_id=key, aws_secret_access_key=secret)
        token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        auth = "Basic " + token
        self.assertEqual(http("GET", reg.url + "/v2/_catalog", headers={"Authorization": auth})[0], 200)
        import time
        time.sleep(2.2)
        st, _, body = http("GET", reg.url + "/v2/_catalog", headers={"Authorization": auth})
        self.assertEqual(st, 401)
        self.assertIn("expired", body.decode())

    def test_sigv4_wrong_secret_and_unknown_key(self):
        key, secret = read_profile(self.creds, "default")
        self.boto(key, secret).describe_repositories()
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.boto(key, "x" * 40).describe_repositories()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "InvalidSignatureException")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            self.boto("AKIAAAAAAAAAAAAAAAAA", secret).describe_repositories()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "UnrecognizedClientException")

    def test_sigv4_unsigned_target_cannot_be_replayed_as_another_operation(self):
        key, secret = read_profile(self.creds, "default")
        self.boto(key, secret).create_repository(repositoryName="victim/app")
        body = json.dumps({"repositoryName": "victim/app"}).encode()
        # Signed by botocore, but over Host, X-Amz-Date and Content-Type only: the
        # operation (X-Amz-Target) is added afterwards, outside the signature.
        req = AWSRequest(method="POST", url=self.reg.url + "/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(key, secret), "ecr", REGION).add_auth(req)
        self.assertNotIn("x-amz-target", req.headers["Authorization"])
        for op in ("DescribeImages", "DeleteRepository"):
            headers = dict(req.headers.items())
            headers["X-Amz-Target"] = TARGET_PREFIX + op
            st, _, out = http("POST", self.reg.url + "/", headers=headers, body=body)
            self.assertEqual(st, 400, out)
            self.assertEqual(json.loads(out)["__type"], "IncompleteSignatureException", out)
            self.assertIn("x-amz-target", json.loads(out)["message"])
        # The repository survived the replay.
        repos = self.boto(key, secret).describe_repositories()["repositories"]
        self.assertIn("victim/app", [r["repositoryName"] for r in repos])
        # Signed without Content-Type while sending one: refused as well.
        req = AWSRequest(method="POST", url=self.reg.url + "/", data=body,
                         headers={"X-Amz-Target": TARGET_PREFIX + "DescribeRepositories"})
        SigV4Auth(Credentials(key, secret), "ecr", REGION).add_auth(req)
        headers = dict(req.headers.items())
        headers["Content-Type"] = "application/x-amz-json-1.1"
        st, _, out = http("POST", self.reg.url + "/", headers=headers, body=body)
        self.assertEqual(json.loads(out)["__type"], "IncompleteSignatureException", out)

    def test_sigv4_credential_scope_of_another_region_is_refused(self):
        key, secret = read_profile(self.creds, "default")
        client = boto3.client("ecr", endpoint_url=self.reg.url, region_name="eu-west-1",
                              aws_access_key_id=key, aws_secret_access_key=secret,
                              config=Config(retries={"max_attempts": 1}))
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            client.describe_repositories()
        err = ctx.exception.response["Error"]
        self.assertEqual(err["Code"], "InvalidSignatureException")
        self.assertTrue(err["Message"].startswith("Credential should be scoped to a valid region."),
                        err["Message"])
        self.assertIn("us-east-1", err["Message"])

    def create_key(self, name, policy, account=None):
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(policy, f)
        cmd = [berth_bin(), "admin", "create-key", "--data", self.reg.data_dir, "--name", name,
               "--policy", path]
        if account:
            cmd += ["--account", account]
        out = run(cmd).stdout
        key = re.search(r"aws_access_key_id = (\S+)", out).group(1)
        secret = re.search(r"aws_secret_access_key = (\S+)", out).group(1)
        return key, secret

    def test_policy_matrix(self):
        admin = self.boto(*read_profile(self.creds, "default"))
        admin.create_repository(repositoryName="team/app")
        layout = os.path.join(self.tmp, "img")
        make_oci_layout(layout, "v1", "amd64")
        pw = self.docker_login()
        run(self.clients.skopeo("copy", "oci:%s:v1" % layout,
                                "docker://%s/team/app:v1" % self.reg.host), env=self.env)
        # A pull-only identity of the same account.
        pull_only = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage",
                                          "ecr:GetDownloadUrlForLayer",
                                          "ecr:BatchCheckLayerAvailability"],
            "Resource": "*"}]}
        puller = self.boto(*self.create_key("puller", pull_only))
        token = puller.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, ppw = base64.b64decode(token).decode().split(":", 1)
        pdir = self.make_tmpdir()
        penv = dict(Clients(pdir).env)
        run(["docker", "login", "--username", user, "--password-stdin", self.reg.host],
            env=penv, input=ppw)
        pclients = Clients(pdir)
        run(pclients.skopeo("inspect", "--raw", "docker://%s/team/app:v1" % self.reg.host), env=penv)
        res = run(pclients.skopeo("copy", "oci:%s:v1" % layout,
                                  "docker://%s/team/app:v2" % self.reg.host), env=penv, check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("denied", (res.stdout + res.stderr).lower())
        # docker manifest push is refused too (PutImage), with the registry's message.
        ref = "%s/team/app" % self.reg.host
        run(["docker", "manifest", "create", "--insecure", ref + ":list", ref + ":v1"], env=penv)
        res = run(["docker", "manifest", "push", "--insecure", ref + ":list"], env=penv,
                  check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("denied", (res.stdout + res.stderr).lower())
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            puller.create_repository(repositoryName="team/other")
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AccessDeniedException")
        # Explicit deny beats allow.
        deny = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "ecr:DescribeRepositories", "Resource": "*"}]}
        denied = self.boto(*self.create_key("denied", deny))
        denied.describe_images(repositoryName="team/app")
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            denied.describe_repositories()
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AccessDeniedException")
        # Another account sees nothing of this one until a repository policy grants it.
        everything = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
        other = self.boto(*self.create_key("other", everything, account="111111111111"))
        self.assertEqual(other.describe_repositories()["repositories"], [])
        with self.assertRaises(botocore.exceptions.ClientError) as ctx:
            other.batch_get_image(registryId=ACCOUNT, repositoryName="team/app",
                                  imageIds=[{"imageTag": "v1"}])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "AccessDeniedException")
        admin.set_repository_policy(repositoryName="team/app", policyText=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
        got = other.batch_get_image(registryId=ACCOUNT, repositoryName="team/app",
                                    imageIds=[{"imageTag": "v1"}])
        self.assertEqual(len(got["images"]), 1)
        # Secrets and tokens never reach the log.
        log = self.reg.log_text()
        for secret in (read_profile(self.creds, "default")[1], pw, ppw):
            self.assertNotIn(secret, log)


if __name__ == "__main__":
    unittest.main()
