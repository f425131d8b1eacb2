"""`berth ecr get-login-password` / `berth ecr login`, `berth repo` and `berth images`
against Berth with authentication on: the ECR API calls are SigV4-signed with the
credentials the server writes on first run; the login is used by docker and skopeo."""

import base64
import json
import os
import re
import unittest

from client_helpers import (EXIT_AUTH, EXIT_FAILURE, EXIT_NETWORK, EXIT_NOT_FOUND, EXIT_OK, berth,
                            berth_env, describe)
from harness import (Clients, RegistryTestCase, berth_bin, free_port, make_oci_layout, run,
                     skip_unless_berth)

REGION = "us-east-1"


def read(path):
    with open(path) as f:
        return f.read()


@skip_unless_berth
class EcrClientTest(RegistryTestCase):
    def setUp(self):
        super().setUp()
        self.reg = self.start_registry(auth=True, create_on_push=True)
        self.H = self.reg.host
        self.tmp = self.make_tmpdir()
        self.c = Clients(self.tmp)
        self.env = berth_env(self.c)
        self.creds = os.path.join(self.reg.data_dir, "credentials")
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                  "AWS_ENDPOINT_URL_ECR"):
            self.env.pop(k, None)
        self.env["AWS_SHARED_CREDENTIALS_FILE"] = self.creds
        self.env["AWS_CONFIG_FILE"] = os.path.join(self.tmp, "aws-config")
        self.config_path = os.path.join(self.c.docker_config, "config.json")
        self.layout = os.path.join(self.tmp, "layout")
        self.img = make_oci_layout(self.layout, "v1", "amd64")

    def ecr(self, *args, env=None):
        return berth(env or self.env, "ecr", *args, "--endpoint-url", self.reg.url,
                     "--region", REGION)

    def push_and_inspect(self, repo):
        ref = "docker://%s/%s:v1" % (self.H, repo)
        run(self.c.skopeo("copy", "--authfile", self.config_path,
                          "oci:%s:v1" % self.layout, ref), env=self.c.env)
        out = run(self.c.skopeo("inspect", "--authfile", self.config_path, ref),
                  env=self.c.env).stdout
        self.assertEqual(json.loads(out)["Digest"], self.img["digest"])
        return "%s/%s:v1" % (self.H, repo)

    def test_get_login_password_piped_to_docker_login(self):
        res = self.ecr("get-login-password")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        pw = res.stdout.strip()
        self.assertTrue(pw)
        self.assertNotIn(":", pw)
        self.assertEqual(res.stdout.count("\n"), 1)
        # The shell pipe of the docs, with docker's own login.
        cmd = "%s ecr get-login-password --endpoint-url %s --region %s | " \
              "docker login --username AWS --password-stdin %s" % (
                  berth_bin(), self.reg.url, REGION, self.H)
        out = run(cmd, env=self.env)
        self.assertIn("Login Succeeded", out.stdout + out.stderr)
        with open(self.config_path) as f:
            user, _, _ = base64.b64decode(json.load(f)["auths"][self.H]["auth"]).decode() \
                .partition(":")
        self.assertEqual(user, "AWS")
        self.push_and_inspect("team/piped")

    def test_ecr_login_stores_credentials_for_docker_and_skopeo(self):
        res = self.ecr("login")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertIn("Login Succeeded", res.stdout)
        with open(self.config_path) as f:
            cfg = json.load(f)
        user, _, pw = base64.b64decode(cfg["auths"][self.H]["auth"]).decode().partition(":")
        self.assertEqual(user, "AWS")
        self.assertTrue(pw)
        self.assertEqual(os.stat(self.config_path).st_mode & 0o777, 0o600)
        ref = self.push_and_inspect("team/app")
        out = run(["docker", "manifest", "inspect", "--insecure", ref], env=self.c.env).stdout
        self.assertEqual(json.loads(out)["config"]["digest"], self.img["config_digest"])
        # berth's registry commands use the same login.
        res = berth(self.env, "tags", "%s/team/app" % self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertIn("v1", res.stdout.split())

    def test_ecr_login_with_explicit_host_and_env_credentials_and_profile(self):
        text = read(self.creds)
        key = re.search(r"aws_access_key_id = (\S+)", text).group(1)
        secret = re.search(r"aws_secret_access_key = (\S+)", text).group(1)
        # A named profile in a separate file, selected with --profile.
        other = os.path.join(self.tmp, "other-credentials")
        with open(other, "w") as f:
            f.write("[default]\naws_access_key_id = AKIAUNKNOWN\n"
                    "aws_secret_access_key = nope\n\n[ci]\naws_access_key_id = %s\n"
                    "aws_secret_access_key = %s\n" % (key, secret))
        env = dict(self.env, AWS_SHARED_CREDENTIALS_FILE=other)
        res = berth(env, "ecr", "get-login-password", "--endpoint-url", self.reg.url,
                    "--region", REGION, "--profile", "ci")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        # Environment variables win over the file; region from the config file.
        with open(env["AWS_CONFIG_FILE"], "w") as f:
            f.write("[default]\nregion = %s\n" % REGION)
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
        res = berth(env, "ecr", "login", "--endpoint-url", self.reg.url, self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertIn(self.H, json.loads(read(self.config_path))["auths"])
        # Without environment variables, the file's default profile is unknown.
        env.pop("AWS_ACCESS_KEY_ID")
        env.pop("AWS_SECRET_ACCESS_KEY")
        res = berth(env, "ecr", "get-login-password", "--endpoint-url", self.reg.url)
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("UnrecognizedClientException", res.stderr)

    def test_wrong_secret_is_refused_with_the_exception_name(self):
        text = read(self.creds)
        bad = os.path.join(self.tmp, "bad-credentials")
        with open(bad, "w") as f:
            f.write(re.sub(r"aws_secret_access_key = \S+", "aws_secret_access_key = wrong", text))
        env = dict(self.env, AWS_SHARED_CREDENTIALS_FILE=bad)
        res = self.ecr("get-login-password", env=env)
        self.assertNotEqual(res.returncode, 0)
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("InvalidSignatureException", res.stderr)
        self.assertEqual(res.stdout, "")
        res = self.ecr("login", env=env)
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("berth ecr login: InvalidSignatureException", res.stderr)
        self.assertFalse(os.path.exists(self.config_path))

    def test_repo_and_images(self):
        def cmd(*args):
            return berth(self.env, *args, "--endpoint-url", self.reg.url, "--region", REGION)
        res = cmd("repo", "create", "team/listed")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertEqual(res.stdout.strip(), "%s/team/listed" % self.H)
        res = cmd("repo", "create", "team/listed")
        self.assertEqual(res.returncode, EXIT_FAILURE, describe(res))
        self.assertIn("RepositoryAlreadyExistsException", res.stderr)
        res = cmd("repo", "ls")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "URI", "CREATED"])
        self.assertIn("team/listed", [l.split()[0] for l in lines[1:]])
        res = cmd("ecr", "login")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.push_and_inspect("team/listed")
        res = cmd("images", "team/listed")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        lines = res.stdout.splitlines()
        self.assertRegex(lines[0], r"^DIGEST\s+TAGS\s+SIZE\s+PUSHED\s+MEDIA TYPE$")
        self.assertEqual(len(lines), 2, res.stdout)
        self.assertTrue(lines[1].startswith(self.img["digest"] + " "), res.stdout)
        self.assertIn(" v1 ", lines[1])
        self.assertRegex(lines[1], r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        res = cmd("images", "team/listed", "--json")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        details = json.loads(res.stdout)
        self.assertEqual([d["imageDigest"] for d in details], [self.img["digest"]])
        self.assertEqual(details[0]["imageTags"], ["v1"])
        self.assertIn("imageManifestMediaType", details[0])
        res = cmd("images", "team/none")
        self.assertEqual(res.returncode, EXIT_NOT_FOUND, describe(res))
        self.assertIn("RepositoryNotFoundException", res.stderr)
        res = cmd("repo", "rm", "team/listed")
        self.assertEqual(res.returncode, EXIT_FAILURE, describe(res))
        self.assertIn("RepositoryNotEmptyException", res.stderr)
        res = cmd("repo", "rm", "--force", "team/listed")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        res = cmd("repo", "ls", "--json")
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertNotIn("team/listed", [r["repositoryName"] for r in json.loads(res.stdout)])

    def test_missing_credentials_and_unreachable_endpoint(self):
        env = dict(self.env, AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.tmp, "none"))
        res = self.ecr("get-login-password", env=env)
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("Unable to locate credentials", res.stderr)
        res = berth(self.env, "ecr", "get-login-password", "--endpoint-url",
                    "http://127.0.0.1:%d" % free_port(), "--region", REGION)
        self.assertEqual(res.returncode, EXIT_NETWORK, describe(res))


if __name__ == "__main__":
    unittest.main()
