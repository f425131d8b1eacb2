"""Helpers for the `berth` client tests (test_client_*.py); standard library only.

    berth_env(clients)            env for berth sharing docker/skopeo's DOCKER_CONFIG,
                                  with its own XDG_CACHE_HOME in the same temp dir
    berth(env, *args, input=None) CompletedProcess of `$BERTH_BIN args...` (never raises)
    EXIT_*                        the exit codes documented in docs/client.md
    distribution_available()      whether CNCF Distribution (docker-registry) is installed
    htpasswd_line(user, password) a bcrypt htpasswd line for Distribution's htpasswd auth
"""

import json
import os
import shutil
import subprocess

from harness import berth_bin

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_NETWORK = 0, 1, 2, 3, 4, 5


def berth_env(clients):
    env = dict(clients.env)
    env["XDG_CACHE_HOME"] = os.path.join(clients.tmpdir, "xdg-cache")
    return env


def berth(env, *args, input=None, timeout=600):
    return subprocess.run([berth_bin()] + [str(a) for a in args], env=env, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def describe(res):
    return "exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (res.returncode, res.stdout,
                                                                  res.stderr)


def distribution_available():
    return shutil.which("docker-registry") is not None


def htpasswd_line(user, password):
    """user:bcrypt(password). Uses htpasswd(1) when installed, else Python's crypt."""
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-Bbn", user, password], stdout=subprocess.PIPE,
                             text=True, check=True).stdout
        return out.strip()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, but present in 3.11 and enough for a test fixture
    return "%s:%s" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))


def upload_state_offset(state_dir):
    """The byte offset recorded in berth copy's resumable-upload state file under
    `state_dir` (0 when there is none yet or it is being rewritten)."""
    if not os.path.isdir(state_dir):
        return 0
    for name in os.listdir(state_dir):
        if name.endswith(".json"):
            try:
                with open(os.path.join(state_dir, name)) as f:
                    return json.load(f).get("offset", 0)
            except ValueError:
                return 0
    return 0
