#!/usr/bin/env bash
# The main job, on the example models and an embedded MLflow (SQLite under .modelops/):
# validate -> plan -> apply (register in MLflow, build, push, record image digests) -> plan (in sync)
# -> render Kubernetes manifests and Compose files -> serve iris's production deployment (canary + shadow) at /docs.
# It installs what it needs (a venv, Debian packages) and starts a Docker engine and a registry on
# 127.0.0.1:5000 when none runs. Running it again changes nothing and serves the same images.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
export PATH="$PWD/.venv/bin:$PATH"
export MODELOPS_BASE_IMAGE=${MODELOPS_BASE_IMAGE:-modelops-base/python:3.11-bookworm-omp}
port=${DEMO_PORT:-8080}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "validate: manifests, requirements, examples, artifact digests; each version loads and scores"
modelops validate

step "services: Docker engine, base image, registry"
./scripts/services.sh up

step "plan: what a merge to main would do"
modelops plan

step "apply: register the versions in MLflow (no training run), build and push the images, move aliases"
modelops apply --build --push --images-out .modelops/images.json

step "plan again: the registry matches git"
modelops plan --detailed-exitcode

step "render: Kubernetes manifests per environment, images pinned by digest"
modelops render --target kubernetes --images .modelops/images.json --out .modelops/deploy

step "render: a Docker Compose file per environment, for a Docker host without a cluster (docs/compose.md)"
modelops render --target compose --images .modelops/images.json --out .modelops/deploy-compose

step "smoke: run each production deployment image (iris; iris-proba: probabilities; wine-xgboost, diabetes-lightgbm: native flavors; diabetes-compiled: ONNX), score its example, remove it"
mapfile -t production < <(python3 - <<'PY'
import json
images = json.load(open(".modelops/images.json"))["images"]
print("\n".join(i["ref"] for i in images if "production" in i["deployments"]))
PY
)
modelops smoke "${production[@]}"
image=$(printf '%s\n' "${production[@]}" | grep '/iris:')

step "serve: iris production (1.0.0, canary 1.1.0 at 10 %, shadow 1.2.0)"
docker rm -f modelops-demo-iris >/dev/null 2>&1 || true
docker run -d --name modelops-demo-iris --network host -e PORT="$port" -e MODELOPS_ENV=production \
  "$image" >/dev/null
for _ in $(seq 120); do
  curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/ready" >/dev/null
curl -fsS -H 'Content-Type: application/json' -D - -o /dev/null "http://127.0.0.1:$port/invocations" \
  -d '{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
       "data": [[5.1, 3.5, 1.4, 0.2]]}}' | grep -i '^x-model-version'
echo
echo "iris is served from $image"
echo "  Swagger UI:  http://127.0.0.1:$port/docs"
echo "  stop it:     docker rm -f modelops-demo-iris; scripts/services.sh down"
