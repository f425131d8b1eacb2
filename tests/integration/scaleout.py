"""Shared storage for scale-out tests: a fresh bucket on the test radosgw and a fresh
database on the test PostgreSQL (both started by tests/services/up.sh, which
scripts/test.sh runs), and nginx as a round-robin load balancer in front of nodes.

Without the services' BERTH_TEST_* variables the tests skip; under CI=true they fail,
so CI can never pass by skipping them."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

from harness import free_port, run

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
