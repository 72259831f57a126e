#!/usr/bin/env bash
# Builds the Lambda responder's deployment package (a zip for CodeBucket/CodeKey):
#
#   deploy/package.sh --routes routes/prod.yaml [--playbooks playbooks] \
#       [--binary PATH] [--out firebreak-lambda.zip]
#
# The zip holds `bootstrap` (the firebreak-lambda binary), the routes file
# as routes/routes.yaml (the template's default RoutesFile) and the
# playbooks directory as playbooks/, so that a route's
# `playbook: ../playbooks/NAME.yaml` resolves inside the package; the staged
# routes are validated there before anything is zipped. Without --binary it
# builds one: cargo build --release --bin firebreak-lambda --target
# ${TARGET:-x86_64-unknown-linux-musl} (static, so provided.al2023's glibc
# does not matter). FIREBREAK names the firebreak binary used to validate.
set -euo pipefail

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

routes="" playbooks="playbooks" binary="" out="firebreak-lambda.zip"
while [ $# -gt 0 ]; do
    case "$1" in
        --routes) routes=${2:-}; shift 2 ;;
        --playbooks) playbooks=${2:-}; shift 2 ;;
        --binary) binary=${2:-}; shift 2 ;;
        --out) out=${2:-}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "package.sh: unknown argument \`$1\`" >&2; usage >&2; exit 64 ;;
    esac
done
if [ -z "$routes" ]; then
    echo "package.sh: --routes is required" >&2
    usage >&2
    exit 64
fi
[ -f "$routes" ] || { echo "package.sh: no routes file at $routes" >&2; exit 1; }
[ -d "$playbooks" ] || { echo "package.sh: no playbooks directory at $playbooks" >&2; exit 1; }
firebreak=${FIREBREAK:-firebreak}

if [ -z "$binary" ]; then
    target=${TARGET:-x86_64-unknown-linux-musl}
    cargo build --release --bin firebreak-lambda --target "$target"
    binary="${CARGO_TARGET_DIR:-target}/$target/release/firebreak-lambda"
fi
[ -f "$binary" ] || { echo "package.sh: no binary at $binary" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/routes"
cp "$binary" "$stage/bootstrap"
chmod 755 "$stage/bootstrap"
cp "$routes" "$stage/routes/routes.yaml"
cp -R "$playbooks" "$stage/playbooks"
# Every playbook a route names must be inside the package.
"$firebreak" validate "$stage/routes/routes.yaml" >&2
if grep -Eq '^[[:space:]-]*playbook:[[:space:]]*["'"'"']?/' "$stage/routes/routes.yaml"; then
    echo "package.sh: a route names a playbook by an absolute path, which is not in the package: use a path relative to the routes file (../playbooks/NAME.yaml)" >&2
    exit 1
fi

out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
rm -f "$out_abs"
(cd "$stage" && python3 -m zipfile -c "$out_abs" bootstrap routes playbooks)
echo "packaged $out_abs" >&2
