#!/usr/bin/env bash
# Runs Criterion test binaries and shell tests, and prints one summary.
# Criterion binaries report "Synthesis: Tested: N | Passing: P | Failing: F |
# Crashing: C"; shell tests print "PASS: name" / "FAIL: name" lines.
# Environment: BUILD (binaries under test), SHARED (../shared), SANITIZE.
set -uo pipefail
export BUILD=${BUILD:-build} SHARED=${SHARED:-../shared}
export CF_BUILD_DIR=$BUILD
if [ -n "${SANITIZE:-}" ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
passed=0 failed=0 broken=()
logdir=$BUILD/test-logs
mkdir -p "$logdir"
for t in "$@"; do
	name=$(basename "$t")
	log=$logdir/$name.log
	case "$t" in
	*.sh) bash "$t" >"$log" 2>&1; rc=$?
	      p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log") ;;
	*)    "$t" --jobs 2 >"$log" 2>&1; rc=$?
	      syn=$(grep 'Synthesis:' "$log" | tail -1)
	      p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$syn"); p=${p:-0}
	      f=$(sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p' <<<"$syn")
	      f=$(( ${f% *} + ${f#* } )) 2>/dev/null || f=0 ;;
	esac
	p=${p:-0}; f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$name: ran no test" >>"$log"; fi
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		broken+=("$name")
		printf '%-40s %4d passed %4d FAILED\n' "$name" "$p" "$f"
		tail -n 40 "$log" | sed 's/^/    /'
	else
		printf '%-40s %4d passed\n' "$name" "$p"
	fi
done
echo "logs: $logdir"
[ ${#broken[@]} -gt 0 ] && echo "failing: ${broken[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
