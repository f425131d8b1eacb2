# Helpers shared by the test-service scripts; sourced, not run.

# Two distinct free loopback ports (or N with an argument). Picked in one process
# holding all sockets open so the kernel cannot hand out the same port twice.
free_ports() {
  python3 - "${1:-1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Poll a command until it succeeds or TIMEOUT seconds pass.
wait_for() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Whether the pid in a pid file is alive and is ours: its command line must
# mention MARKER (our config path or data dir), so a recycled pid is never killed.
pid_alive() {
  local pidfile=$1 marker=$2 pid
  [[ -r $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# Stop the process of a pid file (TERM, then KILL after a grace period).
kill_pidfile() {
  local pidfile=$1 marker=$2 grace=${3:-15} pid
  if pid_alive "$pidfile" "$marker"; then
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "pid $pid ($pidfile) did not exit on TERM; killing" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
}

# Print the tail of each existing log so CI output shows why a start failed.
show_logs() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "----- tail of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

die() {
  echo "error: $*" >&2
  exit 1
}
