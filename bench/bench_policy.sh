#!/usr/bin/env bash
# Instructions per policy evaluation under callgrind, against instructions
# per cJSON parse+print of the same pod, measured in the same run. Each side
# runs twice (N1 and N2 iterations) and the difference divided by N2-N1 is
# the per-operation count, so start-up and set-up cancel out.
# Environment: BUILD (default build). Skips (exit 0) without valgrind.
set -uo pipefail
BIN=${BUILD:-build}/bench/bench_policy
[ -x "$BIN" ] || { echo "bench_policy.sh: $BIN not built"; exit 1; }
if ! command -v valgrind >/dev/null; then
	echo "bench_policy.sh: valgrind not installed, instruction counts skipped"
	exit 0
fi
N1=200 N2=1200
T=$(mktemp -d /tmp/bench_policy.XXXXXX)
trap 'rm -rf "$T"' EXIT

# instructions MODE N: total instructions ("Collected") of one run.
instructions() {
	valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
		"$BIN" --only "$1" --iterations "$2" 2>"$T/log" >/dev/null ||
		{ cat "$T/log" >&2; return 1; }
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$T/log" | tail -1
}

per_op() {
	local a b
	a=$(instructions "$1" $N1) && b=$(instructions "$1" $N2) || return 1
	[ -n "$a" ] && [ -n "$b" ] || return 1
	echo $(((b - a) / (N2 - N1)))
}

eval_ir=$(per_op eval) || { echo "bench_policy.sh: callgrind run failed"; exit 1; }
base_ir=$(per_op baseline) || { echo "bench_policy.sh: callgrind run failed"; exit 1; }
rev_ir=$(per_op review) || { echo "bench_policy.sh: callgrind run failed"; exit 1; }
arena_ir=$(per_op review-arena) || { echo "bench_policy.sh: callgrind run failed"; exit 1; }
echo "callgrind: evaluate (profile worker):       $eval_ir instructions/op"
echo "callgrind: baseline cJSON parse+print+free: $base_ir instructions/op"
awk -v e="$eval_ir" -v b="$base_ir" 'BEGIN { if (b > 0) printf "callgrind: ratio evaluate/baseline:         %.2f\n", e / b }'
echo "callgrind: /validate admission work, malloc: $rev_ir instructions/op"
echo "callgrind: same with the cJSON arena:        $arena_ir instructions/op (what serve runs)"
