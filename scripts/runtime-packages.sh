#!/usr/bin/env bash
# Prints the Debian packages that provide the shared libraries BINARY loads
# (its whole ldd closure), one per line, without the ones every Debian base
# image already has (libc6, libgcc-s1). The Dockerfiles' runtime stages install
# exactly this list, so the images carry only what the binary needs.
# Usage: scripts/runtime-packages.sh BINARY
set -euo pipefail
bin=${1:?usage: runtime-packages.sh BINARY}
[ -x "$bin" ] || { echo "runtime-packages: $bin is not an executable" >&2; exit 1; }
if ldd "$bin" | grep -q 'not found'; then
	echo "runtime-packages: unresolved libraries:" >&2
	ldd "$bin" | grep 'not found' >&2
	exit 1
fi
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
	# dpkg records the path a package shipped (/lib/... or /usr/lib/...);
	# with merged /usr the loader may report the other one.
	for p in "$lib" "$(readlink -f "$lib")" "${lib/#\/usr\/lib\//\/lib\/}" "${lib/#\/lib\//\/usr\/lib\/}"; do
		if owner=$(dpkg -S "$p" 2>/dev/null); then
			echo "${owner%%:*}"
			break
		fi
	done || true
done | sed 's/,.*//' | sort -u | grep -vxE 'libc6|libgcc-s1' || true
