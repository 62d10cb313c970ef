#!/usr/bin/env bash
# TLS cache hits, side by side (issue 14): idemcache and nginx proxy_cache,
# both terminating TLS 1.3 with the same certificate (EC P-256, made by
# bench/certs.sh), the same cipher suite and group, in front of the same
# cleartext nginx origin. As bench/run.sh: each proxy runs one worker pinned
# to core 0; wrk and the origin share core 1; runs are repeated and
# interleaved, and the medians of req/s, p99 and proxy CPU time per request
# are printed with the ratios idemcache/nginx.
#   bench/tls.sh [SIZES] [RUNS] [SECONDS]     default "1k 20k" 3 10
# Two kinds of run per size:
#   keep-alive   CONNS connections, many hits each (TLS record cost)
#   new-conn     every request on a new connection, `Connection: close`
#                (a full TLS 1.3 handshake per request: wrk keeps no
#                session); NEWCONN_SIZES, default the first size
# The cipher suite: TLS_AES_128_GCM_SHA256 (TLS_CIPHER), group X25519.
# Both servers and wrk read one OpenSSL configuration that allows only
# those (OPENSSL_CONF); nginx is told the same in its own config, and
# `openssl s_client` checks what each server negotiates before the runs.
# The origin's access log proves every proxy served hits.
#   BIN=build/idemcache (default)  IDEM_ARGS="..." extra idemcache flags
#   PROXIES=nginx                  nginx alone (an idemcache without TLS)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SIZES=${1:-"1k 20k"}
RUNS=${2:-3}
SECS=${3:-10}
CONNS=${CONNS:-50}
NEWCONN_SIZES=${NEWCONN_SIZES:-${SIZES%% *}}
BIN=${BIN:-build/idemcache}
TLS_CIPHER=${TLS_CIPHER:-TLS_AES_128_GCM_SHA256}
work=$(mktemp -d /tmp/idem-tls-bench.XXXXXX)
chmod 755 "$work" # nginx workers run unprivileged
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(port); NGX=$(port); IDEM=$(port); IDEM_PLAIN=$(port)

tls_setup

mkdir -p "$work/www" "$work/origin" "$work/proxy"
make_bodies

origin_conf "  server { listen 127.0.0.1:$ORIGIN; root $work/www; access_log $work/origin/access.log;
           add_header Cache-Control \"max-age=3600\" always; }"
proxy_conf "    listen 127.0.0.1:$NGX ssl;
$(ngx_tls_lines)" "$(ngx_cache_http)" "$(ngx_cache_location)"
taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" & pids+=($!)
taskset -c 0 nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" & pids+=($!)
PROXIES=${PROXIES:-"idem nginx"}
WHO=$PROXIES
IDEM_PID=
if [[ " $WHO " == *" idem "* ]]; then
echo "cache: { enabled: true }" > "$work/idem.yaml"
# shellcheck disable=SC2086
taskset -c 0 "$BIN" --config "$work/idem.yaml" --listen 127.0.0.1:$IDEM_PLAIN \
  --tls-listen 127.0.0.1:$IDEM --tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key" \
  --upstream http://127.0.0.1:$ORIGIN --workers 1 --access-log off ${IDEM_ARGS:-} 2>"$work/idem.log" & pids+=($!)
IDEM_PID=${pids[2]}
fi
sleep 1
[ -z "$IDEM_PID" ] || kill -0 "$IDEM_PID" 2>/dev/null || { echo "idemcache did not start:"; cat "$work/idem.log"; exit 1; }
NGX_PID=$(pgrep -P "$(cat "$work/proxy/nginx.pid")" nginx | head -1)
port_of() { case $1 in idem) echo $IDEM;; nginx) echo $NGX;; esac; }
pid_of() { case $1 in idem) echo $IDEM_PID;; nginx) echo $NGX_PID;; esac; }
name_of() { case $1 in idem) echo idemcache;; *) echo "$1";; esac; }

# What each server negotiates with a client held to the same configuration.
for who in $WHO; do
  got=$(openssl s_client -connect "127.0.0.1:$(port_of $who)" -servername localhost </dev/null 2>&1 || true)
  proto=$(grep -o 'New, TLSv1.3, Cipher is [A-Z0-9_]*' <<<"$got" || true)
  group=$(grep -o 'Server Temp Key: [A-Za-z0-9]*' <<<"$got" || true)
  echo "$(name_of $who): ${proto:-no TLS 1.3 handshake}; ${group:-no key exchange seen}"
  [[ "$proto" == *"$TLS_CIPHER" ]] || { echo "$(name_of $who) did not negotiate $TLS_CIPHER"; tail -5 "$work/idem.log" "$work/proxy/error.log"; exit 1; }
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime

# wrk keeps no TLS session: with Connection: close, a full handshake each time.
run_wrk() { # port path pid ka|new -> "rps p99_ms cpu_us_per_request"
  local t0 t1 hdr=()
  [ "$4" = new ] && hdr=(-H "Connection: close")
  t0=$(cpu_ticks "$3")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${hdr[@]}" "https://127.0.0.1:$1/$2" > "$work/wrk.out" 2>&1
  t1=$(cpu_ticks "$3")
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '/requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v} /Non-2xx/ {bad=1} /Socket errors/ {errs=$0}
       END {if (bad || n == 0) print "ERR"; else printf "%.0f %.2f %.2f\n", rps, p99, ticks / hz * 1e6 / n}' "$work/wrk.out"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Keep-alive runs for every size; new-connection runs for NEWCONN_SIZES.
cases=""
for s in $SIZES; do cases="$cases $s:ka"; done
for s in $NEWCONN_SIZES; do cases="$cases $s:new"; done

for s in $SIZES; do
  for who in $WHO; do
    p=$(port_of $who)
    curl -sk -o "$work/got" "https://127.0.0.1:$p/$s"
    curl -sk -o "$work/got" -D "$work/hdr.$who.$s" "https://127.0.0.1:$p/$s"
    cmp -s "$work/got" "$work/www/$s" || { echo "$who served a wrong body for $s"; tail -5 "$work/proxy/error.log" "$work/idem.log"; exit 1; }
  done
done
before=$(wc -l < "$work/origin/access.log")
for c in $cases; do
  for who in $WHO; do : > "$work/$who.$c"; done
done
for r in $(seq "$RUNS"); do
  for c in $cases; do
    s=${c%%:*}
    for who in $WHO; do run_wrk "$(port_of $who)" "$s" "$(pid_of $who)" "${c##*:}" >> "$work/$who.$c"; done
  done
done
after=$(wc -l < "$work/origin/access.log")
echo "origin requests during the timed runs: $((after - before)) (all hits when 0);" \
  "idemcache said '$(grep -is '^cache-status' "$work/hdr.idem.${SIZES%% *}" | tr -d '\r')'," \
  "nginx '$(grep -i '^x-cache' "$work/hdr.nginx.${SIZES%% *}" | tr -d '\r')'"

printf "\nTLS 1.3, %s, X25519, EC P-256 certificate\n" "$TLS_CIPHER"
# core %: how busy the proxy's core was (req/s x CPU per request); well
# under 100 means the client side (wrk, one core) was the limit, and the
# CPU per request is the figure to compare.
printf "%-6s %-9s %-10s %10s %8s %12s %7s   (%s runs x %ss, %s connections, median)\n" size kind proxy "req/s" "p99 ms" "CPU us/req" "core %" "$RUNS" "$SECS" "$CONNS"
for c in $cases; do
  s=${c%%:*}
  kind=keepalive
  [ "${c##*:}" = new ] && kind=new-conn
  for who in $WHO; do
    if grep -q ERR "$work/$who.$c"; then echo "$s $kind $who: errors or non-2xx responses"; cat "$work/wrk.out"; exit 1; fi
    rps=$(cut -d' ' -f1 "$work/$who.$c" | median); p99=$(cut -d' ' -f2 "$work/$who.$c" | median)
    cpu=$(cut -d' ' -f3 "$work/$who.$c" | median)
    eval "${who}_rps=$rps; ${who}_cpu=$cpu"
    busy=$(awk -v r="$rps" -v c="$cpu" 'BEGIN {printf "%.0f", r * c / 1e4}')
    printf "%-6s %-9s %-10s %10s %8s %12s %7s   runs: %s\n" "$s" "$kind" "$(name_of $who)" "$rps" "$p99" "$cpu" "$busy" "$(cut -d' ' -f1 "$work/$who.$c" | tr '\n' ' ')"
  done
  [ "$WHO" = "idem nginx" ] || continue
  # shellcheck disable=SC2154
  awk -v a="$idem_rps" -v b="$nginx_rps" -v ca="$idem_cpu" -v cb="$nginx_cpu" -v s="$s" -v k="$kind" \
    'BEGIN {printf "%-6s %-9s idemcache/nginx: req/s %.2f, CPU per request %.2f (lower is better)\n", s, k, a/b, ca/cb}'
done
