"""Shared harness for Berth's integration tests (standard library only).

Public, stable API (other test modules depend on it):

    TARGET, IS_BERTH, IS_DISTRIBUTION, skip_unless_berth, skip_on_distribution
    free_port()
    Registry(create_on_push=True, config=None, data_dir=None, env=None, extra_args=())
        .start() / .close() / context manager; .url .host .port .pid .data_dir
        .proc .log_path .stop() .kill() .restart() .vm_hwm_kib() .metrics()
        .log_text() .returncode
    RegistryTestCase      unittest.TestCase base: start_registry(), make_tmpdir(),
                          prints registry logs when a test fails
    make_oci_layout(dir, tag, arch, os='linux', variant=None, files=None,
                    layers=1, docker_format=False) -> dict
    run(cmd, env=None, check=True, input=None, timeout=300) -> CompletedProcess
    http(method, url, headers=None, body=None, timeout=60) -> (status, headers, body)
    json_errors(body) -> [codes];  json_error_list(body) -> [error dicts]
    sha256_digest(data) -> "sha256:..."
    clients_env(tmpdir) -> env dict;  Clients(tmpdir): command builders for
        skopeo / buildah / podman / docker, all confined to tmpdir
    to_yaml(obj) -> str
    push_blob(url, repo, data) -> digest;  put_manifest(url, repo, ref, data, media_type)
    get_manifest(url, repo, ref, accept=ALL_MANIFEST_TYPES, method="GET")
    skopeo_raw(clients, "HOST/repo:ref") -> (raw bytes, digest);  wait_for(pred, timeout)
    media-type constants OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, ...

Env knobs: BERTH_TEST_VERBOSE=1 prints server logs for passing tests too;
BERTH_TEST_KEEP=1 keeps temp dirs.

Target selection: env BERTH_TEST_TARGET = "berth" (default) or "distribution"
(CNCF Distribution, the Debian `docker-registry` binary). BERTH_BIN names the
berth binary (default: <repo>/build/berth).
"""

import contextlib
import gzip
import hashlib
import http.client as _httpclient
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest
import urllib.parse

TARGET = os.environ.get("BERTH_TEST_TARGET", "berth").strip().lower() or "berth"
if TARGET not in ("berth", "distribution"):
    raise RuntimeError("BERTH_TEST_TARGET must be 'berth' or 'distribution', got %r" % TARGET)
IS_BERTH = TARGET == "berth"
IS_DISTRIBUTION = TARGET == "distribution"

skip_unless_berth = unittest.skipUnless(IS_BERTH, "Berth-only behaviour (target is %s)" % TARGET)
skip_on_distribution = skip_unless_berth

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
READY_TIMEOUT = 30.0
READY_RE = re.compile(r"berth listening on (https?://(127\.0\.0\.1|\[::1\]|localhost):(\d+))")

# Media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ALL_MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)


def berth_bin():
    path = os.environ.get("BERTH_BIN") or os.path.join(REPO_ROOT, "build", "berth")
    return path


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port():
    """A currently free TCP port on 127.0.0.1 (racy by nature; prefer :0 when possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

class CommandFailed(AssertionError):
    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


def _fmt_cmd(cmd):
    if isinstance(cmd, str):
        return cmd
    return " ".join(_shquote(str(c)) for c in cmd)


def _shquote(s):
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+,-]+", s or "x"):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def run(cmd, env=None, check=True, input=None, timeout=300, cwd=None):
    """Run cmd (list or shell string) capturing text output.

    env: full environment (e.g. clients_env(tmp)) or None for os.environ.
    Raises CommandFailed (an AssertionError) including stdout/stderr when
    check and the exit code is non-zero, or on timeout."""
    shell = isinstance(cmd, str)
    try:
        res = subprocess.run(cmd, shell=shell, env=env, input=input, cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise CommandFailed("command timed out after %ss: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                            % (timeout, _fmt_cmd(cmd), out, err))
    if check and res.returncode != 0:
        raise CommandFailed("command failed (exit %d): %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                            % (res.returncode, _fmt_cmd(cmd), res.stdout, res.stderr), res)
    return res


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def http(method, url, headers=None, body=None, timeout=60):
    """One HTTP request via http.client (no redirects followed).

    headers: dict or list of (name, value) pairs (repeat a name to send
    several header lines, e.g. several Accept lines).
    body: bytes, str or a dict/list (sent as JSON).
    Returns (status, headers, body_bytes); headers is an http.client.HTTPMessage:
    case-insensitive h['Name'] / h.get('Name'), multi-valued h.get_all('Name')."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http":
        raise ValueError("only http:// URLs are supported: %r" % url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    conn = _httpclient.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        pairs = headers.items() if isinstance(headers, dict) else (headers or [])
        names = set()
        for k, v in pairs:
            names.add(k.lower())
            conn.putheader(k, v)
        if body is not None and "content-length" not in names:
            conn.putheader("Content-Length", str(len(body)))
        elif body is None and method in ("POST", "PUT", "PATCH") and "content-length" not in names:
            conn.putheader("Content-Length", "0")
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.msg, data
    finally:
        conn.close()


def json_error_list(body):
    """The `errors` array of an OCI error body ([] if absent/unparseable)."""
    try:
        doc = json.loads(body.decode() if isinstance(body, (bytes, bytearray)) else body)
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        return [e for e in doc["errors"] if isinstance(e, dict)]
    return []


def json_errors(body):
    """List of error codes in an OCI error body, e.g. ['MANIFEST_BLOB_UNKNOWN']."""
    return [e.get("code") for e in json_error_list(body)]


# Small OCI client helpers built on http() -----------------------------------

def push_blob(base_url, repo, data):
    """Monolithic-ish push (POST then PUT ?digest=). Returns the digest."""
    digest = sha256_digest(data)
    st, h, b = http("POST", "%s/v2/%s/blobs/uploads/" % (base_url, repo))
    if st != 202:
        raise AssertionError("POST upload to %s: %d %r" % (repo, st, b[:500]))
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base_url + loc
    sep = "&" if "?" in loc else "?"
    st, h, b = http("PUT", loc + sep + "digest=" + urllib.parse.quote(digest),
                    headers={"Content-Type": "application/octet-stream"}, body=data)
    if st != 201:
        raise AssertionError("PUT upload to %s: %d %r" % (repo, st, b[:500]))
    return digest


def put_manifest(base_url, repo, ref, data, media_type):
    """PUT a manifest; returns (status, headers, body)."""
    if isinstance(data, (dict, list)):
        data = json.dumps(data).encode()
    return http("PUT", "%s/v2/%s/manifests/%s" % (base_url, repo, ref),
                headers={"Content-Type": media_type}, body=data)


def get_manifest(base_url, repo, ref, accept=ALL_MANIFEST_TYPES, method="GET"):
    return http(method, "%s/v2/%s/manifests/%s" % (base_url, repo, ref),
                headers=[("Accept", a) for a in accept])


# --------------------------------------------------------------------------
# YAML (hand-written, enough for configs: dict / list / scalars)
# --------------------------------------------------------------------------

def _yaml_scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            key = _yaml_scalar(k) if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", str(k)) else str(k)
            if isinstance(v, (dict, list)) and v:
                out.append("%s%s:\n%s" % (pad, key, to_yaml(v, indent + 1)))
            elif isinstance(v, (dict, list)):
                out.append("%s%s: %s\n" % (pad, key, "{}" if isinstance(v, dict) else "[]"))
            else:
                out.append("%s%s: %s\n" % (pad, key, _yaml_scalar(v)))
    elif isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                sub = to_yaml(v, indent + 1)
                # put the first line after the dash
                first, _, rest = sub.partition("\n")
                out.append("%s- %s\n%s" % (pad, first.strip(), rest))
            else:
                out.append("%s- %s\n" % (pad, _yaml_scalar(v) if not isinstance(v, (dict, list))
                                         else ("{}" if isinstance(v, dict) else "[]")))
    else:
        out.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(out)


# --------------------------------------------------------------------------
# The registry under test
# --------------------------------------------------------------------------

class Registry:
    """Runs the registry under test (berth, or CNCF Distribution when
    BERTH_TEST_TARGET=distribution) on loopback.

    config: dict written as YAML (berth: passed via --config; distribution:
    merged into the generated registry config) or a str of YAML text.
    data_dir: persistent data dir (kept); default is a temp dir removed on close.
    env: extra environment variables for the server process."""

    def __init__(self, create_on_push=True, config=None, data_dir=None, env=None,
                 extra_args=(), target=None, auth=False):
        self.target = target or TARGET
        self.create_on_push = create_on_push
        # Berth requires credentials by default; most tests are about other things and
        # run it with --no-auth. auth=True keeps authentication on.
        self.auth = auth
        self.config = config
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args)
        self.tmp = tempfile.mkdtemp(prefix="berth-it-")
        self._own_data = data_dir is None
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.port = None
        self.url = None
        self.host = None
        self.returncode = None
        self._reader = None
        self._ready = threading.Event()
        self._closed = False
        self.starts = 0

    # -- lifecycle --------------------------------------------------------
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        if self.proc and self.proc.poll() is None:
            return self
        self._ready.clear()
        try:
            if self.target == "berth":
                self._start_berth()
            else:
                self._start_distribution()
        except BaseException:
            # never leave a half-started server behind
            if self.proc is not None:
                self._terminate(signal.SIGKILL)
            if self.starts == 0 and not self._closed:
                self.close()
            raise
        self.starts += 1
        return self

    def _log_marker(self, text):
        with open(self.log_path, "a") as f:
            f.write("==== [harness %s] %s ====\n" % (time.strftime("%H:%M:%S"), text))

    def _open_log_fd(self):
        return os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _start_berth(self):
        binary = berth_bin()
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise AssertionError("berth binary not found or not executable: %s (set BERTH_BIN)" % binary)
        listen = "127.0.0.1:%d" % (self.port or 0)
        cmd = [binary, "serve", "--listen", listen, "--data", self.data_dir]
        if self.create_on_push:
            cmd.append("--create-on-push")
        if not self.auth:
            cmd.append("--no-auth")
        if self.config is not None:
            cfg = os.path.join(self.tmp, "config.yaml")
            with open(cfg, "w") as f:
                f.write(self.config if isinstance(self.config, str) else to_yaml(self.config))
            cmd += ["--config", cfg]
        cmd += self.extra_args
        env = dict(os.environ)
        env.update(self.extra_env)
        self._log_marker("start: " + _fmt_cmd(cmd))
        errfd = self._open_log_fd()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errfd, env=env, cwd=self.tmp)
        finally:
            os.close(errfd)
        found = {}

        def reader(proc=self.proc):
            with open(self.log_path, "a") as log:
                for raw in iter(proc.stdout.readline, b""):
                    line = raw.decode(errors="replace")
                    log.write(line)
                    log.flush()
                    if not self._ready.is_set():
                        m = READY_RE.search(line)
                        if m:
                            found["url"] = m.group(1)
                            found["port"] = int(m.group(3))
                            self._ready.set()
                proc.stdout.close()

        self._reader = threading.Thread(target=reader, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError("berth exited with %s before becoming ready; log:\n%s"
                                     % (rc, self.log_text()[-8000:]))
            if time.monotonic() > deadline:
                self._terminate(signal.SIGKILL)
                raise AssertionError("berth did not print its ready line within %ss; log:\n%s"
                                     % (READY_TIMEOUT, self.log_text()[-8000:]))
        self.port = found["port"]
        self.scheme = found["url"].split(":", 1)[0]
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.host = "127.0.0.1:%d" % self.port

    def _distribution_config(self):
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": self.data_dir},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": "127.0.0.1:%d" % self.port,
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if isinstance(self.config, dict):
            _deep_merge(cfg, self.config)
        return cfg

    def _start_distribution(self):
        binary = shutil.which("docker-registry")
        if not binary:
            raise unittest.SkipTest("docker-registry (CNCF Distribution) is not installed")
        if self.port is None:
            self.port = free_port()
        cfg_path = os.path.join(self.tmp, "registry.yml")
        with open(cfg_path, "w") as f:
            f.write(to_yaml(self._distribution_config()))
        cmd = [binary, "serve", cfg_path]
        env = dict(os.environ)
        env.update(self.extra_env)
        self._log_marker("start: " + _fmt_cmd(cmd))
        fd = self._open_log_fd()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                         env=env, cwd=self.tmp)
        finally:
            os.close(fd)
        self.url = "http://127.0.0.1:%d" % self.port
        self.host = "127.0.0.1:%d" % self.port
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError("docker-registry exited with %s; log:\n%s"
                                     % (rc, self.log_text()[-8000:]))
            try:
                st, _, _ = http("GET", self.url + "/v2/", timeout=2)
                if st in (200, 401):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._terminate(signal.SIGKILL)
                raise AssertionError("docker-registry not ready within %ss; log:\n%s"
                                     % (READY_TIMEOUT, self.log_text()[-8000:]))
            time.sleep(0.05)
        self._ready.set()

    def _terminate(self, sig, timeout=20):
        p = self.proc
        if p is None:
            return self.returncode
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                self._log_marker("process did not exit within %ss after signal %d; SIGKILL" % (timeout, sig))
                p.kill()
                p.wait(10)
        if self._reader:
            self._reader.join(5)
            self._reader = None
        self.returncode = p.returncode
        self._log_marker("exited with %s" % p.returncode)
        self.proc = None
        return self.returncode

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit code (0 = clean)."""
        return self._terminate(signal.SIGTERM, timeout)

    def kill(self):
        """SIGKILL and wait; returns the exit code."""
        return self._terminate(signal.SIGKILL)

    def restart(self, same_port=True):
        """Stop (SIGTERM) and start again on the same data dir (and port, by default)."""
        self.stop()
        if not same_port:
            self.port = None
        self.start()
        return self

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            if os.environ.get("BERTH_TEST_KEEP"):
                sys.stderr.write("keeping registry temp dir %s\n" % self.tmp)
            else:
                # keep the log text so a later failure dump can still show it
                self._final_log = self.log_text()
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- introspection ----------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return getattr(self, "_final_log", "")

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return getattr(self, "_final_log", "")[offset:]

    def vm_hwm_kib(self):
        """Peak resident set size (VmHWM) of the server process, in KiB."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("VmHWM not found for pid %s" % self.pid)

    def vm_rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("VmRSS not found for pid %s" % self.pid)

    def metrics(self):
        """Prometheus text from /metrics (Berth only)."""
        if self.target != "berth":
            raise unittest.SkipTest("/metrics is Berth-only")
        st, _, body = http("GET", self.url + "/metrics")
        if st != 200:
            raise AssertionError("/metrics answered %d: %r" % (st, body[:500]))
        return body.decode()

    def metric_values(self, name):
        """{labels-string: float} for every sample of metric `name`."""
        out = {}
        for line in self.metrics().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m and m.group(1) == name:
                out[m.group(2) or ""] = float(m.group(3))
        return out

    def __repr__(self):
        return "<Registry %s %s pid=%s>" % (self.target, self.url, self.pid)


def _deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = v


# --------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------

class RegistryTestCase(unittest.TestCase):
    """Base class: registries started with start_registry() (per test) or
    start_class_registry() (per class, in setUpClass) have their logs printed
    to stderr when a test fails; temp dirs made by make_tmpdir() are removed."""

    _class_registries = ()

    @classmethod
    def start_class_registry(cls, **kw):
        reg = Registry(**kw)
        try:
            reg.start()
        except BaseException:
            sys.stderr.write(reg.log_text()[-20000:])
            reg.close()
            raise
        cls._class_registries = tuple(cls._class_registries) + (reg,)
        cls.addClassCleanup(reg.close)
        return reg

    @classmethod
    def make_class_tmpdir(cls, prefix="berth-it-"):
        d = tempfile.mkdtemp(prefix=prefix)
        cls.addClassCleanup(shutil.rmtree, d, True)
        return d

    def setUp(self):
        super().setUp()
        self._init_test_state()

    def _init_test_state(self):
        if getattr(self, "_test_state_ready", False):
            return
        self._test_state_ready = True
        self._test_registries = []
        self._log_offsets = {id(r): r.log_size() for r in self._class_registries}
        # one cleanup: dump logs (if the test failed), then close the
        # registries this test started (cleanups run LIFO, so this runs last)
        self.addCleanup(self._finish_test)

    def start_registry(self, **kw):
        """Start a Registry for this test; closed (after its log is dumped
        on failure) when the test ends."""
        self._init_test_state()
        reg = Registry(**kw)
        self._test_registries.append(reg)
        self._log_offsets[id(reg)] = 0
        reg.start()
        return reg

    def _finish_test(self):
        try:
            self._dump_logs_if_failed()
        finally:
            for reg in reversed(self._test_registries):
                reg.close()

    def make_tmpdir(self, prefix="berth-it-"):
        d = tempfile.mkdtemp(prefix=prefix)
        if not os.environ.get("BERTH_TEST_KEEP"):
            self.addCleanup(shutil.rmtree, d, True)
        return d

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        if not getattr(outcome, "success", True):
            return True
        result = getattr(outcome, "result", None)
        if result is not None:
            for test, _ in list(getattr(result, "errors", [])) + list(getattr(result, "failures", [])):
                if test is self:
                    return True
        return False

    def _dump_logs_if_failed(self):
        if not self._failed() and not os.environ.get("BERTH_TEST_VERBOSE"):
            return
        for reg in list(self._class_registries) + self._test_registries:
            text = reg.log_since(self._log_offsets.get(id(reg), 0))
            if len(text) > 60000:
                text = "...[truncated]...\n" + text[-60000:]
            sys.stderr.write("\n===== %s log (%s) for %s =====\n%s\n===== end of log =====\n"
                             % (reg.target, reg.log_path, self.id(), text))
            sys.stderr.flush()


# --------------------------------------------------------------------------
# Test images
# --------------------------------------------------------------------------

def _tar_gz_layer(files):
    """(gzip bytes, uncompressed tar bytes) for a dict {path: bytes}; deterministic."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    ti.mtime = 0
                    tar.addfile(ti)
        for path in sorted(files):
            data = files[path]
            if isinstance(data, str):
                data = data.encode()
            ti = tarfile.TarInfo(path.strip("/"))
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 0
            tar.addfile(ti, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(tar_bytes)
    return gz.getvalue(), tar_bytes


def _write_blob(layout, data):
    digest = sha256_digest(data)
    d = os.path.join(layout, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, digest.split(":", 1)[1])
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    return digest


def make_oci_layout(dir, tag, arch, os="linux", variant=None, files=None, layers=1,
                    docker_format=False):
    """Write (or add to) an OCI image layout at `dir` holding one image tagged `tag`.

    The image has `layers` gzip'd tar layers; the first holds `files` (default:
    a file naming the platform and tag, so images of different platforms differ)
    plus /etc/berth-platform. With docker_format=True the manifest, config and
    layers use Docker v2 schema 2 media types.

    Returns {"digest", "size", "manifest" (bytes), "media_type", "config_digest",
    "config_size", "config" (bytes), "layers": [{"digest","size","diff_id"}],
    "platform": {...}, "ref": "oci:DIR:TAG"}."""
    osname = os
    import os as _os
    _os.makedirs(dir, exist_ok=True)
    plat = "%s/%s%s" % (osname, arch, "/" + variant if variant else "")
    base_files = {"etc/berth-platform": ("%s\n" % plat).encode(),
                  "etc/berth-tag": ("%s\n" % tag).encode()}
    if files:
        base_files.update({k: (v.encode() if isinstance(v, str) else v) for k, v in files.items()})
    layer_descs = []
    diff_ids = []
    layer_mt = DOCKER_LAYER_GZIP if docker_format else OCI_LAYER_GZIP
    for i in range(max(1, layers)):
        content = base_files if i == 0 else {
            "layer%d/data.txt" % i: ("layer %d of %s (%s)\n" % (i, tag, plat)).encode()}
        gz, raw = _tar_gz_layer(content)
        digest = _write_blob(dir, gz)
        diff_id = sha256_digest(raw)
        diff_ids.append(diff_id)
        layer_descs.append({"mediaType": layer_mt, "digest": digest, "size": len(gz),
                            "diff_id": diff_id})
    config = {
        "architecture": arch,
        "os": osname,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"], "Labels": {"org.example.berth.tag": tag}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth test harness"}
                    for _ in diff_ids],
    }
    if variant:
        config["variant"] = variant
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = _write_blob(dir, config_bytes)
    manifest_mt = DOCKER_MANIFEST if docker_format else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_mt,
        "config": {"mediaType": DOCKER_CONFIG if docker_format else OCI_CONFIG,
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": l["mediaType"], "digest": l["digest"], "size": l["size"]}
                   for l in layer_descs],
    }
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    manifest_digest = _write_blob(dir, manifest_bytes)
    with open(_os.path.join(dir, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    index_path = _os.path.join(dir, "index.json")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if _os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index.get("manifests", [])
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
    platform = {"architecture": arch, "os": osname}
    if variant:
        platform["variant"] = variant
    index["manifests"].append({
        "mediaType": manifest_mt, "digest": manifest_digest, "size": len(manifest_bytes),
        "platform": platform,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    })
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)
    return {
        "digest": manifest_digest, "size": len(manifest_bytes), "manifest": manifest_bytes,
        "media_type": manifest_mt, "config_digest": config_digest,
        "config_size": len(config_bytes), "config": config_bytes,
        "layers": [{"digest": l["digest"], "size": l["size"], "diff_id": l["diff_id"]}
                   for l in layer_descs],
        "platform": platform, "ref": "oci:%s:%s" % (dir, tag),
    }


# --------------------------------------------------------------------------
# Real clients, confined to a temp dir
# --------------------------------------------------------------------------

POLICY = {"default": [{"type": "insecureAcceptAnything"}],
          "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}}


def clients_env(tmpdir, registries=()):
    """Environment for docker/skopeo/buildah/podman that touches nothing
    outside tmpdir: DOCKER_CONFIG, REGISTRY_AUTH_FILE, CONTAINERS_REGISTRIES_CONF,
    CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, TMPDIR, XDG_* dirs.
    `registries`: hosts ("127.0.0.1:PORT") to list as insecure in registries.conf
    (not required: the command builders pass --tls-verify=false)."""
    tmpdir = os.path.abspath(tmpdir)
    docker_dir = os.path.join(tmpdir, "docker")
    cdir = os.path.join(tmpdir, "containers")
    for d in (docker_dir, cdir, os.path.join(tmpdir, "tmp"), os.path.join(tmpdir, "xdg-runtime"),
              os.path.join(tmpdir, "xdg-config"), os.path.join(tmpdir, "xdg-data"),
              os.path.join(tmpdir, "home")):
        os.makedirs(d, exist_ok=True)
    os.chmod(os.path.join(tmpdir, "xdg-runtime"), 0o700)
    policy = os.path.join(cdir, "policy.json")
    if not os.path.exists(policy):
        with open(policy, "w") as f:
            json.dump(POLICY, f)
    authfile = os.path.join(tmpdir, "auth.json")
    if not os.path.exists(authfile):  # buildah/podman insist that it exists
        with open(authfile, "w") as f:
            json.dump({"auths": {}}, f)
    regconf = os.path.join(cdir, "registries.conf")
    with open(regconf, "w") as f:
        f.write('unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
        for h in registries:
            f.write('\n[[registry]]\nlocation = "%s"\ninsecure = true\n' % h)
    storage_conf = os.path.join(cdir, "storage.conf")
    if not os.path.exists(storage_conf):
        with open(storage_conf, "w") as f:
            f.write('[storage]\ndriver = "vfs"\nrunroot = "%s"\ngraphroot = "%s"\n'
                    % (os.path.join(tmpdir, "runroot"), os.path.join(tmpdir, "root")))
    containers_conf = os.path.join(cdir, "containers.conf")
    if not os.path.exists(containers_conf):
        with open(containers_conf, "w") as f:
            f.write('[engine]\nevents_logger = "none"\ntmp_dir = "%s"\ncgroup_manager = "cgroupfs"\n'
                    'lock_type = "file"\n'
                    'volume_path = "%s"\nstatic_dir = "%s"\n'
                    % (os.path.join(tmpdir, "libpod-tmp"), os.path.join(tmpdir, "volumes"),
                       os.path.join(tmpdir, "root", "libpod")))
    env = dict(os.environ)
    env.update({
        "DOCKER_CONFIG": docker_dir,
        "REGISTRY_AUTH_FILE": authfile,
        "CONTAINERS_REGISTRIES_CONF": regconf,
        "CONTAINERS_STORAGE_CONF": storage_conf,
        "CONTAINERS_CONF": containers_conf,
        "CONTAINERS_POLICY": policy,
        "TMPDIR": os.path.join(tmpdir, "tmp"),
        "XDG_RUNTIME_DIR": os.path.join(tmpdir, "xdg-runtime"),
        "XDG_CONFIG_HOME": os.path.join(tmpdir, "xdg-config"),
        "XDG_DATA_HOME": os.path.join(tmpdir, "xdg-data"),
        "HOME": os.path.join(tmpdir, "home"),
        "DOCKER_CLI_HINTS": "false",
        # c/image keeps its blob-info cache in /var/lib/containers/cache for
        # root; as a "rootless" user it uses $XDG_DATA_HOME (inside tmpdir).
        # Only that decision reads this variable (euid stays 0).
        "_CONTAINERS_ROOTLESS_UID": "65534",
    })
    for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


_SKOPEO_VALUED_GLOBALS = {"--override-arch", "--override-os", "--override-variant",
                          "--registries.d", "--command-timeout", "--policy", "--tmpdir",
                          "--registries-conf"}


class Clients:
    """Command builders for the real clients, confined to `tmpdir`.
    Always run them with env=c.env (see clients_env).

        c = Clients(tmp)
        run(c.skopeo("copy", "--format", "v2s2", src, dst), env=c.env)
        run(c.skopeo_copy(src, dst, "--all"), env=c.env)
        run(c.skopeo("--override-arch", "arm64", "inspect", ref), env=c.env)
        run(c.buildah("manifest", "push", "--all", "--tls-verify=false", name, dst), env=c.env)
        run(c.podman("login", "--tls-verify=false", "-u", "AWS", "-p", pw, host), env=c.env)

    skopeo gets --policy and --tmpdir (global flags given first, e.g.
    --override-arch, are kept before the subcommand) and TLS-off flags for
    copy/sync (--src/--dest-tls-verify=false) and inspect/delete/list-tags/
    login/logout (--tls-verify=false). skopeo 1.9 has no --blob-cache-dir:
    its blob-info cache goes to $XDG_DATA_HOME/containers/cache in tmpdir.
    buildah/podman get --root/--runroot/--storage-driver vfs (podman also
    --tmpdir, events off, file locks); pass --tls-verify=false yourself
    (Clients.tls_off()). docker gets DOCKER_CONFIG=tmpdir/docker via env."""

    def __init__(self, tmpdir, registries=()):
        self.tmpdir = os.path.abspath(tmpdir)
        self.env = clients_env(self.tmpdir, registries)
        self.policy = self.env["CONTAINERS_POLICY"]
        self.blob_cache = os.path.join(self.env["XDG_DATA_HOME"], "containers", "cache")
        self.root = os.path.join(self.tmpdir, "root")
        self.runroot = os.path.join(self.tmpdir, "runroot")
        self.docker_config = self.env["DOCKER_CONFIG"]
        self.authfile = self.env["REGISTRY_AUTH_FILE"]

    # skopeo -----------------------------------------------------------------
    def skopeo(self, *args):
        """skopeo with global flags; for copy/inspect/delete/list-tags/sync, TLS
        verification off is added automatically. skopeo 1.9 has no
        --blob-cache-dir: self.env makes it keep its blob-info cache under
        $XDG_DATA_HOME (in tmpdir) instead of /var/lib/containers/cache."""
        # c/image puts its blob-info cache in /var/lib/containers/cache for root;
        # for a "rootless" user it uses $XDG_DATA_HOME/containers/cache (in tmpdir).
        cmd = ["env", "_CONTAINERS_ROOTLESS_UID=65534",
               "skopeo", "--policy", self.policy, "--tmpdir", self.env["TMPDIR"]]
        globals_ = []
        rest = list(args)
        # global flags given by the caller before the subcommand
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            globals_.append(flag)
            if "=" not in flag and flag in _SKOPEO_VALUED_GLOBALS and rest:
                globals_.append(rest.pop(0))
        cmd += globals_
        if not rest:
            return cmd
        sub, rest = rest[0], rest[1:]
        cmd.append(sub)
        if sub == "copy" or sub == "sync":
            cmd += ["--src-tls-verify=false", "--dest-tls-verify=false"]
        elif sub in ("inspect", "delete", "list-tags", "login", "logout"):
            cmd.append("--tls-verify=false")
        return cmd + rest

    def skopeo_copy(self, src, dst, *extra):
        return self.skopeo("copy", *extra, src, dst)

    # buildah / podman --------------------------------------------------------
    def storage_flags(self):
        return ["--root", self.root, "--runroot", self.runroot, "--storage-driver", "vfs"]

    def buildah(self, *args):
        return ["buildah"] + self.storage_flags() + ["--registries-conf",
                                                     self.env["CONTAINERS_REGISTRIES_CONF"]] + list(args)

    def podman(self, *args):
        return (["podman"] + self.storage_flags() +
                ["--tmpdir", os.path.join(self.tmpdir, "libpod-tmp"), "--events-backend", "none",
                 "--cgroup-manager", "cgroupfs"] + list(args))

    def docker(self, *args):
        return ["docker"] + list(args)

    @staticmethod
    def tls_off():
        return ["--tls-verify=false"]


# Convenience for tests ----------------------------------------------------

def skopeo_raw(clients, ref):
    """(raw manifest bytes, digest) of docker://ref via `skopeo inspect --raw`."""
    cmd = clients.skopeo("inspect", "--raw", "docker://" + ref)
    res = subprocess.run(cmd, env=clients.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=120)
    if res.returncode != 0:
        raise CommandFailed("command failed (exit %d): %s\n%s" % (
            res.returncode, _fmt_cmd(cmd), res.stderr.decode(errors="replace")))
    raw = res.stdout  # skopeo prints the manifest bytes verbatim
    return raw, sha256_digest(raw)


def wait_for(pred, timeout=10.0, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % message)
        time.sleep(interval)
