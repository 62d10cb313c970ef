#!/usr/bin/env bash
# HTTP/2 cache hits, side by side (issue 15): idemcache and nginx
# proxy_cache in front of the same cleartext nginx origin, driven by
# h2load (-c CONNS -m STREAMS), over cleartext h2 (prior knowledge) and over
# TLS 1.3 (ALPN h2; bench/certs.sh's certificate, TLS_AES_128_GCM_SHA256,
# X25519 for both, as bench/tls.sh). Each proxy runs one worker pinned to
# core 0; h2load and the origin share core 1; runs are repeated and
# interleaved; medians of req/s and proxy CPU time per request are printed
# with the ratios idemcache/nginx.
#   bench/h2.sh [SIZES] [RUNS] [SECONDS]     default "1k 20k" 3 10
#   BIN=build/idemcache  CONNS=10  STREAMS=10  MODES="h2c tls"
# nginx 1.22 (Debian 12) spells h2 `listen ... http2` (1.25 says `http2
# on`); without TLS that listener speaks prior-knowledge h2 only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SIZES=${1:-"1k 20k"}
RUNS=${2:-3}
SECS=${3:-10}
CONNS=${CONNS:-10}
STREAMS=${STREAMS:-10}
MODES=${MODES:-"h2c tls"}
BIN=${BIN:-build/idemcache}
TLS_CIPHER=${TLS_CIPHER:-TLS_AES_128_GCM_SHA256}
work=$(mktemp -d /tmp/idem-h2-bench.XXXXXX)
chmod 755 "$work" # nginx workers run unprivileged
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(port); NGX=$(port); NGX_TLS=$(port); IDEM=$(port); IDEM_TLS=$(port)

tls_setup

mkdir -p "$work/www" "$work/origin" "$work/proxy"
make_bodies
origin_conf "  server { listen 127.0.0.1:$ORIGIN; root $work/www; access_log $work/origin/access.log;
           add_header Cache-Control \"max-age=3600\" always; }"
proxy_conf "    listen 127.0.0.1:$NGX http2;
    listen 127.0.0.1:$NGX_TLS ssl http2;
$(ngx_tls_lines)" "  http2_max_concurrent_streams 128;
$(ngx_cache_http)" "$(ngx_cache_location)"
taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" & pids+=($!)
taskset -c 0 nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" & pids+=($!)
# shellcheck disable=SC2086
taskset -c 0 "$BIN" --listen 127.0.0.1:$IDEM --tls-listen 127.0.0.1:$IDEM_TLS \
  --tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key" \
  --upstream http://127.0.0.1:$ORIGIN --workers 1 --access-log off ${IDEM_ARGS:-} 2>"$work/idem.log" & pids+=($!)
IDEM_PID=${pids[2]}
sleep 1
kill -0 "$IDEM_PID" 2>/dev/null || { echo "idemcache did not start:"; cat "$work/idem.log"; exit 1; }
NGX_PID=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" nginx | head -1)

url_of() { # who mode size
  case $1:$2 in
    idem:h2c) echo "http://127.0.0.1:$IDEM/$3";; idem:tls) echo "https://127.0.0.1:$IDEM_TLS/$3";;
    nginx:h2c) echo "http://127.0.0.1:$NGX/$3";; nginx:tls) echo "https://127.0.0.1:$NGX_TLS/$3";;
  esac
}
pid_of() { case $1 in idem) echo "$IDEM_PID";; nginx) echo "$NGX_PID";; esac; }
name_of() { case $1 in idem) echo idemcache;; *) echo "$1";; esac; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime

# Each body through each proxy and mode, twice (the second a hit), over h2.
for s in $SIZES; do
  for who in idem nginx; do
    for m in $MODES; do
      flag=--http2-prior-knowledge
      [ "$m" = tls ] && flag=--http2
      curl -sk $flag -o "$work/got" "$(url_of $who $m "$s")"
      curl -sk $flag -o "$work/got" -D "$work/hdr.$who.$m.$s" "$(url_of $who $m "$s")"
      cmp -s "$work/got" "$work/www/$s" || { echo "$who ($m) served a wrong body for $s"; tail -5 "$work/proxy/error.log" "$work/idem.log"; exit 1; }
      grep -q '^HTTP/2 200' "$work/hdr.$who.$m.$s" || { echo "$who ($m): not h2"; cat "$work/hdr.$who.$m.$s"; exit 1; }
    done
  done
done

run_h2load() { # url pid -> "rps cpu_us_per_request"
  local t0 t1
  t0=$(cpu_ticks "$2")
  taskset -c 1 h2load -c "$CONNS" -m "$STREAMS" -D "$SECS" "$1" > "$work/h2load.out" 2>&1 || true
  cat "$work/h2load.out" >> "$work/h2load.all"
  t1=$(cpu_ticks "$2")
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    /^finished in/ {rps=$4}
    /^requests:/ {done=$8; failed=$10; errored=$12}
    /^status codes:/ {ok=$3}
    END {if (!done || failed > 0 || errored > 0 || ok + 0 < done + 0) print "ERR"; else printf "%.0f %.2f\n", rps, ticks / hz * 1e6 / done}' "$work/h2load.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cases=""
for m in $MODES; do for s in $SIZES; do cases="$cases $m:$s"; done; done
for c in $cases; do for who in idem nginx; do : > "$work/$who.$c"; done; done
before=$(wc -l < "$work/origin/access.log")
for r in $(seq "$RUNS"); do
  for c in $cases; do
    m=${c%%:*}; s=${c##*:}
    for who in idem nginx; do run_h2load "$(url_of $who "$m" "$s")" "$(pid_of $who)" >> "$work/$who.$c"; done
  done
done
after=$(wc -l < "$work/origin/access.log")
echo "origin requests during the timed runs: $((after - before)) (all hits when 0)"

printf "\nh2load -c %s -m %s, %s runs x %ss, median (TLS: 1.3, %s, X25519)\n" "$CONNS" "$STREAMS" "$RUNS" "$SECS" "$TLS_CIPHER"
printf "%-5s %-6s %-10s %10s %12s   %s\n" mode size proxy "req/s" "CPU us/req" runs
for c in $cases; do
  m=${c%%:*}; s=${c##*:}
  for who in idem nginx; do
    if grep -q ERR "$work/$who.$c"; then echo "$m $s $who: failed or non-2xx responses"; cat "$work/$who.$c"; grep -E '^(finished|requests|status)' "$work/h2load.all"; exit 1; fi
    rps=$(cut -d' ' -f1 "$work/$who.$c" | median); cpu=$(cut -d' ' -f2 "$work/$who.$c" | median)
    eval "${who}_rps=$rps; ${who}_cpu=$cpu"
    printf "%-5s %-6s %-10s %10s %12s   %s\n" "$m" "$s" "$(name_of $who)" "$rps" "$cpu" "$(cut -d' ' -f1 "$work/$who.$c" | tr '\n' ' ')"
  done
  # shellcheck disable=SC2154
  awk -v a="$idem_rps" -v b="$nginx_rps" -v ca="$idem_cpu" -v cb="$nginx_cpu" -v m="$m" -v s="$s" \
    'BEGIN {printf "%-5s %-6s idemcache/nginx: req/s %.2f, CPU per request %.2f (lower is better)\n", m, s, a/b, ca/cb}'
done
