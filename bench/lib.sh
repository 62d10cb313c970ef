# What the bench scripts share (sourced): the bodies an origin serves and
# the nginx origin config around each script's own server block.

# $work/www/<size> for each size in $SIZES: base64 text of that many bytes.
make_bodies() {
  mkdir -p "$work/www"
  for s in $SIZES; do
    n=$(numfmt --from=iec "${s^^}")
    python3 -c "import os,base64,sys; sys.stdout.write(base64.b64encode(os.urandom($n)).decode()[:$n])" > "$work/www/$s"
  done
}

# $work/origin/nginx.conf: one worker, no access log, keep-alive without a
# request limit, and the server block given as $1.
origin_conf() {
  mkdir -p "$work/origin"
  cat > "$work/origin/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
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
