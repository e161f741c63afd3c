#!/usr/bin/env bash
# Pod Security Admission conformance: every upstream fixture through
# `codeframe-webhook check --profile LEVEL`; pass files must exit 0, fail
# files exit 1. Prints each disagreement and "N/M agree".
set -uo pipefail
bin=${1:?usage: conformance.sh WEBHOOK_BINARY CORPUS_DIR}
corpus=${2:?usage: conformance.sh WEBHOOK_BINARY CORPUS_DIR}
[ -d "$corpus" ] || { echo "conformance: no corpus at $corpus" >&2; exit 2; }
agree=0 total=0
for level in baseline restricted; do
	for want in pass fail; do
		for f in "$corpus/$level/$want"/*.yaml; do
			[ -e "$f" ] || continue
			total=$((total + 1))
			out=$("$bin" check --profile "$level" "$f" 2>&1); rc=$?
			expected=0; [ "$want" = fail ] && expected=1
			if [ "$rc" -eq "$expected" ]; then
				agree=$((agree + 1))
			else
				echo "DISAGREE $level/$want/$(basename "$f"): exit $rc, want $expected"
				echo "$out" | head -5 | sed 's/^/    /'
			fi
		done
	done
done
echo "conformance: $agree/$total agree"
[ "$total" -gt 0 ] && [ "$agree" -eq "$total" ]
