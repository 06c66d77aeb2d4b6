"""`modelops import`: a model folder per model of an MLflow registry filled with plain MLflow calls.

Each registered version becomes a manifest version: MLflow version N is the semantic version 1.0.N, its
artifact the files `models:/<name>/<N>` downloads (copied to `artifacts/1.0.N/`, or pointed to by that URI),
pinned by their digest. The latest version gives the flavor (its framework's own when modelops serves it,
else pyfunc), the method (`predict_proba` when its python_function answers probabilities: one output per
class, the classes read by loading it in the sandbox), the signature, the requirements and, when it was
logged with one, the example; a version that another flavor, method or signature would need (or, for
probabilities, whose classes differ) is left out (kept in MLflow). Each alias becomes the
environment of its name, serving its version. `apply` then adopts the versions (plan: `adopt-version`).

A folder is made in a hidden folder beside `models/<name>/`, checked as `validate` checks it (loading
included, unless offline) and renamed into place; every model asked for is checked before any is written.
An existing folder is left as it is: when it is what import would write, nothing changes, else import refuses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from importlib.metadata import version as installed_version
from pathlib import Path

import yaml

from modelops import artifacts
from modelops.errors import ModelopsError, Problem
from modelops.files import shown
from modelops.manifest import classes_read
from modelops.manifest.loading import from_bytes
from modelops.manifest.model import ENV_RE, MANIFEST, MAX_TEXT, METHODS, MODELS_DIR, NAME_HINT, NAME_RE, Column
from modelops.manifest.validate import check
from modelops.registry import lock
from modelops.registry.client import Registry, registered_uri
from modelops.registry.mlmodel_read import Reading, read, requirements_for
from modelops.registry.projection import MANAGED, ActualModel, ActualVersion
from modelops.signature.probabilities import PREDICT
from modelops.workspace import Workspace

ARTIFACTS = "artifacts"
EXAMPLE = "example.json"
REQUIREMENTS = "requirements.txt"
SERVED = ("sklearn (pickled), xgboost (.ubj or .json), lightgbm, catboost (cbm) and onnx models, and any MLflow "
          "model whose python_function predicts (flavor pyfunc)")


def semver(number: str) -> str:
    """The semantic version of MLflow version `number`."""
    return f"1.0.{number}"


@dataclass(frozen=True)
class Imported:
    """One registered model imported: its folder, whether it was written (False: it already was what import
    writes), its versions (MLflow version -> semantic version), environments and notes."""

    model: str
    folder: str
    written: bool
    flavor: str
    versions: dict[str, str]
    deployments: dict[str, str]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"model": self.model, "folder": self.folder, "written": self.written, "flavor": self.flavor,
                "versions": self.versions, "deployments": self.deployments, "notes": list(self.notes)}


@dataclass
class _Staged:
    imported: Imported
    staged: Path  # the folder made, in the work folder
    target: Path  # where it goes


def importable(registry: Registry) -> tuple[list[str], list[str]]:
    """The names of every registered model import can take (sorted), and a note for each it cannot."""
    names, notes = [], []
    for name, tags in sorted(registry.registered().items()):
        if lock.model_of(name) != name:
            continue  # apply's lock of a model
        if tags.get(MANAGED) == "true":
            notes.append(f"{name} is managed by modelops already (its folder is in git): skipped")
        elif not re.match(NAME_RE, name):
            notes.append(f"{name!r} is not a model name ({NAME_HINT}): skipped; rename it in MLflow to import it")
        else:
            names.append(name)
    return names, notes


def import_models(ws: Workspace, registry: Registry, names: list[str], *, copy: bool, owners: list[str],
                  offline: bool = False) -> tuple[list[Imported], list[str]]:
    """Import the registered models `names` into `models/`: every folder made and checked before any is moved
    into place; nothing is written when one is refused. A model modelops manages already, whose folder is
    there, is left out with a note (returned with the models imported)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress is one line per model
    models = ws.root / MODELS_DIR
    models.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".import-", dir=models))
    try:
        staged, notes = [], []
        for name in dict.fromkeys(names):
            actual = _registered(registry, name)
            if actual.tags.get(MANAGED) == "true" and (models / name / MANIFEST).is_file():
                notes.append(f"{name} is managed by modelops already, from {MODELS_DIR}/{name}/: nothing to import")
                continue
            staged.append(_stage(ws, registry, actual, work, copy=copy, owners=owners, offline=offline))
        problems = []
        for one in staged:
            if not one.imported.written:
                continue
            problems += _checked(ws, one, offline)
        if problems:
            raise ModelopsError.of(problems)
        for one in staged:
            if one.imported.written:
                one.staged.rename(one.target)
        return [one.imported for one in staged], notes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _registered(registry: Registry, name: str) -> ActualModel:
    """Registered model `name`, as the registry holds it."""
    if not re.match(NAME_RE, name):
        raise ModelopsError(f"{name!r} is not a model name", field="MODEL",
                            hint=f"{NAME_HINT}; a registered model named otherwise is renamed in MLflow first")
    actual = registry.read_one(name)
    if actual is None:
        known, _ = importable(registry)
        raise ModelopsError(f"no registered model {name} in the registry at {registry.settings.tracking_uri}",
                            field="MODEL", hint=f"registered models there: {', '.join(known[:20])}" if known else
                            "the registry has no model import can take")
    return actual


def _stage(ws: Workspace, registry: Registry, actual: ActualModel, work: Path, *, copy: bool, owners: list[str],
           offline: bool) -> _Staged:
    """The folder of registered model `actual`, made under `work`, compared with the one in `models/` if any."""
    name, where = actual.name, registry.settings.tracking_uri
    if actual.tags.get(MANAGED) == "true":
        raise ModelopsError(f"{name} is managed by modelops already, but {MODELS_DIR}/{name}/ has no manifest",
                            field="MODEL", hint="import takes models registered with plain MLflow; a managed model's "
                                                "folder comes from the git repository that applies it")
    if not actual.versions:
        raise ModelopsError(f"registered model {name} has no versions", field="MODEL",
                            hint="register a version (mlflow.register_model) before importing it")
    ws.reporter.progress(f"importing {name}: {len(actual.versions)} version(s) from {where}")
    readings = {}
    for version in sorted(actual.versions, key=lambda v: int(v.number)):
        uri = registered_uri(name, version.number)
        path, sha256 = artifacts.download(uri)
        readings[version.number] = (path, sha256, read(path, uri))
    folder = work / name
    folder.mkdir()
    made = _write(folder, actual, readings, copy=copy, owners=owners, offline=offline)
    target = ws.root / MODELS_DIR / name
    written = True
    if target.exists() or target.is_symlink():
        same = target.is_dir() and not target.is_symlink() and artifacts.digest(target) == artifacts.digest(folder)
        if not same:
            raise ModelopsError(f"{shown(target, ws.root)}/ exists and differs from what import would write",
                                file=shown(target, ws.root), field="MODEL",
                                hint="import never overwrites a model folder: move it away to import again, or "
                                     "change it with release and promote")
        written = False
        made.notes.insert(0, "already imported: nothing to change")
    imported = Imported(model=name, folder=shown(target, ws.root), written=written, flavor=made.flavor,
                        versions=made.versions, deployments=made.deployments, notes=tuple(made.notes))
    return _Staged(imported, folder, target)


@dataclass
class _Made:
    flavor: str
    versions: dict[str, str]
    deployments: dict[str, str]
    notes: list[str]


def _write(folder: Path, actual: ActualModel, readings: dict[str, tuple[Path, str, Reading]], *, copy: bool,
           owners: list[str], offline: bool) -> _Made:
    """Write the model folder of `actual` in `folder`: manifest, requirements, example, copied artifacts."""
    name, notes = actual.name, []
    latest_number = max(readings, key=int)
    latest = readings[latest_number][2]
    label = f"{name} version {latest_number} (the latest)"
    if latest.method not in METHODS:
        raise ModelopsError(f"{label}: its python_function answers {latest.method}; a manifest serves "
                            f"{' or '.join(METHODS)}", field="MODEL",
                            hint="log it with pyfunc_predict_fn='predict' (or 'predict_proba', one output per class)")
    if latest.signature is None:
        raise ModelopsError(f"{label}: {latest.problem}", field="MODEL",
                            hint="a manifest needs a column signature: log the model with one "
                                 "(mlflow.models.infer_signature), or write the folder by hand (modelops new, "
                                 "then modelops release)")
    if not latest.flavors:
        raise ModelopsError(f"{label}: its flavors ({', '.join(latest.mlflow_flavors) or 'none'}) are none modelops "
                            "serves", field="MODEL", hint=f"modelops serves {SERVED}")
    flavor = max(latest.flavors, key=lambda f: sum(f in r.flavors for _, _, r in readings.values()))
    if latest.method != PREDICT and offline:
        raise ModelopsError(f"{label} answers probabilities (predict_fn: {latest.method}): its classes are read by "
                            "loading it", field="MODEL", hint="import it without --offline")
    classes = _classes(latest, flavor, readings[latest_number][0], label)
    signature = _signature(latest, classes, label)
    versions: dict[str, str] = {}
    entries = []
    for number in sorted(readings, key=int):
        path, sha256, reading = readings[number]
        why = "" if number == latest_number else _left_out(reading, latest, flavor, classes, path,
                                                           f"{name} version {number}")
        if why:
            notes.append(f"MLflow version {number} left out ({why}): kept in MLflow, not in the manifest")
            continue
        versions[number] = semver(number)
        uri = f"{ARTIFACTS}/{semver(number)}/" if copy else registered_uri(name, number)
        if copy:
            shutil.copytree(path, folder / ARTIFACTS / semver(number), symlinks=True)
            (folder / ARTIFACTS / semver(number)).chmod(0o755)  # not the cache's private mode
        entry: dict = {"version": semver(number)}
        described = _text(_version_of(actual, number).description, f"MLflow version {number}'s description", notes)
        if described:
            entry["description"] = described
        entries.append({**entry, "artifact": {"uri": uri, "sha256": sha256}})
    deployments = _deployments(actual, versions)
    example = next((readings[n][2].example for n in sorted(versions, key=int, reverse=True)
                    if readings[n][2].example), None)
    manifest: dict = {"name": name, "description": _text(actual.description, "the description", notes),
                      "owners": owners, "flavor": flavor}
    if latest.method != PREDICT:
        manifest["method"] = latest.method
    manifest["signature"] = signature
    if example:
        manifest["example"] = EXAMPLE
        (folder / EXAMPLE).write_text(json.dumps({"inputs": example}, indent=2) + "\n")
    else:
        notes.append(f"no input example was logged: add {EXAMPLE} ({{\"inputs\": [records]}}) for the smoke test "
                     "and /docs")
    manifest |= {"requirements": REQUIREMENTS, "versions": entries}
    if deployments:
        manifest["deployments"] = {env: {"version": v} for env, v in deployments.items()}
    pins = requirements_for(latest, flavor, installed_version("pandas"))
    (folder / REQUIREMENTS).write_text("".join(f"{line}\n" for line in pins))
    header = (f"# Imported from the MLflow registered model {name} by `modelops import`: MLflow version N is 1.0.N.\n"
              "# Check the requirements (MLflow inferred them), then change the model by pull request.\n")
    text = header + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=110)
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return _Made(flavor, versions, deployments, notes)


def _left_out(reading: Reading, latest: Reading, flavor: str, classes: list | None, path: Path, label: str) -> str:
    """Why an earlier version cannot be a version of the latest's manifest ("" when it can): another flavor,
    method or signature, or (probabilities) other classes."""
    if flavor not in reading.flavors:
        return f"flavor {flavor} does not load it"
    if reading.method != latest.method:
        return f"it answers {reading.method}, the latest {latest.method}"
    if latest.method == PREDICT:
        return "" if reading.signature == latest.signature else "its signature differs"
    if (reading.signature or {}).get("inputs") != latest.signature["inputs"]:
        return "its signature differs"
    try:
        own = _classes(reading, flavor, path, label)
    except ModelopsError as exc:
        return f"its classes cannot be read: {exc.problem.message}"
    return "" if own == classes else f"its classes {own} are not the latest's {classes}"


def _classes(reading: Reading, flavor: str, path: Path, label: str) -> list | None:
    """The classes of a version that answers probabilities, read by loading it in the sandbox (None for
    one that answers predictions)."""
    if reading.method == PREDICT:
        return None
    inputs = [Column.model_validate(c) for c in reading.signature["inputs"]]
    return classes_read.classes(flavor, path, inputs, reading.method, label)


def _signature(latest: Reading, classes: list | None, label: str) -> dict:
    """The manifest's signature: the latest version's (it has one), with one probability column per class
    when it answers probabilities."""
    if latest.method == PREDICT:
        return latest.signature
    outputs = [Column.model_validate(c) for c in latest.signature["outputs"] or []]
    columns = classes_read.probability_columns(classes, outputs, label)
    return {"inputs": latest.signature["inputs"], "outputs": [c.model_dump(exclude_defaults=True) for c in columns]}


def _version_of(actual: ActualModel, number: str) -> ActualVersion:
    return next(v for v in actual.versions if v.number == number)


def _deployments(actual: ActualModel, versions: dict[str, str]) -> dict[str, str]:
    """environment -> semantic version, one per alias; an alias that cannot be one is refused, since apply
    deletes the aliases git does not make."""
    deployments = {}
    for alias, number in sorted(actual.aliases.items()):
        where = f"{actual.name}@{alias}"
        if not re.fullmatch(ENV_RE, alias):
            raise ModelopsError(f"alias {where} cannot be an environment's name", field="MODEL",
                                hint="an environment is 1-31 lowercase letters, digits and dashes, starting with a "
                                     "letter: rename the alias in MLflow (apply would delete it) and import again")
        if number not in versions:
            raise ModelopsError(f"alias {where} points at MLflow version {number}, which is left out", field="MODEL",
                                hint="point the alias at an imported version in MLflow (apply would delete it), "
                                     "or import a model whose versions share one flavor and signature")
        deployments[alias] = versions[number]
    return deployments


def _text(value: str, what: str, notes: list[str]) -> str:
    """`value` as a manifest's text (no control characters but newlines, at most MAX_TEXT characters); a
    note says when it had to change (apply then writes the changed text to the registry)."""
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", value.replace("\r\n", "\n").replace("\t", " "))[:MAX_TEXT]
    if text != value:
        notes.append(f"{what} was changed to fit a manifest (control characters, or more than {MAX_TEXT} "
                     "characters): apply writes the manifest's")
    return text


def _checked(ws: Workspace, one: _Staged, offline: bool) -> list[Problem]:
    """The problems validate would find in the folder made (none: it may go into place)."""
    display = f"{one.imported.folder}/{MANIFEST}"
    raw = (one.staged / MANIFEST).read_bytes()
    try:
        loaded = from_bytes(raw, one.staged, display)
    except ModelopsError as exc:
        problems = exc.problems
    else:  # signing comes after: the folder is there to sign the versions in
        problems = check(loaded, ws.fetch, offline=offline, reporter=ws.reporter, trust=replace(ws.trust, require=()))
        unsigned = sorted(ws.trust.required([v.version for v in loaded.manifest.versions], loaded.manifest.deployments))
        if unsigned:
            note = (f"{ws.trust.require_text} requires signatures of {', '.join(unsigned)}: sign them (modelops sign "
                    f"{one.imported.model} --version V --key PRIVATE_KEY) before validate and apply take them")
            one.imported = replace(one.imported, notes=(*one.imported.notes, note))
    if not problems:
        return []
    return [*problems, Problem(file=one.imported.folder, field="MODEL",
                               message=f"not written: the folder import makes of {one.imported.model} has the "
                                       "problems above",
                               hint="they come from the registered versions' files (MLmodel, requirements.txt, "
                                    "input example): fix them in MLflow, or write the folder by hand (modelops new, "
                                    "then modelops release)")]
