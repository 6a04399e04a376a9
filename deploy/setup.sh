#!/bin/sh
# One-shot setup of the demo consortium in deploy/compose.yaml (safe to run again):
# consortium CA and certificates, the coordinator directory, one node directory per site
# trusting the coordinator, optional synthetic data; then hands everything to uid 10001.
set -eu
SITES="${FEDPSY_SITES:-amsterdam berlin copenhagen}"
PKI=/pki
COORD=/data/coordinator

[ -f "$PKI/ca.pem" ] || fedpsy pki init "$PKI"
[ -f "$PKI/coordinator.pem" ] || fedpsy pki issue "$PKI" --name coordinator \
    --dns coordinator --dns localhost --ip 127.0.0.1
[ -f "$COORD/coordinator.toml" ] || fedpsy coordinator init "$COORD"
mkdir -p "$COORD/tls"
cp "$PKI/ca.pem" "$PKI/coordinator.pem" "$PKI/coordinator.key" "$COORD/tls/"

if [ "${FEDPSY_DEMO_DATA:-0}" = "1" ] && [ ! -d /tmp/demo ]; then
    fedpsy synth --sites 3 --persons 200 --seed 7 --out /tmp/demo
fi
for site in $SITES; do
    dir="/sites/$site"
    [ -f "$PKI/$site.pem" ] || fedpsy pki issue "$PKI" --name "$site" --dns "$site"
    [ -f "$dir/node.toml" ] || fedpsy node init "$dir" --site "$site"
    mkdir -p "$dir/tls"
    cp "$PKI/ca.pem" "$dir/tls/ca.pem"
    cp "$PKI/$site.pem" "$dir/tls/node.pem"
    cp "$PKI/$site.key" "$dir/tls/node.key"
    fedpsy node trust "$dir" --coordinator-key "$COORD/coordinator.pub"
    if [ "${FEDPSY_DEMO_DATA:-0}" = "1" ] && [ -d "/tmp/demo/$site" ]; then
        fedpsy node ingest "$dir" "/tmp/demo/$site"
    fi
    chmod 0600 "$dir/tls/node.key"
    chown -R 10001:10001 "$dir"
done
chmod 0600 "$COORD/tls/coordinator.key"
chown -R 10001:10001 "$COORD"
echo "setup done: CA in the pki volume, coordinator and ${SITES} ready"
