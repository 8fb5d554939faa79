#!/usr/bin/env bash
# Makes a throwaway CA and certificates for TLS on a local cluster or in tests:
#   tools/make-test-ca.sh DIR [NAME…]
# writes DIR/ca.pem (and ca.key) and, for each NAME (default: server client),
# NAME.pem and NAME.key: P-256 keys, valid 30 days, for 127.0.0.1, ::1 and localhost, usable
# as server and as client certificate (each component is both). Not for production.
set -euo pipefail
dir=${1:?usage: make-test-ca.sh DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(server client)
mkdir -p "$dir"
chmod 700 "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -days 30 -subj "/CN=Dragonfly test CA" 2>/dev/null
for name in "${names[@]}"; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$name.key" -out "$dir/$name.csr" \
        -subj "/CN=$name" 2>/dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" "extendedKeyUsage=serverAuth,clientAuth" \
        "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" > "$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -out "$dir/$name.pem" -days 30 -extfile "$dir/$name.ext" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
done
chmod 600 "$dir"/*.key
echo "make-test-ca: CA and ${names[*]} in $dir"
