#!/bin/sh
# Installs the Debian 12 packages roamhub needs to build, test, fuzz and run its demo.
# Idempotent: asks apt only for what is missing, and runs `apt-get update` only then.
# Usage: deploy/bootstrap.sh            (as root, or with sudo available)
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates curl
libevent-dev libhttp-parser-dev libssl-dev openssl libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev liblmdb-dev lmdb-utils
libjwt-dev libcjson-dev libnghttp2-dev zlib1g-dev libcmocka-dev libjemalloc-dev python3
python3-grpcio python3-grpc-tools
libnats-dev nats-server haproxy
clang libclang-rt-14-dev
nginx-light wrk
chromium
libsystemd-dev systemd help2man prometheus man-db file python3-yaml"
# libsystemd-dev: sd_notify; help2man: the man pages; systemd (systemd-analyze, systemd-sysusers),
# prometheus (promtool), man-db, file (CPack's dependency scan) and python3-yaml (the OpenAPI
# document) are what the operability tests run; haproxy is the load balancer of the cluster
# example (deploy/cluster/), run by tests/cluster/test_deploy_example.py.

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

# Node.js/npm (the e2e test's independent LoRaWAN implementation comes from npm): some images ship
# nodesource's nodejs, which bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then missing="$missing nodejs npm"; fi

# The web console's JavaScript dependencies (esbuild, uPlot, playwright-core for its browser
# test), exactly as broker/console/package-lock.json pins them; only when node_modules is missing
# or older than the lockfile. Run after the packages (npm may have just been installed).
console_npm() {
  d="$(cd "$(dirname "$0")/.." && pwd)/broker/console"
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    echo "bootstrap: npm ci in broker/console"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The test suite's npm tools (tests/npm/package.json + package-lock.json: @redocly/cli for the
# OpenAPI lint, lora-packet for the e2e test), installed exactly as locked with `npm ci`, again
# only when the lockfile changed.
npm_tools() {
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/npm"
  stamp="$dir/node_modules/.roamhub-lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "bootstrap: npm test tools present"
    return 0
  fi
  echo "bootstrap: npm ci in tests/npm"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
}

if [ -z "$missing" ]; then
  echo "bootstrap: all packages present"
  console_npm
  npm_tools
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "bootstrap: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# nginx-light's package enables a system service on port 80; roamhub starts its own
# instances on ephemeral loopback ports and never uses the system one.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
console_npm
npm_tools
echo "bootstrap: done"
