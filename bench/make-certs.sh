#!/usr/bin/env bash
# bench/make-certs.sh DIR: a CA (DIR/ca.pem) and a server certificate for 127.0.0.1 signed by it
# (DIR/server.pem, DIR/server.key), valid for two days, for the TLS benchmarks.
set -euo pipefail
dir=${1:?usage: bench/make-certs.sh DIR}
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=remoteable bench CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
  -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
