#!/usr/bin/env bash
# Integration tests: `codeframe-agent run` with the real OCI runtimes
# (Debian's runc 1.1, crun when it works) and a busybox-static rootfs built
# here. Containers run with the agent's own worker profile (listenerPath =
# this test's socket). Needs root; prints PASS:/FAIL: lines.
set -u
BUILD=${CF_BUILD_DIR:-${BUILD:-build}}
AGENT=$(realpath "$BUILD/codeframe-agent" 2>/dev/null)
SRC=$(cd "$(dirname "$0")/.." && pwd)
pass() { echo "PASS: $1"; }
FAILS=0
fail() {
	echo "FAIL: $1${2:+ -- $2}"
	FAILS=$((FAILS + 1))
}
check() { # check NAME CONDITION-RESULT(0/1) [detail]
	if [ "$2" -eq 0 ]; then pass "$1"; else fail "$1" "${3:-}"; fi
}

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: test_agent_runc.sh needs root (runc containers); not run"
	exit 0
fi
if [ ! -x "$AGENT" ]; then
	fail runc_prerequisites "no agent binary at $BUILD/codeframe-agent"
	exit 1
fi
BUSYBOX=$(command -v busybox || echo /bin/busybox)
if ! command -v runc >/dev/null || [ ! -x "$BUSYBOX" ]; then
	fail runc_prerequisites "runc and busybox-static are required (scripts/deps.sh)"
	exit 1
fi

TMP=$(mktemp -d /tmp/cf-agent-runc.XXXXXX)
ID=cf$$
RUNC="runc --root $TMP/runc-state"
CRUN="crun --root $TMP/crun-state"
SOCK=$TMP/agent.sock
PORT=$((20000 + $$ % 20000))
AGENT_PID=
BG_PIDS=()

cleanup() {
	for c in $($RUNC list -q 2>/dev/null); do $RUNC delete -f "$c" >/dev/null 2>&1; done
	if command -v crun >/dev/null; then
		for c in $($CRUN list -q 2>/dev/null); do $CRUN delete -f "$c" >/dev/null 2>&1; done
	fi
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; fi
	if [ -n "${CF_KEEP_TMP:-}" ]; then echo "NOTE: logs kept in $TMP (CF_KEEP_TMP)"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# ---- rootfs: busybox-static plus applet symlinks, and the uffd helper ----
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS"/{bin,proc,dev,sys,tmp,etc}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in $("$BUSYBOX" --list); do
	[ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"
done
HAVE_UFFD=0
if ${CC:-cc} -static -O2 -pthread -o "$ROOTFS/bin/uffd_exec" "$SRC/tests/runc/uffd_exec.c" \
	2>"$TMP/cc.log"; then
	HAVE_UFFD=1
fi

cat >"$TMP/strict.yml" <<'YML'
enforcement_level: strict
allowed_commands: [cat, echo, "true", sleep, ls, unshare]
blocked_patterns: ["rm -rf"]
allowed_shell_operators: ["&&", ";", "|", ">"]
YML
cat >"$TMP/warn.yml" <<'YML'
enforcement_level: warn
allowed_commands: [cat, echo, "true", sleep, ls, unshare]
blocked_patterns: ["rm -rf"]
allowed_shell_operators: ["&&", ";", "|", ">"]
YML
mkdir -p "$TMP/policy"
cp "$TMP/strict.yml" "$TMP/policy/policy.yml"
cat >"$TMP/agent.yaml" <<YML
stateDir: $TMP/state
profileDir: $TMP/seccomp
metricsListen: "127.0.0.1:$PORT"
YML

"$AGENT" profile --listener "$SOCK" >"$TMP/profile.json"

# mkbundle NAME ARGS_JSON [UID] [CAPS_JSON] [EXTRA_SYSCALLS_JSON] [ANNOTATIONS_JSON]
mkbundle() {
	local b=$TMP/bundles/$1 args=$2 uid=${3:-1000} caps=${4:-[]} extra=${5:-} ann=${6:-'{}'}
	local prof
	mkdir -p "$b"
	prof=$(cat "$TMP/profile.json")
	if [ -n "$extra" ]; then
		prof=$(sed "s/\"syscalls\":[[:space:]]*\[/&{\"names\":$extra,\"action\":\"SCMP_ACT_ALLOW\"},/" \
			"$TMP/profile.json")
	fi
	cat >"$b/config.json" <<JSON
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":$uid,"gid":$uid},"args":$args,
"env":["PATH=/bin","CODEFRAME_PROJECT_ID=proj-env","CODEFRAME_USER_ID=user-env"],"cwd":"/",
"noNewPrivileges":true,"capabilities":{"bounding":$caps,"effective":$caps,"permitted":$caps}},
"root":{"path":"$ROOTFS","readonly":true},"hostname":"worker",
"mounts":[{"destination":"/proc","type":"proc","source":"proc"},
{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid","nodev","mode=1777"]}],
"annotations":$ann,
"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}],
"maskedPaths":["/proc/kcore","/proc/keys"],"readonlyPaths":["/proc/sys","/proc/sysrq-trigger"],
"seccomp":$prof}}
JSON
	echo "$b"
}

K8S_ANN='{"io.kubernetes.cri.sandbox-namespace":"team-a","io.kubernetes.cri.sandbox-name":"worker-1","io.kubernetes.cri.container-name":"runner","io.kubernetes.cri.sandbox-uid":"uid-1","io.kubernetes.cri.container-type":"container"}'

# run_ctr NAME BUNDLE -> output in $TMP/NAME.out, status in $TMP/NAME.rc
run_ctr() {
	(cd "$2" && timeout 30 $RUNC run "$ID-$1" >"$TMP/$1.out" 2>&1; echo $? >"$TMP/$1.rc")
}

wait_for() { # wait_for SECONDS COMMAND...
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

events() { grep -a '"decision"' "$TMP/agent.log"; }
# Events are written by the agent's writer thread, after the answer: wait
# (bounded) for a line containing every given string.
event_line() {
	local line
	line=$(events)
	for needle in "$@"; do line=$(grep -F -- "$needle" <<<"$line"); done
	[ -n "$line" ] && head -1 <<<"$line"
}
wait_event() { wait_for 10 event_line "$@" >/dev/null; }
log_has() { grep -aq -- "$1" "$TMP/agent.log"; }

http_get() { # http_get PATH -> response on stdout
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	printf 'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' "$1" >&3
	timeout 5 cat <&3
	exec 3<&-
}

# ---- start the agent ----
"$AGENT" run --config "$TMP/agent.yaml" --socket "$SOCK" --policy "$TMP/policy/policy.yml" \
	--node-name test-node >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
if ! wait_for 10 test -S "$SOCK"; then
	fail agent_starts "socket $SOCK not created"
	cat "$TMP/agent.log"
	exit 1
fi
pass agent_starts
sock_mode=$(stat -c %a "$SOCK")
check socket_mode_0600 "$([ "$sock_mode" = 600 ]; echo $?)" "mode $sock_mode"
cmp -s "$TMP/profile.json" "$TMP/seccomp/codeframe/worker.json"
check run_installs_profile $? "worker.json differs from 'profile' output"

# ---- least privilege: holder and policy side keep only CAP_SYS_PTRACE ----
caps_ok() { # caps_ok PID
	local st
	st=$(cat "/proc/$1/status" 2>/dev/null) || return 1
	echo "$st" | grep -q '^CapEff:[[:space:]]*0000000000080000$' &&
		echo "$st" | grep -q '^CapBnd:[[:space:]]*0000000000080000$' &&
		echo "$st" | grep -q '^NoNewPrivs:[[:space:]]*1$'
}
PS=$(pgrep -P "$AGENT_PID" -f __policy-side | head -1)
caps_ok "$AGENT_PID" && [ -n "$PS" ] && caps_ok "$PS"
check agent_keeps_only_cap_sys_ptrace $? "$(grep -E '^(CapEff|CapBnd|NoNewPrivs)' "/proc/$AGENT_PID/status" | tr '\n' ' ')"

# ---- strict: allowed commands run ----
b=$(mkbundle allowed '["sh","-c","/bin/true && /bin/echo ALLOWED_OK; /bin/cat /proc/self/comm"]' 1000 '[]' '' "$K8S_ANN")
run_ctr allowed "$b"
grep -q ALLOWED_OK "$TMP/allowed.out" && [ "$(cat "$TMP/allowed.rc")" = 0 ]
check strict_allowed_commands_run $? "$(cat "$TMP/allowed.out")"
wait_event '"container":"runner"' '"command":"/bin/echo ALLOWED_OK"' '"decision":"allow"'
check allowed_exec_logged_with_identity $?

# ---- strict: a blocked command fails inside the container ----
b=$(mkbundle blocked '["sh","-c","/bin/wget -q http://127.0.0.1:1/; echo rc=$?; /bin/echo AFTER"]' 1000 '[]' '' "$K8S_ANN")
run_ctr blocked "$b"
grep -q "Operation not permitted" "$TMP/blocked.out" && grep -q AFTER "$TMP/blocked.out"
check strict_blocked_command_eperm $? "$(cat "$TMP/blocked.out")"
wait_event '"command":"/bin/wget -q http://127.0.0.1:1/"' '"container":"runner"'
ev=$(event_line '"command":"/bin/wget -q http://127.0.0.1:1/"' '"container":"runner"')
echo "$ev" | grep '"decision":"deny"' | grep '"namespace":"team-a"' | grep '"pod":"worker-1"' |
	grep '"container":"runner"' | grep -q '"rule":"allowed_commands"'
check blocked_event_names_container $? "$ev"
echo "$ev" | grep '"project_id":"proj-env"' | grep -q '"user_id":"user-env"'
check project_and_user_from_environment $? "$ev"
echo "$ev" | grep -q '"latency_us":[0-9]'
check event_has_latency $? "$ev"

# blocked_patterns apply to the command line of an allowed command
b=$(mkbundle pattern '["sh","-c","X=\"rm -r\"\"f /tmp/y\"; /bin/echo $X; echo rc=$?"]')
run_ctr pattern "$b"
grep -q "Operation not permitted" "$TMP/pattern.out"
check strict_blocked_pattern_eperm $? "$(cat "$TMP/pattern.out")"
wait_event '"command":"/bin/echo rm -rf /tmp/y"' '"rule":"blocked_patterns"'
check blocked_pattern_event $?

# the profile itself: unshare (a CAP_SYS_ADMIN-only call in the runtime
# default) is refused even for user namespaces; threads still start
# (clone3 -> ENOSYS -> glibc falls back to clone).
b=$(mkbundle profile '["sh","-c","/bin/unshare -U /bin/true; echo unshare_rc=$?"]')
run_ctr profile "$b"
grep -q "unshare_rc=[1-9]" "$TMP/profile.out" && ! grep -q "unshare_rc=0" "$TMP/profile.out"
check profile_denies_unshare $? "$(cat "$TMP/profile.out")"

# project/user ids from pod annotations win over the environment
ANN_P='{"io.kubernetes.pod.namespace":"team-b","io.kubernetes.pod.name":"w-2","io.kubernetes.container.name":"job","codeframe.io/project-id":"proj-ann","codeframe.io/user-id":"user-ann"}'
b=$(mkbundle annotated '["sh","-c","/bin/wget -q http://127.0.0.1:1/"]' 1000 '[]' '' "$ANN_P")
run_ctr annotated "$b"
wait_event '"container":"job"' '"namespace":"team-b"' '"project_id":"proj-ann"'
check crio_annotations_and_project_annotation $?

# ---- runc exec into a running container is checked too ----
b=$(mkbundle longrun '["/bin/sleep","30"]' 1000 '[]' '' "$K8S_ANN")
(cd "$b" && $RUNC run -d "$ID-longrun" >"$TMP/longrun.out" 2>&1 </dev/null)
if wait_for 10 sh -c "$RUNC state $ID-longrun 2>/dev/null | grep -q running"; then
	# runc reports the denied exec of the session's command itself
	# ("exec /bin/wget: operation not permitted").
	out=$($RUNC exec "$ID-longrun" /bin/wget -q http://127.0.0.1:1/ 2>&1)
	echo "$out" | grep -qi "operation not permitted"
	check runc_exec_blocked $? "$out"
	out=$($RUNC exec "$ID-longrun" /bin/echo EXEC_OK 2>&1)
	[ "$out" = EXEC_OK ]
	check runc_exec_allowed $? "$out"
	log_has '"msg":"exec session registered"'
	check runc_exec_session_identified $?
	out=$($RUNC exec "$ID-longrun" /bin/sh -c '/bin/wget -q http://127.0.0.1:1/' 2>&1)
	echo "$out" | grep -qi "operation not permitted"
	check runc_exec_first_command_not_trusted $? "$out"
	$RUNC delete -f "$ID-longrun" >/dev/null 2>&1
else
	fail runc_exec_blocked "container did not start: $(cat "$TMP/longrun.out")"
fi

# ---- one slow decision does not block another container ----
# Container A's exec has its argv in a userfaultfd page that A serves only
# after a delay, so the agent's read of it blocks; B must run meanwhile.
if [ "$HAVE_UFFD" = 1 ]; then
	ba=$(mkbundle slow '["/bin/uffd_exec","15","/bin/wget","wget","-q","http://127.0.0.1:1/"]' 0 '["CAP_SYS_PTRACE"]' '["userfaultfd"]')
	run_ctr slow "$ba" &
	BG_PIDS+=($!)
	if wait_for 10 grep -qs FAULT "$TMP/slow.out"; then
		bb=$(mkbundle fast '["sh","-c","/bin/echo FAST_DONE"]')
		run_ctr fast "$bb"
		state_a=$($RUNC state "$ID-slow" 2>/dev/null | grep -o '"status": "[a-z]*"')
		grep -q FAST_DONE "$TMP/fast.out" && ! grep -q SERVED "$TMP/slow.out" &&
			[ "$state_a" = '"status": "running"' ]
		check slow_decision_does_not_block_other_container $? \
			"fast: $(cat "$TMP/fast.out"); slow: $(cat "$TMP/slow.out") $state_a"
		wait_for 40 test -s "$TMP/slow.rc"
		grep -q "EXEC_FAILED Operation not permitted" "$TMP/slow.out"
		check held_decision_completes_after_release $? "$(cat "$TMP/slow.out")"
	else
		fail slow_decision_does_not_block_other_container "helper never faulted: $(cat "$TMP/slow.out")"
	fi

	# ---- a container killed mid-decision ----
	bk=$(mkbundle killed '["/bin/uffd_exec","60","/bin/wget","wget","-q","http://127.0.0.1:1/"]' 0 '["CAP_SYS_PTRACE"]' '["userfaultfd"]')
	run_ctr killed "$bk" &
	BG_PIDS+=($!)
	if wait_for 10 grep -qs FAULT "$TMP/killed.out"; then
		$RUNC kill "$ID-killed" KILL
		wait_for 10 test -s "$TMP/killed.rc"
		check killed_mid_decision_container_exits $? "$(cat "$TMP/killed.out")"
		wait_for 10 grep -aq "\"msg\":\"container released\".*\"container_id\":\"$ID-killed\"" "$TMP/agent.log"
		check killed_container_released $?
		bc=$(mkbundle afterkill '["sh","-c","/bin/echo STILL_OK"]')
		run_ctr afterkill "$bc"
		grep -q STILL_OK "$TMP/afterkill.out" && kill -0 "$AGENT_PID"
		check agent_serves_after_kill $? "$(cat "$TMP/afterkill.out")"
	else
		fail killed_mid_decision_container_exits "helper never faulted: $(cat "$TMP/killed.out")"
	fi
else
	fail uffd_helper_builds "$(cat "$TMP/cc.log")"
fi

# ---- policy reload: file change to warn ----
cp "$TMP/warn.yml" "$TMP/policy/policy.yml.tmp" && mv "$TMP/policy/policy.yml.tmp" "$TMP/policy/policy.yml"
wait_for 10 log_has 'policy reloaded (file change): level warn'
check reload_on_file_change $?
b=$(mkbundle warn '["sh","-c","/bin/wget -q http://127.0.0.1:1/; echo rc=$?"]')
run_ctr warn "$b"
! grep -q "Operation not permitted" "$TMP/warn.out" && grep -q "rc=" "$TMP/warn.out"
check warn_mode_lets_exec_run $? "$(cat "$TMP/warn.out")"
wait_event "\"container\":\"$ID-warn\"" '"command":"/bin/wget' '"level":"warning"' '"decision":"allow"'
check warn_mode_logs_warning $?

# an invalid policy keeps the previous one
printf 'enforcement_level: strict\nallowed_comands: [x]\n' >"$TMP/policy/policy.yml"
wait_for 10 log_has 'keeping the previous policy'
check invalid_policy_rejected $?
run_ctr warn2 "$b"
! grep -q "Operation not permitted" "$TMP/warn2.out"
check invalid_policy_keeps_old $? "$(cat "$TMP/warn2.out")"

# SIGHUP reloads (back to strict)
cp "$TMP/strict.yml" "$TMP/policy/policy.yml"
kill -HUP "$AGENT_PID"
wait_for 10 log_has 'policy reloaded (SIGHUP): level strict'
check reload_on_sighup $?
run_ctr strict2 "$b"
grep -q "Operation not permitted" "$TMP/strict2.out"
check strict_again_after_sighup $? "$(cat "$TMP/strict2.out")"

# disabled: every exec continues and nothing is read or logged
printf 'enforcement_level: disabled\n' >"$TMP/policy/policy.yml"
wait_for 10 log_has 'level disabled'
check reload_to_disabled $?
run_ctr disabled "$b"
sleep 0.5 # events are written asynchronously; give a wrongly logged one time to appear
! grep -q "Operation not permitted" "$TMP/disabled.out" && grep -q "rc=" "$TMP/disabled.out" &&
	! events | grep -q "\"container\":\"$ID-disabled\""
check disabled_mode_reads_nothing $? "$(cat "$TMP/disabled.out")"
cp "$TMP/strict.yml" "$TMP/policy/policy.yml"
kill -HUP "$AGENT_PID"
wait_for 10 sh -c "grep -a 'policy reloaded' '$TMP/agent.log' | tail -1 | grep -q 'level strict'"

# ---- metrics ----
m=$(http_get /metrics)
echo "$m" | grep -q '^codeframe_agent_notifications_total{decision="deny"} [1-9]' &&
	echo "$m" | grep -q '^codeframe_agent_notifications_total{decision="allow"} [1-9]' &&
	echo "$m" | grep -q '^codeframe_agent_decision_latency_seconds_bucket{le="+Inf"} [1-9]' &&
	echo "$m" | grep -q '^codeframe_agent_notify_fds ' &&
	echo "$m" | grep -q '^codeframe_agent_events_dropped_total 0' &&
	echo "$m" | grep -q '^codeframe_agent_handoffs_total{result="accepted"} [1-9]'
check metrics_exported $? "$(echo "$m" | grep -v '^#' | head -20)"
echo "$m" | grep -q '^codeframe_agent_policy_reloads_total{result="error"} [1-9]'
check metrics_count_reload_errors $?
http_get /nope | head -1 | grep -q 404
check metrics_unknown_path_404 $?

# ---- crun, when it runs here ----
if command -v crun >/dev/null; then
	b=$(mkbundle crun '["sh","-c","/bin/echo CRUN_OK; /bin/wget -q http://127.0.0.1:1/"]')
	(cd "$b" && timeout 30 $CRUN --cgroup-manager=disabled run "$ID-crun" >"$TMP/crun.out" 2>&1)
	if grep -q CRUN_OK "$TMP/crun.out"; then
		grep -q "Operation not permitted" "$TMP/crun.out"
		check crun_blocked_command_eperm $? "$(cat "$TMP/crun.out")"
		wait_event "\"container\":\"$ID-crun\"" '"command":"/bin/wget' '"decision":"deny"'
		check crun_event_logged $?
	else
		echo "NOTE: crun did not run the container here: $(head -3 "$TMP/crun.out")"
	fi
fi

# ---- resilience: the policy side crashes, then the whole agent is replaced,
# while a container execs in a loop. No exec may fail with ENOSYS or hang;
# allowed execs keep running and denied ones keep failing with EPERM.
mkdir -p "$TMP/ctl"
chmod 0777 "$TMP/ctl"
cat >"$ROOTFS/bin/loop.sh" <<'SH'
i=0
echo started >/ctl/started
while [ ! -e /ctl/stop ]; do
	/bin/true || echo "BAD_TRUE rc=$?"
	/bin/wget -q http://127.0.0.1:1/ 2>/ctl/e
	read -r line </ctl/e
	case "$line" in *"not permitted"*) ;; *) echo "BAD_DENY $line" ;; esac
	i=$((i + 1))
	echo "$i" >/ctl/count
done
echo "LOOP_DONE $i"
SH
# count: how many loop iterations the container finished so far
count() { local n; read -r n <"$TMP/ctl/count" 2>/dev/null; echo "${n:-0}"; }
wait_more() { # wait_more N: until the loop did N more iterations (20 s)
	local target=$(($(count) + $1))
	wait_for 20 sh -c "n=\$(cat '$TMP/ctl/count' 2>/dev/null); [ \"\${n:-0}\" -ge $target ]"
}
policy_side() { pgrep -P "$1" -f __policy-side | head -1; }
b=$(mkbundle loop '["/bin/sh","/bin/loop.sh"]' 1000 '[]' '' "$K8S_ANN")
sed -i "s|\"mounts\":\[|\"mounts\":[{\"destination\":\"/ctl\",\"type\":\"bind\",\"source\":\"$TMP/ctl\",\"options\":[\"rbind\",\"rw\"]},|" "$b/config.json"
(cd "$b" && timeout 120 $RUNC run "$ID-loop" >"$TMP/loop.out" 2>&1 </dev/null; echo $? >"$TMP/loop.rc") &
BG_PIDS+=($!)
if wait_for 20 test -e "$TMP/ctl/started" && wait_more 5; then
	pass loop_container_runs
	# kill -9 the policy side three times while execs are in flight
	restarted=0
	for k in 1 2 3; do
		ps1=$(policy_side "$AGENT_PID")
		[ -n "$ps1" ] && kill -9 "$ps1"
		wait_for 10 sh -c "p=\$(pgrep -P $AGENT_PID -f __policy-side | head -1); [ -n \"\$p\" ] && [ \"\$p\" != '$ps1' ]" &&
			restarted=$((restarted + 1))
		wait_more 3
	done
	[ "$restarted" = 3 ] && log_has '"msg":"policy side restarted' && kill -0 "$AGENT_PID"
	check policy_side_restarted_after_kill9 $? "restarted=$restarted"
	wait_more 10
	check execs_continue_after_policy_side_kill9 $? "count=$(count)"

	# replace the whole agent with a successor sharing the state directory
	OLD_PID=$AGENT_PID
	"$AGENT" run --config "$TMP/agent.yaml" --socket "$SOCK" --policy "$TMP/policy/policy.yml" \
		--node-name test-node >"$TMP/agent2.log" 2>&1 &
	NEW_PID=$!
	wait_for 30 sh -c "! kill -0 $OLD_PID 2>/dev/null"
	wait "$OLD_PID"
	old_rc=$?
	AGENT_PID=$NEW_PID
	[ "$old_rc" = 0 ] && kill -0 "$NEW_PID" && grep -aq 'took over [1-9][0-9]* container(s)' "$TMP/agent2.log"
	check successor_takes_over_and_old_exits_0 $? "old rc=$old_rc; $(tail -3 "$TMP/agent2.log")"
	[ -S "$SOCK" ]
	check runtime_socket_kept_across_handoff $?
	wait_more 10
	check execs_continue_after_handoff $? "count=$(count)"
	grep -a '"decision":"deny"' "$TMP/agent2.log" | grep "\"container\":\"runner\"" |
		grep -q '"command":"/bin/wget -q http://127.0.0.1:1/"'
	check successor_still_denies $?
	# a new container after the handoff reaches the successor
	bn=$(mkbundle afterhandoff '["sh","-c","/bin/echo NEW_OK; /bin/wget -q http://127.0.0.1:1/"]')
	run_ctr afterhandoff "$bn"
	grep -q NEW_OK "$TMP/afterhandoff.out" && grep -q "Operation not permitted" "$TMP/afterhandoff.out"
	check new_container_after_handoff $? "$(cat "$TMP/afterhandoff.out")"
	# and the successor's own policy side survives a kill -9 too
	ps1=$(policy_side "$AGENT_PID")
	[ -n "$ps1" ] && kill -9 "$ps1"
	wait_more 5
	check successor_survives_policy_side_kill9 $? "count=$(count)"

	touch "$TMP/ctl/stop"
	wait_for 30 test -s "$TMP/loop.rc"
	loop_rc=$(cat "$TMP/loop.rc" 2>/dev/null)
	[ "$loop_rc" = 0 ] && grep -q "LOOP_DONE" "$TMP/loop.out" && ! grep -q "BAD_" "$TMP/loop.out"
	check no_exec_failed_or_hung $? "rc=$loop_rc $(grep -m5 'BAD_\|LOOP' "$TMP/loop.out")"
	! grep -qi "function not implemented" "$TMP/loop.out"
	check no_enosys $?
	echo "NOTE: the loop container ran $(count) iterations (2 execs each) across 4 policy-side kills and 1 handoff"
else
	fail loop_container_runs "$(cat "$TMP/loop.out")"
fi

# ---- shutdown ----
kill "$AGENT_PID"
wait "$AGENT_PID"
rc=$?
AGENT_PID=
[ "$rc" = 0 ] && [ ! -e "$SOCK" ]
check agent_exits_cleanly_on_sigterm $? "rc=$rc"
if [ "$FAILS" -gt 0 ]; then
	echo "--- agent log (last 60 lines) ---"
	tail -n 60 "$TMP/agent.log"
	[ -f "$TMP/agent2.log" ] && { echo "--- successor log (last 40 lines) ---"; tail -n 40 "$TMP/agent2.log"; }
fi
exit 0
