#!/usr/bin/env bash
# The whole deploy on a real cluster, for those who have one: a kind cluster this script makes
# (default), or the cluster of the current kubeconfig context (E2E_CLUSTER=current, e.g. k3s).
#
#   scripts/e2e-cluster.sh BUNDLE RELEASE_PUB SITE_YAML
#
# BUNDLE is a full bundle (`bundle build`, online), RELEASE_PUB its public key, SITE_YAML a
# site file whose domain resolves to the cluster's Gateway from this machine (or set
# E2E_NO_SMOKE=1). Steps: a TLS registry on this machine (docker-registry, the site CA's
# certificate), `installer load`, `installer node-config` copied into every kind node,
# `installer deploy`, `installer status`, a rerun that must change nothing, `installer
# rollback`. Needs: docker, kind (unless E2E_CLUSTER=current), docker-registry, openssl, age, the
# built `installer` (target/release or PATH).
#
# It has not run where this project is developed and tested (no container runtime that can
# host a cluster there); the tests stop at the Kubernetes API (docs/install.md).
set -euo pipefail

bundle=${1:?usage: $0 BUNDLE RELEASE_PUB SITE_YAML}
key=${2:?usage: $0 BUNDLE RELEASE_PUB SITE_YAML}
site=${3:?usage: $0 BUNDLE RELEASE_PUB SITE_YAML}
installer=${INSTALLER:-$(command -v installer || echo target/release/installer)}
cluster=${E2E_CLUSTER:-kind}
work=$(mktemp -d)
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  [ "$cluster" = kind ] && [ -z "${E2E_KEEP:-}" ] && kind delete cluster --name messenger-e2e || true
  rm -rf "$work"
}
trap cleanup EXIT

host_ip=$(hostname -I | awk '{print $1}')
registry="$host_ip:5443"

echo "== site CA and a TLS registry at $registry"
age-keygen -o "$work/identity.txt" 2>/dev/null
"$installer" ca init --out "$work/ca" --recipient "$(age-keygen -y "$work/identity.txt")"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host_ip" \
  -keyout "$work/registry.key" -out "$work/registry.csr" 2>/dev/null
# Sign the registry's certificate with the site CA (its key decrypted for this test only).
age --decrypt -i "$work/identity.txt" -o "$work/ca.key" "$work/ca/ca.key.age"
openssl x509 -req -in "$work/registry.csr" -CA "$work/ca/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 7 -out "$work/registry.crt" \
  -extfile <(printf 'subjectAltName=IP:%s\n' "$host_ip") 2>/dev/null
rm -f "$work/ca.key"
cat > "$work/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $work/registry}}
http:
  addr: 0.0.0.0:5443
  tls: {certificate: $work/registry.crt, key: $work/registry.key}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!

if [ "$cluster" = kind ]; then
  echo "== kind cluster"
  kind create cluster --name messenger-e2e --wait 120s
fi

echo "== load"
"$installer" load "$bundle" --key "$key" --registry "$registry" --prefix mirror/matrix \
  --ca-file "$work/ca/ca.crt"

echo "== node-config"
"$installer" node-config "$bundle" --key "$key" --registry "$registry" --prefix mirror/matrix \
  --ca-file "$work/ca/ca.crt" --out "$work/node"
if [ "$cluster" = kind ]; then
  for node in $(kind get nodes --name messenger-e2e); do
    docker exec "$node" mkdir -p /etc/containerd/certs.d /etc/containerd/conf.d
    docker cp "$work/node/certs.d/." "$node:/etc/containerd/certs.d/"
    docker cp "$work/node/conf.d/messenger.toml" "$node:/etc/containerd/conf.d/"
    docker exec "$node" sh -c 'grep -q conf.d /etc/containerd/config.toml ||
      sed -i "1i imports = [\"/etc/containerd/conf.d/*.toml\"]" /etc/containerd/config.toml'
    docker exec "$node" systemctl restart containerd
  done
else
  echo "copy $work/node/ to every node as docs/install.md section 4 says, then press enter"
  read -r _
fi

echo "== deploy"
smoke=()
[ -n "${E2E_NO_SMOKE:-}" ] && smoke=(--no-smoke)
deploy=("$installer" deploy "$bundle" --key "$key" --config "$site" --registry "$registry"
  --prefix mirror/matrix --registry-ca-file "$work/ca/ca.crt" --ca-dir "$work/ca"
  --identity "$work/identity.txt" --journal "$work/journal.json" "${smoke[@]}")
"${deploy[@]}"
"$installer" status

echo "== a rerun changes nothing"
"${deploy[@]}" --json > "$work/rerun.json"
grep -q '"ok": true' "$work/rerun.json"

echo "== rollback"
"$installer" rollback --journal "$work/journal.json"
echo "e2e: every step passed"
