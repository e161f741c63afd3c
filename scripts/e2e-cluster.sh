#!/usr/bin/env bash
# A real, kubelet-less Kubernetes control plane on 127.0.0.1 for end-to-end
# tests: embedded etcd, kube-apiserver and kube-controller-manager, built from
# source by scripts/e2e-build.sh.
#
#   scripts/e2e-cluster.sh up     build if needed, start, wait until usable
#   scripts/e2e-cluster.sh down   stop everything this script started
#   scripts/e2e-cluster.sh env    print `export KUBECONFIG=...` etc. for eval
#   scripts/e2e-cluster.sh status exit 0 if all three processes run
#
# State (PKI, etcd data, logs, pid files, kubeconfig) lives in $E2E_STATE
# (default build/e2e/cluster). `up` starts from an empty state every time;
# `down` keeps the logs for inspection. Only loopback is used; ports are
# picked free at start. Processes are stopped by the pids recorded at start,
# after checking the pid still runs the binary we started.
#
# E2E_APISERVER_HOSTS="name..." resolves those names to 127.0.0.1 for the
# apiserver only (a private mount namespace with its own /etc/hosts; needs
# root), so a webhook `url:` can use a Service DNS name (the name a
# self-managed certificate carries) while the server runs on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
E2E_BUILD=${E2E_BUILD:-$ROOT/build/e2e}
BIN=${E2E_BIN:-$E2E_BUILD/bin}
STATE=${E2E_STATE:-$E2E_BUILD/cluster}
PKI=$STATE/pki
LOGS=$STATE/logs
RUN=$STATE/run
READY_TIMEOUT=${E2E_READY_TIMEOUT:-180}
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1

log() { echo "e2e-cluster: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# free_port VAR: a random free TCP port on 127.0.0.1 into VAR, never one
# handed out before (not a command substitution: $taken must survive between
# calls). Below the kernel's ephemeral range, and free of every socket, not
# only listeners: the local end of an outgoing connection blocks a bind too.
taken=""
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % (ephemeral_low - 20001)))
		case " $taken " in *" $p "*) continue ;; esac
		if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
			taken+=" $p"
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port found"
}

# pid file -> pid if that process still runs the expected binary, else "".
live_pid() {
	local f=$1 name=$2 pid exe
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	case "$pid" in '' | *[!0-9]*) return 0 ;; esac
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
	case "$exe" in */"$name" | */"$name"" (deleted)") echo "$pid" ;; esac
}

gen_pki() {
	mkdir -p "$PKI"
	(
		cd "$PKI"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
			-subj "/CN=codeframe-e2e-ca" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		cat >apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
		openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
			-subj "/CN=kube-apiserver" 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out apiserver.crt -days 2 -extfile apiserver.ext 2>/dev/null
		# Service-account token signing (apiserver) / verification keys.
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
		openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
		rm -f apiserver.csr apiserver.ext ca.srl
		chmod 600 ca.key apiserver.key sa.key
	)
	# Static tokens: token,user,uid,"groups". The admin is system:masters; the
	# controller-manager is the user the default RBAC policy binds its role to.
	ADMIN_TOKEN=$(openssl rand -hex 24)
	KCM_TOKEN=$(openssl rand -hex 24)
	umask 077
	{
		echo "$ADMIN_TOKEN,e2e-admin,e2e-admin-uid,\"system:masters\""
		echo "$KCM_TOKEN,system:kube-controller-manager,kcm-uid"
	} >"$PKI/tokens.csv"
	umask 022
}

write_kubeconfig() { # file token user
	local ca
	ca=$(base64 -w0 <"$PKI/ca.crt")
	umask 077
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $3
  user:
    token: $2
contexts:
- name: e2e
  context:
    cluster: e2e
    user: $3
current-context: e2e
EOF
	umask 022
}

# start NAME LOGFILE ARGV... ; records $RUN/NAME.pid
start() {
	local name=$1 logf=$2
	shift 2
	# setsid: the process must not die with (or get signals meant for) the
	# shell that ran `up`; `down` stops it by pid.
	setsid "$@" >"$logf" 2>&1 </dev/null &
	local pid=$! i
	echo "$pid" >"$RUN/$name.pid"
	# Until setsid has exec'd, /proc/PID/exe is not the binary yet, and
	# live_pid (which guards every kill) would call the process dead.
	for ((i = 0; i < 100; i++)); do
		[ -n "$(live_pid "$RUN/$name.pid" "$(binname "$name")")" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.02
	done
}

api_get() { # path -> body on stdout; fails on HTTP error
	curl -sf --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" \
		"https://127.0.0.1:$API_PORT$1"
}

wait_for() { # description timeout-seconds command...
	local what=$1 t=$2 i
	shift 2
	for ((i = 0; i < t * 4; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		check_alive
		sleep 0.25
	done
	die "timed out after ${t}s waiting for $what (logs: $LOGS)"
}

check_alive() {
	local n
	for n in etcd kube-apiserver kube-controller-manager; do
		[ -f "$RUN/$n.pid" ] || continue
		if [ -z "$(live_pid "$RUN/$n.pid" "$(binname $n)")" ]; then
			log "$n exited; last log lines:"
			tail -n 20 "$LOGS/$n.log" >&2 || true
			do_down >/dev/null 2>&1 || true
			exit 1
		fi
	done
}

binname() { case $1 in etcd) echo e2e-etcd ;; *) echo "$1" ;; esac }

do_up() {
	local n
	for n in etcd kube-apiserver kube-controller-manager; do
		if [ -n "$(live_pid "$RUN/$n.pid" "$(binname $n)")" ]; then
			die "already running ($n, state $STATE); run '$0 down' first"
		fi
	done
	"$ROOT/scripts/e2e-build.sh"
	for n in e2e-etcd kube-apiserver kube-controller-manager; do
		[ -x "$BIN/$n" ] || die "missing $BIN/$n"
	done
	command -v openssl >/dev/null || die "openssl not found"
	command -v curl >/dev/null || die "curl not found"
	command -v ss >/dev/null || die "ss (iproute2) not found"

	local t0 t1
	t0=$(date +%s.%N)
	rm -rf "$STATE"
	mkdir -p "$STATE" "$LOGS" "$RUN" "$STATE/etcd"
	gen_pki
	free_port ETCD_PORT
	free_port ETCD_PEER_PORT
	free_port API_PORT
	free_port KCM_PORT

	start etcd "$LOGS/etcd.log" "$BIN/e2e-etcd" --data-dir "$STATE/etcd" \
		--client-port "$ETCD_PORT" --peer-port "$ETCD_PEER_PORT" --ready-file "$RUN/etcd.ready"
	wait_for "etcd" 60 test -f "$RUN/etcd.ready"

	# MutatingAdmissionPolicy (beta, off by default in 1.34) lets the tests
	# inject a sidecar into controller-created pods the way a mesh injector
	# would, without another webhook server; nothing else depends on it.
	local wrap=()
	if [ -n "${E2E_APISERVER_HOSTS:-}" ]; then
		{
			cat /etc/hosts
			echo "127.0.0.1 $E2E_APISERVER_HOSTS"
		} >"$STATE/hosts"
		command -v unshare >/dev/null || die "E2E_APISERVER_HOSTS needs unshare (util-linux)"
		# unshare and sh both exec, so the recorded pid is the apiserver's.
		wrap=(unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$STATE/hosts")
	fi
	start kube-apiserver "$LOGS/kube-apiserver.log" "${wrap[@]}" "$BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" \
		--token-auth-file="$PKI/tokens.csv" \
		--authorization-mode=Node,RBAC \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" \
		--service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--allow-privileged=true \
		--feature-gates=MutatingAdmissionPolicy=true \
		--runtime-config=admissionregistration.k8s.io/v1beta1=true \
		--endpoint-reconciler-type=none \
		--profiling=false \
		--v="${E2E_APISERVER_V:-2}"
	wait_for "kube-apiserver /readyz" "$READY_TIMEOUT" api_get /readyz

	write_kubeconfig "$STATE/kubeconfig" "$ADMIN_TOKEN" e2e-admin
	write_kubeconfig "$STATE/kcm.kubeconfig" "$KCM_TOKEN" system:kube-controller-manager

	# Controllers a kubelet-less cluster needs for Deployments, service
	# accounts, namespace deletion and owner-reference cleanup; the root CA
	# publisher fills kube-root-ca.crt for projected service-account volumes.
	start kube-controller-manager "$LOGS/kube-controller-manager.log" "$BIN/kube-controller-manager" \
		--kubeconfig="$STATE/kcm.kubeconfig" \
		--authentication-kubeconfig="$STATE/kcm.kubeconfig" \
		--authorization-kubeconfig="$STATE/kcm.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
		--controllers=deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller,root-ca-certificate-publisher-controller \
		--leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$PKI/sa.key" \
		--root-ca-file="$PKI/ca.crt" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--profiling=false \
		--v="${E2E_KCM_V:-2}"
	wait_for "default service account" "$READY_TIMEOUT" \
		api_get /api/v1/namespaces/default/serviceaccounts/default

	cat >"$STATE/env" <<EOF
export KUBECONFIG=$STATE/kubeconfig
export E2E_API_PORT=$API_PORT
export E2E_ETCD_PORT=$ETCD_PORT
export E2E_CA=$PKI/ca.crt
export E2E_LOGS=$LOGS
export E2E_BIN=$BIN
EOF
	t1=$(date +%s.%N)
	log "up in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s: https://127.0.0.1:$API_PORT (KUBECONFIG=$STATE/kubeconfig)"
}

stop_one() { # name
	local n=$1 pid i
	pid=$(live_pid "$RUN/$n.pid" "$(binname "$n")")
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 80; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$n ($pid) ignored SIGTERM for 20s; killing"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 40; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.25
			done
		fi
	fi
	rm -f "$RUN/$n.pid"
}

do_down() {
	[ -d "$RUN" ] || return 0
	stop_one kube-controller-manager
	stop_one kube-apiserver
	stop_one etcd
	rm -f "$RUN/etcd.ready"
	# The etcd data and keys are useless once stopped; logs stay.
	rm -rf "$STATE/etcd" "$PKI" "$STATE/kubeconfig" "$STATE/kcm.kubeconfig" "$STATE/env"
	log "down (logs kept in $LOGS)"
}

do_status() {
	local n rc=0
	for n in etcd kube-apiserver kube-controller-manager; do
		if [ -n "$(live_pid "$RUN/$n.pid" "$(binname $n)")" ]; then
			echo "$n: running"
		else
			echo "$n: stopped"
			rc=1
		fi
	done
	return $rc
}

case "${1:-}" in
up) do_up ;;
down) do_down ;;
env)
	[ -f "$STATE/env" ] || die "no cluster state in $STATE (run '$0 up')"
	cat "$STATE/env"
	;;
status) do_status ;;
*)
	echo "usage: $0 up|down|env|status" >&2
	exit 2
	;;
esac
