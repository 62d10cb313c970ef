#!/usr/bin/env bash
# Installs the Debian packages idemcache builds and tests with; quiet and
# idempotent: does nothing when everything is already present.
set -euo pipefail
want=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libyaml-dev libssl-dev libcmocka-dev zlib1g-dev
      libzstd-dev zstd nodejs openssl strace libnghttp2-dev)
# nghttp2-client: h2load, for bench/h2.sh; varnish: bench/run.sh's cache mode
[ "${1:-}" = "--bench" ] && want+=(nginx-light wrk nghttp2-client varnish)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx's and varnish's packages may start system instances: they are
  # left alone. The bench runs its own, with their own config and ports.
fi
# npm packages (real Connect clients and servers) from the committed lock file.
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
