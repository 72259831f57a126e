#!/usr/bin/env bash
# Install LocalStack (host mode, no Docker) plus firebreak's Lambda executor
# into a cached venv. Idempotent: does nothing when the venv's stamp matches
# the lock file and the executor sources.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${FIREBREAK_LOCALSTACK_HOME:-$HOME/.cache/firebreak/localstack}"
venv="$home/venv"
stamp="$venv/.firebreak-stamp"
lock="$here/requirements.lock"
executor="$here/executor"
python="${FIREBREAK_PYTHON:-python3}"

log() { echo "install.sh: $*" >&2; }

mkdir -p "$home"

# Serialise concurrent installs (e.g. two start.sh at once).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$home/.install.lock"
    flock 9
fi

sha() { sha256sum "$@" | cut -d' ' -f1; }

executor_hash() {
    (cd "$executor" && find . -type f \
        -not -path '*/__pycache__/*' -not -path './build/*' \
        -not -path '*.egg-info/*' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

lock_sha="$(sha "$lock")"
exec_sha="$(executor_hash)"
want="lock=$lock_sha executor=$exec_sha"

have=""
if [[ -f "$stamp" && -x "$venv/bin/python" ]]; then
    have="$(cat "$stamp")"
fi

if [[ "$have" == "$want" ]]; then
    echo "LocalStack venv up to date ($venv)"
    exit 0
fi

install_executor() {
    # Build from a copy so the repo tree gets no build/ or *.egg-info.
    local tmp
    tmp="$(mktemp -d)"
    cp -R "$executor/." "$tmp/"
    rm -rf "$tmp/build" "$tmp"/*.egg-info
    find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        --no-deps --no-build-isolation --no-index --force-reinstall "$tmp"
    rm -rf "$tmp"
}

if [[ -n "$have" && "$have" == "lock=$lock_sha "* ]]; then
    log "executor changed; reinstalling it only"
    rm -f "$stamp"
    install_executor
else
    # Fresh or outdated/interrupted install: start from an empty venv.
    ver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [[ "$ver" != "3.11" ]]; then
        log "need Python 3.11 (got $ver from '$python'); set FIREBREAK_PYTHON"
        exit 1
    fi
    log "creating $venv (takes ~2 min, ~530 MB)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        --no-deps --require-hashes -r "$lock"
    install_executor
fi

# Sanity check: LocalStack imports and our executor is registered.
"$venv/bin/python" - <<'PY'
from importlib.metadata import entry_points
import localstack.services.lambda_.invocation.runtime_executor  # noqa: F401
eps = entry_points(group="localstack.lambda.runtime_executor")
assert any(ep.name == "firebreak" for ep in eps), [ep.name for ep in eps]
PY

echo "$want" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "LocalStack venv installed ($venv)"
