#!/usr/bin/env bash
# `make demo`: shows what codeframe-guard decides, step by step, on the
# sample manifests in examples/. Each step says what it shows, runs one
# command, and prints its output and exit status.
#
# Structure: one function per part: demo_check (offline `check`) and
# demo_server (the HTTPS webhook on loopback with a throwaway CA; it stops
# the server and removes its files on every exit path).
# Usage: scripts/demo.sh [BUILD_DIR]   (default: build)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build}}
WEBHOOK=$BUILD/codeframe-webhook
EX=examples
steps=0 unexpected=0

if [ -t 1 ]; then
	bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' green=$'\e[32m' off=$'\e[0m'
else
	bold='' dim='' red='' green='' off=''
fi

heading() {
	printf '\n%s==== %s ====%s\n' "$bold" "$1" "$off"
}

# step TITLE EXPLANATION EXPECTED_EXIT COMMAND...
# Runs COMMAND, shows its output indented, and whether the exit status is
# the one the explanation promises.
step() {
	local title=$1 why=$2 want=$3
	shift 3
	steps=$((steps + 1))
	printf '\n%s%d. %s%s\n' "$bold" "$steps" "$title" "$off"
	fold -s -w 78 <<<"$why" | sed 's/^/   /'
	printf '%s   $ %s%s\n' "$dim" "$*" "$off"
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	[ -n "$out" ] && sed 's/^/     /' <<<"$out"
	if [ "$rc" -eq "$want" ]; then
		printf '   %s-> exit %d, as expected%s\n' "$green" "$rc" "$off"
	else
		printf '   %s-> exit %d, expected %d%s\n' "$red" "$rc" "$want" "$off"
		unexpected=$((unexpected + 1))
	fi
}

demo_check() {
	heading "Offline checks: codeframe-webhook check"
	step "A compliant worker pod, checked on its own" \
		"examples/worker-pod.yaml has every securityContext setting, limits and no credentials, but nothing isolates it on the network yet: the networkPolicy check fails for Ingress and Egress." \
		1 "$WEBHOOK" check "$EX/worker-pod.yaml"
	step "The same pod together with its NetworkPolicies" \
		"NetworkPolicy objects among the inputs form the policy set, as they would in the cluster: a default-deny Ingress policy and an Egress policy that allows only DNS cover the pod, so it passes (exit 0). The Namespace in that file is not a workload and is skipped." \
		0 "$WEBHOOK" check "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
	step "A worker pod written the quick way" \
		"examples/noncompliant-pod.yaml runs as root, may escalate privileges, adds CHOWN, writes its root filesystem, has no limits, reads a Secret and gets a service account token. Every violation is one line: FILE: Kind/name: message [check-id]." \
		1 "$WEBHOOK" check "$EX/noncompliant-pod.yaml" "$EX/worker-networkpolicies.yaml"
	step "The same pod against the Pod Security Standards baseline level" \
		"baseline only blocks known privilege escalations; root and the default runtime capabilities such as CHOWN are allowed there, so this pod passes. The worker profile (the default) is restricted plus the worker checks." \
		0 "$WEBHOOK" check --profile baseline "$EX/noncompliant-pod.yaml"
	step "A Deployment whose pod template violates" \
		"The rules apply to the pod template of Deployments, Jobs, CronJobs and the other controllers, so a bad Deployment is rejected before any pod exists. Paths point into spec.template.spec." \
		1 "$WEBHOOK" check "$EX/deployment-violating.yaml" "$EX/worker-networkpolicies.yaml"
	step "Machine-readable output for CI" \
		"-o json prints one result per object with its violations (check, path, container, message) and warnings; skipped objects are listed with the reason." \
		1 "$WEBHOOK" check -o json "$EX/deployment-violating.yaml"
	step "With a config file" \
		"examples/config.yaml sets maxima (cpu 4, memory 8Gi), requires emptyDir size limits and limits the worker rules to pods labelled codeframe.io/role=worker in namespace codeframe-workers, as the webhook would with that file." \
		0 "$WEBHOOK" check --config "$EX/config.yaml" "$EX/worker-pod.yaml" "$EX/worker-networkpolicies.yaml"
	step "Bad input is an error, not a pass" \
		"Unreadable or unparseable input (here a duplicate key, which the API server and a naive reader would resolve differently) exits 2 with the file and line." \
		2 "$WEBHOOK" check - <<<$'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n'
}

# ---- the admission server ----
SERVER_PID='' DEMO_TMP=''

stop_server() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	SERVER_PID=''
	[ -n "$DEMO_TMP" ] && rm -rf "$DEMO_TMP"
	DEMO_TMP=''
}

# A throwaway CA and a serving certificate for the webhook's Service name,
# made with the openssl command line (EC P-256, one day).
make_certs() {
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=codeframe-guard demo CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$SVC" -keyout "$d/tls.key" -out "$d/tls.csr" 2>/dev/null &&
	printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$SVC" >"$d/ext" &&
	openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 1 -extfile "$d/ext" -out "$d/tls.crt" 2>/dev/null
}

# Prints an AdmissionReview response readably: the decision, then each
# violation or warning on its own line.
show_response() {
	if command -v jq >/dev/null; then
		jq -r '.response |
			(if .allowed then "ALLOWED" else "DENIED (HTTP-style code \(.status.code))" end),
			(.status.message // empty | sub("^[^:]*: "; "") | split("; ")[] | "  - " + .),
			(.warnings // [] | .[] | "  warning: " + .)' <<<"$1" | sed 's/^/     /'
	else
		sed 's/^/     /' <<<"$1"
	fi
}

# review TITLE EXPLANATION FILE WANT(allowed|denied)
review() {
	local title=$1 why=$2 file=$3 want=$4
	steps=$((steps + 1))
	printf '\n%s%d. %s%s\n' "$bold" "$steps" "$title" "$off"
	fold -s -w 78 <<<"$why" | sed 's/^/   /'
	printf '%s   $ curl --cacert ca.crt https://%s:%s/validate --data-binary @%s%s\n' "$dim" "$SVC" \
		"$PORT" "$file" "$off"
	local out got
	out=$(curl -sS --cacert "$DEMO_TMP/ca.crt" --resolve "$SVC:$PORT:127.0.0.1" \
		-H 'Content-Type: application/json' --data-binary @"$file" \
		"https://$SVC:$PORT/validate?timeout=10s" 2>&1)
	show_response "$out"
	case "$out" in *'"allowed":true'*) got=allowed ;; *'"allowed":false'*) got=denied ;; *) got=error ;; esac
	local uid
	uid=$(sed -n 's/.*"uid": *"\([^"]*\)".*/\1/p' "$file" | head -1)
	printf '%s   server log:%s\n' "$dim" "$off"
	grep -F "\"uid\":\"$uid\"" "$DEMO_TMP/server.log" | sed 's/^/     /'
	if [ "$got" = "$want" ]; then
		printf '   %s-> %s, as expected%s\n' "$green" "$got" "$off"
	else
		printf '   %s-> %s, expected %s%s\n' "$red" "$got" "$want" "$off"
		unexpected=$((unexpected + 1))
	fi
}

demo_server() {
	heading "The admission webhook: codeframe-webhook serve"
	SVC=codeframe-webhook.codeframe-guard.svc
	DEMO_TMP=$(mktemp -d /tmp/codeframe-demo.XXXXXX)
	trap stop_server EXIT
	if ! make_certs "$DEMO_TMP"; then
		echo "demo: openssl could not make the throwaway CA" >&2
		unexpected=$((unexpected + 1))
		return
	fi
	steps=$((steps + 1))
	printf '\n%s%d. Start the webhook on loopback%s\n' "$bold" "$steps" "$off"
	fold -s -w 78 <<<"A throwaway CA signed a certificate for $SVC (the name the API server uses). The server listens on 127.0.0.1 (port 0: any free port), takes NetworkPolicies from a file as it would from the cluster, and prints one JSON line per event." | sed 's/^/   /'
	printf '%s   $ %s serve --listen 127.0.0.1:0 --tls-cert tls.crt --tls-key tls.key --network-policies %s%s\n' \
		"$dim" "$WEBHOOK" "$EX/worker-networkpolicies.yaml" "$off"
	"$WEBHOOK" serve --listen 127.0.0.1:0 --tls-cert "$DEMO_TMP/tls.crt" \
		--tls-key "$DEMO_TMP/tls.key" --network-policies "$EX/worker-networkpolicies.yaml" \
		>"$DEMO_TMP/server.log" 2>&1 &
	SERVER_PID=$!
	PORT=''
	for _ in $(seq 100); do
		PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$DEMO_TMP/server.log")
		[ -n "$PORT" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	sed 's/^/     /' "$DEMO_TMP/server.log"
	if [ -z "$PORT" ]; then
		printf '   %s-> the server did not start%s\n' "$red" "$off"
		unexpected=$((unexpected + 1))
		stop_server
		return
	fi
	printf '   %s-> listening on port %s%s\n' "$green" "$PORT" "$off"
	review "A compliant worker pod" \
		"The AdmissionReview the API server would send for examples/worker-pod.yaml (3 containers). The NetworkPolicies cover it, every container is locked down: allowed." \
		"$EX/admission/worker-pod.json" allowed
	review "A non-compliant worker pod" \
		"examples/noncompliant-pod.yaml: in enforce mode the webhook denies it and the message lists every violation, which kubectl shows to the user." \
		"$EX/admission/noncompliant-pod.json" denied
	review "A Deployment with a bad pod template" \
		"The Deployment itself is denied, so no ReplicaSet or Pod is ever created from it." \
		"$EX/admission/deployment-violating.json" denied
	steps=$((steps + 1))
	printf '\n%s%d. Metrics, then SIGTERM%s\n' "$bold" "$steps" "$off"
	printf '   Prometheus text on /metrics; SIGTERM drains in-flight requests and exits 0.\n'
	curl -sS --cacert "$DEMO_TMP/ca.crt" --resolve "$SVC:$PORT:127.0.0.1" \
		"https://$SVC:$PORT/metrics" | grep -E '^codeframe_webhook_(requests|violations)_total' |
		sed 's/^/     /'
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
	local rc=$?
	SERVER_PID=''
	tail -n 2 "$DEMO_TMP/server.log" | sed 's/^/     /'
	if [ "$rc" -eq 0 ]; then
		printf '   %s-> exit 0, nothing left running%s\n' "$green" "$off"
	else
		printf '   %s-> exit %d, expected 0%s\n' "$red" "$rc" "$off"
		unexpected=$((unexpected + 1))
	fi
	stop_server
}

main() {
	if [ ! -x "$WEBHOOK" ]; then
		echo "demo: $WEBHOOK not built (run make)" >&2
		exit 2
	fi
	demo_check
	demo_server
	printf '\n%sdemo: %d steps, %d with an unexpected exit status%s\n' "$bold" "$steps" \
		"$unexpected" "$off"
	[ "$unexpected" -eq 0 ]
}

main "$@"
