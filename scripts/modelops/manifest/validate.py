"""What `modelops validate` checks of one manifest: every problem, each located and with a hint."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path
from typing import Any

from modelops import artifacts
from modelops.errors import ModelopsError, Problem
from modelops.flavors.compiled import COMPILABLE
from modelops.manifest import compile_check, requirements, safe_yaml
from modelops.manifest import load_check as loadcheck
from modelops.manifest.aliases import alias_problems
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import semver_key
from modelops.reporter import Reporter
from modelops.signature.compiled import CompiledSignature
from modelops.signing import policy, verify

Fetch = Callable[[str, Path, str], Path]  # (uri, model folder, sha256) -> verified local path


def check(loaded: LoadedManifest, fetch: Fetch, *, offline: bool = False, reporter: Reporter | None = None,
          trust: policy.Trust | None = None) -> list[Problem]:
    """Every problem of one loaded manifest and the files it names; each signature present, or that `trust`
    requires, is verified (offline too, for local artifacts); unless `offline`, each version is also
    fetched (through `fetch`, which verifies its digest), loaded and scored in the sandbox, and compiled and
    verified when it is served compiled (`reporter` hears how close each compiled version came)."""
    checks = (_name, _owners, _versions, _deployments, alias_problems, _requirements)
    found = [p for check in checks for p in check(loaded)]
    example, example_problems = _example(loaded)
    found += example_problems
    verified, artifact_problems = _artifacts(loaded, fetch, offline)
    found += artifact_problems
    found += _signatures(loaded, verified, trust or policy.Trust())
    if not offline and verified:
        found += _loads(loaded, verified, example)
        found += _compiled(loaded, verified, reporter or Reporter())
    return found


def _name(m: LoadedManifest) -> list[Problem]:
    if m.manifest.name != m.folder.name:
        return [m.problem(("name",), f"{m.manifest.name!r} differs from its folder {m.folder.name!r}",
                          hint=f"rename the folder or set name: {m.folder.name}")]
    return []


def _owners(m: LoadedManifest) -> list[Problem]:
    owners = [owner.lower() for owner in m.manifest.owners]  # GitHub handles and e-mail addresses ignore case
    return [m.problem(("owners", i), f"{m.manifest.owners[i]} is listed twice", hint="list each owner once")
            for i, owner in enumerate(owners) if owner in owners[:i]]


def _versions(m: LoadedManifest) -> list[Problem]:
    problems, seen = [], {}
    previous = None
    for i, entry in enumerate(m.manifest.versions):
        if entry.version in seen:
            problems.append(m.problem(("versions", i, "version"),
                                      f"{entry.version} is listed twice (also versions[{seen[entry.version]}])",
                                      hint="give each version its own number"))
            continue
        seen[entry.version] = i
        if previous and semver_key(entry.version) < semver_key(previous):
            problems.append(m.problem(("versions", i, "version"), f"{entry.version} comes after {previous}",
                                      hint="versions are append-only: list them in increasing order"))
        previous = entry.version
    return problems


def _deployments(m: LoadedManifest) -> list[Problem]:
    known = {v.version for v in m.manifest.versions}
    listed = ", ".join(sorted(known, key=semver_key))
    problems = []

    def refer(path: tuple, version: str) -> None:
        if version not in known:
            problems.append(m.problem(path, f"version {version} is not in versions",
                                      hint=f"known versions are: {listed}"))

    for env, deployment in m.manifest.deployments.items():
        refer(("deployments", env, "version"), deployment.version)
        if deployment.canary:
            refer(("deployments", env, "canary", "version"), deployment.canary.version)
            if deployment.canary.version == deployment.version:
                problems.append(m.problem(("deployments", env, "canary", "version"),
                                          "the canary is the version it splits traffic with",
                                          hint="a canary names another version"))
        for i, version in enumerate(deployment.shadow):
            refer(("deployments", env, "shadow", i), version)
            if version == deployment.version:
                problems.append(m.problem(("deployments", env, "shadow", i),
                                          "a version cannot shadow itself", hint="shadow another version"))
            elif version in deployment.shadow[:i]:
                problems.append(m.problem(("deployments", env, "shadow", i), f"{version} shadows twice",
                                          hint="list each shadow version once"))
    return problems


def _requirements(m: LoadedManifest) -> list[Problem]:
    try:
        return requirements.parse(m, m.read("requirements"))[1]
    except ModelopsError as exc:
        return exc.problems


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def parse_json(text: str) -> Any:
    """Strict JSON as the runner accepts it: no NaN or Infinity, no number overflowing to infinity, at most
    safe_yaml.MAX_DEPTH levels of nesting; raises ValueError saying what is wrong."""
    brackets = [1 if c in "[{" else -1 for c in _JSON_STRING.sub("", text) if c in "[]{}"]
    if max(accumulate(brackets, initial=0)) > safe_yaml.MAX_DEPTH:
        raise ValueError(f"nested deeper than {safe_yaml.MAX_DEPTH} levels")
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows (the runner refuses it)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} overflows to infinity (the runner refuses it)")
    return value


def _example(m: LoadedManifest) -> tuple[dict, list[Problem]]:
    """The example ({"inputs": [...], "outputs": [...]?}) when it fits the signature, and its problems."""
    if m.manifest.example is None:
        return {}, []
    display = str(Path(m.display).parent / m.manifest.example)
    try:
        data = parse_json(m.read("example"))
    except ModelopsError as exc:
        return {}, exc.problems
    except ValueError as exc:
        return {}, [Problem(file=display, field="example", message=f"invalid JSON: {exc}")]
    if not isinstance(data, dict) or set(data) - {"inputs", "outputs"} or "inputs" not in data:
        return {}, [Problem(file=display, field="example", message="expected {\"inputs\": [...], \"outputs\": [...]}",
                            hint="inputs: records of the signature's inputs; outputs (optional): expected answers")]
    signature = m.manifest.signature

    def misfits(columns: CompiledSignature, records: Any) -> list[str]:  # every problem, with its row
        return [f"row {p.row}: {p.message}" if p.row is not None else p.message
                for p in columns.problems(records, "example")]

    problems = [Problem(file=display, field="example.inputs", message=text,
                        hint="make the example fit signature.inputs")
                for text in misfits(CompiledSignature(signature.inputs), data["inputs"])]
    if "outputs" in data:
        problems += [Problem(file=display, field="example.outputs", message=text,
                             hint="make the expected outputs fit signature.outputs")
                     for text in misfits(CompiledSignature(signature.outputs), data["outputs"])]
        if isinstance(data["outputs"], list) and isinstance(data["inputs"], list) \
                and len(data["outputs"]) != len(data["inputs"]):
            problems.append(Problem(file=display, field="example.outputs",
                                    message="there must be as many outputs as inputs"))
    return ({} if problems else data), problems


def _artifacts(m: LoadedManifest, fetch: Fetch, offline: bool) -> tuple[dict[str, str], list[Problem]]:
    verified, problems = {}, []
    for i, entry in enumerate(m.manifest.versions):
        where = ("versions", i, "artifact", "uri")
        try:
            local = artifacts.local_path(entry.artifact.uri, m.folder)
            if local is None and offline:
                continue
            path = fetch(entry.artifact.uri, m.folder, entry.artifact.sha256)
        except ModelopsError as exc:
            field = ("versions", i, "artifact", "sha256") if "sha256" in exc.problem.message else where
            problems.append(m.problem(field, exc.problem.message, hint=exc.problem.hint))
            continue
        verified[entry.version] = str(path)
    return verified, problems


def _signatures(m: LoadedManifest, verified: dict[str, str], trust: policy.Trust) -> list[Problem]:
    """A signature missing where the policy requires one, or one that does not verify (by a trusted signer,
    over the artifact's bytes; with no signer trusted, signatures are not checked); versions whose bytes are
    not here (offline, or broken) are checked for presence only."""
    required = trust.required([v.version for v in m.manifest.versions], m.manifest.deployments)
    problems = []
    for i, entry in enumerate(m.manifest.versions):
        where = ("versions", i, "artifact", "signature")
        signature = policy.signature_path(m.folder, entry.version)
        shown = f"{policy.SIGNATURE_DIR}/{signature.name}"
        present = signature.exists() or signature.is_symlink()
        if not present and entry.version in required:
            problems.append(m.problem(where, f"version {entry.version} is not signed ({shown} is missing) and "
                                      f"{policy.TABLE} requires it ({trust.require_text})",
                                      hint=f"sign it: modelops sign {m.manifest.name} --version {entry.version} "
                                           f"--key PRIVATE_KEY (trusted signers: {trust.signers})"))
        elif present and (trust.keys or trust.identities) and entry.version in verified:
            try:
                verify.check(Path(verified[entry.version]), signature, trust)
            except verify.Unverified as exc:
                problems.append(m.problem(where, f"{shown}: {exc.problem.message}", hint=exc.problem.hint))
    return problems


def _loads(m: LoadedManifest, verified: dict[str, str], example: dict) -> list[Problem]:
    """Load each verified version; score the example too when there is a valid one."""
    results = loadcheck.check(m.manifest.flavor, verified, m.manifest.signature.model_dump(),
                              example.get("inputs"), example.get("outputs"), m.manifest.method)
    index = {v.version: i for i, v in enumerate(m.manifest.versions)}
    hint = "check the artifact and the flavor; it is loaded with the packages installed here"
    return [m.problem(("versions", index[version], "artifact"), f"version {version}: {found}", hint=hint)
            if isinstance(found, str) else
            m.problem(tuple(found["field"]), f"version {version}: {found['message']}", hint=found["hint"])
            for version, found in results.items() if found]


def _compiled(m: LoadedManifest, verified: dict[str, str], reporter: Reporter) -> list[Problem]:
    """Compile and verify each version served compiled (in the sandbox); report how close each came."""
    if not any(m.manifest.compiled(v.version) for v in m.manifest.versions):
        return []
    if m.manifest.flavor not in COMPILABLE:
        return [m.problem(("compile",) if m.manifest.compile else ("versions",), f"a {m.manifest.flavor} model "
                          "cannot be compiled", hint=f"compile serves {', '.join(COMPILABLE)} models; remove compile")]
    done, problems = compile_check.versions(m, verified)
    for version, result in done.items():
        reporter.progress(f"{m.display}: version {version} compiled to ONNX: {result.agreement}")
    return problems
