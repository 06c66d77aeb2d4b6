#!/usr/bin/env bash
# The main job, on the example models and an embedded MLflow (SQLite under .modelops/):
# sign -> validate -> plan -> apply (register in MLflow, build, push, record image digests) -> plan (in sync)
# -> verify (each image's labels, SBOM and provenance against the registries)
# -> a promotion's diff (dry run) -> import a model registered with plain MLflow -> render Kubernetes manifests
# and Compose files -> smoke -> score a batch file -> serve iris's production deployment (canary + shadow), its versions' signatures verified, at /docs.
# It installs what it needs (a venv, Debian packages) and starts a Docker engine and a registry on
# 127.0.0.1:5000 when none runs. Running it again changes nothing and serves the same images.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system
export PATH="$PWD/.venv/bin:$PATH"
export MODELOPS_BASE_IMAGE=${MODELOPS_BASE_IMAGE:-modelops-base/python:3.11-bookworm-omp}
port=${DEMO_PORT:-8080}
# Production serves only signed versions (docs/signing.md): on top of [tool.modelops.signing] in pyproject.toml,
# which trusts keys/*.pub; validate, apply, the images and their runners verify.
export MODELOPS_SIGNING_REQUIRE=production
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "sign: every example version with the demo key (keys/demo-private.pem, published: a demo only); a signature it already made is kept"
python - <<'PY' | while read -r model version; do modelops sign "$model" --version "$version" --key keys/demo-private.pem; done
import pathlib

import yaml

for manifest in sorted(pathlib.Path("models").glob("*/model.yaml")):
    for entry in yaml.safe_load(manifest.read_text())["versions"]:
        print(manifest.parent.name, entry["version"])
PY

step "validate: manifests, requirements, examples, artifact digests, signatures; each version loads and scores"
modelops validate

step "services: Docker engine, base image, registry"
./scripts/services.sh up

step "plan: what a merge to main would do"
modelops plan

step "apply: register the versions in MLflow (no training run), build and push the images, move aliases"
modelops apply --build --push --images-out .modelops/images.json

step "plan again: the registry matches git"
modelops plan --detailed-exitcode

step "plain MLflow: each production version, loaded with mlflow.pyfunc.load_model from the registry apply wrote, scores its example"
python - "sqlite:///$PWD/.modelops/mlflow.db" <<'PY'
import json
import sys
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore", message="X has feature names")  # scikit-learn models fitted on arrays
mlflow.set_tracking_uri(sys.argv[1])
for folder in sorted(Path("models").glob("*/")):
    model = mlflow.pyfunc.load_model(f"models:/{folder.name}@production")
    rows = json.loads((folder / "example.json").read_text())["inputs"][:2]
    answer = np.asarray(model.predict(pd.DataFrame(rows)))
    answer = answer.round(3) if answer.dtype.kind == "f" else answer
    loader = model.metadata.flavors["python_function"]["loader_module"]
    print(f"{folder.name:18} {loader:15} {answer.tolist()}")
PY

step "verify: each pushed image's labels, SBOM and provenance (in-toto, SLSA v1, attached in the registry) agree with the registries"
mapfile -t pushed < <(python3 -c 'import json; print("\n".join(i["ref"] for i in json.load(open(".modelops/images.json"))["images"]))')
modelops verify "${pushed[@]}"

step "promote (dry run): what moving iris's canary to 1.2.0 at 20 % changes in model.yaml (nothing is written)"
modelops promote iris production --canary 1.2.0 --weight 20 --dry-run

step "import: models a team registered with plain MLflow (no manifest) become model folders (in a scratch repository), checked as validate checks them; churn-odds's MLflow predict answers probabilities"
registry="sqlite:///$PWD/.modelops/mlflow.db"  # the embedded MLflow apply registered into
python - "$registry" <<'PY'  # the team's models, logged and registered with MLflow's own calls (once)
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

uri = sys.argv[1]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
x, y = load_iris(return_X_y=True, as_frame=True)
x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
for name, options in (("churn-legacy", {}), ("churn-odds", {"pyfunc_predict_fn": "predict_proba"})):
    if client.search_registered_models(f"name = '{name}'"):
        continue
    team = client.get_experiment_by_name("legacy-team")
    mlflow.set_experiment(experiment_id=team.experiment_id if team else client.create_experiment(
        "legacy-team", artifact_location=(Path.cwd() / ".modelops" / "legacy-team").as_uri()))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression(max_iter=300).fit(x, y), name="model",
                                        input_example=x.head(2), serialization_format="cloudpickle", **options)
    client.set_registered_model_alias(name, "production", mlflow.register_model(info.model_uri, name).version)
PY
mkdir -p .modelops/import/models
(export MODELOPS_ROOT=.modelops/import; unset MODELOPS_SIGNING_REQUIRE
 modelops import churn-legacy churn-odds --tracking-uri "$registry" && modelops validate)
sed -n '/^method:/p;/^  outputs:/,/^[a-z]/p' .modelops/import/models/churn-odds/model.yaml

step "render: Kubernetes manifests per environment, images pinned by digest"
modelops render --target kubernetes --images .modelops/images.json --out .modelops/deploy

step "render: a Docker Compose file per environment, for a Docker host without a cluster (docs/compose.md)"
modelops render --target compose --images .modelops/images.json --out .modelops/deploy-compose

step "smoke: run each production deployment image (iris; iris-proba: probabilities; wine-xgboost, diabetes-lightgbm: native flavors; diabetes-compiled: ONNX), score its example, remove it"
mapfile -t production < <(python - <<'PY'  # the image each production deployment runs, by digest, as render pins it
from pathlib import Path

from modelops.images.deploy import environment_image, image_refs
from modelops.manifest.loading import load

refs = image_refs(Path(".modelops/images.json"))
for folder in sorted(Path("models").glob("*/")):
    m = load(folder, Path.cwd()).manifest
    if "production" in m.deployments:
        print(environment_image(m.name, m.deployments["production"], refs, ""))
PY
)
modelops smoke "${production[@]}"
image=$(printf '%s\n' "${production[@]}" | grep '/iris@')

step "score: a batch of iris rows with the production image (python -m modelops score, as its CronJob runs it)"
mkdir -p .modelops/batch
python3 - <<'PY'
import csv, json
rows = json.load(open("models/iris/example.json"))["inputs"]
with open(".modelops/batch/rows.csv", "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows * 100)
PY
docker run --rm --network none --user "$(id -u):$(id -g)" -v "$PWD/.modelops/batch:/data" "$image" \
  python -m modelops score /model --env production --input /data/rows.csv --output /data/scored.csv
head -3 .modelops/batch/scored.csv

step "serve: iris production (1.0.0, canary 1.1.0 at 10 %, shadow 1.2.0)"
docker rm -f modelops-demo-iris >/dev/null 2>&1 || true
docker run -d --name modelops-demo-iris --network host -e PORT="$port" -e MODELOPS_ENV=production \
  "$image" >/dev/null
for _ in $(seq 120); do
  curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/ready" >/dev/null
docker logs modelops-demo-iris 2>&1 | grep 'signature verified'
curl -fsS -H 'Content-Type: application/json' -D - -o /dev/null "http://127.0.0.1:$port/invocations" \
  -d '{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
       "data": [[5.1, 3.5, 1.4, 0.2]]}}' | grep -i '^x-model-version'
echo
echo "iris is served from $image"
echo "  Swagger UI:  http://127.0.0.1:$port/docs"
echo "  stop it:     docker rm -f modelops-demo-iris; scripts/services.sh down"
