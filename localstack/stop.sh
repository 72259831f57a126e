#!/usr/bin/env bash
# Stop the LocalStack started by start.sh (by its recorded PID): SIGTERM,
# wait up to 10 s, then SIGKILL. Fine if it is not running.
set -euo pipefail

home="${FIREBREAK_LOCALSTACK_HOME:-$HOME/.cache/firebreak/localstack}"
pidfile="$home/localstack.pid"
portfile="$home/localstack.port"

log() { echo "stop.sh: $*" >&2; }

if [[ ! -f "$pidfile" ]]; then
    log "not running (no $pidfile)"
    exit 0
fi
pid="$(cat "$pidfile" 2>/dev/null || true)"

is_ours() {
    kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack.runtime.main'
}

if [[ "$pid" =~ ^[0-9]+$ ]] && is_ours; then
    log "stopping LocalStack PID $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        is_ours || break
        sleep 0.1
    done
    if is_ours; then
        log "still running after 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            is_ours || break
            sleep 0.1
        done
    fi
    log "stopped"
else
    log "PID '${pid}' is not a running LocalStack; cleaning up"
fi
rm -f "$pidfile" "$portfile"
