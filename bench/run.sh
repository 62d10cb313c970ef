#!/usr/bin/env bash
# Side-by-side proxy benchmark: idemcache and nginx (proxy_pass, upstream
# keepalive, no cache) in front of the same nginx origin. Each proxy runs one
# worker pinned to core 0; wrk and the origin share core 1. Runs are repeated
# and interleaved; the median req/s and p99 of each are printed with the ratio.
#   bench/run.sh [SIZES] [RUNS] [SECONDS]    e.g. bench/run.sh "1k 64k" 3 10
set -euo pipefail
cd "$(dirname "$0")/.."
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
ORIGIN=$(port); NGX=$(port); IDEM=$(port)

mkdir -p "$work/www" "$work/origin" "$work/proxy"
for s in $SIZES; do
  n=$(numfmt --from=iec "${s^^}")
  python3 -c "import os,base64,sys; sys.stdout.write(base64.b64encode(os.urandom($n)).decode()[:$n])" > "$work/www/$s"
done

cat > "$work/origin/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN; root $work/www; }
}
CONF
cat > "$work/proxy/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/proxy/nginx.pid;
error_log $work/proxy/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
CONF
taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" & pids+=($!)
taskset -c 0 nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" & pids+=($!)
taskset -c 0 "$BIN" --listen 127.0.0.1:$IDEM --upstream http://127.0.0.1:$ORIGIN --workers 1 \
  --access-log off 2>"$work/idem.log" & pids+=($!)
IDEM_PID=${pids[2]}
sleep 1
NGX_PID=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" nginx | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime

run_wrk() { # port path pid -> "rps p99_ms cpu_us_per_request"
  local t0 t1
  t0=$(cpu_ticks "$3")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$1/$2" > "$work/wrk.out" 2>&1
  t1=$(cpu_ticks "$3")
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '/requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v} /Non-2xx/ {bad=1}
       END {if (bad) print "ERR"; else printf "%.0f %.2f %.2f\n", rps, p99, ticks / hz * 1e6 / n}' "$work/wrk.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for s in $SIZES; do
  # Sanity: both proxies serve the file byte for byte.
  for p in $NGX $IDEM; do
    curl -s -o "$work/got" "http://127.0.0.1:$p/$s"; cmp -s "$work/got" "$work/www/$s" || { echo "proxy on $p served a wrong body for $s ($(wc -c <"$work/got") bytes; nginx proxy $NGX, idemcache $IDEM)"; cat "$work/proxy/error.log" "$work/idem.log" | tail -5; exit 1; }
  done
  : > "$work/idem.$s"; : > "$work/nginx.$s"
  for r in $(seq "$RUNS"); do
    run_wrk $IDEM "$s" "$IDEM_PID" >> "$work/idem.$s"
    run_wrk $NGX "$s" "$NGX_PID" >> "$work/nginx.$s"
  done
done

printf "\n%-6s %-10s %10s %8s %12s   (%s runs x %ss, %s connections, median)\n" size proxy "req/s" "p99 ms" "CPU us/req" "$RUNS" "$SECS" "$CONNS"
for s in $SIZES; do
  for who in idem nginx; do
    if grep -q ERR "$work/$who.$s"; then echo "$s $who: non-2xx responses"; exit 1; fi
    rps=$(cut -d' ' -f1 "$work/$who.$s" | median); p99=$(cut -d' ' -f2 "$work/$who.$s" | median)
    cpu=$(cut -d' ' -f3 "$work/$who.$s" | median)
    eval "${who}_rps=$rps; ${who}_p99=$p99; ${who}_cpu=$cpu"
    printf "%-6s %-10s %10s %8s %12s   runs: %s\n" "$s" "$([ $who = idem ] && echo idemcache || echo nginx)" "$rps" "$p99" "$cpu" "$(cut -d' ' -f1 "$work/$who.$s" | tr '\n' ' ')"
  done
  awk -v a="$idem_rps" -v b="$nginx_rps" -v ca="$idem_cpu" -v cb="$nginx_cpu" -v s="$s" \
    'BEGIN {printf "%-6s idemcache/nginx: req/s %.2f, CPU per request %.2f (lower is better)\n", s, a/b, ca/cb}'
done
