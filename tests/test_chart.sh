#!/usr/bin/env bash
# The Helm chart: Helm installs, lint, rendering with every ci/ values file
# and assertions on it (tests/chart_assert.py), values the schema and the
# templates must reject, dogfooding (the chart's own webhook and example
# worker through `codeframe-webhook check`), and manifests/ being up to date.
# Prints PASS:/FAIL: lines. Environment: CF_BUILD_DIR (default build).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CF_BUILD_DIR:-build}
CHART=charts/codeframe-guard
NS=cg-system
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; }

# --- Helm ----------------------------------------------------------------------
if ! helm=$(scripts/helm.sh 2>"$tmp/helm.err"); then
	fail "helm: cannot install Helm with scripts/helm.sh: $(tr '\n' ' ' <"$tmp/helm.err")"
	exit 1
fi
if "$helm" version --short 2>/dev/null | grep -q '^v4\.'; then
	pass "helm: $("$helm" version --short) installed at $helm"
else
	fail "helm: want Helm 4, got '$("$helm" version --short 2>&1)'"
fi
if helm2=$(scripts/helm.sh 2>"$tmp/helm2.err") && [ "$helm2" = "$helm" ] && ! grep -q fetching "$tmp/helm2.err"; then
	pass "helm: scripts/helm.sh is idempotent (second run reuses $helm)"
else
	fail "helm: second scripts/helm.sh run did not reuse the binary: $(cat "$tmp/helm2.err")"
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
	fail "python3 with PyYAML (python3-yaml) is needed: run 'make deps'"
	exit 1
fi

# --- lint ----------------------------------------------------------------------
if out=$("$helm" lint "$CHART" --strict 2>&1); then pass "lint: default values"
else fail "lint: default values: $out"; fi
for f in "$CHART"/ci/*.yaml; do
	n=$(basename "$f")
	# In lint mode Helm turns `fail` into a log line, so cert-manager values
	# lint cleanly; the readable failure without the API is checked below.
	if out=$("$helm" lint "$CHART" --strict -f "$f" 2>&1); then pass "lint: $n"
	else fail "lint: $n: $(tail -5 <<<"$out")"; fi
done

# --- rendering and assertions ----------------------------------------------------
mkdir -p "$tmp/render"
python3 tests/chart_assert.py "$helm" "$CHART" docs/config-schema.yaml "$tmp/render"

# --- NOTES.txt ------------------------------------------------------------------
notes() { "$helm" install cg "$CHART" --namespace "$NS" --dry-run=client "$@" 2>&1 | sed -n '/^NOTES:/,$p'; }
n2=$(notes)
n1=$(notes --set webhook.replicas=1)
for want in "kubectl label namespace <NAMESPACE> codeframe.io/workers=true" \
	"kubectl logs -n $NS -l app.kubernetes.io/instance=cg,app.kubernetes.io/component=webhook" \
	'"path":"/webhooks/0/failurePolicy","value":"Ignore"' \
	"kubectl delete validatingwebhookconfiguration cg-codeframe-guard"; do
	if grep -qF -- "$want" <<<"$n2"; then pass "notes: has '$want'"
	else fail "notes: lacks '$want'"; fi
done
if grep -q WARNING <<<"$n1" && ! grep -q WARNING <<<"$n2"; then
	pass "notes: warns when replicas < 2, and only then"
else
	fail "notes: replicas warning wrong (replicas=1: $(grep -c WARNING <<<"$n1"), 2: $(grep -c WARNING <<<"$n2"))"
fi

# --- values and environments the chart must refuse -------------------------------
# expect_reject NAME MESSAGE-FRAGMENT HELM-TEMPLATE-ARGS...
expect_reject() {
	local name=$1 want=$2 out
	shift 2
	if out=$("$helm" template cg "$CHART" --namespace "$NS" "$@" 2>&1); then
		fail "reject: $name was accepted"
	elif grep -qF -- "$want" <<<"$out"; then
		pass "reject: $name"
	else
		fail "reject: $name failed without '$want': $(head -3 <<<"$out")"
	fi
}
expect_accept() {
	local name=$1 out
	shift
	if out=$("$helm" template cg "$CHART" --namespace "$NS" "$@" 2>&1); then pass "accept: $name"
	else fail "accept: $name: $(head -3 <<<"$out")"; fi
}
expect_reject "unknown top-level key" "additional properties 'bogus' not allowed" --set bogus=1
expect_reject "unknown webhook key" "additional properties 'timeout' not allowed" --set webhook.timeout=5
expect_reject "unknown agent policy key" "additional properties 'allowed_command' not allowed" \
	--set 'agent.policy.allowed_command[0]=ls'
expect_reject "timeoutSeconds 0" "minimum" --set webhook.timeoutSeconds=0
expect_reject "timeoutSeconds 31" "maximum" --set webhook.timeoutSeconds=31
expect_reject "replicas 0" "minimum" --set webhook.replicas=0
expect_reject "webhook.mode block" "/webhook/mode" --set webhook.mode=block
expect_reject "failurePolicy Sometimes" "/webhook/failurePolicy" --set webhook.failurePolicy=Sometimes
expect_reject "tls.mode letsencrypt" "/tls/mode" --set tls.mode=letsencrypt
expect_reject "enforcement_level lenient" "/agent/policy/enforcement_level" \
	--set agent.policy.enforcement_level=lenient
expect_reject "appArmorProfile Complain" "/agent/appArmorProfile/type" --set agent.appArmorProfile.type=Complain
expect_reject "AppArmor Localhost without a profile" "/agent/appArmorProfile/localhostProfile" \
	--set agent.appArmorProfile.type=Localhost
expect_reject "runAsUser 0 (root webhook)" "/webhook/runAsUser" --set webhook.runAsUser=0
expect_reject "string replicas" "/webhook/replicas" --set-string webhook.replicas=2
expect_reject "namespace label with a space" "/workers/namespaceLabel" --set 'workers.namespaceLabel=bad label'
expect_reject "plain-http webhook.url" "/webhook/url" --set webhook.url=http://127.0.0.1:8443/validate
expect_reject "relative kubeletDir" "/agent/kubeletDir" --set agent.kubeletDir=var/lib/kubelet
expect_reject "limits without memory" "/webhook/resources/limits" --set webhook.resources.limits.memory=null
expect_reject "agent.namespace = release namespace" "must differ from the release namespace" \
	--set agent.namespace=$NS
expect_reject "existing-secret without secretName" "needs tls.secretName" \
	--set tls.mode=existing-secret --set-file tls.caBundle=<(sed -n '/BEGIN/,/END/p' "$CHART/ci/existing-secret-values.yaml" | sed 's/^ *//')
expect_reject "existing-secret without caBundle" "needs tls.caBundle" \
	--set tls.mode=existing-secret --set tls.secretName=x
expect_reject "caBundle that is not PEM" "/tls/caBundle" \
	--set tls.mode=existing-secret --set tls.secretName=x --set tls.caBundle=notpem
expect_reject "caBundle in self-managed mode" "only used with tls.mode=existing-secret" \
	-f "$CHART/ci/existing-secret-values.yaml" --set tls.mode=self-managed
expect_reject "cert-manager without its API" "needs cert-manager installed" --set tls.mode=cert-manager
expect_reject "Kubernetes 1.27" "incompatible with Kubernetes" --kube-version 1.27.9
expect_accept "timeoutSeconds 1" --set webhook.timeoutSeconds=1
expect_accept "timeoutSeconds 30" --set webhook.timeoutSeconds=30
expect_accept "EKS-style version v1.30.4-eks-a737599" --kube-version v1.30.4-eks-a737599
expect_accept "GKE-style version v1.28.15-gke.1159000" --kube-version v1.28.15-gke.1159000

# --- dogfooding: the chart's own pods pass its own rules ---------------------------
bin=$BUILD_DIR/codeframe-webhook
# extract FILE KIND COMPONENT OUT: the objects of KIND (and component label,
# "-" for any) from a rendering, as a multi-document file.
extract() {
	python3 - "$@" <<'PY'
import sys, yaml
src, kind, comp, out = sys.argv[1:5]
docs = [d for d in yaml.safe_load_all(open(src)) if d and d["kind"] == kind and
        (comp == "-" or d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == comp)]
if not docs:
    sys.exit(f"no {kind} ({comp}) in {src}")
yaml.safe_dump_all(docs, open(out, "w"), sort_keys=False)
PY
}
config_of() {
	python3 - "$1" "$2" <<'PY'
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}):
        open(sys.argv[2], "w").write(d["data"]["config.yaml"])
        sys.exit(0)
sys.exit("no webhook config in " + sys.argv[1])
PY
}
# check_passes OUT-PREFIX ARGS...: `check -o json ARGS` exits 0 and every
# Deployment given was evaluated and passed (not skipped: a pass must not be
# vacuous; NetworkPolicies given alongside are inputs, reported as skipped). Prints the first lines of the output on failure.
check_passes() {
	local prefix=$1 rc
	shift
	"$bin" check -o json "$@" >"$prefix.json" 2>"$prefix.err"
	rc=$?
	[ "$rc" -eq 0 ] || { echo "exit $rc: $(head -c 600 "$prefix.json" "$prefix.err" | tr '\n' ' ')"; return 1; }
	python3 - "$prefix.json" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
deps = [x for x in r["results"] if x.get("kind") == "Deployment"]
if not deps or s["failed"] or s["errors"] or any(x["status"] != "pass" for x in deps):
    print(f"not a real pass: summary {s}, deployments {[(x.get('name'), x['status']) for x in deps]}")
    sys.exit(1)
PY
}
if [ ! -x "$bin" ]; then
	fail "dogfood: $bin is missing (build it with 'make'; the check command comes from branches cli/policy)"
else
	for r in "$tmp"/render/*.yaml; do
		n=$(basename "$r" .yaml)
		extract "$r" Deployment webhook "$tmp/$n-webhook.yaml"
		if out=$(check_passes "$tmp/$n-r" --profile restricted "$tmp/$n-webhook.yaml"); then
			pass "dogfood[$n]: webhook Deployment passes --profile restricted"
		else
			fail "dogfood[$n]: webhook Deployment vs --profile restricted (exit $?): $(head -5 <<<"$out")"
		fi
		config_of "$r" "$tmp/$n-config.yaml"
		# The rendered config must be one the webhook itself accepts.
		# (A config's workers.selector may make the webhook pod a non-worker:
		# only the exit status counts here; the unknown-key case below shows
		# the config is really parsed.)
		if out=$("$bin" check --config "$tmp/$n-config.yaml" --profile restricted "$tmp/$n-webhook.yaml" 2>&1); then
			pass "dogfood[$n]: codeframe-webhook accepts the rendered config"
		else
			fail "dogfood[$n]: rendered config refused (exit $?): $(head -5 <<<"$out")"
		fi
	done
	for n in example-worker-values example-worker-agent-off-values; do
		r=$tmp/render/$n.yaml
		[ -f "$r" ] || { fail "dogfood[$n]: no rendering"; continue; }
		extract "$r" Deployment example-worker "$tmp/$n-worker.yaml"
		extract "$r" NetworkPolicy - "$tmp/$n-netpol.yaml"
		cfg=$tmp/$n-config.yaml
		if out=$(check_passes "$tmp/$n-w" --profile worker --config "$cfg" "$tmp/$n-worker.yaml" "$tmp/$n-netpol.yaml"); then
			pass "dogfood[$n]: example worker + NetworkPolicies pass --profile worker"
		else
			fail "dogfood[$n]: example worker vs --profile worker (exit $?): $(head -5 <<<"$out")"
		fi
		# Without its NetworkPolicies the same worker must be refused:
		# the check above is not passing vacuously.
		if out=$("$bin" check --profile worker --config "$cfg" "$tmp/$n-worker.yaml" 2>&1); then
			fail "dogfood[$n]: worker without NetworkPolicies passed"
		elif [ $? -eq 1 ] && grep -q networkPolicy <<<"$out"; then
			pass "dogfood[$n]: worker without NetworkPolicies is refused [networkPolicy]"
		else
			fail "dogfood[$n]: worker without NetworkPolicies: unexpected result: $(head -3 <<<"$out")"
		fi
	done
	# The config check above is not vacuous: one unknown key is refused.
	if [ -f "$tmp/default-values-config.yaml" ]; then
		{ cat "$tmp/default-values-config.yaml"; echo "bogusKey: 1"; } >"$tmp/bad-config.yaml"
		"$bin" check --config "$tmp/bad-config.yaml" --profile restricted \
			"$tmp/default-values-webhook.yaml" >"$tmp/bad.out" 2>&1
		rc=$?
		if [ "$rc" -eq 2 ] && grep -q bogusKey "$tmp/bad.out"; then
			pass "dogfood: a rendered config with an unknown key is refused (exit 2)"
		else
			fail "dogfood: config with an unknown key: exit $rc: $(head -3 "$tmp/bad.out")"
		fi
	fi
	# With the agent, a worker on RuntimeDefault must be refused (seccompLocalhost on).
	r=$tmp/render/example-worker-values.yaml
	if [ -f "$r" ]; then
		sed 's/type: Localhost/type: RuntimeDefault/; /localhostProfile:/d' "$tmp/example-worker-values-worker.yaml" \
			>"$tmp/rtdefault-worker.yaml"
		if out=$("$bin" check --profile worker --config "$tmp/example-worker-values-config.yaml" \
			"$tmp/rtdefault-worker.yaml" "$tmp/example-worker-values-netpol.yaml" 2>&1); then
			fail "dogfood: RuntimeDefault worker passed although the agent is enabled"
		elif grep -q seccompLocalhost <<<"$out"; then
			pass "dogfood: RuntimeDefault worker refused while the agent is enabled [seccompLocalhost]"
		else
			fail "dogfood: RuntimeDefault worker: unexpected result: $(head -3 <<<"$out")"
		fi
	fi
fi

# --- manifests/ up to date ------------------------------------------------------
if out=$(scripts/render-manifests.sh "$tmp/manifests" 2>&1); then
	if d=$(diff -r manifests "$tmp/manifests" 2>&1); then
		pass "manifests: manifests/ matches the chart"
	else
		fail "manifests: manifests/ is out of date; run 'make manifests': $(head -10 <<<"$d")"
	fi
	if grep -rqE 'helm\.sh/chart|managed-by: Helm|PRIVATE KEY' "$tmp/manifests"; then
		fail "manifests: Helm-only labels or a private key in the rendered manifests"
	else
		pass "manifests: no Helm-only labels, no private keys"
	fi
else
	fail "manifests: render-manifests.sh failed: $out"
fi
