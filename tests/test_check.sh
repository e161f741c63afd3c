#!/usr/bin/env bash
# Integration tests for `codeframe-webhook check`: exit status, output
# formats, the NetworkPolicy set built from the inputs, the config file, and
# bad input of every kind (each must be a clear error with exit 2, never a
# crash or unbounded memory). Prints PASS:/FAIL:/SKIP: lines.
# Environment: CF_BUILD_DIR (default build), SANITIZE (set under ASan).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${CF_BUILD_DIR:-build}/codeframe-webhook
[ -x "$BIN" ] || { echo "FAIL: binary $BIN missing"; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
T=$(mktemp -d /tmp/test_check.XXXXXX)
trap 'chmod -R u+rwx "$T" 2>/dev/null; rm -rf "$T"' EXIT
EX=examples
failures=0

# run ARGS... : runs check, sets $rc, $out (stdout), $err (stderr).
run() {
	out=$("$BIN" check "$@" 2>"$T/stderr")
	rc=$?
	err=$(cat "$T/stderr")
}
# run_stdin FILE ARGS... : the same with FILE on standard input.
run_stdin() {
	local f=$1
	shift
	out=$("$BIN" check "$@" <"$f" 2>"$T/stderr")
	rc=$?
	err=$(cat "$T/stderr")
}
pass() { echo "PASS: $1"; }
fail() {
	echo "FAIL: $1 (exit $rc)"
	echo "$out" | head -20 | sed 's/^/    stdout: /'
	echo "$err" | head -10 | sed 's/^/    stderr: /'
	failures=$((failures + 1))
}
# expect NAME RC [STDOUT-REGEX] [STDERR-REGEX]
expect() {
	local name=$1 want=$2 o=${3:-} e=${4:-}
	if [ "$rc" -ne "$want" ]; then fail "$name"; return; fi
	if [ -n "$o" ] && ! grep -Eq -- "$o" <<<"$out"; then fail "$name: stdout lacks /$o/"; return; fi
	if [ -n "$e" ] && ! grep -Eq -- "$e" <<<"$err"; then fail "$name: stderr lacks /$e/"; return; fi
	pass "$name"
}
# expect_error NAME REGEX: exit 2, the message on stderr, nothing evaluated.
expect_error() {
	if [ "$rc" -eq 2 ] && grep -Eq -- "$2" <<<"$err" && [ -z "$out" ]; then
		pass "$1"
	else
		fail "$1: want exit 2, /$2/ on stderr, empty stdout"
	fi
}

pod() { # pod NAME NAMESPACE LABEL-VALUE : a compliant worker pod
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $2
  labels: {role: $3}
spec:
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: main
    image: registry.example.com/worker:1.0
    resources:
      limits: {cpu: 500m, memory: 256Mi}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
EOF
}
netpol() { # netpol NAME NAMESPACE SELECTOR-YAML TYPES
	cat <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: $1
  namespace: $2
spec:
  podSelector: $3
  policyTypes: $4
EOF
}

# ---------------------------------------------------------------- samples
run "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
expect "compliant worker with its NetworkPolicies passes" 0 "" "1 passed, 0 failed"
[ -z "$out" ] && pass "passing run prints no violation lines" || fail "passing run prints no violation lines"

run "$EX/worker-networkpolicies.yaml" "$EX/worker-pod.yaml"
expect "input order does not matter" 0

run "$EX/worker-pod.yaml"
expect "compliant pod without NetworkPolicies fails networkPolicy" 1 \
	'^examples/worker-pod.yaml: Pod/codeframe-worker-7f3a9: .*\[networkPolicy\]$'

run "$EX/noncompliant-pod.yaml"
expect "non-compliant pod fails" 1 '^examples/noncompliant-pod.yaml: Pod/quick-worker: .* \[[A-Za-z_]+\]$'
n=$(grep -c '^examples/noncompliant-pod.yaml: Pod/quick-worker: ' <<<"$out")
[ "$n" -ge 5 ] && pass "every violation is reported ($n lines)" || fail "every violation is reported ($n lines)"
for id in readOnlyRootFilesystem resourceLimits secrets serviceAccountToken runAsNonRoot \
	allowPrivilegeEscalation capabilities_restricted networkPolicy; do
	grep -q "\[$id\]\$" <<<"$out" && pass "non-compliant pod: $id reported" ||
		fail "non-compliant pod: $id reported"
done
if grep -vE '^examples/noncompliant-pod.yaml: Pod/quick-worker: .+ \[[A-Za-z_]+\]$|: warning: ' <<<"$out" | grep -q .; then
	fail "text output is FILE: Kind/name: message [check-id]"
else
	pass "text output is FILE: Kind/name: message [check-id]"
fi

run "$EX/deployment-violating.yaml" "$EX/worker-networkpolicies.yaml"
expect "Deployment template violations" 1 '^examples/deployment-violating.yaml: Deployment/build-runner: .*\[privileged\]$'
grep -q 'spec.template.spec' <<<"$out" && pass "Deployment paths point into the template" ||
	fail "Deployment paths point into the template"
grep -q '\[hostNamespaces\]' <<<"$out" && grep -q '\[hostPathVolumes\]' <<<"$out" &&
	pass "Deployment: hostPID and hostPath reported" || fail "Deployment: hostPID and hostPath reported"

run --profile baseline "$EX/noncompliant-pod.yaml"
expect "baseline admits a pod that restricted rejects" 0
run --profile restricted "$EX/noncompliant-pod.yaml"
expect "restricted rejects it" 1 '\[runAsNonRoot\]'
if grep -qE '\[(readOnlyRootFilesystem|networkPolicy|secrets)\]' <<<"$out"; then
	fail "restricted does not run the worker checks"
else
	pass "restricted does not run the worker checks"
fi

run_stdin "$EX/noncompliant-pod.yaml" -
expect "standard input as -" 1 '^<stdin>: Pod/quick-worker: '

run --config "$EX/config.yaml" "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
expect "example config accepted, compliant pod passes" 0
run --config "$EX/config.yaml" "$EX/deployment-violating.yaml"
expect "example config: Deployment still fails" 1 'Deployment/build-runner'
run --config "$EX/config.yaml" --profile=baseline -o text "$EX/worker-pod.yaml"
expect "--profile= overrides the config, -o text" 0

# ---------------------------------------------------------------- JSON output
run -o json "$EX/noncompliant-pod.yaml" "$EX/worker-networkpolicies.yaml"
expect "JSON output" 1 '"status":[[:space:]]*"fail"'
if command -v python3 >/dev/null; then
	if python3 -c '
import json, sys
d = json.load(sys.stdin)
r = {x["kind"]: x for x in d["results"]}
assert d["profile"] == "worker"
p = r["Pod"]
assert p["status"] == "fail" and p["name"] == "quick-worker" and p["file"] == "examples/noncompliant-pod.yaml"
assert p["line"] == 6 and p["namespace"] == "codeframe-workers"
for v in p["violations"]:
    assert set(v) == {"check", "path", "container", "message"}, v
    assert v["message"].endswith("[" + v["check"] + "]"), v
assert any(v["container"] == "runner" for v in p["violations"])
assert r["Namespace"]["status"] == "skipped" and r["NetworkPolicy"]["status"] == "skipped"
assert d["summary"]["failed"] == 1 and d["summary"]["skipped"] == 3
' <<<"$out"; then pass "JSON result per object: violations, skipped objects, summary"; else fail "JSON result per object: violations, skipped objects, summary"; fi
else
	echo "SKIP: JSON structure (python3 not installed)"
fi
run --output=json "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
expect "JSON output on a pass" 0 '"status":[[:space:]]*"pass"'

# ---------------------------------------------------------------- kinds and namespaces
cat >"$T/other.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1"}
EOF
run "$T/other.yaml"
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then pass "non-workload objects are skipped silently"; else fail "non-workload objects are skipped silently"; fi

{
	echo "apiVersion: v1"
	echo "kind: List"
	echo "items:"
	pod a ns1 worker | sed 's/^/  /; 1s/^  /- /'
	echo "- apiVersion: v1"
	echo "  kind: PodList"
	echo "  items:"
	pod b ns1 other | sed 's/^/    /; 1s/^    /  - /'
} >"$T/list.yaml"
{ netpol deny ns1 '{}' '[Ingress, Egress]'; } >"$T/np-all.yaml"
run "$T/list.yaml" "$T/np-all.yaml"
expect "List and nested PodList walked item by item" 0 "" "2 passed"

netpol deny ns2 '{}' '[Ingress, Egress]' >"$T/np-ns2.yaml"
run "$T/list.yaml" "$T/np-ns2.yaml"
expect "a NetworkPolicy in another namespace does not count" 1 'Pod/a: .*\[networkPolicy\]'

pod c "" worker | sed '/namespace: *$/d' >"$T/pod-nons.yaml"
netpol deny default '{}' '[Ingress, Egress]' | sed '/namespace: default/d' >"$T/np-nons.yaml"
run "$T/pod-nons.yaml" "$T/np-nons.yaml"
expect "no namespace means default, for pods and policies" 0

{ netpol in ns1 '{matchLabels: {role: worker}}' '[Ingress]'; echo ---; netpol eg ns1 '{matchExpressions: [{key: role, operator: NotIn, values: [db]}]}' '[Egress]'; } >"$T/np-split.yaml"
pod d ns1 worker >"$T/pod-d.yaml"
run "$T/pod-d.yaml" "$T/np-split.yaml"
expect "ingress and egress covered by different policies" 0
pod e ns1 web >"$T/pod-e.yaml"
run "$T/pod-e.yaml" "$T/np-split.yaml"
expect "a pod outside a policy's selector is not covered" 1 'Pod/e: .*\[networkPolicy\]'

cat >"$T/np-ingress-default.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-ingress, namespace: ns1}
spec:
  podSelector: {}
EOF
run "$T/pod-d.yaml" "$T/np-ingress-default.yaml"
expect "policyTypes defaults to Ingress only without egress rules" 1 'Pod/d: .*egress.*\[networkPolicy\]|Pod/d: .*Egress.*\[networkPolicy\]'

cat >"$T/np-allow-all.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open-egress, namespace: ns1}
spec:
  podSelector: {}
  ingress: []
  egress: [{}]
  policyTypes: [Ingress, Egress]
EOF
run "$T/pod-d.yaml" "$T/np-allow-all.yaml"
expect "an allow-all policy covers with a warning" 0 'Pod/d: warning: '

# Every controller kind: the pod template is found and its paths are named.
# template INDENT: a violating pod template (writable root filesystem ...).
template() {
	sed "s/^/$1/" <<'EOF'
metadata:
  labels: {role: worker}
spec:
  containers:
  - name: app
    image: registry.example.com/app:1.0
EOF
}
for spec in "PodTemplate:template:template.spec" \
	"ReplicationController:spec.template:spec.template.spec" \
	"ReplicaSet:spec.template:spec.template.spec" \
	"Deployment:spec.template:spec.template.spec" \
	"StatefulSet:spec.template:spec.template.spec" \
	"DaemonSet:spec.template:spec.template.spec" \
	"Job:spec.template:spec.template.spec" \
	"CronJob:spec.jobTemplate.spec.template:spec.jobTemplate.spec.template.spec"; do
	IFS=: read -r kind where path <<<"$spec"
	{
		echo "kind: $kind"
		echo "metadata: {name: k, namespace: ns1}"
		indent=""
		IFS=. read -ra parts <<<"$where"
		for part in "${parts[@]}"; do
			echo "${indent}${part}:"
			indent="$indent  "
		done
		template "$indent"
	} >"$T/kind.yaml"
	run "$T/kind.yaml"
	if [ "$rc" -eq 1 ] && grep -q "^$T/kind.yaml: $kind/k: ${path//./\\.}\.containers\[0\]\.securityContext\.readOnlyRootFilesystem must be true" <<<"$out"; then
		pass "$kind: pod template checked at $path"
	else
		fail "$kind: pod template checked at $path"
	fi
done

cat >"$T/cfg-sel.yaml" <<'EOF'
workers:
  selector:
    matchExpressions:
    - {key: role, operator: In, values: [worker]}
EOF
pod f ns1 web >"$T/pod-f.yaml"
run --config "$T/cfg-sel.yaml" "$T/pod-f.yaml" "$T/kind.yaml"
expect "config: workers.selector matches pod and template labels" 1 "CronJob/k: " "1 skipped"
if grep -q 'Pod/f' <<<"$out"; then fail "config: unselected pod not evaluated"; else pass "config: unselected pod not evaluated"; fi

cat >"$T/cfg-ns.yaml" <<'EOF'
workers:
  namespaces: [builds]
EOF
run --config "$T/cfg-ns.yaml" "$EX/noncompliant-pod.yaml"
expect "config: pods outside workers.namespaces are not evaluated" 0 "" "1 skipped"
run --config "$T/cfg-ns.yaml" -o json "$EX/noncompliant-pod.yaml"
expect "config: JSON lists them as skipped" 0 '"not a worker'

printf 'kind: Pod\nmetadata:\n  name: "a\\nexamples/x.yaml: Pod/b: forged \\e[31m"\nspec:\n  containers: [{name: c, image: i}]\n' >"$T/evil.yaml"
run "$T/evil.yaml"
if [ "$rc" -eq 1 ] && ! grep -q '^examples/x.yaml' <<<"$out" && grep -q 'Pod/a?examples/x.yaml: Pod/b: forged ?\[31m: ' <<<"$out" &&
	! grep -q $'\e' <<<"$out"; then
	pass "control characters in names cannot forge output lines"
else
	fail "control characters in names cannot forge output lines"
fi

printf 'profile: baseline\n' >"$T/cfg-baseline.yaml"
run --config "$T/cfg-baseline.yaml" "$EX/noncompliant-pod.yaml"
expect "config: profile is used when --profile is not given" 0 "" "profile baseline"
printf 'checks:\n  networkPolicy: false\n' >"$T/cfg-nonp.yaml"
run --config "$T/cfg-nonp.yaml" "$EX/worker-pod.yaml"
expect "config: a check turned off is not run" 0
printf 'resources:\n  max: {memory: 1Gi}\n' >"$T/cfg-max.yaml"
run --config "$T/cfg-max.yaml" "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
expect "config: resources.max is applied" 1 'Pod/codeframe-worker-7f3a9: spec.containers\[0\].resources.limits.memory .*\[resourceLimits\]$'

run --help
expect "--help" 0 '^usage: codeframe-webhook check'

# ---------------------------------------------------------------- usage errors
run
expect "no PATH is a usage error" 2 "" "no PATH given"
run --profile privileged "$EX/worker-pod.yaml"
expect_error "unknown profile" 'unknown profile "privileged"'
run --frobnicate "$EX/worker-pod.yaml"
expect "unknown option" 2 "" 'unknown option "--frobnicate"'
run -o yaml "$EX/worker-pod.yaml"
expect_error "unknown output format" 'unknown output format "yaml"'
run "$EX/worker-pod.yaml" --profile
expect "option without its value" 2 "" "--profile needs a value"
run_stdin "$EX/worker-pod.yaml" - -
expect "standard input twice" 2 "" "only once"

# ---------------------------------------------------------------- config errors
printf 'profile: worker\nmodee: warn\n' >"$T/bad-config.yaml"
run --config "$T/bad-config.yaml" "$EX/worker-pod.yaml"
expect_error "config: unknown key names file and line" "bad-config.yaml: line 2: unknown key \"modee\""
printf 'checks:\n  secrets: "no"\n' >"$T/bad-config2.yaml"
run --config "$T/bad-config2.yaml" "$EX/worker-pod.yaml"
expect_error "config: wrong type names file and line" 'bad-config2.yaml: line 2: "checks.secrets" must be true or false'
run --config "$T/none.yaml" "$EX/worker-pod.yaml"
expect_error "config: missing file" 'none.yaml: cannot open'

# ---------------------------------------------------------------- bad input
: >"$T/empty.yaml"
run "$T/empty.yaml"
expect_error "empty file" 'empty.yaml: no Kubernetes objects'
printf '# just a comment\n---\n---\n' >"$T/comments.yaml"
run "$T/comments.yaml"
expect_error "comments-only file" 'comments.yaml: no Kubernetes objects'
printf 'just a string\n' >"$T/scalar.yaml"
run "$T/scalar.yaml"
expect_error "YAML scalar at top level" 'scalar.yaml: line 1: document is a string, not a Kubernetes object'
printf -- '- kind: Pod\n- kind: Service\n' >"$T/seq.yaml"
run "$T/seq.yaml"
expect_error "YAML sequence at top level" 'seq.yaml: line 1: document is a sequence'
printf 'kind: Pod\n---\n42\n' >"$T/scalar2.yaml"
run "$T/scalar2.yaml"
expect_error "scalar in a later document names its line" 'scalar2.yaml: line 3: document is a number'
{
	echo 'a: &a ["x","x","x","x","x","x","x","x","x","x"]'
	prev=a
	for n in b c d e f g h i; do
		printf '%s: &%s [' "$n" "$n"
		for k in 1 2 3 4 5 6 7 8 9; do printf '*%s,' "$prev"; done
		printf '*%s]\n' "$prev"
		prev=$n
	done
	echo 'kind: Pod'
} >"$T/bomb.yaml"
run "$T/bomb.yaml"
expect_error "alias bomb" 'bomb.yaml: line [0-9]+: .*alias bomb'
{ head -c 100000 /dev/zero | tr '\0' '['; } >"$T/deep.json"
run "$T/deep.json"
expect_error "deeply nested JSON" 'deep.json: line 1: nesting is deeper than'
printf '{"kind": "Pod", "spec": {"containers": [{"name": "a", ' >"$T/truncated.json"
run "$T/truncated.json"
expect_error "truncated JSON" 'truncated.json: line [0-9]+: '
printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x3e\x00\x01\x00\xff\xfe\xfd\x80\x81\n' >"$T/garbage.bin"
run "$T/garbage.bin"
expect_error "binary garbage" 'garbage.bin: line 1: '
head -c 65536 /dev/urandom >"$T/random.bin"
run "$T/random.bin"
expect_error "random bytes" 'random.bin: '
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n' >"$T/dup.yaml"
run "$T/dup.yaml"
expect_error "duplicate keys" 'dup.yaml: line 5: duplicate key "name"'
printf '{"kind": "Pod", "kind": "Pod"}\n' >"$T/dup.json"
run "$T/dup.json"
expect_error "duplicate keys in JSON" 'dup.json: line 1: duplicate key "kind"'
printf 'apiVersion: v1\nmetadata: {name: a}\n' >"$T/nokind.yaml"
run "$T/nokind.yaml"
expect_error "object without kind" 'nokind.yaml: line 1: not a Kubernetes object: no "kind"'
printf 'apiVersion: v1\nkind: [Pod]\n' >"$T/badkind.yaml"
run "$T/badkind.yaml"
expect_error "kind that is not a string" 'badkind.yaml: line 2: "kind" must be a non-empty string'
printf 'apiVersion: v1\nkind: List\nitems: {a: 1}\n' >"$T/badlist.yaml"
run "$T/badlist.yaml"
expect_error "List whose items is not a sequence" 'badlist.yaml: line 3: List "items" must be a sequence'
printf 'apiVersion: v1\nkind: List\nitems:\n- 5\n' >"$T/badlist2.yaml"
run "$T/badlist2.yaml"
expect_error "List item that is not an object" 'badlist2.yaml: line 4: list item is a number'
printf 'kind: List\nitems:\n- kind: List\n  items:\n  - kind: List\n    items:\n    - kind: List\n      items:\n      - kind: List\n        items:\n        - kind: Pod\n' >"$T/deeplist.yaml"
run "$T/deeplist.yaml"
expect_error "Lists nested too deep" 'deeplist.yaml: line 9: lists nested deeper than 4 levels'
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: 5\n' >"$T/badspec.yaml"
run "$T/badspec.yaml"
expect "workload whose spec is not an object" 2 "" 'badspec.yaml: line 1: Pod/p: '
cat >"$T/badnp.yaml" <<'EOF'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: ns1}
spec:
  podSelector: {matchExpressions: [{key: a, operator: Near}]}
  policyTypes: [Sideways]
EOF
run "$T/pod-d.yaml" "$T/badnp.yaml"
expect_error "malformed NetworkPolicy" 'badnp.yaml: line 1: NetworkPolicy/broken: '
run "$T/missing.yaml"
expect_error "missing file" 'missing.yaml: cannot open: No such file'
run "$T"
expect_error "directory" "$T: is a directory"
run "$EX/worker-pod.yaml" "$T/missing.yaml"
expect_error "one bad input stops the whole run" 'missing.yaml: cannot open'
run "$T/empty.yaml" "$T/dup.yaml" "$T/missing.yaml"
if grep -q empty.yaml <<<"$err" && grep -q dup.yaml <<<"$err" && grep -q missing.yaml <<<"$err"; then
	pass "every bad input is reported"
else
	fail "every bad input is reported"
fi

# Unreadable: root reads any mode, so drop to nobody for the chmod 000 case.
printf 'kind: Pod\n' >"$T/secret.yaml"
chmod 000 "$T/secret.yaml"
chmod 755 "$T"
if [ "$(id -u)" -ne 0 ]; then
	run "$T/secret.yaml"
	expect_error "unreadable file" 'secret.yaml: cannot open: Permission denied'
elif command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$BIN" 2>/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" check "$T/secret.yaml" 2>"$T/stderr")
	rc=$?
	err=$(cat "$T/stderr")
	expect_error "unreadable file (chmod 000, as nobody)" 'secret.yaml: cannot open: Permission denied'
else
	echo "SKIP: unreadable file (root, and cannot run the binary as nobody)"
fi
chmod 600 "$T/secret.yaml"

# 100 MB: refused from its size before reading (regular file), and bounded
# while reading (stdin, a device). The address-space cap proves no 100 MB
# buffer is ever allocated; ASan reserves terabytes of shadow, so not there.
truncate -s 100M "$T/huge.yaml"
limit() { if [ -z "${SANITIZE:-}" ]; then ulimit -v 262144; fi; }
out=$(limit; "$BIN" check "$T/huge.yaml" 2>"$T/stderr"); rc=$?; err=$(cat "$T/stderr")
expect_error "100 MB file refused by size" 'huge.yaml: file is 104857600 bytes, over the limit of 16777216'
rm -f "$T/huge.yaml"
out=$(limit; head -c 100M /dev/zero | "$BIN" check - 2>"$T/stderr"); rc=$?; err=$(cat "$T/stderr")
expect_error "100 MB on standard input stops at the limit" 'input is over the limit of 16777216 bytes'
out=$(limit; "$BIN" check /dev/zero 2>"$T/stderr"); rc=$?; err=$(cat "$T/stderr")
expect_error "endless device stops at the limit" '/dev/zero: input is over the limit'

echo "test_check: $failures failure(s)"
[ "$failures" -eq 0 ]
