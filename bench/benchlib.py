"""Shared helpers for bench/compare and bench/scale (standard library only).

Starts Berth and CNCF Distribution on loopback, runs `berth bench --json`, reads a
process's CPU and memory from /proc, describes the machine, and rewrites one marked
section of docs/benchmarks.md.
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_apt(binary, package):
    """Installs `package` with apt-get when `binary` is not on PATH; returns its path or None."""
    path = shutil.which(binary)
    if path:
        return path
    log("installing %s (apt-get install -y %s)" % (binary, package))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],):
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0:
            # The package lists may be missing on a fresh machine.
            subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if package == "docker-registry" and shutil.which("systemctl"):
        # The package enables a service on :5000; we start our own.
        subprocess.run(sudo + ["systemctl", "disable", "--now", "docker-registry"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which(binary)


def build_berth(build_dir):
    """Configures (if needed) and builds only the `berth` target; returns the binary path."""
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        log("configuring %s" % build_dir)
        subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True, stdout=subprocess.DEVNULL)
    log("building berth in %s (this takes a few minutes from scratch on 2 cores)" % build_dir)
    t0 = time.time()
    subprocess.run(["cmake", "--build", build_dir, "--target", "berth", "-j", str(os.cpu_count() or 2)],
                   check=True, stdout=subprocess.DEVNULL)
    log("built in %.0f s" % (time.time() - t0))
    return os.path.join(build_dir, "berth")


def raise_nofile(n=65536):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard) if hard != resource.RLIM_INFINITY else max(soft, n)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- /proc

def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_mem_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmHWM", 0), out.get("VmRSS", 0)


# ------------------------------------------------------------------------- servers

class Server:
    """A registry process on loopback: kind is 'berth' or 'distribution'."""

    def __init__(self, kind, workdir, berth_bin=None, access_log=False, extra_env=None,
                 distribution_storage=None):
        self.kind = kind
        self.dir = os.path.join(workdir, kind)
        os.makedirs(self.dir, exist_ok=True)
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "server.log")
        self.berth_bin = berth_bin
        self.access_log = access_log
        self.extra_env = extra_env or {}
        # Distribution's `storage:` driver section (YAML, indented); default: filesystem.
        self.distribution_storage = distribution_storage or FILESYSTEM_STORAGE % {"root": self.data}
        self.proc = None
        self.url = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.update(self.extra_env)
        env = {k: v for k, v in env.items() if v is not None}  # None: unset
        limits = lambda: raise_nofile(200000)  # noqa: E731  (10k idle connections)
        if self.kind == "berth":
            env["BERTH_LOG_ACCESS_LOG"] = "true" if self.access_log else "false"
            # The same auth setting as Distribution's default: none (`serve --no-auth`).
            env.setdefault("BERTH_AUTH_ENABLED", "false")
            cmd = [self.berth_bin, "serve", "--listen", "127.0.0.1:0", "--data", self.data,
                   "--create-on-push"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf, env=env,
                                         preexec_fn=limits)
            deadline = time.time() + 30
            line = b""
            while time.time() < deadline:
                line = self.proc.stdout.readline()
                m = re.search(rb"listening on (http://\S+)", line)
                if m:
                    self.url = m.group(1).decode()
                    break
                if not line and self.proc.poll() is not None:
                    break
            if not self.url:
                raise RuntimeError("berth did not start; see %s" % self.log_path)
            # Keep draining stdout so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        else:
            port = free_port()
            cfg = os.path.join(self.dir, "config.yml")
            with open(cfg, "w") as f:
                f.write(DISTRIBUTION_CONFIG % {
                    "level": "info" if self.access_log else "warn",
                    "accesslog": "false" if self.access_log else "true",
                    "storage": self.distribution_storage, "port": port})
            binary = shutil.which("docker-registry")
            self.proc = subprocess.Popen([binary, "serve", cfg], stdout=logf, stderr=logf,
                                         env=env, preexec_fn=limits)
            self.url = "http://127.0.0.1:%d" % port
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if self.proc.poll() is not None:
                        raise RuntimeError("docker-registry exited; see %s" % self.log_path)
                    time.sleep(0.05)
        logf.close()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def version(self):
        if self.kind == "distribution":
            r = subprocess.run(["docker-registry", "--version"], stdout=subprocess.PIPE, text=True)
            return r.stdout.strip().replace("github.com/docker/distribution", "Distribution")
        r = subprocess.run([self.berth_bin, "--version"], stdout=subprocess.PIPE, text=True)
        return r.stdout.strip()


# Same durability knobs as Berth's defaults where Distribution has any: filesystem
# storage, deletes enabled, in-memory blob descriptor cache. Distribution never fsyncs.
DISTRIBUTION_CONFIG = """version: 0.1
log:
  level: %(level)s
  accesslog:
    disabled: %(accesslog)s
storage:
%(storage)s  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%(port)d
"""
FILESYSTEM_STORAGE = """  filesystem:
    rootdirectory: %(root)s
"""


# --------------------------------------------------------------------------- bench

class BenchFailed(RuntimeError):
    pass


def run_bench(berth_bin, url, workload, args, server_pid=None, timeout=900, sampler=None):
    """Runs `berth bench --json` for one workload; returns its result dict. With a
    CpuSampler, adds result["other_cpu"]: each of its counters' CPU seconds, per GiB
    and per request over the timed phase."""
    cmd = [berth_bin, "bench", "--url", url, "-w", workload, "--json"] + [str(a) for a in args]
    if server_pid:
        cmd += ["--server-pid", str(server_pid)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, preexec_fn=lambda: raise_nofile(200000))
    t_end = time.monotonic()
    if r.returncode != 0:
        raise BenchFailed("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()[-2000:]))
    res = json.loads(r.stdout)["results"][0]
    if sampler:
        res["other_cpu"] = sampler.per_unit(t_end - res["seconds"], t_end, res["bytes"], res["ops"])
    return res


class CpuSampler:
    """Samples `probe()` (a dict of CPU-second counters, e.g. other processes') every
    `interval` s in a thread, so that their CPU over a window that ended just now can be
    read afterwards: `berth bench` reports only the timed phase's length, and it exits
    right after that phase, so the window is [exit - seconds, exit] (setup excluded)."""

    def __init__(self, probe, interval=0.05):
        self.probe = probe
        self.interval = interval
        self.samples = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            s = (time.monotonic(), self.probe())
            with self.lock:
                self.samples.append(s)
                if len(self.samples) > 200000:
                    del self.samples[:100000]
            time.sleep(self.interval)

    def stop(self):
        self.running = False
        self.thread.join()

    def at(self, t):
        """Counters at time t, interpolated linearly between the samples around it."""
        with self.lock:
            xs = list(self.samples)
        while xs[-1][0] < t and self.running:
            time.sleep(self.interval)
            with self.lock:
                xs = list(self.samples)
        prev = xs[0]
        for cur in xs:
            if cur[0] >= t:
                span = cur[0] - prev[0]
                w = (t - prev[0]) / span if span > 0 else 1.0
                return {k: prev[1][k] + w * (cur[1][k] - prev[1][k]) for k in cur[1]}
            prev = cur
        return dict(prev[1])

    def per_unit(self, t0, t1, nbytes, ops):
        a, b = self.at(t0), self.at(t1)
        out = {}
        for k in b:
            d = max(b[k] - a[k], 0.0)
            out[k] = {"cpu_s": d,
                      "cpu_s_per_gib": d / (nbytes / 2**30) if nbytes else float("nan"),
                      "cpu_ms_per_op": d * 1000.0 / ops if ops else float("nan")}
        return out


# ------------------------------------------------------------------------ machine

def machine_info():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    kernel = os.uname().release
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        flags = "sha_ni" if " sha_ni" in text else "no sha_ni"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "cpu_flags": flags,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": kernel,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def git_revision():
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    rev = r.stdout.strip() or "unknown"
    d = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return rev + ("+dirty" if d.stdout.strip() else "")


def replace_section(path, name, body):
    """Replaces the text between <!-- NAME:begin --> and <!-- NAME:end --> in `path`
    (appending the markers when absent)."""
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = "%s\n%s\n%s" % (begin, body.strip("\n"), end)
    if begin in text and end in text:
        pre = text[:text.index(begin)]
        post = text[text.index(end) + len(end):]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def fmt(v):
    if v is None or v != v:
        return "-"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    return "%.4f" % v
