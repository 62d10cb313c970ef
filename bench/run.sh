#!/usr/bin/env bash
# Side-by-side proxy benchmark: idemcache and nginx in front of the same
# nginx origin. Each proxy runs one worker pinned to core 0; wrk and the
# origin share core 1. Runs are repeated and interleaved; the median req/s,
# p99 and proxy CPU time per request of each are printed with the ratios.
#   bench/run.sh [SIZES] [RUNS] [SECONDS]          proxying, no cache
#   MODE=cache bench/run.sh "1k 20k 1m" 3 10       cache hits: nginx proxy_cache,
#                                                  and Varnish when installed
#   MODE=post bench/run.sh 20k 3 10                POST hits with a 2 KiB JSON body:
#                                                  idemcache (rule, body digest key),
#                                                  idemcache GET hits of the same file,
#                                                  nginx proxy_cache_methods POST with
#                                                  $request_body in its key
# In cache and post modes the origin's access log proves every proxy served hits.
#   OLD=/path/to/old/idemcache ...                 also runs that binary, same config,
#                                                  interleaved: new/old ratios
#                                                  (a change to the hit path)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
MODE=${MODE:-proxy}
SIZES=${1:-"1k 64k"}
RUNS=${2:-3}
SECS=${3:-10}
CONNS=${CONNS:-50}
BIN=${BIN:-build/idemcache}
work=$(mktemp -d /tmp/idem-bench.XXXXXX)
chmod 755 "$work"  # nginx workers run unprivileged
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(port); NGX=$(port); IDEM=$(port); VARN=$(port); IDEMOLD=$(port)
if [ "$MODE" = cache ] || [ "$MODE" = post ]; then
  ORIGIN_EXTRA="access_log $work/origin/access.log; add_header Cache-Control \"max-age=3600\" always;"
  NGX_EXTRA="proxy_cache c; proxy_cache_valid 200 1h; add_header X-Cache \$upstream_cache_status;"
  NGX_HTTP_EXTRA="proxy_cache_path $work/proxy/cache levels=1:2 keys_zone=c:16m max_size=2g inactive=1h;"
fi
if [ "$MODE" = post ]; then
  # The static origin answers POST with the file (405 turned into a 200).
  ORIGIN_EXTRA="$ORIGIN_EXTRA error_page 405 =200 \$uri;"
  # nginx reads the body into memory and keys on it: the nearest it gets.
  NGX_EXTRA="$NGX_EXTRA proxy_cache_methods POST; proxy_cache_key \"\$request_uri|\$request_body\";
    client_body_buffer_size 16k;"
  python3 -c "
import json, random
random.seed(7)
doc = {'query': 'orders', 'filters': [{'field': 'f%d' % i, 'op': 'eq', 'value': 'v%08d' % random.randrange(10**8)} for i in range(40)], 'page': 1}
s = json.dumps(doc)
while len(s) < 2048:
    doc['pad'] = doc.get('pad', '') + 'x'
    s = json.dumps(doc)
open('$work/body.json', 'w').write(s[:2048] if len(s) == 2048 else s)
"
  BODY_LUA=$(python3 -c "import json; print(json.dumps(open('$work/body.json').read()))")
  cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = $BODY_LUA
wrk.headers["Content-Type"] = "application/json"
LUA
fi

mkdir -p "$work/www" "$work/origin" "$work/proxy"
make_bodies

origin_conf "  server { listen 127.0.0.1:$ORIGIN; root $work/www; ${ORIGIN_EXTRA:-} }"
proxy_conf "    listen 127.0.0.1:$NGX;" "${NGX_HTTP_EXTRA:-}" "${NGX_EXTRA:-}"
taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" & pids+=($!)
taskset -c 0 nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" & pids+=($!)
# Proxy mode compares proxying: idemcache's cache is off, as nginx has none.
if [ "$MODE" = cache ]; then echo "cache: { enabled: true }" > "$work/idem.yaml"
elif [ "$MODE" = post ]; then
  printf 'cache: { enabled: true }\nrules:\n  - { path: "/*", methods: [POST], cache: true, ttl: 1h }\n' > "$work/idem.yaml"
else echo "cache: { enabled: false }" > "$work/idem.yaml"; fi
taskset -c 0 "$BIN" --config "$work/idem.yaml" --listen 127.0.0.1:$IDEM --upstream http://127.0.0.1:$ORIGIN --workers 1 \
  --access-log off 2>"$work/idem.log" & pids+=($!)
IDEM_PID=${pids[2]}
WHO="idem nginx"
[ "$MODE" = post ] && WHO="idem idemget nginx"
if [ -n "${OLD:-}" ]; then
  taskset -c 0 "$OLD" --config "$work/idem.yaml" --listen 127.0.0.1:$IDEMOLD --upstream http://127.0.0.1:$ORIGIN \
    --workers 1 --access-log off 2>"$work/idemold.log" & pids+=($!)
  IDEMOLD_PID=$!
  WHO="$WHO idemold"
fi
if [ "$MODE" = cache ] && command -v varnishd >/dev/null; then
  taskset -c 0 varnishd -F -a 127.0.0.1:$VARN -n "$work/varnish" -s malloc,1g \
    -p thread_pools=1 -b 127.0.0.1:$ORIGIN >/dev/null 2>&1 & pids+=($!)
  WHO="$WHO varnish"
fi
sleep 1
NGX_PID=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" nginx | head -1)
VARN_PID=$(pgrep -f "varnishd.*$work/varnish" | sort -n | tail -1 || true)  # the cache child
port_of() { case $1 in idem|idemget) echo $IDEM;; nginx) echo $NGX;; varnish) echo $VARN;; idemold) echo $IDEMOLD;; esac; }
pid_of() { case $1 in idem|idemget) echo $IDEM_PID;; nginx) echo $NGX_PID;; varnish) echo "$VARN_PID";; idemold) echo $IDEMOLD_PID;; esac; }
name_of() { case $1 in idem) [ "$MODE" = post ] && echo idem-POST || echo idemcache;; idemold) echo idem-old;;
  idemget) echo idem-GET;; nginx) [ "$MODE" = post ] && echo nginx-POST || echo nginx;; *) echo "$1";; esac; }
# POST mode: every proxy but idemget sends the JSON body.
script_of() { [ "$MODE" = post ] && [ "$1" != idemget ] && echo "-s $work/post.lua" || true; }
curl_of() { [ "$MODE" = post ] && [ "$1" != idemget ] && echo "-X POST -H Content-Type:application/json --data-binary @$work/body.json" || true; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime

run_wrk() { # port path pid [wrk args] -> "rps p99_ms cpu_us_per_request"
  local t0 t1
  t0=$(cpu_ticks "$3")
  # shellcheck disable=SC2086
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency ${4:-} "http://127.0.0.1:$1/$2" > "$work/wrk.out" 2>&1
  t1=$(cpu_ticks "$3")
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '/requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v} /Non-2xx/ {bad=1}
       END {if (bad) print "ERR"; else printf "%.0f %.2f %.2f\n", rps, p99, ticks / hz * 1e6 / n}' "$work/wrk.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for s in $SIZES; do
  # Sanity: both proxies serve the file byte for byte.
  for who in $WHO; do
    p=$(port_of $who)
    # shellcheck disable=SC2046
    curl -s -o "$work/got" $(curl_of $who) "http://127.0.0.1:$p/$s"
    # shellcheck disable=SC2046
    curl -s -o "$work/got" -D "$work/hdr.$who.$s" $(curl_of $who) "http://127.0.0.1:$p/$s"
    cmp -s "$work/got" "$work/www/$s" || { echo "$who served a wrong body for $s"; cat "$work/proxy/error.log" "$work/idem.log" | tail -5; exit 1; }
  done
  [ "$MODE" != proxy ] && before=$(wc -l < "$work/origin/access.log")
  for who in $WHO; do : > "$work/$who.$s"; done
  for r in $(seq "$RUNS"); do
    for who in $WHO; do run_wrk "$(port_of $who)" "$s" "$(pid_of $who)" "$(script_of $who)" >> "$work/$who.$s"; done
  done
  if [ "$MODE" != proxy ]; then
    after=$(wc -l < "$work/origin/access.log")
    echo "$s: origin requests during the timed runs: $((after - before)) (all hits when 0);" \
      "idemcache said '$(grep -i '^cache-status' "$work/hdr.idem.$s" | tr -d '\r')'," \
      "nginx '$(grep -i '^x-cache' "$work/hdr.nginx.$s" | tr -d '\r')'"
  fi
done

printf "\n%-6s %-10s %10s %8s %12s   (%s runs x %ss, %s connections, median)\n" size proxy "req/s" "p99 ms" "CPU us/req" "$RUNS" "$SECS" "$CONNS"
for s in $SIZES; do
  for who in $WHO; do
    if grep -q ERR "$work/$who.$s"; then echo "$s $who: non-2xx responses"; exit 1; fi
    rps=$(cut -d' ' -f1 "$work/$who.$s" | median); p99=$(cut -d' ' -f2 "$work/$who.$s" | median)
    cpu=$(cut -d' ' -f3 "$work/$who.$s" | median)
    eval "${who}_rps=$rps; ${who}_p99=$p99; ${who}_cpu=$cpu"
    printf "%-6s %-10s %10s %8s %12s   runs: %s\n" "$s" "$(name_of $who)" "$rps" "$p99" "$cpu" "$(cut -d' ' -f1 "$work/$who.$s" | tr '\n' ' ')"
  done
  for who in $WHO; do
    [ $who = idem ] && continue
    eval "b=\$${who}_rps; cb=\$${who}_cpu"
    awk -v a="$idem_rps" -v b="$b" -v ca="$idem_cpu" -v cb="$cb" -v s="$s" -v w="$(name_of $who)" \
      -v me="$(name_of idem)" \
      'BEGIN {printf "%-6s %s/%s: req/s %.2f, CPU per request %.2f (lower is better)\n", s, me, w, a/b, ca/cb}'
  done
done
