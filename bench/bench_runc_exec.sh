#!/usr/bin/env bash
# The cost the agent adds to every exec in a runc container: a busybox loop
# of N fork+execs of /bin/true, in a container whose profile notifies execve
# to `codeframe-agent run`, against the same profile with execve allowed and
# no listener. Startup is cancelled by also timing a 0-iteration loop; runs
# are interleaved and the median is reported. Needs root (runc).
set -u
BUILD=${BUILD:-build}
AGENT=$(realpath "$BUILD/codeframe-agent" 2>/dev/null)
N=${BENCH_EXECS:-1000}
ROUNDS=${BENCH_ROUNDS:-5}
if [ "$(id -u)" -ne 0 ] || ! command -v runc >/dev/null || [ ! -x "$AGENT" ]; then
	echo "bench_runc_exec: skipped (needs root, runc and $BUILD/codeframe-agent)"
	exit 0
fi
BUSYBOX=$(command -v busybox || echo /bin/busybox)
TMP=$(mktemp -d /tmp/cf-bench-runc.XXXXXX)
RUNC="runc --root $TMP/state"
AGENT_PID=
cleanup() {
	for c in $($RUNC list -q 2>/dev/null); do $RUNC delete -f "$c" >/dev/null 2>&1; done
	if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/rootfs"/{bin,proc,tmp}
cp "$BUSYBOX" "$TMP/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$TMP/rootfs/bin/$a"; done
printf 'enforcement_level: strict\nallowed_commands: ["true"]\nallowed_shell_operators: [";", "$("]\n' >"$TMP/policy.yml"
SOCK=$TMP/agent.sock
PORT=$((40000 + $$ % 20000))
"$AGENT" profile --listener "$SOCK" >"$TMP/notify.json"
# Baseline: the same allow list, execve/execveat allowed, no listener.
sed -e 's/"SCMP_ACT_NOTIFY"/"SCMP_ACT_ALLOW"/' -e '/"listenerPath"/d' -e '/"listenerMetadata"/d' \
	"$TMP/notify.json" >"$TMP/plain.json"

bundle() { # bundle NAME PROFILE ITERATIONS
	local b=$TMP/$1
	mkdir -p "$b"
	cat >"$b/config.json" <<JSON
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":1000,"gid":1000},
"args":["sh","-c","i=0; while [ \$i -lt $3 ]; do /bin/true; i=\$((i+1)); done"],
"env":["PATH=/bin"],"cwd":"/","noNewPrivileges":true,
"capabilities":{"bounding":[],"effective":[],"permitted":[]}},
"root":{"path":"$TMP/rootfs","readonly":true},
"mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],
"seccomp":$(cat "$2")}}
JSON
}
bundle notify0 "$TMP/notify.json" 0
bundle notifyN "$TMP/notify.json" "$N"
bundle plain0 "$TMP/plain.json" 0
bundle plainN "$TMP/plain.json" "$N"

"$AGENT" run --socket "$SOCK" --policy "$TMP/policy.yml" --state-dir "$TMP/agent-state" \
	--metrics-listen "127.0.0.1:$PORT" --profile-dir "" >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

time_us() { # time_us BUNDLE -> microseconds for one `runc run`
	local t0 t1
	t0=$(date +%s%N)
	(cd "$TMP/$1" && $RUNC run "bench-$$-$1" >"$TMP/$1.out" 2>&1) || { echo "run $1 failed: $(head -c 300 "$TMP/$1.out")" >&2; cat "$TMP/agent.log" >&2; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$TMP/with"
: >"$TMP/without"
for _ in $(seq "$ROUNDS"); do
	# interleaved, so drift in machine load hits both sides alike
	w0=$(time_us notify0); p0=$(time_us plain0)
	wN=$(time_us notifyN); pN=$(time_us plainN)
	echo $(((wN - w0) * 1000 / N)) >>"$TMP/with"    # nanoseconds per exec
	echo $(((pN - p0) * 1000 / N)) >>"$TMP/without"
done
with=$(median <"$TMP/with")
without=$(median <"$TMP/without")
added=$((with - without))
awk -v w="$with" -v p="$without" -v a="$added" -v n="$N" -v r="$ROUNDS" 'BEGIN {
	printf "runc exec loop: %d execs x %d rounds (median)\n", n, r
	printf "  without listener: %.1f us/exec\n", p / 1000
	printf "  with agent:       %.1f us/exec\n", w / 1000
	printf "  added per exec:   %.1f us (ratio %.2fx)\n", a / 1000, (p > 0 ? w / p : 0)
}'
# The agent's own share: receive -> answer, from its latency histogram.
if exec 3<>"/dev/tcp/127.0.0.1/$PORT"; then
	printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
	timeout 5 cat <&3 >"$TMP/metrics"
	exec 3<&-
	awk '/^codeframe_agent_decision_latency_seconds_sum/ {s=$2}
	     /^codeframe_agent_decision_latency_seconds_count/ {c=$2}
	     END { if (c > 0) printf "  agent receive->answer: %.1f us mean over %d execs\n", s * 1e6 / c, c }' \
		"$TMP/metrics"
fi
grep -aq '"decision":"deny"' "$TMP/agent.log" && echo "warning: the agent denied an exec during the benchmark"
exit 0
