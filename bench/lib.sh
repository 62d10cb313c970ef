# What the bench scripts share (sourced): the bodies an origin serves and
# the nginx origin config around each script's own server block.

# nginx, wrk, h2load and Varnish, installed if missing (quiet when present).
scripts/deps.sh --bench

# $work/www/<size> for each size in $SIZES: base64 text of that many bytes.
make_bodies() {
  mkdir -p "$work/www"
  for s in $SIZES; do
    n=$(numfmt --from=iec "${s^^}")
    python3 -c "import os,base64,sys; sys.stdout.write(base64.b64encode(os.urandom($n)).decode()[:$n])" > "$work/www/$s"
  done
}

# The top of an nginx.conf for $work/$1: one worker in the foreground,
# and the start of http {} with no access log and keep-alive without a
# request limit (the caller closes the block).
nginx_main() {
  cat <<C
worker_processes 1;
daemon off;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
C
}

# $work/origin/nginx.conf: one worker, no access log, keep-alive without a
# request limit, and the server block given as $1.
origin_conf() {
  mkdir -p "$work/origin"
  cat > "$work/origin/nginx.conf" <<CONF
$(nginx_main origin)
$1
}
CONF
}

# Certificates in $work/certs (bench/certs.sh) and an OpenSSL config that
# pins every TLS client and server of the run (wrk, h2load, nginx,
# idemcache) to TLS 1.3, $TLS_CIPHER and X25519: one cipher for all.
tls_setup() {
  bench/certs.sh "$work/certs"
  chmod 644 "$work/certs/"*
  cat > "$work/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = $TLS_CIPHER
Groups = X25519
CNF
  export OPENSSL_CONF=$work/openssl.cnf
}

# $work/proxy/nginx.conf: nginx as the proxy under test, one worker, in
# front of the origin on $ORIGIN with pooled keep-alive. $1: the server's
# listen (and ssl) lines; $2: more lines in http {}; $3: more lines in
# location / (the cache, for scripts that compare caches).
proxy_conf() {
  mkdir -p "$work/proxy"
  cat > "$work/proxy/nginx.conf" <<CONF
$(nginx_main proxy)
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; }
$2
  server {
$1
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
$3
    }
  }
}
CONF
}

# The cache nginx gets where a script compares caches: the http {} and
# location / lines for proxy_conf.
ngx_cache_http() {
  echo "  proxy_cache_path $work/proxy/cache levels=1:2 keys_zone=c:16m max_size=2g inactive=1h;"
}
ngx_cache_location() {
  echo '      proxy_cache c; proxy_cache_valid 200 1h; add_header X-Cache $upstream_cache_status;'
}
# TLS 1.3 with the run's one cipher (tls_setup), for an ssl listener.
ngx_tls_lines() {
  cat <<L
    ssl_certificate $work/certs/server.pem;
    ssl_certificate_key $work/certs/server.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites $TLS_CIPHER;
    ssl_ecdh_curve X25519;
L
}
