#!/usr/bin/env bash
# Builds the end-to-end control plane from Go source (tests/e2e/go.mod):
# kube-apiserver, kube-controller-manager, kubectl (all k8s.io/kubernetes at
# K8S_VERSION) and e2e-etcd (embedded etcd, tests/e2e/etcd). Binaries land in
# $E2E_BUILD/bin (default build/e2e/bin, git-ignored). A stamp file records the
# inputs (version, go.mod, go.sum, etcd source, Go version); when it matches,
# nothing is rebuilt, so only the first run on a machine pays the cold build.
#
# The build runs under `nice` with one package at a time (-p 1) because the
# machine is shared; set E2E_GO_P to change that.
#
# Usage: scripts/e2e-build.sh [--force]
# Env:   E2E_BUILD (build/e2e), E2E_GO_P (1), E2E_NICE (10), E2E_TIMEV=1 to wrap
#        the build in /usr/bin/time -v (the report goes to $E2E_BUILD/build-time.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

K8S_VERSION=v1.34.4
E2E_BUILD=${E2E_BUILD:-$ROOT/build/e2e}
BIN=$E2E_BUILD/bin
GO_P=${E2E_GO_P:-1}
NICE=${E2E_NICE:-10}
FORCE=0
case "${1:-}" in
--force) FORCE=1 ;;
"") ;;
*)
	echo "usage: $0 [--force]" >&2
	exit 2
	;;
esac

# The toolchain this workplace installs lives outside Debian's PATH.
command -v go >/dev/null || { [ -x /usr/local/go/bin/go ] && PATH=$PATH:/usr/local/go/bin; }
command -v go >/dev/null || {
	echo "e2e-build: 'go' not found in PATH (need Go >= 1.24, e.g. /usr/local/go/bin)" >&2
	exit 2
}
# k8s.io/kubernetes v1.34 needs Go 1.24 (Debian 12's golang is 1.19).
gov=$(go env GOVERSION)
gov=${gov#go}
if [ "${gov%%.*}" -lt 1 ] || { [ "${gov%%.*}" = 1 ] && [ "$(echo "$gov" | cut -d. -f2)" -lt 24 ]; }; then
	echo "e2e-build: Go $gov is too old (need >= 1.24)" >&2
	exit 2
fi

mkdir -p "$BIN"
stamp_now() {
	{
		echo "$K8S_VERSION"
		go version
		cat tests/e2e/go.mod tests/e2e/go.sum tests/e2e/etcd/*.go
	} | sha256sum | cut -d' ' -f1
}
STAMP=$(stamp_now)
if [ "$FORCE" = 0 ] && [ -f "$BIN/.stamp" ] && [ "$(cat "$BIN/.stamp")" = "$STAMP" ] &&
	[ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] &&
	[ -x "$BIN/kubectl" ] && [ -x "$BIN/e2e-etcd" ]; then
	echo "e2e-build: up to date ($BIN)"
	exit 0
fi
rm -f "$BIN/.stamp"

# Same variables hack/lib/version.sh sets for a release build; Helm's
# kubeVersion check and `kubectl version` read gitVersion/gitMajor/gitMinor.
major=${K8S_VERSION#v}
major=${major%%.*}
minor=${K8S_VERSION#v*.}
minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldx=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldx+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
	ldx+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
LDFLAGS="-s -w$ldx"

timev=()
if [ "${E2E_TIMEV:-0}" = 1 ] && [ -x /usr/bin/time ]; then
	timev=(/usr/bin/time -v -o "$E2E_BUILD/build-time.txt")
fi

echo "e2e-build: building $K8S_VERSION control plane into $BIN (nice $NICE, -p $GO_P); a cold build takes a long time"
start=$(date +%s)
(
	cd tests/e2e
	# One `go build` for all four so shared packages compile once.
	nice -n "$NICE" "${timev[@]}" go build -p "$GO_P" -trimpath -ldflags "$LDFLAGS" -o "$BIN/" \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kubectl \
		./etcd
)
mv "$BIN/etcd" "$BIN/e2e-etcd"
end=$(date +%s)
echo "$STAMP" >"$BIN/.stamp"
echo "e2e-build: done in $((end - start))s"
"$BIN/kube-apiserver" --version
