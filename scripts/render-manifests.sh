#!/usr/bin/env bash
# Renders charts/codeframe-guard with default values into flat manifests for
# `kubectl apply -f manifests/` (release "codeframe-guard" in namespace
# "codeframe-guard"). One file per chart template, numbered in Helm's install
# order (Namespaces first, the webhook configuration last), plus the release
# namespace, which `helm install --create-namespace` would otherwise make.
# Helm-only labels (helm.sh/chart, app.kubernetes.io/managed-by) are dropped;
# default values hold no private keys (self-managed TLS makes them in-cluster).
# Usage: scripts/render-manifests.sh [OUTDIR]   (default: manifests)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-manifests}
helm=$(scripts/helm.sh)
# Pinned, so the output does not depend on the Helm build's default version
# (it selects the AppArmor field form, GA in 1.30).
KUBE_VERSION=1.30.0
NAMESPACE=codeframe-guard
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$helm" template codeframe-guard charts/codeframe-guard --namespace "$NAMESPACE" \
	--kube-version "$KUBE_VERSION" >"$tmp/all.yaml"
mkdir -p "$tmp/out"
python3 - "$tmp/all.yaml" "$tmp/out" "$NAMESPACE" <<'PY'
import os, re, sys
src, outdir, ns = sys.argv[1], sys.argv[2], sys.argv[3]
header = ("# Rendered from charts/codeframe-guard by scripts/render-manifests.sh\n"
          "# (`make manifests`); do not edit: change the chart and re-render.\n")
helm_only = re.compile(r"^\s*(helm\.sh/chart|app\.kubernetes\.io/managed-by):")
files, order = {}, []
for doc in re.split(r"(?m)^---\s*$", open(src).read()):
    m = re.search(r"(?m)^# Source: [^/]+/templates/(.+)$", doc)
    body = "\n".join(l for l in doc.strip("\n").splitlines()
                     if not l.startswith("# Source:") and not helm_only.match(l))
    if not m or not re.search(r"(?m)^kind:", body):
        continue
    name = os.path.basename(m.group(1))
    if name not in files:
        files[name] = []
        order.append(name)
    files[name].append(body.strip("\n") + "\n")
if any("PRIVATE KEY" in d for docs in files.values() for d in docs):
    sys.exit("render-manifests: a private key in the rendered chart")
with open(os.path.join(outdir, "00-namespace.yaml"), "w") as f:
    f.write(header + "---\n"
            "apiVersion: v1\nkind: Namespace\nmetadata:\n"
            f"  name: {ns}\n  labels:\n"
            "    app.kubernetes.io/part-of: codeframe-guard\n"
            "    pod-security.kubernetes.io/enforce: restricted\n")
for i, name in enumerate(order, start=1):
    with open(os.path.join(outdir, f"{i:02d}-{name}"), "w") as f:
        f.write(header + "".join("---\n" + d for d in files[name]))
PY
mkdir -p "$out"
rm -f "$out"/*.yaml
cp "$tmp"/out/*.yaml "$out"/
echo "render-manifests: $(ls "$out"/*.yaml | wc -l) files in $out/" >&2
