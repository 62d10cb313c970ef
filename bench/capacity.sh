#!/usr/bin/env bash
# How many small API responses a cache of a given size holds, through the
# real binary: an nginx origin answers every /items/N with a 100-byte JSON
# body and a typical API head (Server, Date, Content-Type, Cache-Control,
# ETag, Vary); wrk asks for unique URLs until the store evicts (it is full),
# then /stats and /proc give the figures:
#   objects held, accounted bytes per object, RSS per object, RSS / bytes.
#   bench/capacity.sh [MEMORY]            default 1GiB
#   BIN=/path/to/idemcache bench/capacity.sh 256MiB
# Target (issue 12): 1GiB holds >= 1,000,000 objects, <= 1 KiB each all in,
# RSS within 10% of the accounted bytes. Measured 2026-12-01 (2 workers, 2
# shared cores): 1,065,216 objects, 1008 accounted bytes and 1018 bytes of
# RSS per object, RSS / bytes 1.010; the binary before (one 64 KiB segment
# per body): 16,192 objects.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MEMORY=${1:-1GiB}
BIN=${BIN:-build/idemcache}
WORKERS=${WORKERS:-2}
MAX_SECS=${MAX_SECS:-600}   # give up filling after this long
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk: scripts/deps.sh --bench"; exit 1; }
work=$(mktemp -d /tmp/idem-capacity.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(port); IDEM=$(port); ADMIN=$(port)
BODY=$(python3 -c "s='{\"id\":1,\"name\":\"item\",\"tags\":[\"a\",\"b\"],\"price\":12.5,\"pad\":\"'; print(s + 'x' * (100 - len(s) - 2) + '\"}')")
[ ${#BODY} -eq 100 ] || { echo "body is ${#BODY} bytes"; exit 1; }
origin_conf "  server {
    listen 127.0.0.1:$ORIGIN;
    location / {
      default_type application/json;
      add_header Cache-Control \"max-age=3600\";
      add_header ETag \"\\\"\$request_id\\\"\";
      add_header Vary \"Accept-Encoding\";
      return 200 '$BODY';
    }
  }"
nginx -p "$work/origin" -c "$work/origin/nginx.conf" & pids+=($!)
printf 'cache:\n  memory_size: %s\n' "$MEMORY" > "$work/idem.yaml"
"$BIN" --config "$work/idem.yaml" --listen 127.0.0.1:$IDEM --admin 127.0.0.1:$ADMIN \
  --upstream http://127.0.0.1:$ORIGIN --workers "$WORKERS" --access-log off 2>"$work/idem.log" & pids+=($!)
IDEM_PID=${pids[1]}
sleep 1
head=$(curl -s -D - -o /dev/null "http://127.0.0.1:$IDEM/items/0")
echo "the origin's head, as a client sees it through idemcache:"; echo "$head" | tr -d '\r' | sed 's/^/  /'

# Every request a new URL: thread T asks /items/T-1, /items/T-2, ...
cat > "$work/unique.lua" <<'LUA'
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
local n = 0
function request() n = n + 1; return wrk.format("GET", "/items/" .. tid .. "-" .. n) end
LUA
stats() { curl -s "http://127.0.0.1:$ADMIN/stats"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('$1', 0))" "$2"; }
rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$IDEM_PID/status"; }
start=$SECONDS round=0
while :; do
  round=$((round + 1))
  # a new script per round: the URLs of this round are new too
  sed "s|\"/items/\"|\"/items/r$round-\"|" "$work/unique.lua" > "$work/round.lua"
  wrk -t2 -c32 -d20s -s "$work/round.lua" "http://127.0.0.1:$IDEM/" > "$work/wrk.out" 2>&1
  s=$(stats)
  printf '  after %4ss: %s objects, %s bytes, %s evictions, RSS %s\n' $((SECONDS - start)) \
    "$(field objects "$s")" "$(field bytes "$s")" "$(field evictions "$s")" "$(rss)"
  [ "$(field evictions "$s")" -gt 0 ] && break
  [ $((SECONDS - start)) -ge "$MAX_SECS" ] && { echo "  not full after ${MAX_SECS}s"; break; }
done
# one more round once full, so that eviction churn is in the RSS figure
sed "s|\"/items/\"|\"/items/last-\"|" "$work/unique.lua" > "$work/round.lua"
wrk -t2 -c32 -d20s -s "$work/round.lua" "http://127.0.0.1:$IDEM/" > "$work/wrk.out" 2>&1
s=$(stats); r=$(rss)
objects=$(field objects "$s"); bytes=$(field bytes "$s"); cap=$(field capacity_bytes "$s")
[ "$cap" -gt 0 ] || cap=$(numfmt --from=iec "${MEMORY%iB}")  # a binary without capacity_bytes
python3 - "$objects" "$bytes" "$cap" "$r" "$(field evictions "$s")" <<'PY'
import sys
objects, acc, cap, rss, ev = map(int, sys.argv[1:])
print(f"\ncapacity {cap} ({cap / 2**20:.0f} MiB), evictions {ev}")
print(f"objects held:           {objects:,}")
print(f"accounted bytes:        {acc:,} ({acc / cap:.1%} of capacity), {acc / objects:.0f} per object")
print(f"RSS:                    {rss:,}, {rss / objects:.0f} per object")
print(f"RSS / accounted bytes:  {rss / acc:.3f}")
PY
