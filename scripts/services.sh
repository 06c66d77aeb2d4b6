#!/usr/bin/env bash
# Local services for the main job: a Docker engine, a Python base image built without any image hub,
# and an OCI registry on 127.0.0.1:5000 (the default image_registry). Each is started only when it is
# not already there; what this script starts keeps running (pids and logs under .modelops/services/).
#   usage: scripts/services.sh up | down
set -euo pipefail
cd "$(dirname "$0")/.."
state=.modelops/services
mkdir -p "$state"
base_tag=modelops-base/python:3.11-bookworm-omp
registry_port=5000

wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

up() {
  if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (no bridge: containers use the host network)"
    nohup dockerd --iptables=false --ip6tables=false --bridge=none >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pid"
    wait_for 60 docker info || { echo "dockerd did not start; see $state/dockerd.log" >&2; exit 1; }
  fi
  scripts/ci/base-image.sh "$base_tag" >/dev/null
  if ! wait_for 1 curl -fsS "http://127.0.0.1:$registry_port/v2/"; then
    echo "starting a registry on 127.0.0.1:$registry_port"
    cat >"$state/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $PWD/$state/registry-data
http:
  addr: 127.0.0.1:$registry_port
YAML
    nohup docker-registry serve "$state/registry.yml" >"$state/registry.log" 2>&1 &
    echo $! >"$state/registry.pid"
    wait_for 30 curl -fsS "http://127.0.0.1:$registry_port/v2/" \
      || { echo "the registry did not start; see $state/registry.log" >&2; exit 1; }
  fi
  echo "services up: Docker engine, base image $base_tag, registry 127.0.0.1:$registry_port"
}

down() {
  for name in registry dockerd; do
    if [ -f "$state/$name.pid" ]; then
      kill "$(cat "$state/$name.pid")" 2>/dev/null || true
      rm -f "$state/$name.pid"
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
