#!/usr/bin/env bash
# Installs the Debian packages idemcache builds and tests with; quiet and
# idempotent: does nothing when everything is already present.
set -euo pipefail
want=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libyaml-dev libssl-dev libcmocka-dev libjansson-dev zlib1g-dev
      libzstd-dev nodejs)
[ "${1:-}" = "--bench" ] && want+=(nginx-light wrk)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx's package starts a system instance; the bench runs its own.
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
  $SUDO systemctl stop nginx >/dev/null 2>&1 || $SUDO pkill -x nginx || true
fi
