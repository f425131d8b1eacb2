"""`berth login` / `logout` against CNCF Distribution with htpasswd auth: the
credentials berth saves in $DOCKER_CONFIG/config.json are used by skopeo and
`docker manifest`, and docker's login is used by berth."""

import base64
import json
import os
import unittest

from client_helpers import (EXIT_AUTH, EXIT_NETWORK, EXIT_OK, berth, berth_env, describe,
                            distribution_available, htpasswd_line)
from harness import Clients, RegistryTestCase, free_port, make_oci_layout, run


@unittest.skipUnless(distribution_available(), "docker-registry (CNCF Distribution) not installed")
class LoginTest(RegistryTestCase):
    USER, PASSWORD = "alice", "s3cret-pw"

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_class_tmpdir()
        htpasswd = os.path.join(cls.tmp, "htpasswd")
        with open(htpasswd, "w") as f:
            f.write(htpasswd_line(cls.USER, cls.PASSWORD) + "\n")
        cls.reg = cls.start_class_registry(
            target="distribution",
            config={"auth": {"htpasswd": {"realm": "berth-test", "path": htpasswd}}})
        cls.H = cls.reg.host
        layout = os.path.join(cls.tmp, "layout")
        cls.img = make_oci_layout(layout, "amd64", "amd64")
        seed = Clients(os.path.join(cls.tmp, "seed"))
        run(seed.skopeo_copy(cls.img["ref"], "docker://%s/app:amd64" % cls.H,
                             "--dest-creds", "%s:%s" % (cls.USER, cls.PASSWORD)), env=seed.env)

    def setUp(self):
        super().setUp()
        self.c = Clients(self.make_tmpdir())
        self.env = berth_env(self.c)
        self.config_path = os.path.join(self.c.docker_config, "config.json")

    def login(self, password, *extra):
        return berth(self.env, "login", self.H, "-u", self.USER, "--password-stdin", *extra,
                     input=password + "\n")

    def test_wrong_password_is_refused_and_not_saved(self):
        res = self.login("wrong")
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("login attempt to http://%s/v2/ failed with status: 401" % self.H, res.stderr)
        self.assertFalse(os.path.exists(self.config_path))

    def test_login_is_shared_with_skopeo_and_docker(self):
        res = self.login(self.PASSWORD)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertIn("Login Succeeded", res.stdout)
        with open(self.config_path) as f:
            cfg = json.load(f)
        self.assertEqual(base64.b64decode(cfg["auths"][self.H]["auth"]).decode(),
                         "%s:%s" % (self.USER, self.PASSWORD))
        self.assertEqual(os.stat(self.config_path).st_mode & 0o777, 0o600)
        # skopeo reads docker's config.json
        out = run(self.c.skopeo("inspect", "--authfile", self.config_path,
                                "docker://%s/app:amd64" % self.H), env=self.c.env).stdout
        self.assertEqual(json.loads(out)["Digest"], self.img["digest"])
        # docker manifest uses the same login
        out = run(["docker", "manifest", "inspect", "--insecure", "%s/app:amd64" % self.H],
                  env=self.c.env).stdout
        self.assertEqual(json.loads(out)["config"]["digest"], self.img["config_digest"])
        # berth itself
        res = berth(self.env, "tags", "%s/app" % self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertIn("amd64", res.stdout.split())
        # logout removes it; berth is then refused with the auth exit code
        res = berth(self.env, "logout", self.H)
        self.assertIn("Removing login credentials for %s" % self.H, res.stdout)
        res = berth(self.env, "inspect", "docker://%s/app:amd64" % self.H)
        self.assertEqual(res.returncode, EXIT_AUTH, describe(res))
        self.assertIn("berth login %s" % self.H, res.stderr)
        res = berth(self.env, "logout", self.H)
        self.assertIn("Not logged in to %s" % self.H, res.stdout)

    def test_docker_login_is_used_by_berth(self):
        run(["docker", "login", "-u", self.USER, "--password-stdin", self.H], env=self.c.env,
            input=self.PASSWORD + "\n")
        res = berth(self.env, "inspect", "--json", "docker://%s/app:amd64" % self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        self.assertEqual(json.loads(res.stdout)["Digest"], self.img["digest"])
        # a manifest list pushed by berth with docker's credentials
        lst = "%s/app:list" % self.H
        res = berth(self.env, "manifest", "create", lst, "%s/app:amd64" % self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        res = berth(self.env, "manifest", "push", "--purge", lst)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))

    def test_credential_helper(self):
        # A docker-credential-* helper (the protocol docker and skopeo use) on PATH.
        bindir = self.make_tmpdir()
        store = os.path.join(bindir, "store.json")
        helper = os.path.join(bindir, "docker-credential-berthtest")
        with open(helper, "w") as f:
            f.write("""#!/usr/bin/env python3
import json, os, sys
path = %r
db = json.load(open(path)) if os.path.exists(path) else {}
action, data = sys.argv[1], sys.stdin.read()
if action == "store":
    req = json.loads(data); db[req["ServerURL"]] = [req["Username"], req["Secret"]]
elif action == "get":
    if data.strip() not in db:
        print("credentials not found in native keychain"); sys.exit(1)
    u, s = db[data.strip()]
    print(json.dumps({"ServerURL": data.strip(), "Username": u, "Secret": s})); sys.exit(0)
elif action == "erase":
    db.pop(data.strip(), None)
json.dump(db, open(path, "w"))
""" % store)
        os.chmod(helper, 0o755)
        env = dict(self.env, PATH=bindir + os.pathsep + self.env["PATH"])
        os.makedirs(self.c.docker_config, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump({"credsStore": "berthtest"}, f)
        res = berth(env, "login", self.H, "-u", self.USER, "--password-stdin",
                    input=self.PASSWORD)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        with open(store) as f:
            self.assertEqual(json.load(f)[self.H], [self.USER, self.PASSWORD])
        with open(self.config_path) as f:
            self.assertNotIn("auth", json.load(f)["auths"].get(self.H, {}))
        res = berth(env, "tags", "%s/app" % self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        res = berth(env, "logout", self.H)
        self.assertEqual(res.returncode, EXIT_OK, describe(res))
        with open(store) as f:
            self.assertEqual(json.load(f), {})

    def test_unreachable_host(self):
        res = berth(self.env, "login", "127.0.0.1:%d" % free_port(), "-u", "u", "--password-stdin",
                    input="p")
        self.assertEqual(res.returncode, EXIT_NETWORK, describe(res))
        self.assertIn("cannot reach registry", res.stderr)


if __name__ == "__main__":
    unittest.main()
