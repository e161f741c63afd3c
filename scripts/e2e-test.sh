#!/usr/bin/env bash
# End-to-end tests against a real control plane (scripts/e2e-cluster.sh): the C
# webhook runs as a host process on 127.0.0.1 with a throwaway CA, the Helm
# chart is installed into the real kube-apiserver with its webhook pointed at
# that process (values webhook.url, tls.mode=existing-secret, tls.caBundle: a
# `url:` clientConfig with the throwaway CA),
# the node agent is disabled (there is no kubelet), and every case is driven
# through kubectl. Prints `PASS: name`, `FAIL: name` and `SKIP: name (why)`;
# exits non-zero if anything failed (or, with E2E_STRICT=1, was skipped).
# Always tears the cluster and the webhook down, whatever happens.
#
# Env: BUILD (build dir with codeframe-webhook, default build), E2E_KEEP=1
# (leave the cluster up for inspection), E2E_NETPOL=auto|watch|files (where
# the webhook reads NetworkPolicies; auto = the live watch (`serve
# --kubeconfig`) when this build supports it, else --network-policies FILE),
# HELM (helm binary; default: the one scripts/helm.sh installs).
set -uo pipefail
# Pipelines ending in expect_*() must run those in this shell (counters, $OUT).
shopt -s lastpipe
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
E2E_BUILD=${E2E_BUILD:-$ROOT/build/e2e}
WORK=$E2E_BUILD/test
WEBHOOK=$ROOT/$BUILD/codeframe-webhook
NS=e2e-workers         # labelled worker namespace
NS_PLAIN=e2e-plain     # unlabelled namespace
RELEASE=${E2E_RELEASE:-cfg} # release name (the chart derives resource names from it)
RELEASE_NS=codeframe-guard
WORKER_LABEL=codeframe.io/workers
FULLNAME=$RELEASE-codeframe-guard # the chart's resource names for this release
SVC_HOST=$FULLNAME.$RELEASE_NS.svc # the Service name a self-managed certificate carries
IMAGE=registry.example/worker:1 # never pulled: there is no kubelet

npass=0
nfail=0
nskip=0
pass() {
	echo "PASS: $1"
	npass=$((npass + 1))
}
fail() {
	echo "FAIL: $1${2:+ -- $2}"
	nfail=$((nfail + 1))
}
skip() {
	echo "SKIP: $1 ($2)"
	nskip=$((nskip + 1))
}
note() { echo "# $*"; }

WH_PID=""
WH_BAD_EXIT=""
cleanup() {
	stop_webhook
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		note "E2E_KEEP=1: cluster left running; stop it with scripts/e2e-cluster.sh down"
	else
		scripts/e2e-cluster.sh down >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup ------------------------------------------------------------------

[ -x "$WEBHOOK" ] || {
	echo "FAIL: setup -- $WEBHOOK not built (run make)"
	exit 1
}
# The self-managed TLS case points the webhook URL at the Service's DNS name;
# only the apiserver resolves it (to 127.0.0.1), see e2e-cluster.sh. That
# needs a private mount namespace, i.e. root; without it the case is skipped.
if [ "$(id -u)" = 0 ]; then export E2E_APISERVER_HOSTS=$SVC_HOST; fi
scripts/e2e-cluster.sh up || {
	echo "FAIL: setup -- control plane did not start"
	exit 1
}
eval "$(scripts/e2e-cluster.sh env)"
KUBECTL=${KUBECTL:-$E2E_BIN/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl)
k() { "$KUBECTL" "$@"; }
rm -rf "$WORK"
mkdir -p "$WORK"
LOGS=$E2E_LOGS

# Throwaway CA and serving certificate for the webhook (the apiserver dials
# https://127.0.0.1:PORT, so the certificate carries that IP).
(
	cd "$WORK"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout wh-ca.key -out wh-ca.crt -days 1 \
		-subj "/CN=codeframe-e2e-webhook-ca" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout wh.key -out wh.csr -subj "/CN=127.0.0.1" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >wh.ext
	openssl x509 -req -in wh.csr -CA wh-ca.crt -CAkey wh-ca.key -CAcreateserial -out wh.crt \
		-days 1 -extfile wh.ext 2>/dev/null
) || {
	echo "FAIL: setup -- webhook certificate"
	exit 1
}
# Two free loopback ports: HTTPS for the apiserver, plain HTTP for probes.
# Picked below the kernel's ephemeral range (ip_local_port_range), and free
# of every socket, not only listeners: a port that is the local end of an
# outgoing connection (the apiserver's to etcd, say) cannot be bound either.
port_free() { ! ss -Htan "sport = :$1" | grep -q .; }
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
WH_PORT=""
for _ in $(seq 1 100); do
	p=$((20000 + RANDOM % (ephemeral_low - 20001)))
	if port_free "$p" && port_free $((p + 1)); then
		WH_PORT=$p
		break
	fi
done
[ -n "$WH_PORT" ] || {
	echo "FAIL: setup -- no free port pair"
	exit 1
}
WH_PROBE_PORT=$((WH_PORT + 1))
WH_URL=https://127.0.0.1:$WH_PORT/validate

NETPOL_MODE=${E2E_NETPOL:-auto}

# Compliant worker pod (the worker profile's every check satisfied), as JSON.
worker_pod() { # name [app-label]
	jq -n --arg name "$1" --arg app "${2:-worker}" --arg image "$IMAGE" '{
	  apiVersion: "v1", kind: "Pod",
	  metadata: {name: $name, labels: {app: $app}},
	  spec: {
	    automountServiceAccountToken: false,
	    securityContext: {runAsNonRoot: true, runAsUser: 1000,
	                      seccompProfile: {type: "RuntimeDefault"}},
	    containers: [{
	      name: "runner", image: $image, command: ["sleep", "3600"],
	      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
	                        runAsNonRoot: true, capabilities: {drop: ["ALL"]}},
	      resources: {limits: {cpu: "500m", memory: "256Mi"}}
	    }]
	  }
	}'
}
deployment_of() { # name [extra-template-labels-json]  (pod JSON on stdin)
	local extra=${2:-}
	[ -n "$extra" ] || extra="{}"
	jq --arg name "$1" --argjson extra "$extra" '{
	  apiVersion: "apps/v1", kind: "Deployment",
	  metadata: {name: $name},
	  spec: {replicas: 1,
	         selector: {matchLabels: {deploy: $name}},
	         template: {metadata: {labels: (.metadata.labels + {deploy: $name} + $extra)},
	                    spec: .spec}}
	}'
}
netpol() { # name app-label
	jq -n --arg name "$1" --arg app "$2" '{
	  apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
	  metadata: {name: $name},
	  spec: {podSelector: {matchLabels: {app: $app}},
	         policyTypes: ["Ingress", "Egress"],
	         ingress: [], egress: [{ports: [{port: 53, protocol: "UDP"}]}]}
	}'
}

# apply JSON from stdin in namespace; output (stdout+stderr) in $OUT, status in $RC
apply_in() { # ns [extra kubectl args]
	local ns=$1
	shift
	OUT=$(k apply -n "$ns" "$@" -f - 2>&1)
	RC=$?
}
expect_admit() { # case-name ns  (JSON on stdin)
	local name=$1 ns=$2
	apply_in "$ns"
	if [ $RC = 0 ]; then pass "$name"; else fail "$name" "apply failed: $OUT"; fi
}
expect_deny() { # case-name ns regex  (JSON on stdin)
	local name=$1 ns=$2 re=$3
	apply_in "$ns"
	if [ $RC = 0 ]; then
		fail "$name" "admitted, expected a denial matching /$re/"
	elif ! grep -q 'denied the request' <<<"$OUT"; then
		fail "$name" "not a webhook denial: $OUT"
	elif ! grep -Eq "$re" <<<"$OUT"; then
		fail "$name" "denial without /$re/: $OUT"
	else
		pass "$name"
	fi
}
# retry a command until it succeeds (or N seconds pass)
eventually() { # seconds command...
	local t=$1 i
	shift
	for ((i = 0; i < t * 2; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
has_sa() { k get sa default -n "$1"; }

# Starts the webhook on $WH_PORT. TLS from the throwaway files unless
# WH_TLS=self-managed; NetworkPolicies per $NETPOL_MODE; the API (watch,
# self-managed TLS) as whoever $WH_KUBECONFIG authenticates. Readiness is read
# on the plain-HTTP probe port, which works whatever certificate is served.
start_webhook() { # extra serve args...
	local args=(serve --listen "127.0.0.1:$WH_PORT" --probe-listen "127.0.0.1:$WH_PROBE_PORT")
	if [ "${WH_TLS:-files}" = self-managed ]; then
		args+=(--tls-secret "$RELEASE_NS/$FULLNAME-tls" --webhook-config "$FULLNAME" --service "$FULLNAME")
	else
		args+=(--tls-cert "$WORK/wh.crt" --tls-key "$WORK/wh.key")
	fi
	# files: a fixed set; watch: the live watch through --kubeconfig.
	[ "$NETPOL_MODE" = files ] && args+=(--network-policies "$WORK/netpols.yaml")
	if [ "$NETPOL_MODE" = watch ] || [ "${WH_TLS:-files}" = self-managed ]; then
		args+=(--kubeconfig "$WH_KUBECONFIG")
	fi
	"$WEBHOOK" "${args[@]}" "$@" >>"$LOGS/webhook.log" 2>&1 &
	WH_PID=$!
	local i
	for ((i = 0; i < 60; i++)); do
		if curl -sf --max-time 2 "http://127.0.0.1:$WH_PROBE_PORT/readyz" >/dev/null; then
			return 0
		fi
		kill -0 "$WH_PID" 2>/dev/null || break
		sleep 0.5
	done
	if [ "${WH_QUIET:-0}" != 1 ]; then
		echo "# webhook did not become ready; last log lines:"
		tail -n 5 "$LOGS/webhook.log" | sed 's/^/#   /'
	fi
	WH_EXPECT_FAIL=1 stop_webhook
	return 1
}
stop_webhook() {
	[ -n "$WH_PID" ] || return 0
	kill -TERM "$WH_PID" 2>/dev/null || true
	local i
	for ((i = 0; i < 40; i++)); do
		kill -0 "$WH_PID" 2>/dev/null || break
		sleep 0.25
	done
	kill -KILL "$WH_PID" 2>/dev/null || true
	local st=0
	wait "$WH_PID" 2>/dev/null || st=$?
	# SIGTERM must end in a drain and exit 0; anything else (a crash, a
	# sanitizer's exit code, the SIGKILL above) is recorded.
	[ "$st" = 0 ] || [ "${WH_EXPECT_FAIL:-0}" = 1 ] || WH_BAD_EXIT+=" $st"
	WH_PID=""
}

# --- 0. namespaces, rendered manifests against the real API -------------------

k create namespace "$NS" >/dev/null && k label namespace "$NS" "$WORKER_LABEL=true" >/dev/null
k create namespace "$NS_PLAIN" >/dev/null
eventually 30 has_sa "$NS" && eventually 30 has_sa "$NS_PLAIN" ||
	fail "setup: default service accounts" "serviceaccount controller did not create them"

if [ -d manifests ] && ls manifests/*.yaml >/dev/null 2>&1; then
	# A server-side dry run cannot see namespaces created in the same dry
	# run; create the ones the manifests live in first (as an operator would
	# with `kubectl create ns` or by applying the Namespace file first).
	for ns in $(k apply --dry-run=client -f manifests/ -o json 2>/dev/null |
		jq -r '(.items // [.])[] | select(.kind != "Namespace") | .metadata.namespace // empty' | sort -u); do
		k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
	done
	if OUT=$(k apply --dry-run=server -f manifests/ 2>&1); then
		pass "manifests: kubectl apply --dry-run=server -f manifests/"
	else
		fail "manifests: kubectl apply --dry-run=server -f manifests/" "$OUT"
	fi
else
	skip "manifests: kubectl apply --dry-run=server -f manifests/" "no manifests/ in this tree (issue 9)"
fi

# --- 1. webhook process and chart ------------------------------------------------

netpol worker-isolation worker >"$WORK/np-worker.json"
# The files source needs the namespace in each object.
jq --arg ns "$NS" '.metadata.namespace = $ns' "$WORK/np-worker.json" >"$WORK/netpols.yaml"
k apply -n "$NS" -f "$WORK/np-worker.json" >/dev/null || fail "setup: NetworkPolicy" "apply failed"


CHART=charts/codeframe-guard
HELM=${HELM:-}
if [ -z "$HELM" ] && [ -x scripts/helm.sh ]; then
	HELM=$(scripts/helm.sh 2>/dev/null | tail -n 1)
fi
CHART_INSTALLED=0
if [ -d "$CHART" ] && [ -n "$HELM" ] && [ -x "$HELM" ]; then
	# No --wait: there is no kubelet, the chart's own pods never run.
	if OUT=$("$HELM" install "$RELEASE" "$CHART" --namespace "$RELEASE_NS" --create-namespace \
		--kubeconfig "$KUBECONFIG" \
		--set agent.enabled=false \
		--set webhook.url="$WH_URL" \
		--set tls.mode=existing-secret \
		--set tls.secretName=e2e-unused-tls \
		--set-file tls.caBundle="$WORK/wh-ca.crt" 2>&1); then
		pass "chart: helm install into kube-apiserver $(k version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)"
		CHART_INSTALLED=1
	else
		fail "chart: helm install" "$OUT"
	fi
fi
if [ "$CHART_INSTALLED" = 1 ]; then
	VWC=$(k get validatingwebhookconfigurations -l "app.kubernetes.io/instance=$RELEASE" -o json)
	if jq -e --arg url "$WH_URL" '[.items[].webhooks[] | select(.clientConfig.url == $url)] | length > 0' <<<"$VWC" >/dev/null; then
		pass "chart: webhook clientConfig.url points at the host process"
	else
		fail "chart: webhook clientConfig.url points at the host process" "$(jq -c '[.items[].webhooks[].clientConfig]' <<<"$VWC")"
	fi
	if jq -e '[.items[].webhooks[] | .failurePolicy == "Fail"] | all and length > 0' <<<"$VWC" >/dev/null; then
		pass "chart: failurePolicy Fail"
	else
		fail "chart: failurePolicy Fail" "$(jq -c '[.items[].webhooks[].failurePolicy]' <<<"$VWC")"
	fi
	if jq -e '[.items[].webhooks[] | [.namespaceSelector.matchExpressions[]? |
	            select(.key == "kubernetes.io/metadata.name" and .operator == "NotIn") | .values[]] |
	            index("kube-system") != null] | all and length > 0' <<<"$VWC" >/dev/null; then
		pass "chart: namespaceSelector excludes kube-system"
	else
		fail "chart: namespaceSelector excludes kube-system" "$(jq -c '[.items[].webhooks[].namespaceSelector]' <<<"$VWC")"
	fi
	if k get deployments -n "$RELEASE_NS" -l "app.kubernetes.io/instance=$RELEASE" -o name 2>/dev/null | grep -q .; then
		pass "chart: webhook Deployment stored (it never runs: no kubelet)"
	else
		fail "chart: webhook Deployment stored (it never runs: no kubelet)"
	fi
	if k get daemonsets -A -l "app.kubernetes.io/instance=$RELEASE" -o name 2>/dev/null | grep -q .; then
		fail "chart: agent.enabled=false installs no DaemonSet"
	else
		pass "chart: agent.enabled=false installs no DaemonSet"
	fi
else
	[ -d "$CHART" ] && [ -n "$HELM" ] && [ -x "$HELM" ] ||
		skip "chart: helm install" "no $CHART or no helm (issue 9)"
	note "webhook configuration from tests/e2e/webhook-config.json instead of the chart"
	jq --arg url "$WH_URL" --arg ca "$(base64 -w0 <"$WORK/wh-ca.crt")" \
		'.webhooks[].clientConfig = {url: $url, caBundle: $ca}' tests/e2e/webhook-config.json |
		k apply -f - >/dev/null || fail "setup: fallback webhook configuration"
fi

# The webhook's API identity: with the chart, a token of the chart's own
# ServiceAccount (so its RBAC is what is exercised, exactly as in a pod);
# without, the admin.
WH_KUBECONFIG=$KUBECONFIG
if [ "$CHART_INSTALLED" = 1 ]; then
	if TOKEN=$(k create token "$FULLNAME" -n "$RELEASE_NS" --duration=2h 2>&1); then
		k config view --raw --minify -o json | jq --arg t "$TOKEN" \
			'.users[0].user = {token: $t}' >"$WORK/webhook.kubeconfig"
		chmod 600 "$WORK/webhook.kubeconfig"
		WH_KUBECONFIG=$WORK/webhook.kubeconfig
		pass "chart: token for the webhook ServiceAccount $RELEASE_NS/$FULLNAME"
	else
		fail "chart: token for the webhook ServiceAccount $RELEASE_NS/$FULLNAME" "$TOKEN"
	fi
fi

if [ "$NETPOL_MODE" = auto ]; then
	# Use the live watch when `serve --kubeconfig` exists in this build; a
	# build without the API client refuses the flag at startup.
	NETPOL_MODE=watch
	if ! WH_QUIET=1 start_webhook --mode enforce; then
		if grep -q 'not in this build' "$LOGS/webhook.log"; then
			NETPOL_MODE=files
		else
			fail "webhook: serve becomes ready on 127.0.0.1"
			exit 1
		fi
	fi
fi
note "NetworkPolicy source for the webhook: $NETPOL_MODE"
if [ -z "$WH_PID" ] && ! start_webhook --mode enforce; then
	fail "webhook: serve becomes ready on 127.0.0.1"
	exit 1
fi
pass "webhook: serve becomes ready on 127.0.0.1"

# A webhook configuration takes effect asynchronously in the apiserver.
probe_ready() {
	local out
	out=$(worker_pod probe-not-admitted | jq "del(.spec.automountServiceAccountToken)" |
		k apply -n "$NS" --dry-run=server -f - 2>&1)
	grep -q 'denied the request' <<<"$out"
}
eventually 20 probe_ready || fail "setup: webhook configuration active" "no denial within 20s"

# --- 2. worker namespace: compliant objects admitted -----------------------------

worker_pod worker-ok | expect_admit "worker ns: compliant pod admitted" "$NS"
if k get pod worker-ok -n "$NS" >/dev/null 2>&1; then
	pass "worker ns: compliant pod exists in the API"
else
	fail "worker ns: compliant pod exists in the API"
fi
worker_pod worker-ok-dep | deployment_of worker-ok-dep | expect_admit "worker ns: compliant Deployment admitted" "$NS"
if eventually 30 bash -c "'$KUBECTL' get pods -n '$NS' -l deploy=worker-ok-dep -o name | grep -q ."; then
	pass "worker ns: controller-created pod of compliant Deployment admitted"
else
	fail "worker ns: controller-created pod of compliant Deployment admitted" "no pod after 30s"
fi

# --- 3. each kind of violation rejected with the webhook's message ---------------

violation() { # case-name check-id-regex jq-filter
	worker_pod "bad-$RANDOM" | jq "$3" | expect_deny "worker ns: deny $1" "$NS" "$2"
}
C='.spec.containers[0]'
violation "runAsNonRoot missing" '\[runAsNonRoot\]' "del(.spec.securityContext.runAsNonRoot) | del($C.securityContext.runAsNonRoot)"
violation "runAsUser 0" '\[runAsUser\]' '.spec.securityContext.runAsUser = 0'
violation "allowPrivilegeEscalation true" '\[allowPrivilegeEscalation\]' "$C.securityContext.allowPrivilegeEscalation = true"
violation "capability added" '\[capabilities_restricted\]' "$C.securityContext.capabilities.add = [\"SYS_ADMIN\"]"
violation "privileged" '\[privileged\]' "$C.securityContext.privileged = true | del($C.securityContext.allowPrivilegeEscalation)"
violation "seccomp Unconfined" '\[seccompProfile_restricted\]' '.spec.securityContext.seccompProfile.type = "Unconfined"'
violation "hostNetwork" '\[hostNamespaces\]' '.spec.hostNetwork = true'
violation "hostPath volume" 'hostPath' '.spec.volumes = [{name: "h", hostPath: {path: "/etc"}}]'
violation "writable root filesystem" '\[readOnlyRootFilesystem\]' "$C.securityContext.readOnlyRootFilesystem = false"
violation "no resource limits" '\[resourceLimits\]' "del($C.resources)"
violation "no NetworkPolicy selects it" '\[networkPolicy\]' '.metadata.labels.app = "unisolated"'
violation "secretKeyRef env" '\[secrets\]' "$C.env = [{name: \"T\", valueFrom: {secretKeyRef: {name: \"s\", key: \"k\"}}}]"
violation "secret volume" '\[secrets\]' '.spec.volumes = [{name: "s", secret: {secretName: "s"}}]'
violation "service account token mounted" '\[serviceAccountToken\]' 'del(.spec.automountServiceAccountToken)'
violation "non-compliant initContainer" 'initContainers\[0\]' \
	".spec.initContainers = [{name: \"init\", image: \"$IMAGE\", resources: $C.resources}]"
# The message names the field path and the container.
worker_pod bad-msg | jq "$C.securityContext.readOnlyRootFilesystem = false" |
	expect_deny "worker ns: denial names field path and container" "$NS" \
		'spec\.containers\[0\]\.securityContext\.readOnlyRootFilesystem.*runner'

# --- 4. Deployments ----------------------------------------------------------------

worker_pod x | jq "$C.securityContext.readOnlyRootFilesystem = false" | deployment_of bad-dep |
	expect_deny "worker ns: Deployment with bad template rejected at apply" "$NS" '\[readOnlyRootFilesystem\]'
if k get deployment bad-dep -n "$NS" >/dev/null 2>&1; then
	fail "worker ns: rejected Deployment not stored"
else
	pass "worker ns: rejected Deployment not stored"
fi

# Every other pod controller, through its template.
BADT="$C.securityContext.readOnlyRootFilesystem = false"
worker_pod x | jq "$BADT" | jq '{apiVersion: "batch/v1", kind: "Job", metadata: {name: "bad-job"},
	spec: {template: {metadata: {labels: .metadata.labels}, spec: (.spec + {restartPolicy: "Never"})}}}' |
	expect_deny "worker ns: Job with bad template rejected" "$NS" '\[readOnlyRootFilesystem\]'
worker_pod x | jq "$BADT" | jq '{apiVersion: "batch/v1", kind: "CronJob", metadata: {name: "bad-cron"},
	spec: {schedule: "0 * * * *", jobTemplate: {spec: {template: {metadata: {labels: .metadata.labels},
	spec: (.spec + {restartPolicy: "Never"})}}}}}' |
	expect_deny "worker ns: CronJob with bad job template rejected" "$NS" '\[readOnlyRootFilesystem\]'
worker_pod x | jq "$BADT" | jq '{apiVersion: "apps/v1", kind: "StatefulSet", metadata: {name: "bad-sts"},
	spec: {serviceName: "bad-sts", selector: {matchLabels: {sts: "bad"}},
	template: {metadata: {labels: (.metadata.labels + {sts: "bad"})}, spec: .spec}}}' |
	expect_deny "worker ns: StatefulSet with bad template rejected" "$NS" '\[readOnlyRootFilesystem\]'
worker_pod x | jq "$BADT" | jq '{apiVersion: "apps/v1", kind: "DaemonSet", metadata: {name: "bad-ds"},
	spec: {selector: {matchLabels: {ds: "bad"}},
	template: {metadata: {labels: (.metadata.labels + {ds: "bad"})}, spec: .spec}}}' |
	expect_deny "worker ns: DaemonSet with bad template rejected" "$NS" '\[readOnlyRootFilesystem\]'
worker_pod x | jq "$BADT" | jq '{apiVersion: "v1", kind: "ReplicationController", metadata: {name: "bad-rc"},
	spec: {replicas: 1, selector: {rc: "bad"},
	template: {metadata: {labels: (.metadata.labels + {rc: "bad"})}, spec: .spec}}}' |
	expect_deny "worker ns: ReplicationController with bad template rejected" "$NS" '\[readOnlyRootFilesystem\]'
worker_pod x | jq '{apiVersion: "batch/v1", kind: "Job", metadata: {name: "good-job"},
	spec: {template: {metadata: {labels: .metadata.labels}, spec: (.spec + {restartPolicy: "Never"})}}}' |
	expect_admit "worker ns: Job with compliant template admitted" "$NS"

# Pods that violate only through what is added after the template was
# admitted: a MutatingAdmissionPolicy (standing in for a mesh sidecar
# injector) adds a root, writable, limitless container to pods labelled
# e2e.codeframe.io/inject. The Deployment and its ReplicaSet pass; the
# ReplicaSet controller's pod creations are denied -> FailedCreate events.
cat >"$WORK/inject.yaml" <<'EOF'
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata:
  name: e2e-inject-sidecar
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["pods"]
  matchConditions:
  - name: labelled
    expression: "has(object.metadata.labels) && 'e2e.codeframe.io/inject' in object.metadata.labels"
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{spec: Object.spec{containers: [Object.spec.containers{name: "injected-proxy", image: "registry.example/proxy:1"}]}}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata:
  name: e2e-inject-sidecar
spec:
  policyName: e2e-inject-sidecar
EOF
# Policies load asynchronously: wait until a (dry-run) labelled pod in the
# unlabelled namespace comes back with the sidecar.
map_active() {
	worker_pod map-probe | jq '.metadata.labels["e2e.codeframe.io/inject"] = "true"' |
		k apply -n "$NS_PLAIN" --dry-run=server -o json -f - 2>/dev/null |
		jq -e '[.spec.containers[].name] | index("injected-proxy") != null' >/dev/null
}
if OUT=$(k apply -f "$WORK/inject.yaml" 2>&1) && eventually 20 map_active; then
	worker_pod x | deployment_of injected-dep '{"e2e.codeframe.io/inject":"true"}' |
		expect_admit "worker ns: Deployment with compliant template admitted (sidecar added later)" "$NS"
	failedcreate() {
		k get events -n "$NS" -o json | jq -e '[.items[] | select(.reason == "FailedCreate" and
			.involvedObject.kind == "ReplicaSet" and (.involvedObject.name | startswith("injected-dep-")) and
			(.message | test("denied the request")))] | length > 0' >/dev/null
	}
	if eventually 45 failedcreate; then
		pass "worker ns: injected sidecar -> ReplicaSet FailedCreate events with the webhook's denial"
		note "$(k get events -n "$NS" --field-selector reason=FailedCreate -o json |
			jq -r '[.items[] | select(.involvedObject.name | startswith("injected-dep-"))][0].message' | cut -c1-300)"
	else
		fail "worker ns: injected sidecar -> ReplicaSet FailedCreate events with the webhook's denial" \
			"$(k get events -n "$NS" -o json | jq -c '[.items[] | {reason, kind: .involvedObject.kind, message}]' | cut -c1-600)"
	fi
	if [ -z "$(k get pods -n "$NS" -l deploy=injected-dep -o name 2>/dev/null)" ]; then
		pass "worker ns: no pod of the injected Deployment exists"
	else
		fail "worker ns: no pod of the injected Deployment exists"
	fi
	k delete deployment injected-dep -n "$NS" --wait=false >/dev/null 2>&1
	k delete -f "$WORK/inject.yaml" >/dev/null 2>&1
else
	fail "worker ns: MutatingAdmissionPolicy for the injected-sidecar case" "not active within 20s: $OUT"
fi

# --- 5. kubectl debug (ephemeral containers) ---------------------------------------

OUT=$(k debug -n "$NS" worker-ok --image="$IMAGE" --profile=general -c debugger -- sh 2>&1)
if [ $? != 0 ] && grep -q 'denied the request' <<<"$OUT"; then
	pass "worker ns: kubectl debug with a non-compliant ephemeral container rejected"
else
	fail "worker ns: kubectl debug with a non-compliant ephemeral container rejected" "$OUT"
fi
if [ "$(k get pod worker-ok -n "$NS" -o json | jq '.spec.ephemeralContainers // [] | length')" = 0 ]; then
	pass "worker ns: rejected ephemeral container not added"
else
	fail "worker ns: rejected ephemeral container not added"
fi
jq -n '{securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
	capabilities: {drop: ["ALL"]}, seccompProfile: {type: "RuntimeDefault"}}}' >"$WORK/debug-custom.json"
OUT=$(k debug -n "$NS" worker-ok --image="$IMAGE" --profile=restricted --custom="$WORK/debug-custom.json" \
	-c debugger-ok -- sh 2>&1)
if [ $? = 0 ]; then
	pass "worker ns: kubectl debug with a compliant ephemeral container admitted"
else
	fail "worker ns: kubectl debug with a compliant ephemeral container admitted" "$OUT"
fi

# --- 6. other namespaces --------------------------------------------------------------

BAD_FILTER="$C.securityContext.privileged = true | del($C.securityContext.allowPrivilegeEscalation) | del(.spec.automountServiceAccountToken)"
worker_pod plain-bad | jq "$BAD_FILTER" | expect_admit "unlabelled ns: non-compliant pod admitted" "$NS_PLAIN"
k label namespace kube-system "$WORKER_LABEL=true" --overwrite >/dev/null
worker_pod ks-bad | jq "$BAD_FILTER" | expect_admit "kube-system (even labelled as workers): non-compliant pod admitted" kube-system
if grep -q '"kube-system"' "$LOGS/webhook.log"; then
	fail "kube-system: never sent to the webhook" "$(grep -m3 kube-system "$LOGS/webhook.log")"
else
	pass "kube-system: never sent to the webhook"
fi

# --- 7. warn mode -----------------------------------------------------------------------

stop_webhook
if start_webhook --mode warn; then
	worker_pod x | jq "$C.securityContext.readOnlyRootFilesystem = false" | deployment_of warn-dep |
		expect_admit "warn mode: Deployment with bad template admitted" "$NS"
	if grep -q '^Warning: .*readOnlyRootFilesystem' <<<"$OUT"; then
		pass "warn mode: kubectl shows the webhook's warning"
	else
		fail "warn mode: kubectl shows the webhook's warning" "$OUT"
	fi
	warn_pod() { k get pods -n "$NS" -l deploy=warn-dep -o name | grep -q .; }
	if eventually 30 warn_pod; then
		pass "warn mode: the controller's pod admitted"
	else
		fail "warn mode: the controller's pod admitted" "no pod after 30s"
	fi
else
	fail "warn mode: webhook restarts with --mode warn"
fi
stop_webhook
start_webhook --mode enforce || fail "setup: webhook restarts in enforce mode"

# Objects admitted under warn stay operable under enforce: UPDATEs that do not
# change the pod template (or a pod's containers) are admitted, so metadata
# edits and scaling down an old ReplicaSet work; changing the template is
# judged again.
if OUT=$(k label deployment warn-dep -n "$NS" e2e.codeframe.io/touched=1 2>&1); then
	pass "enforce after warn: Deployment metadata update admitted (template unchanged)"
else
	fail "enforce after warn: Deployment metadata update admitted (template unchanged)" "$OUT"
fi
WARN_POD=$(k get pods -n "$NS" -l deploy=warn-dep -o name | head -n 1)
if [ -n "$WARN_POD" ] && OUT=$(k label "$WARN_POD" -n "$NS" e2e.codeframe.io/touched=1 2>&1); then
	pass "enforce after warn: pod label update admitted (containers unchanged)"
else
	fail "enforce after warn: pod label update admitted (containers unchanged)" "${OUT:-no pod}"
fi
OUT=$(k set image deployment/warn-dep -n "$NS" runner=registry.example/worker:2 2>&1)
if [ $? != 0 ] && grep -q 'denied the request' <<<"$OUT" && grep -q 'readOnlyRootFilesystem' <<<"$OUT"; then
	pass "enforce after warn: template change (kubectl set image) denied"
else
	fail "enforce after warn: template change (kubectl set image) denied" "$OUT"
fi
k scale deployment warn-dep -n "$NS" --replicas=0 >/dev/null 2>&1
rs_scaled_down() {
	k get rs -n "$NS" -l deploy=warn-dep -o json |
		jq -e '.items | length > 0 and all(.status.replicas == 0 and .spec.replicas == 0)' >/dev/null
}
if eventually 30 rs_scaled_down; then
	pass "enforce after warn: the controller scales the old ReplicaSet down"
else
	fail "enforce after warn: the controller scales the old ReplicaSet down" \
		"$(k get rs -n "$NS" -l deploy=warn-dep -o json | jq -c '[.items[] | {spec: .spec.replicas, status: .status.replicas}]')"
fi
k delete deployment warn-dep -n "$NS" --wait=false >/dev/null 2>&1

# --- 8. NetworkPolicy coverage against the real watch ------------------------------------

if [ "$NETPOL_MODE" = watch ]; then
	pod_np() { worker_pod np-pod np-app; }
	worker_pod np-pod np-app | expect_deny "netpol watch: pod without a NetworkPolicy denied" "$NS" '\[networkPolicy\]'
	netpol np-app-isolation np-app | k apply -n "$NS" -f - >/dev/null
	admitted_np() { worker_pod np-pod np-app | k apply -n "$NS" --dry-run=server -f - >/dev/null 2>&1; }
	t0=$(date +%s%N)
	if eventually 10 admitted_np; then
		pass "netpol watch: admitted $((($(date +%s%N) - t0) / 1000000)) ms after the NetworkPolicy's creation (limit 10 s)"
	else
		fail "netpol watch: admitted within 10s of the NetworkPolicy's creation"
	fi
	k delete networkpolicy np-app-isolation -n "$NS" >/dev/null
	denied_np() { ! admitted_np; }
	t0=$(date +%s%N)
	if eventually 10 denied_np; then
		pass "netpol watch: denied again $((($(date +%s%N) - t0) / 1000000)) ms after the NetworkPolicy's deletion (limit 10 s)"
	else
		fail "netpol watch: denied again after the NetworkPolicy's deletion"
	fi
else
	skip "netpol watch: NetworkPolicy created/deleted while serving" "webhook has no watch in this tree (issue 4); NetworkPolicies read from files"
fi

# --- 9. failure behaviour -------------------------------------------------------------------

stop_webhook
OUT=$(worker_pod down-1 | k apply -n "$NS" -f - 2>&1)
if [ $? != 0 ] && grep -Eq 'failed calling webhook' <<<"$OUT"; then
	pass "webhook down: worker pod rejected by failurePolicy Fail with the apiserver's error"
	note "$(head -c 300 <<<"$OUT")"
else
	fail "webhook down: worker pod rejected by failurePolicy Fail with the apiserver's error" "$OUT"
fi
worker_pod down-plain | jq "$BAD_FILTER" | expect_admit "webhook down: unlabelled namespace still works" "$NS_PLAIN"
worker_pod down-ks | expect_admit "webhook down: kube-system still works" kube-system
k label namespace kube-system "$WORKER_LABEL-" >/dev/null
start_webhook --mode enforce || fail "webhook restart: ready again"
restored() { worker_pod up-again | k apply -n "$NS" -f - >/dev/null 2>&1; }
if eventually 15 restored; then
	pass "webhook restart: service restored without touching the cluster"
else
	fail "webhook restart: service restored without touching the cluster"
fi
worker_pod x | jq "$C.securityContext.readOnlyRootFilesystem = false" |
	expect_deny "webhook restart: enforcement restored" "$NS" '\[readOnlyRootFilesystem\]'

# --- 10. the apiserver saw no TLS trouble talking to the webhook ----------------------------

if grep -Eiq 'x509|tls: ' "$LOGS/kube-apiserver.log" && grep -Ei 'x509|tls: ' "$LOGS/kube-apiserver.log" | grep -q "$WH_PORT"; then
	fail "apiserver log: no TLS errors calling the webhook" "$(grep -Ei 'x509|tls: ' "$LOGS/kube-apiserver.log" | grep -m2 "$WH_PORT")"
else
	pass "apiserver log: no TLS errors calling the webhook"
fi

# --- 11. self-managed TLS (last: it switches the release's TLS mode) -----------------------
#
# The chart is upgraded to tls.mode=self-managed with webhook.url on the
# Service's DNS name (which only the apiserver resolves, to 127.0.0.1); the
# webhook gets the chart ServiceAccount's token and must create the Secret,
# patch the caBundle, and serve a certificate the apiserver accepts.

tls_case() {
	local tok
	stop_webhook
	if ! OUT=$("$HELM" upgrade "$RELEASE" "$CHART" --namespace "$RELEASE_NS" --kubeconfig "$KUBECONFIG" \
		--reuse-values --set tls.mode=self-managed --set tls.secretName= --set tls.caBundle= \
		--set webhook.url="https://$SVC_HOST:$WH_PORT/validate" 2>&1); then
		fail "self-managed TLS: helm upgrade to tls.mode=self-managed" "$OUT"
		return
	fi
	pass "self-managed TLS: helm upgrade to tls.mode=self-managed"
	tls_start=$(wc -l <"$LOGS/kube-apiserver.log")
	if ! WH_QUIET=1 WH_TLS=self-managed start_webhook --mode enforce; then
		if grep -q 'not in this build' "$LOGS/webhook.log"; then
			skip "self-managed TLS: Secret, caBundle, admission over the managed certificate" \
				"serve has no self-managed TLS in this build (issue 5)"
		else
			fail "self-managed TLS: webhook starts with --tls-secret" \
				"$(grep '"level":"error"' "$LOGS/webhook.log" | tail -n 1)"
		fi
		return
	fi
	if eventually 30 k get secret "$FULLNAME-tls" -n "$RELEASE_NS"; then
		pass "self-managed TLS: Secret $RELEASE_NS/$FULLNAME-tls created"
	else
		fail "self-managed TLS: Secret $RELEASE_NS/$FULLNAME-tls created"
	fi
	cabundle() { k get validatingwebhookconfiguration "$FULLNAME" -o json | jq -r '.webhooks[0].clientConfig.caBundle // empty'; }
	has_cabundle() { [ -n "$(cabundle)" ]; }
	if eventually 30 has_cabundle; then
		cabundle | base64 -d >"$WORK/managed-ca.crt"
		k get secret "$FULLNAME-tls" -n "$RELEASE_NS" -o json | jq -r '.data["tls.crt"]' | base64 -d >"$WORK/managed.crt"
		if openssl verify -CAfile "$WORK/managed-ca.crt" "$WORK/managed.crt" >/dev/null 2>&1; then
			pass "self-managed TLS: caBundle patched and verifies the Secret's certificate"
		else
			fail "self-managed TLS: caBundle patched and verifies the Secret's certificate"
		fi
	else
		fail "self-managed TLS: caBundle patched and verifies the Secret's certificate" "caBundle still empty after 30s"
	fi
	if eventually 20 probe_ready; then
		pass "self-managed TLS: the apiserver calls the webhook over the managed certificate"
	else
		fail "self-managed TLS: the apiserver calls the webhook over the managed certificate"
	fi
	worker_pod tls-ok | expect_admit "self-managed TLS: compliant pod admitted" "$NS"
	if tail -n +"$tls_start" "$LOGS/kube-apiserver.log" | grep -Ei 'x509|tls: |certificate' | grep -q "$SVC_HOST"; then
		fail "self-managed TLS: no TLS errors in the apiserver log" \
			"$(tail -n +"$tls_start" "$LOGS/kube-apiserver.log" | grep -Ei 'x509|tls: ' | grep -m2 "$SVC_HOST")"
	else
		pass "self-managed TLS: no TLS errors in the apiserver log"
	fi
	rotation_case
}

metric() { # name -> value on the probe port ("" when absent)
	curl -sf --max-time 2 "http://127.0.0.1:$WH_PROBE_PORT/metrics" |
		awk -v n="$1" '$1 == n { print $2; exit }'
}
bundle_certs() { cabundle | base64 -d 2>/dev/null | grep -c 'BEGIN CERTIFICATE'; }

# Rotation, forced by short lifetimes: the webhook restarts on a fresh Secret
# with a 24 s leaf and a 48 s CA (renewals at 2/3: leaf at 16 s, CA rollover
# published at 32 s, switched 3 s later, old CA retired when its last leaf
# expires), while admissions run back to back. Done when the served leaf's
# CA changed, the old CA left the caBundle and >= 2 leaves were rotated in.
# Every admission in between must succeed.
rotation_case() {
	local name="self-managed TLS: leaf renewal and CA rollover without a failed admission"
	stop_webhook
	cat >"$WORK/rotate.yaml" <<'YAML'
server:
  tlsLeafValiditySeconds: 24
  tlsCAValiditySeconds: 48
  tlsRolloverPropagationSeconds: 3
  tlsSyncIntervalSeconds: 1
YAML
	k delete secret "$FULLNAME-tls" -n "$RELEASE_NS" >/dev/null 2>&1
	if ! WH_TLS=self-managed start_webhook --mode enforce --config "$WORK/rotate.yaml"; then
		fail "$name" "webhook did not start with short lifetimes"
		return
	fi
	if ! eventually 20 probe_ready; then
		fail "$name" "no admission through the fresh certificate within 20s"
		return
	fi
	worker_pod rot-probe >"$WORK/rot-probe.json"
	local ca0 rot ca n=0 bad=0 first_bad="" t0 done_at="" out
	ca0=$(metric codeframe_webhook_ca_expiry_timestamp_seconds)
	t0=$(date +%s)
	while [ $(($(date +%s) - t0)) -lt 110 ]; do
		out=$(k apply -n "$NS" --dry-run=server -f "$WORK/rot-probe.json" 2>&1)
		n=$((n + 1))
		if ! grep -q 'created (server dry run)' <<<"$out"; then
			bad=$((bad + 1))
			[ -n "$first_bad" ] || first_bad=$out
		fi
		if [ $((n % 4)) = 0 ]; then
			rot=$(metric codeframe_webhook_certificate_rotations_total)
			ca=$(metric codeframe_webhook_ca_expiry_timestamp_seconds)
			if [ -n "$ca" ] && [ "$ca" != "$ca0" ] && [ "${rot%.*}" -ge 2 ] 2>/dev/null &&
				[ "$(bundle_certs)" = 1 ]; then
				done_at=$(($(date +%s) - t0))
				break
			fi
		fi
	done
	# A few more on connections the apiserver opens after the last caBundle
	# change: they can only verify against the new CA alone.
	local i
	for ((i = 0; i < 5; i++)); do
		out=$(k apply -n "$NS" --dry-run=server -f "$WORK/rot-probe.json" 2>&1)
		n=$((n + 1))
		if ! grep -q 'created (server dry run)' <<<"$out"; then
			bad=$((bad + 1))
			[ -n "$first_bad" ] || first_bad=$out
		fi
	done
	note "rotation: $n admissions in $(($(date +%s) - t0)) s, rotations_total=$(metric codeframe_webhook_certificate_rotations_total), CA changed: $([ "$(metric codeframe_webhook_ca_expiry_timestamp_seconds)" != "$ca0" ] && echo yes || echo no), CAs in caBundle: $(bundle_certs)"
	if [ -z "$done_at" ]; then
		fail "$name" "rollover not complete within 110 s (failed admissions: $bad)"
	elif [ "$bad" != 0 ]; then
		fail "$name" "$bad of $n admissions failed; first: $first_bad"
	elif tail -n +"$tls_start" "$LOGS/kube-apiserver.log" | grep -Ei 'x509|tls: ' | grep -q "$SVC_HOST"; then
		fail "$name" "apiserver log: $(tail -n +"$tls_start" "$LOGS/kube-apiserver.log" | grep -Ei 'x509|tls: ' | grep -m1 "$SVC_HOST")"
	else
		pass "$name ($n admissions over ${done_at} s)"
	fi
}
if [ "$CHART_INSTALLED" = 1 ] && [ -n "${E2E_APISERVER_HOSTS:-}" ]; then
	tls_case
elif [ "$CHART_INSTALLED" = 1 ]; then
	skip "self-managed TLS" "needs root for the apiserver's private /etc/hosts"
else
	skip "self-managed TLS" "needs the chart (issue 9)"
fi

# --- 12. the webhook itself: clean exits, no sanitizer reports ------------------------------
# (`make SANITIZE=address,undefined e2e` runs all of the above with the ASan/UBSan build.)

stop_webhook
if grep -Eq 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:' "$LOGS/webhook.log"; then
	fail "webhook: no sanitizer reports" "$(grep -Em3 'Sanitizer|runtime error:' "$LOGS/webhook.log")"
elif [ -n "$WH_BAD_EXIT" ]; then
	fail "webhook: every stop was a clean exit" "exit statuses:$WH_BAD_EXIT"
else
	pass "webhook: every stop was a clean exit, no sanitizer reports"
fi

# --- summary --------------------------------------------------------------------------------

if [ "$CHART_INSTALLED" = 1 ]; then
	if OUT=$("$HELM" uninstall "$RELEASE" --namespace "$RELEASE_NS" --kubeconfig "$KUBECONFIG" 2>&1); then
		pass "chart: helm uninstall"
	else
		fail "chart: helm uninstall" "$OUT"
	fi
fi
echo "e2e: $npass passed, $nfail failed, $nskip skipped"
[ "$nfail" = 0 ] || exit 1
[ "${E2E_STRICT:-0}" = 1 ] && [ "$nskip" != 0 ] && exit 1
exit 0
