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
