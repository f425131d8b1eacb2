"""Shared storage for scale-out tests: a fresh bucket on the test radosgw and a fresh
database on the test PostgreSQL (both started by tests/services/up.sh, which
scripts/test.sh runs), and nginx as a round-robin load balancer in front of nodes.

Without the services' BERTH_TEST_* variables the tests skip; under CI=true they fail,
so CI can never pass by skipping them."""

import http.client as httpclient
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid

from harness import RegistryTestCase, free_port, http, json_error_list, run

S3_VARS = ("BERTH_TEST_S3_ENDPOINT", "BERTH_TEST_S3_ACCESS_KEY", "BERTH_TEST_S3_SECRET_KEY")
PG_VARS = ("BERTH_TEST_PG_URL", "BERTH_TEST_PG_PASSWORD")


def require_services(testcase=None):
    missing = [v for v in S3_VARS + PG_VARS if not os.environ.get(v)]
    if not missing:
        return
    msg = ("%s not set: start radosgw and PostgreSQL with tests/services/up.sh DIR and load "
           "DIR/env (scripts/test.sh does both)" % ", ".join(missing))
    if os.environ.get("CI"):
        raise AssertionError("CI must run the scale-out tests: " + msg)
    raise unittest.SkipTest(msg)


class SharedStorage:
    """One bucket and one database, removed by close()."""

    def __init__(self, name):
        suffix = uuid.uuid4().hex[:10]
        self.bucket = "berth-it-%s-%s" % (name, suffix)
        self.database = "berth_it_%s_%s" % (name.replace("-", "_"), suffix)
        self.endpoint = os.environ["BERTH_TEST_S3_ENDPOINT"]
        base = os.environ["BERTH_TEST_PG_URL"]
        self.admin_url = base
        self.url = base.rsplit("/", 1)[0] + "/" + self.database
        self.psql("CREATE DATABASE %s" % self.database)

    def env(self):
        return {
            "AWS_ACCESS_KEY_ID": os.environ["BERTH_TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["BERTH_TEST_S3_SECRET_KEY"],
            "PGPASSWORD": os.environ["BERTH_TEST_PG_PASSWORD"],
        }

    def config(self, **s3):
        s3cfg = {"endpoint": self.endpoint, "bucket": self.bucket, "create_bucket": True,
                 "region": os.environ.get("BERTH_TEST_S3_REGION", "us-east-1")}
        s3cfg.update(s3)
        return {
            "storage": {
                "blobs": {"type": "s3", "s3": s3cfg},
                "metadata": {"type": "postgres", "postgres": {"url": self.url}},
            },
            # A killed node's upload is continued elsewhere after this long.
            "uploads": {"lease_seconds": 3},
        }

    def psql(self, sql, url=None):
        env = dict(os.environ)
        env["PGPASSWORD"] = os.environ["BERTH_TEST_PG_PASSWORD"]
        return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url or self.admin_url,
                    "-c", sql], env=env, timeout=60)

    def s3(self):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=os.environ["BERTH_TEST_S3_ACCESS_KEY"],
                            aws_secret_access_key=os.environ["BERTH_TEST_S3_SECRET_KEY"],
                            region_name=os.environ.get("BERTH_TEST_S3_REGION", "us-east-1"),
                            config=Config(s3={"addressing_style": "path"}))

    def object_keys(self):
        s3 = self.s3()
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def close(self):
        try:
            self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.database)
        except Exception as e:  # leave it; the services directory goes away anyway
            print("dropping %s failed: %s" % (self.database, e))
        try:
            s3 = self.s3()
            for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
                for u in page.get("Uploads", []):
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=u["Key"], UploadId=u["UploadId"])
            keys = self.object_keys()
            for i in range(0, len(keys), 1000):
                s3.delete_objects(Bucket=self.bucket,
                                  Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
            s3.delete_bucket(Bucket=self.bucket)
        except Exception as e:
            print("removing bucket %s failed: %s" % (self.bucket, e))



class SharedStorageTestCase(RegistryTestCase):
    """A test class with one bucket and one database of its own (self.storage), named
    after STORAGE; skips (or fails under CI) without the services."""
    STORAGE = "it"

    @classmethod
    def setUpClass(cls):
        require_services()
        cls.storage = SharedStorage(cls.STORAGE)
        cls.addClassCleanup(cls.storage.close)

class Nginx:
    """nginx round-robin over `ports`, with no upstream keep-alive: every request
    opens its own upstream connection, so one client's consecutive requests land on
    different nodes. Bodies stream both ways (no buffering)."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="berth-nginx-")
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.host
        upstreams = "".join("    server 127.0.0.1:%d max_fails=0;\n" % p for p in ports)
        d = self.dir
        conf = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream berth {{
{upstreams}  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    location / {{
      proxy_pass http://berth;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
    }}
  }}
}}
""".format(d=d, upstreams=upstreams, port=self.port)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        import socket
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("nginx did not start: %s" % self.error_log())
                time.sleep(0.05)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, True)


class StallingProxy:
    """A TCP proxy on loopback in front of `upstream_url` (http://host:port) that can
    hold back the upstream's answers: after stall(), bytes from the upstream wait in the
    proxy until release() (requests still go through, so the upstream does its work;
    only the answers are late, as from an overloaded object store). held() is how many
    connections have an answer waiting."""

    def __init__(self, upstream_url):
        u = urllib.parse.urlsplit(upstream_url)
        self.upstream = (u.hostname, u.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.holding = 0
        self.sockets = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self):
        self.flowing.clear()

    def release(self):
        self.flowing.set()

    def stalled(self):
        return not self.flowing.is_set()

    def held(self):
        with self.lock:
            return self.holding

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.upstream, 10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            pair = {"open": 2}
            threading.Thread(target=self._pump, args=(client, upstream, False, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True, pair),
                             daemon=True).start()

    def _pump(self, src, dst, answers, pair):
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    break
                if answers and not self.flowing.is_set():
                    with self.lock:
                        self.holding += 1
                    self.flowing.wait()
                    with self.lock:
                        self.holding -= 1
                dst.sendall(data)
        except OSError:
            pass
        with self.lock:
            pair["open"] -= 1
            last = pair["open"] == 0
        if last:
            for s in (src, dst):
                s.close()
                with self.lock:
                    self.sockets.discard(s)

    def close(self):
        self.release()
        self.listener.close()
        with self.lock:
            socks, self.sockets = list(self.sockets), set()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def _holds(check, *args):
    """Whether check(*args) is true; a check that raises (a missing key, bad JSON) fails."""
    if check is None:
        return True
    try:
        return bool(check(*args))
    except (KeyError, IndexError, TypeError, ValueError):
        return False


class Call:
    """One request a test's client thread made: what, when, and how it ended."""

    def __init__(self, what, t0, t1, status, body, error, ok):
        self.what, self.t0, self.t1 = what, t0, t1
        self.status, self.body, self.error, self.ok = status, body, error, ok

    @property
    def seconds(self):
        return self.t1 - self.t0

    def error_messages(self):
        """The messages of an OCI error body, or of an ECR (AWS JSON) one."""
        msgs = [e.get("message", "") for e in json_error_list(self.body)]
        try:
            doc = json.loads(self.body)
            if isinstance(doc, dict) and "__type" in doc:
                msgs.append("%s: %s" % (doc["__type"], doc.get("message", "")))
        except (ValueError, UnicodeDecodeError):
            pass
        return msgs

    def __repr__(self):
        return "<%s %s after %.2fs%s: %r>" % (
            self.what, self.status, self.seconds, " " + self.error if self.error else "",
            self.body[:300])


class Calls:
    """Every request made through it is timed and kept (thread-safe), with whether it got
    what it expected; a request that raises (timeout, reset) is kept as status None."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = []

    def add(self, what, t0, status, body, error, ok):
        call = Call(what, t0, time.monotonic(), status, body, error, ok)
        with self.lock:
            self.done.append(call)
        return call

    def http(self, what, method, url, expect=200, check=None, timeout=45, **kw):
        """http(); ok when the status is `expect` and check(headers, body) (if given) holds.
        Returns (status, headers, body), status None after an exception."""
        t0 = time.monotonic()
        try:
            st, h, body = http(method, url, timeout=timeout, **kw)
        except (OSError, ValueError, httpclient.HTTPException) as e:
            self.add(what, t0, None, b"", repr(e), False)
            return None, None, b""
        self.add(what, t0, st, body, None, st == expect and _holds(check, h, body))
        return st, h, body

    def ecr(self, what, fn, check=None):
        """A boto3 call; a ClientError is kept with its HTTP status and AWS JSON body."""
        from botocore.exceptions import BotoCoreError, ClientError
        t0 = time.monotonic()
        try:
            out = fn()
        except ClientError as e:
            err = e.response.get("Error", {})
            body = json.dumps({"__type": err.get("Code"), "message": err.get("Message")}).encode()
            self.add(what, t0, e.response["ResponseMetadata"]["HTTPStatusCode"], body, None, False)
            return None
        except BotoCoreError as e:
            self.add(what, t0, None, b"", repr(e), False)
            return None
        self.add(what, t0, 200, json.dumps(out, default=str).encode(), None, _holds(check, out))
        return out

    def calls(self, what=None):
        with self.lock:
            return [c for c in self.done if what is None or c.what == what]


def ecr_client(url, read_timeout=45, credentials_file=None):
    """boto3 ECR, no retries, signing with the default profile of `credentials_file` (a
    node's DATA/credentials), or with any key for a --no-auth node."""
    import boto3
    from botocore.config import Config
    key, secret = "AKIDEXAMPLE", "secret"
    if credentials_file:
        import configparser
        creds = configparser.ConfigParser()
        creds.read(credentials_file)
        key = creds["default"]["aws_access_key_id"]
        secret = creds["default"]["aws_secret_access_key"]
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                 region_name="us-east-1").client(
        "ecr", endpoint_url=url,
        config=Config(retries={"max_attempts": 0}, read_timeout=read_timeout, connect_timeout=10,
                      max_pool_connections=32))


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, -(-len(s) * p // 100) - 1))]


def get_many(base_url, paths, headers=None, method="GET", timeout=30):
    """Requests each path over one keep-alive connection: [(path, status, headers, body)]."""
    u = urllib.parse.urlsplit(base_url)
    conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout)
    out = []
    try:
        for path in paths:
            conn.request(method, path, headers=headers or {})
            res = conn.getresponse()
            out.append((path, res.status, res.msg, res.read()))
    finally:
        conn.close()
    return out
