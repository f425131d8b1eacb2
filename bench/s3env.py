"""S3 + PostgreSQL for `bench/compare --storage s3`: the test services (Ceph radosgw and
PostgreSQL, started by tests/services/up.sh), a bucket and a database per server, how
Berth and CNCF Distribution are pointed at them, and the CPU their processes use.

The storage engine's processes share the machine's cores with the registries, so their
CPU is measured too, from /proc like the servers': radosgw, ceph-osd and ceph-mon
("the storage engine"), and PostgreSQL (the postmaster and its backends).
"""

import os
import subprocess
import uuid

import benchlib as bl
import floor

SERVICES = os.path.join(bl.ROOT, "tests", "services")


class Services:
    """radosgw + PostgreSQL in `directory`: started there (and stopped by stop()) unless
    `reuse`, in which case up.sh must already have run on it."""

    def __init__(self, directory, reuse=False):
        self.dir = os.path.abspath(directory)
        self.started = False
        if not reuse:
            bl.log("starting radosgw and PostgreSQL in %s (tests/services/up.sh, ~25 s)" % self.dir)
            r = subprocess.run([os.path.join(SERVICES, "up.sh"), self.dir], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise RuntimeError("tests/services/up.sh %s failed:\n%s" % (self.dir, r.stdout[-3000:]))
            self.started = True
        self.env = floor.read_env(os.path.join(self.dir, "env"))
        self.endpoint = self.env["BERTH_TEST_S3_ENDPOINT"]
        self.region = self.env.get("BERTH_TEST_S3_REGION", "us-east-1")
        self.access_key = self.env["BERTH_TEST_S3_ACCESS_KEY"]
        self.secret_key = self.env["BERTH_TEST_S3_SECRET_KEY"]
        self.pg_url = self.env["BERTH_TEST_PG_URL"]
        self.pg_password = self.env["BERTH_TEST_PG_PASSWORD"]
        self.s3 = floor.s3_client(self.endpoint, self.access_key, self.secret_key, self.region)
        run = os.path.join(self.env["BERTH_TEST_RADOSGW_DIR"], "run")
        self.engine_pids = {name: int(open(os.path.join(run, name + ".pid")).read().split()[0])
                            for name in ("client.rgw", "osd.0", "mon.a")}
        pg_data = os.path.join(self.env["BERTH_TEST_PG_DIR"], "data", "postmaster.pid")
        self.postmaster = int(open(pg_data).readline())
        self.suffix = uuid.uuid4().hex[:8]

    def stop(self):
        if self.started:
            subprocess.run([os.path.join(SERVICES, "down.sh"), self.dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def warm(self):
        """One multipart upload, created and aborted: radosgw creates the pool for
        multipart metadata on first use (~1 s), which the first server to push would
        otherwise pay."""
        bucket = self.bucket("warm")
        up = self.s3.create_multipart_upload(Bucket=bucket, Key="warm")
        self.s3.abort_multipart_upload(Bucket=bucket, Key="warm", UploadId=up["UploadId"])

    def gc(self):
        """Runs radosgw's garbage collection now (it frees deleted objects' data only
        after rgw_gc_obj_min_wait, 2 h, otherwise)."""
        conf = os.path.join(self.env["BERTH_TEST_RADOSGW_DIR"], "ceph.conf")
        subprocess.run(["radosgw-admin", "--conf", conf, "gc", "process", "--include-all"],
                       env=dict(os.environ, CEPH_CONF=conf), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)

    # ----------------------------------------------------------------- per server

    def bucket(self, name):
        bucket = "bench-%s-%s" % (name, self.suffix)
        self.s3.create_bucket(Bucket=bucket)
        return bucket

    def database(self, name):
        db = "bench_%s_%s" % (name, self.suffix)
        env = dict(os.environ, PGPASSWORD=self.pg_password)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", self.pg_url,
                        "-c", "CREATE DATABASE %s" % db], env=env, check=True, stdout=subprocess.DEVNULL)
        return self.pg_url.rsplit("/", 1)[0] + "/" + db

    def berth_env(self):
        """Environment for `berth serve`: blobs in a fresh bucket (Berth creates it),
        metadata in a fresh database. Credentials only from the environment."""
        return {
            "BERTH_STORAGE_BLOBS_TYPE": "s3",
            "BERTH_STORAGE_BLOBS_S3_ENDPOINT": self.endpoint,
            "BERTH_STORAGE_BLOBS_S3_BUCKET": "bench-berth-%s" % self.suffix,
            "BERTH_STORAGE_BLOBS_S3_REGION": self.region,
            "BERTH_STORAGE_BLOBS_S3_PATH_STYLE": "true",
            "BERTH_STORAGE_BLOBS_S3_CREATE_BUCKET": "true",
            "BERTH_STORAGE_METADATA_TYPE": "postgres",
            "BERTH_STORAGE_METADATA_POSTGRES_URL": self.database("berth"),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "PGPASSWORD": self.pg_password,
        }

    def distribution_storage(self):
        """Distribution 2.8's `s3` driver on the same radosgw, in its own bucket.
        `regionendpoint` makes it address the bucket path-style; `redirect: disable`
        makes it serve blob bytes itself, as Berth does by default (otherwise a GET
        answers 307 to a presigned radosgw URL and the registry moves no bytes)."""
        return S3_STORAGE % {"endpoint": self.endpoint, "bucket": self.bucket("distribution"),
                             "region": self.region, "ak": self.access_key, "sk": self.secret_key}

    # ------------------------------------------------------------------------ CPU

    def cpu(self):
        """CPU seconds so far: 'engine' (radosgw + ceph-osd + ceph-mon) and 'pg'
        (the postmaster, its live backends and those that have exited)."""
        engine = sum(tree_cpu_seconds(p, children=False) for p in self.engine_pids.values())
        return {"engine": engine, "pg": tree_cpu_seconds(self.postmaster, children=True)}

    def rss_kib(self):
        return {name: bl.proc_mem_kib(pid)[1] for name, pid in self.engine_pids.items()}


def tree_cpu_seconds(pid, children):
    """utime + stime of `pid`, plus (with `children`) cutime + cstime (children it has
    reaped) and the utime + stime of its live children."""
    def stat(p):
        with open("/proc/%d/stat" % p) as f:
            text = f.read()
        return [int(x) for x in text[text.rindex(")") + 2:].split()[11:15]]
    f = stat(pid)
    total = f[0] + f[1]
    if children:
        total += f[2] + f[3]
        try:
            kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
        except OSError:
            kids = []
        for k in kids:
            try:
                total += sum(stat(int(k)))
            except (OSError, ValueError):
                pass  # exited since: its time is now in our cutime
    return total / bl.CLK_TCK


# The AWS SDK in Distribution 2.8 panics at startup ("LoadCustomCABundleError") when
# AWS_CA_BUNDLE is set, as it is on some machines; radosgw is plain http anyway.
DISTRIBUTION_ENV = {"AWS_CA_BUNDLE": None}

S3_STORAGE = """  s3:
    regionendpoint: %(endpoint)s
    region: %(region)s
    bucket: %(bucket)s
    accesskey: %(ak)s
    secretkey: %(sk)s
    secure: false
    v4auth: true
  redirect:
    disable: true
"""
