#!/usr/bin/env bash
# Container image build files: Dockerfile structure (multi-stage Debian 12,
# numeric non-root webhook USER), scripts/runtime-packages.sh (the runtime
# stage's package list), scripts/images.sh without a usable engine.
# Prints PASS:/FAIL: lines. Environment: CF_BUILD_DIR (default build).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CF_BUILD_DIR:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; }

for df in webhook/Dockerfile nodeagent/Dockerfile; do
	froms=$(grep -E '^FROM ' "$df" | awk '{print $2}' | tr '\n' ' ')
	if [ "$froms" = "debian:12 debian:12-slim " ]; then pass "$df: builder debian:12, runtime debian:12-slim"
	else fail "$df: stages are '$froms'"; fi
	if grep -q 'runtime-packages.sh build/' "$df" && grep -q 'xargs -a /tmp/runtime-packages.txt apt-get install' "$df"; then
		pass "$df: runtime stage installs only the computed library packages"
	else
		fail "$df: runtime packages not computed from the binary"
	fi
	if grep -qE -- '-dev' <(sed -n '/^FROM debian:12-slim/,$p' "$df"); then
		fail "$df: -dev packages in the runtime stage"
	else
		pass "$df: no -dev packages in the runtime stage"
	fi
done
user=$(grep -E '^USER ' webhook/Dockerfile | tail -1 | awk '{print $2}')
if [[ "$user" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] && [ "${user%%:*}" = 65532 ]; then
	pass "webhook/Dockerfile: numeric non-root USER $user"
else
	fail "webhook/Dockerfile: USER is '$user', want 65532:65532"
fi
if grep -qE '^USER 0(:0)?$' nodeagent/Dockerfile; then pass "nodeagent/Dockerfile: USER 0 stated explicitly"
else fail "nodeagent/Dockerfile: the agent's root USER is not explicit"; fi
for ign in .git build/ charts/ manifests/; do
	if grep -qxF "$ign" .dockerignore; then pass ".dockerignore: $ign"
	else fail ".dockerignore lacks $ign"; fi
done

# runtime-packages.sh on the real binary.
bin=$BUILD_DIR/codeframe-webhook
if [ -x "$bin" ]; then
	if pkgs=$(scripts/runtime-packages.sh "$bin" 2>&1) && grep -qx libcjson1 <<<"$pkgs" && grep -qx libyaml-0-2 <<<"$pkgs"; then
		pass "runtime-packages: $bin needs $(tr '\n' ' ' <<<"$pkgs")"
	else
		fail "runtime-packages: $bin: '$pkgs'"
	fi
	if grep -qxE 'libc6|.*-dev' <<<"$pkgs"; then fail "runtime-packages: lists libc6 or a -dev package"
	else pass "runtime-packages: no libc6 (in every base image), no -dev package"; fi
else
	fail "runtime-packages: $bin is missing (run make)"
fi
printf 'not a binary\n' >"$tmp/text"
if scripts/runtime-packages.sh "$tmp/text" >/dev/null 2>&1; then fail "runtime-packages: accepted a text file"
else pass "runtime-packages: refuses a non-executable"; fi
if scripts/runtime-packages.sh >/dev/null 2>&1; then fail "runtime-packages: ran without an argument"
else pass "runtime-packages: refuses a missing argument"; fi

# make images without an engine: a clear message and a non-zero exit.
if out=$(CONTAINER_ENGINE=codeframe-no-such-engine scripts/images.sh 2>&1); then
	fail "images: succeeded without a container engine"
elif grep -q 'no container engine available' <<<"$out"; then
	pass "images: no engine -> exit 1 with a clear message"
else
	fail "images: no engine, unclear failure: $out"
fi
