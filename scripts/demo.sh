#!/usr/bin/env bash
# `make demo`: shows what codeframe-guard decides, step by step, on the
# sample manifests in examples/. Each step says what it shows, runs one
# command, and prints its output and exit status.
#
# Structure: one function per part (demo_check now; a server part can be
# added as another demo_* function and listed in main), each made of
# `step` calls. Usage: scripts/demo.sh [BUILD_DIR]   (default: build)
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

main() {
	if [ ! -x "$WEBHOOK" ]; then
		echo "demo: $WEBHOOK not built (run make)" >&2
		exit 2
	fi
	demo_check
	printf '\n%sdemo: %d steps, %d with an unexpected exit status%s\n' "$bold" "$steps" \
		"$unexpected" "$off"
	[ "$unexpected" -eq 0 ]
}

main "$@"
