#!/usr/bin/env bash
# The digest handshake across a slow link (issue 6). Two network namespaces,
#   [client, forward idemcache] --veth, tbf at $RATE each way-- [reverse idemcache, origin]
# and four ways over the link: no idemcache, two plain caching idemcaches,
# the handshake with an identical response, and with two fields changed.
# The client POSTs a 2 KiB JSON body $N times; the origin answers 20 KiB of
# JSON with max-age=0, so every request is revalidated. Link bytes come
# from the veth counters (L2: TCP/IP headers and ACKs included); every
# response is checked byte for byte against the origin's document.
#   sudo bench/peer.sh            (root: it creates namespaces)
#   sudo PEER_TLS=1 bench/peer.sh the peer link over TLS (issue 14): the
#                                 reverse side also listens with TLS
#                                 (--tls-listen, a certificate for
#                                 10.77.0.2 from bench/certs.sh), the
#                                 forward side uses --peer https://... and
#                                 verifies it (peer_tls: { ca: ... }); the
#                                 baseline is then a client straight to the
#                                 reverse side over TLS, and the savings
#                                 are TLS bytes against TLS bytes
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
RATE=${RATE:-10mbit}
PEER_TLS=${PEER_TLS:-0}
BIN=${BIN:-$PWD/build/idemcache}
FW=idem-fw-$$
RV=idem-rv-$$
work=$(mktemp -d /tmp/idem-peer.XXXXXX)
cleanup() {
  for ns in $FW $RV; do
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del $ns 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add $FW
ip netns add $RV
ip link add fwlink netns $FW type veth peer name rvlink netns $RV
ip -n $FW addr add 10.77.0.1/24 dev fwlink
ip -n $RV addr add 10.77.0.2/24 dev rvlink
for ns in $FW $RV; do ip -n $ns link set lo up; done
ip -n $FW link set fwlink up
ip -n $RV link set rvlink up
ip netns exec $FW tc qdisc add dev fwlink root tbf rate "$RATE" burst 32kbit latency 400ms
ip netns exec $RV tc qdisc add dev rvlink root tbf rate "$RATE" burst 32kbit latency 400ms

head -c 48 /dev/urandom | base64 > "$work/secret"
printf 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n' > "$work/plain.yaml"
printf 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\npeers:\n  - { id: edge-1, secret_file: %s }\n' "$work/secret" > "$work/reverse.yaml"
PEER_URL=http://10.77.0.2:9202
RV_TLS=()
FW_CFG=$work/plain.yaml
if [ "$PEER_TLS" = 1 ]; then
  bench/certs.sh "$work/certs" "IP:10.77.0.2"
  PEER_URL=https://10.77.0.2:9203
  RV_TLS=(--tls-listen 10.77.0.2:9203 --tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key")
  FW_CFG=$work/forward-tls.yaml
  { cat "$work/plain.yaml"; printf 'peer_tls:\n  ca: %s\n' "$work/certs/ca.pem"; } > "$FW_CFG"
fi
inrv() { ip netns exec $RV "$@"; }
infw() { ip netns exec $FW "$@"; }
wait_port() { for _ in $(seq 100); do $1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return; sleep 0.05; done; echo "no listener on $2:$3"; exit 1; }
link_bytes() { infw ip -s -j link show fwlink | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["tx"]["bytes"], s["rx"]["bytes"])'; }

inrv "$BIN" --config "$work/plain.yaml" --listen 10.77.0.2:9201 --upstream http://127.0.0.1:9100 --workers 1 --access-log off 2>"$work/rv-plain.log" &
inrv "$BIN" --config "$work/reverse.yaml" --listen 10.77.0.2:9202 "${RV_TLS[@]}" --upstream http://127.0.0.1:9100 --workers 1 --access-log off 2>"$work/rv-peer.log" &
infw "$BIN" --mode forward --config "$work/plain.yaml" --listen 127.0.0.1:9301 --workers 1 --access-log off 2>"$work/fw-plain.log" &
infw "$BIN" --mode forward --config "$FW_CFG" --listen 127.0.0.1:9302 --workers 1 --access-log off \
  --peer "$PEER_URL" --peer-id edge-1 --peer-secret "$work/secret" --admin 127.0.0.1:9402 2>"$work/fw-peer.log" &
wait_port inrv 10.77.0.2 9201; wait_port inrv 10.77.0.2 9202
[ "$PEER_TLS" = 1 ] && wait_port inrv 10.77.0.2 9203
wait_port infw 127.0.0.1 9301; wait_port infw 127.0.0.1 9302

origin_pid=
origin() { # same | change
  [ -n "$origin_pid" ] && kill "$origin_pid" && wait "$origin_pid" 2>/dev/null || true
  ip netns exec $RV node bench/peer/origin.mjs 9100 "$1" & origin_pid=$!
  wait_port inrv 127.0.0.1 9100
}

printf "%-40s %12s %12s %10s %8s\n" "path over a $RATE link" "up B/req" "down B/req" "ms/req" "errors"
# A client of the reverse side over TLS trusts the bench CA.
[ "$PEER_TLS" = 1 ] && export PEER_CA=$work/certs/ca.pem
measure() { # label url [proxy port]
  infw node bench/peer/client.mjs "$2" 3 ${3:-} >/dev/null # warm: caches and stores fill
  read -r tx0 rx0 < <(link_bytes)
  out=$(infw node bench/peer/client.mjs "$2" "$N" ${3:-})
  read -r tx1 rx1 < <(link_bytes)
  python3 - "$1" "$tx0" "$rx0" "$tx1" "$rx1" "$N" "$out" "$work/results" <<'PY'
import json, sys
label, tx0, rx0, tx1, rx1, n, out = sys.argv[1], *map(int, sys.argv[2:7]), json.loads(sys.argv[7])
print("%-40s %12.0f %12.0f %10.1f %8d" % (label, (tx1 - tx0) / n, (rx1 - rx0) / n, out["ms_per_request"], out["bad"]))
with open(sys.argv[8], "a") as f:
    f.write("%s\t%f\t%f\n" % (label, (tx1 - tx0) / n, (rx1 - rx0) / n))
PY
}
over=""
[ "$PEER_TLS" = 1 ] && over=" over TLS"
origin same
measure "no idemcache" http://10.77.0.2:9100/api/search
[ "$PEER_TLS" = 1 ] && measure "no idemcache, TLS to reverse side" https://10.77.0.2:9203/api/search
measure "plain caching idemcaches" http://10.77.0.2:9201/api/search 9301
measure "handshake$over, identical response" http://origin.test/api/search 9302
origin change
measure "handshake$over, two fields changed" http://origin.test/api/search 9302
# The savings: link bytes per request against a client that talks to the
# origin side directly (over TLS too when the handshake is).
python3 - "$work/results" "$PEER_TLS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, up, down = line.rstrip("\n").split("\t")
    rows[label] = (float(up), float(down))
base = rows["no idemcache, TLS to reverse side" if sys.argv[2] == "1" else "no idemcache"]
for label, (up, down) in rows.items():
    if label.startswith("handshake"):
        print("%-40s link bytes per request %.0f of %.0f (%.1f%%), saved %.1f%%"
              % (label, up + down, sum(base), 100 * (up + down) / sum(base), 100 - 100 * (up + down) / sum(base)))
PY
stats=$(infw curl -s http://127.0.0.1:9402/stats)
echo "forward side: $stats"
python3 - "$stats" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
n = s["peer_body_refs"] + s["peer_body_full"]
print("request bodies sent by reference: %d of %d; fallbacks (415, resent whole): %d (%.1f%%); round trips per request: %.3f"
      % (s["peer_body_refs"], n, s["peer_fallbacks"], 100.0 * s["peer_fallbacks"] / max(n, 1), 1 + s["peer_fallbacks"] / max(n, 1)))
PY
