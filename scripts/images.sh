#!/usr/bin/env bash
# Builds the webhook and agent images (webhook/Dockerfile,
# nodeagent/Dockerfile; the build context is the repository root) with docker
# or podman, whichever is installed and reachable; CONTAINER_ENGINE forces one.
# Exit 1 with a clear message when no engine can build: "nothing built" must
# never look like success. Environment: IMAGE_REPO (ghcr.io/codeframe),
# IMAGE_TAG (the chart's appVersion).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${IMAGE_REPO:-ghcr.io/codeframe}
tag=${IMAGE_TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/codeframe-guard/Chart.yaml)}
[ -n "$tag" ] || { echo "images: no appVersion in charts/codeframe-guard/Chart.yaml" >&2; exit 1; }

engine=""
for e in ${CONTAINER_ENGINE:-docker podman}; do
	command -v "$e" >/dev/null || continue
	# A docker client without a daemon is not an engine.
	if "$e" info >/dev/null 2>&1; then engine=$e; break; fi
	echo "images: '$e' is installed but cannot reach its daemon/service" >&2
done
if [ -z "$engine" ]; then
	echo "images: no container engine available (need docker with a running daemon, or podman); no image was built" >&2
	exit 1
fi

images=(codeframe-webhook:webhook/Dockerfile)
[ -f nodeagent/na_main.c ] && images+=(codeframe-agent:nodeagent/Dockerfile)
for spec in "${images[@]}"; do
	name=${spec%%:*} file=${spec#*:}
	echo "images: $engine build -f $file -t $repo/$name:$tag ."
	"$engine" build -f "$file" -t "$repo/$name:$tag" .
done
