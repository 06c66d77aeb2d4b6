"""`modelops import` from a registry filled with plain MLflow calls (a real `mlflow server`, and an embedded
SQLite one), then validate, plan and apply: the versions are adopted (tags only), and nothing else changes."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelops.artifacts import digest
from modelops.registry import projection as state
from modelops.registry.plan import diff
from modelops.registry.projection import ActualModel, ActualVersion
from modelops.registry.report import render
from tests.conftest import ROOT
from tests.processes import free_port
from tests.registry.helpers import run

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def populate(uri: str, prefix: str, *, every: bool = True, artifacts: Path | None = None) -> None:
    """Models as a team on plain MLflow makes them: logged in runs, registered, aliased.

    `<prefix>churn`: two pickled scikit-learn versions with an input example, production -> 1, staging -> 2;
    `<prefix>fraud`: one skops version (MLflow's default, served through pyfunc) without an example;
    `<prefix>keep`: one pickled version, production -> 1 (never applied); only that one unless `every`. Models
    import refuses: `<prefix>empty`: no version; `<prefix>unsigned`: logged without a signature;
    `<prefix>proba`: a skops model whose MLflow predict answers probabilities (served through pyfunc);
    `<prefix>odds`: two pickled versions whose MLflow predict answers probabilities, the second with 2 classes.
    The requirements are given (MLflow's inference of them takes seconds a model). `artifacts`: where the
    runs' files go, for a registry that is not a server (else MLflow writes them under the working folder)."""
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = FEATURES
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(f"{prefix}team", artifact_location=artifacts and artifacts.as_uri())
    mlflow.set_experiment(experiment_id=experiment)

    pins = [f"{package}=={version(package)}" for package in ("scikit-learn", "numpy", "scipy", "pandas", "skops",
                                                              "cloudpickle", "mlflow")]

    def log(model: object, name: str, **options: object) -> None:
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model.fit(x, y), name="model", pip_requirements=pins, **options)
        mlflow.register_model(info.model_uri, name)

    pickled = {"input_example": x.head(2), "serialization_format": "cloudpickle"}
    log(LogisticRegression(max_iter=300), f"{prefix}keep", **pickled)
    client.set_registered_model_alias(f"{prefix}keep", "production", "1")
    if not every:
        return
    for model in (LogisticRegression(max_iter=300), RandomForestClassifier(n_estimators=3, random_state=0)):
        log(model, f"{prefix}churn", **pickled)
    client.set_registered_model_alias(f"{prefix}churn", "production", "1")
    client.set_registered_model_alias(f"{prefix}churn", "staging", "2")
    client.update_registered_model(f"{prefix}churn", description="Will a customer leave?")
    client.update_model_version(f"{prefix}churn", "2", description="a small forest")
    log(LogisticRegression(max_iter=300), f"{prefix}fraud", signature=mlflow.models.infer_signature(x, y))
    client.create_registered_model(f"{prefix}empty")
    log(LogisticRegression(max_iter=300), f"{prefix}unsigned")
    log(LogisticRegression(max_iter=300), f"{prefix}proba", input_example=x.head(2), pyfunc_predict_fn="predict_proba")
    log(LogisticRegression(max_iter=300), f"{prefix}odds", pyfunc_predict_fn="predict_proba", **pickled)
    with mlflow.start_run():  # the same inputs, two classes: kept in MLflow, left out of the manifest
        two = LogisticRegression(max_iter=300).fit(x, y.where(y == 0, 1))
        info = mlflow.sklearn.log_model(two, name="model", pip_requirements=pins, pyfunc_predict_fn="predict_proba",
                                        **pickled)
    mlflow.register_model(info.model_uri, f"{prefix}odds")


@pytest.fixture(scope="module")
def registry(mlflow_server) -> str:
    populate(mlflow_server.uri, "imp-")
    return mlflow_server.uri


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    return root


def versions(uri: str, name: str) -> list[tuple[str, str, dict]]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted((v.version, v.source, dict(v.tags)) for v in client.search_model_versions(f"name = '{name}'"))


def test_imported_folders_validate_and_apply_adopts_them_with_tags_only(registry: str, tmp_path: Path) -> None:
    root = repo(tmp_path)
    done = run(root, "import", "imp-churn", "imp-fraud", "--offline", "--tracking-uri", registry, "--owner",
               "@data/churn")  # the loading is validate's, below
    assert "imported models/imp-churn/: flavor sklearn; versions 1.0.1 (MLflow 1), 1.0.2 (MLflow 2); " \
           "environments production 1.0.1, staging 1.0.2" in done.stdout
    assert "imported models/imp-fraud/: flavor pyfunc; versions 1.0.1 (MLflow 1); environments none" in done.stdout
    assert "  i no input example was logged: add example.json" in done.stdout
    churn = root / "models/imp-churn"
    manifest = (churn / "model.yaml").read_text()
    assert "description: Will a customer leave?\n" in manifest and "- '@data/churn'\n" in manifest
    assert "  - name: sepal_length\n    type: double\n" in manifest
    assert "  - name: prediction\n    type: long\n" in manifest
    assert "  description: a small forest\n  artifact:\n    uri: artifacts/1.0.2/\n" in manifest
    assert "deployments:\n  production:\n    version: 1.0.1\n  staging:\n    version: 1.0.2\n" in manifest
    assert json.loads((churn / "example.json").read_text()) == {"inputs": [
        dict(zip(FEATURES, row, strict=True)) for row in ([5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2])]}
    requirements = (churn / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "mlflow" not in requirements
    fraud = (root / "models/imp-fraud/requirements.txt").read_text().splitlines()
    assert fraud[0].startswith("mlflow-skinny==") and any(line.startswith("pandas==") for line in fraud)
    assert digest(churn / "artifacts/1.0.1") in manifest
    assert sorted(p.name for p in (root / "models").iterdir()) == ["imp-churn", "imp-fraud"]  # no staging left

    run(root, "validate", "models/imp-churn", "models/imp-fraud", uri=registry)  # loads and scores each version
    plan = json.loads(run(root, "plan", "--format", "json", "models/imp-churn", "models/imp-fraud",
                          uri=registry).stdout)
    assert [(a["kind"], a["model"], a.get("version", "")) for a in plan["actions"]] == [
        ("adopt-version", "imp-churn", "1.0.1"), ("adopt-version", "imp-churn", "1.0.2"),
        ("update-model", "imp-churn", ""), ("adopt-version", "imp-fraud", "1.0.1"), ("update-model", "imp-fraud", "")]
    assert plan["drift"] == [] and plan["notes"] == []

    before = versions(registry, "imp-churn")
    applied = json.loads(run(root, "apply", "--format", "json", "models/imp-churn", "models/imp-fraud",
                             uri=registry).stdout)
    assert {a["kind"] for a in applied["actions"]} == {"adopt-version", "update-model"}
    after = versions(registry, "imp-churn")
    assert [(n, source) for n, source, _ in after] == [(n, source) for n, source, _ in before]  # no upload
    tags = after[0][2]
    assert tags[state.VERSION] == "1.0.1" and tags[state.COMPLETE] == "true"
    assert tags[state.SHA256] == digest(churn / "artifacts/1.0.1")
    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    assert client.get_model_version_by_alias("imp-churn", "production").version == "1"
    assert client.get_model_version("imp-churn", "2").description == "a small forest"

    again = run(root, "plan", "--format", "json", "models/imp-churn", "models/imp-fraud", uri=registry)
    assert json.loads(again.stdout) == {"actions": [], "drift": [], "notes": []}
    written = digest(churn)
    second = run(root, "import", "imp-churn", "--tracking-uri", registry)
    assert second.stdout == "  i imp-churn is managed by modelops already, from models/imp-churn/: nothing to " \
                            "import\nnothing to import\n"
    assert digest(churn) == written


def test_import_by_uri_twice_changes_nothing_and_never_overwrites(registry: str, tmp_path: Path) -> None:
    root = repo(tmp_path)
    refused = run(root, "import", "imp-keep", "--uri", "--tracking-uri", registry, check=1)  # not the repository's
    assert refused.stderr.startswith("error: --uri: the models:/ URIs it writes resolve in the repository's "
                                     "registry (sqlite:///")
    first = run(root, "import", "imp-keep", "--uri", "--offline", "--format", "json", uri=registry)
    imported = json.loads(first.stdout)["imported"]
    assert [(i["model"], i["written"], i["versions"]) for i in imported] == [
        ("imp-keep", True, {"1": "1.0.1"})]
    folder = root / "models/imp-keep"
    assert "    uri: models:/imp-keep/1\n" in (folder / "model.yaml").read_text()
    assert not (folder / "artifacts").exists()
    run(root, "validate", "models/imp-keep", uri=registry)  # the pointer resolves, has its digest, and loads
    written = digest(folder)

    second = run(root, "import", "imp-keep", "--uri", "--offline", "--tracking-uri", registry, uri=registry)
    assert second.stdout.startswith("unchanged models/imp-keep/: flavor sklearn;")
    assert "  i already imported: nothing to change" in second.stdout
    assert digest(folder) == written

    manifest = folder / "model.yaml"
    manifest.write_text(manifest.read_text().replace("- version: 1.0.1", "- version: 1.0.1\n  description: edited"))
    refused = run(root, "import", "imp-keep", "--uri", "--offline", uri=registry, check=1)
    assert "\nmodels/imp-keep: MODEL: models/imp-keep/ exists and differs from what import would write\n  hint: " \
           "import never overwrites" in refused.stderr
    assert "edited" in manifest.read_text()


def test_models_whose_mlflow_predict_answers_probabilities_import_with_their_classes(registry: str,
                                                                                     tmp_path: Path) -> None:
    root = repo(tmp_path)
    done = run(root, "import", "imp-odds", "imp-proba", "--tracking-uri", registry, "--owner", "@data/odds")
    assert "imported models/imp-odds/: flavor sklearn; versions 1.0.2 (MLflow 2); environments none" in done.stdout
    assert "  i MLflow version 1 left out (its classes [0, 1, 2] are not the latest's [0, 1]): kept in MLflow" \
           in done.stdout
    assert "imported models/imp-proba/: flavor pyfunc; versions 1.0.1 (MLflow 1)" in done.stdout
    odds = (root / "models/imp-odds/model.yaml").read_text()
    assert "flavor: sklearn\nmethod: predict_proba\nsignature:\n" in odds
    assert "  outputs:\n  - name: p_0\n    type: double\n    label: 0\n  - name: p_1\n    type: double\n    " \
           "label: 1\nexample:" in odds
    proba = (root / "models/imp-proba/model.yaml").read_text()
    assert "flavor: pyfunc\nmethod: predict_proba\n" in proba and "    label: 2\n" in proba

    run(root, "validate", "models/imp-odds", "models/imp-proba", uri=registry)  # each class checked, by loading
    applied = json.loads(run(root, "apply", "--format", "json", "models/imp-odds", uri=registry).stdout)
    assert [a["kind"] for a in applied["actions"]] == ["adopt-version", "update-model"]
    again = run(root, "plan", "--format", "json", "models/imp-odds", uri=registry)
    assert json.loads(again.stdout) == {"actions": [], "drift": [], "notes": [
        "imp-odds (no modelops.version tag) (MLflow version 1) is not in the manifest (kept, never deleted)"]}


@pytest.mark.parametrize(("name", "message"), [
    ("imp-nope", "error: MODEL: no registered model imp-nope in the registry at {uri}\n"),
    ("imp-empty", "error: MODEL: registered model imp-empty has no versions\n"),
    ("imp-unsigned", "error: MODEL: imp-unsigned version 1 (the latest): it was logged without a signature "
                     "(inputs and outputs)\n"),
    ("imp-proba", "error: MODEL: imp-proba version 1 (the latest) answers probabilities (predict_fn: predict_proba): "
                  "its classes are read by loading it\n"),
    ("Imp_Churn", "error: MODEL: 'Imp_Churn' is not a model name\n"),
])
def test_a_model_import_cannot_take_is_refused_and_nothing_is_written(registry: str, tmp_path: Path, name: str,
                                                                      message: str) -> None:
    root = repo(tmp_path)
    done = run(root, "import", "imp-keep", name, "--offline", "--tracking-uri", registry, check=1)
    assert message.format(uri=registry) + "  hint: " in done.stderr
    assert "Traceback" not in done.stderr
    assert list((root / "models").iterdir()) == []  # imp-keep was fine, but nothing is half-done


def test_an_unreachable_registry_is_one_error(tmp_path: Path) -> None:
    root = repo(tmp_path)
    uri = f"http://127.0.0.1:{free_port()}"
    done = run(root, "import", "--all", "--tracking-uri", uri, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
               check=1)
    assert done.stderr.startswith(f"error: cannot reach the registry at {uri}: ")
    assert "hint: is the MLflow server running? import writes nothing" in done.stderr
    assert "Traceback" not in done.stderr and list((root / "models").iterdir()) == []


def test_import_all_from_an_embedded_registry_into_a_repository_that_requires_signatures(tmp_path: Path) -> None:
    """--all takes every model it can, and says which it skips; a registry in a SQLite file works too. Where
    production must be signed, the folder is written (to sign in) and a note says what to sign."""
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    populate(uri, "", every=False, artifacts=tmp_path / "team-artifacts")
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("Team Model")
    root = repo(tmp_path)
    shutil.copytree(ROOT / "keys", root / "keys")
    (root / "pyproject.toml").write_text('[tool.modelops.signing]\ntrusted_keys = ["keys/*.pub"]\n'
                                         'require = ["production"]\n')
    done = run(root, "import", "--all", "--offline", "--tracking-uri", uri)
    assert [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("imported")] == [
        "imported models/keep/"]
    assert "  i 'Team Model' is not a model name" in done.stdout
    assert '  i require = ["production"] requires signatures of 1.0.1: sign them (modelops sign keep --version V ' \
           "--key PRIVATE_KEY)" in done.stdout

    run(root, "plan", "models/keep", uri=uri, check=1)  # unsigned: refused, as validate refuses it
    run(root, "sign", "keep", "--version", "1.0.1", "--key", "keys/demo-private.pem")
    plan = run(root, "plan", "--format", "json", uri=uri)
    assert {a["kind"] for a in json.loads(plan.stdout)["actions"]} == {"adopt-version", "update-model"}


# -- the pure diff: adoption -----------------------------------------------------------------------------
def test_plan_adopts_only_a_version_whose_files_match(make_repo) -> None:
    from modelops.manifest.loading import load as load_manifest

    root = make_repo(iris="iris")
    model = state.desired(load_manifest(root / "models/iris", root), "abc")
    plain = tuple(ActualVersion(str(i), v.description) for i, v in enumerate(model.versions, start=1))
    actual = ActualModel("iris", model.description, {}, {}, plain)
    assert [a.kind for a in diff([model], {"iris": actual}).actions].count("register") == 3  # digests unknown yet

    known = tuple(ActualVersion(v.number, v.description, files_sha256=m.sha256)
                  for v, m in zip(plain, model.versions, strict=True))
    known = (*known[:2], ActualVersion("3", "", files_sha256="0" * 64))  # version 3's files are another artifact
    plan = diff([model], {"iris": ActualModel("iris", model.description, {}, {}, known)})
    adopted = [(a.kind, a.version, a.number) for a in plan.actions if a.kind in ("adopt-version", "register")]
    assert adopted == [("register", "1.2.0", ""), ("adopt-version", "1.0.0", "1"), ("adopt-version", "1.1.0", "2")]
    adopt = next(a for a in plan.actions if a.kind == "adopt-version")
    assert adopt.tags == {**model.version_tags(model.versions[0]), state.COMPLETE: "true"}
    assert adopt.text() == "adopt iris 1.0.0 (MLflow version 1, registered outside modelops): tag it, no upload"
    assert "| iris | adopt-version | 1.0.0 (MLflow version 1) |  |  |" in render(plan, "markdown")
    assert plan.notes == ("iris (no modelops.version tag) (MLflow version 3) is not in the manifest (kept, never "
                          "deleted)",)

    # an adoption cut short (the digest tagged, not yet the version) is finished, never registered again
    half = (ActualVersion("1", "", {state.SHA256: model.versions[0].sha256}, files_sha256=model.versions[0].sha256),)
    plan = diff([model], {"iris": ActualModel("iris", model.description, {}, {}, half)})
    versions = [(a.kind, a.version, a.number) for a in plan.actions if a.version]
    assert versions == [("register", "1.1.0", ""), ("register", "1.2.0", ""), ("adopt-version", "1.0.0", "1")]

    # files of git's artifact whose MLmodel answers another method than the manifest's: registered anew
    other = (ActualVersion("1", "", files_sha256=model.versions[0].sha256, mlmodel_method="predict_proba"),)
    plan = diff([model], {"iris": ActualModel("iris", model.description, {}, {}, other)})
    assert [(a.kind, a.version) for a in plan.actions if a.version][:1] == [("register", "1.0.0")]


@pytest.mark.parametrize(("classes", "labels"), [([0.0, 1.0], [0, 1]), (["yes", "no"], ["yes", "no"])])
def test_classes_make_one_labelled_column_each(classes: list, labels: list) -> None:
    from modelops.manifest.classes_read import probability_columns

    columns = probability_columns(classes, None, "models:/x/1")
    assert [(c.name, c.type, c.label) for c in columns] == [(f"p_{k}", "double", k) for k in labels]


@pytest.mark.parametrize("classes", [[0.5, 1.0], [True, False], [""], ["a" * 201], "ab", [1, 1.0], []])
def test_classes_no_manifest_can_name_are_a_located_error(classes: object) -> None:
    from modelops.errors import ModelopsError
    from modelops.manifest.classes_read import probability_columns

    with pytest.raises(ModelopsError) as refused:
        probability_columns(classes, None, "models:/x/1")
    assert refused.value.problem.field == "method" and refused.value.problem.hint
