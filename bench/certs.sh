#!/usr/bin/env bash
# A CA and a server certificate signed by it, for the TLS benches:
#   bench/certs.sh DIR [SANS]      SANS default "IP:127.0.0.1,DNS:localhost"
# writes DIR/ca.pem, DIR/server.pem and DIR/server.key.
# EC P-256 keys (ECDSA signatures), as tests/integration/certs.mjs makes:
# every server in a bench gets the same certificate, so the handshake's
# signature costs the same everywhere.
set -euo pipefail
dir=$1
sans=${2:-"IP:127.0.0.1,DNS:localhost"}
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=idemcache bench CA" -days 30 -sha256 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem 2>/dev/null
key server.key
openssl req -new -key server.key -subj "/CN=idemcache bench" -out server.csr 2>/dev/null
printf '[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
  "$sans" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 30 -sha256 \
  -extfile server.ext -extensions v3 -out server.pem 2>/dev/null
rm -f server.csr server.ext
