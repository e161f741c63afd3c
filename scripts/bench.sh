#!/usr/bin/env bash
# Runs every benchmark: bench/bench_*.c binaries (passed as arguments) and
# bench/*.sh scripts. Each prints its own figures as ratios against a
# baseline measured in the same run. Environment: BUILD.
set -uo pipefail
export BUILD=${BUILD:-build}
status=0
for b in "$@" bench/*.sh; do
	[ -e "$b" ] || continue
	echo "== $(basename "$b")"
	case "$b" in
	*.sh) bash "$b" || status=1 ;;
	*) "$b" || status=1 ;;
	esac
done
exit $status
