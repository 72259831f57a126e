#!/usr/bin/env bash
# Start LocalStack in host mode (no Docker) in the background, with the
# firebreak Lambda executor. Reuses a running instance recorded in the pid
# file when it is healthy on the same port. The last stdout line is the
# endpoint URL (http://127.0.0.1:PORT).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${FIREBREAK_LOCALSTACK_HOME:-$HOME/.cache/firebreak/localstack}"
port="${FIREBREAK_LOCALSTACK_PORT:-4566}"
timeout="${FIREBREAK_LOCALSTACK_START_TIMEOUT:-90}"
venv="$home/venv"
pidfile="$home/localstack.pid"
portfile="$home/localstack.port"
logfile="$home/localstack.log"
endpoint="http://127.0.0.1:$port"

log() { echo "start.sh: $*" >&2; }

# Make sure the venv exists and is current (fast no-op when it is).
FIREBREAK_LOCALSTACK_HOME="$home" bash "$here/install.sh" >&2

mkdir -p "$home/data"

# Serialise concurrent starts; the lock fd is closed for LocalStack itself.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$home/.start.lock"
    flock 9
fi

healthy() {
    "$venv/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import json, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1] + "/_localstack/health", timeout=2) as r:
    json.load(r)
PY
}

# Is the recorded PID a live LocalStack of ours?
ours_alive() {
    local pid="$1"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'
}

wait_healthy() {
    local pid="$1" deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if healthy "$endpoint"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "LocalStack (PID $pid) exited during startup"
            return 1
        fi
        sleep 0.5
    done
    log "LocalStack not healthy on $endpoint after ${timeout}s"
    return 1
}

fail_with_log() {
    log "last 40 lines of $logfile:"
    tail -n 40 "$logfile" >&2 || true
    exit 1
}

# Stop a LocalStack this script just started but that never became healthy
# (e.g. it lost the port: it then says "Ready." yet serves nothing).
kill_started() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile" "$portfile"
}

port_free() {
    "$venv/bin/python" - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()
PY
}

if [[ -f "$pidfile" ]]; then
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if ours_alive "$pid"; then
        recorded_port="$(cat "$portfile" 2>/dev/null || echo "")"
        if [[ -n "$recorded_port" && "$recorded_port" != "$port" ]]; then
            log "LocalStack (PID $pid) already runs on port $recorded_port; run stop.sh first"
            exit 1
        fi
        # Alive: healthy now, or still starting (e.g. a concurrent start.sh).
        if wait_healthy "$pid"; then
            log "reusing LocalStack PID $pid"
            echo "$endpoint"
            exit 0
        fi
        fail_with_log
    fi
    rm -f "$pidfile" "$portfile"
fi

if ! port_free "$port"; then
    log "port $port on 127.0.0.1 is in use by something not recorded in $pidfile;" \
        "stop it or set FIREBREAK_LOCALSTACK_PORT"
    exit 1
fi

log "starting LocalStack on $endpoint (log: $logfile)"
{
    echo
    echo "===== start.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) port $port ====="
} >>"$logfile"

# setsid + nohup: own session, immune to the caller's SIGHUP, so a CI step
# or shell can exit while LocalStack keeps running.
env \
    GATEWAY_LISTEN="127.0.0.1:$port" \
    LOCALSTACK_HOST="127.0.0.1:$port" \
    GATEWAY_SERVER=hypercorn \
    OVERRIDE_IN_DOCKER=0 \
    FILESYSTEM_ROOT="$home/data" \
    SQS_ENDPOINT_STRATEGY=path \
    DNS_ADDRESS=0 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    LOCALSTACK_TELEMETRY=0 \
    LAMBDA_RUNTIME_EXECUTOR=firebreak \
    setsid nohup "$venv/bin/python" -m localstack.runtime.main \
    </dev/null >>"$logfile" 2>&1 9>&- &
pid=$!
echo "$pid" >"$pidfile"
echo "$port" >"$portfile"

if ! wait_healthy "$pid"; then
    kill_started "$pid"
    fail_with_log
fi
log "LocalStack healthy (PID $pid)"
echo "$endpoint"
