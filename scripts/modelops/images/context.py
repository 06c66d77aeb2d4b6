"""Render a runner image's build context: Dockerfile, .dockerignore, requirements, runner, model.

Every value that reaches a template is validated here (names, versions, image references, digests
by pattern) or is free text that the templates quote (`| quote`); requirements never reach the
Dockerfile, they are files that pip reads, and each must be pinned with `==`. The runner's packages come at
the versions of its lock, and each venv installs its own lock of the context's wheels (`image_lock`).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import modelops
from modelops import flavors, locks, signing, templates
from modelops.errors import ModelopsError
from modelops.files import check_folder
from modelops.images import image_lock, wheel_strip
from modelops.images.targets import ImageTarget, served
from modelops.manifest import compile_check, requirements
from modelops.manifest.loading import LoadedManifest
from modelops.manifest.model import Manifest
from modelops.scan import sbom
from modelops.signing import policy, verify
from modelops.workspace import Workspace

PORT = 8080
UID = 10001
MODEL_DIR = "/model"
# Healthy = ready: a runner still loading, that cannot load, or shutting down answers /ready 503 (no curl needed).
# It asks the address the runner binds (MODELOPS_HOST, PORT): loopback when that is every interface (0.0.0.0, ::).
HEALTHCHECK = ["python", "-c", "import os, urllib.request; h = os.environ.get('MODELOPS_HOST', '').strip(); "
               "h = {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1'}.get(h, h); "
               "urllib.request.urlopen('http://' + ('[' + h + ']' if ':' in h else h) + ':' + os.environ['PORT'] "
               "+ '/ready', timeout=4)"]
COMPILED_LABEL = "io.modelops.model.compiled.sha256"  # the compiled graph's digest, next to the artifact's
COMPILED_VERSIONS_LABEL = "io.modelops.model.compiled.versions"  # a deployment image's: version=sha256,...


@dataclass
class Context:
    """A rendered build context and what the build needs to know about it."""

    path: Path
    target: ImageTarget
    labels: dict[str, str] = field(default_factory=dict)


def runner_requirements() -> str:
    """The runner's own requirements (modelops/runner/requirements.txt)."""
    return (Path(modelops.__file__).parent / "runner" / "requirements.txt").read_text()


def locked(path: Path, unless: set[str] = frozenset()) -> str:
    """The pins (`name==version`, one a line) of the lock at `path`, less the packages named in `unless`."""
    return "".join(f"{pin.requirement()}\n" for name, pin in sorted(locks.load(path).items()) if name not in unless)


def sbom_tool_requirements() -> str:
    """What the builder stage installs in a venv of its own to write the image's SBOM (never in the image)."""
    return locked(locks.SBOM_TOOL)


def model_requirements(loaded: LoadedManifest) -> str:
    """The model's requirements file, refused unless every line is pinned with `==`."""
    text = loaded.read("requirements")
    _, problems = requirements.parse(loaded, text)
    if problems:
        raise ModelopsError.of(problems)
    return text


def unused_dependencies(loaded: LoadedManifest, model_text: str, verifier: bool = False) -> list[str]:
    """What the flavor's framework (and the `verifier`, model-signing) requires but never imports to serve
    (the UNUSED_DEPENDENCIES of the flavor module and of `signing`), less what the model's requirements pin:
    the image uninstalls them."""
    module = importlib.import_module(flavors.FLAVORS[loaded.manifest.flavor])
    pinned = {pin.name for pin in requirements.parse(loaded, model_text)[0]}
    unused = [*getattr(module, "UNUSED_DEPENDENCIES", ()), *(signing.UNUSED_DEPENDENCIES if verifier else ())]
    return [name for name in unused if name not in pinned]


def requirement_texts(loaded: LoadedManifest, target: ImageTarget | None = None,
                      trust: policy.Trust | None = None) -> list[str]:
    """The requirements an image installs: the runner's, then the model's (a compiled image: ONNX Runtime
    in place of the model's, pinned to the version that verified the compiled graph), then, when its runner
    verifies signatures (`verifies`), model-signing's; last, the runner's lock, less the packages those name (the
    model's pins win, and the runner's own ranges still hold)."""
    if target is not None and compiled_image(loaded, target):
        texts = [runner_requirements(), f"onnxruntime=={_installed('onnxruntime')}\n"]
    else:
        texts = [runner_requirements(), model_requirements(loaded)]
        if target is not None and trust is not None and verifies(loaded, target, trust):
            texts.append((Path(policy.__file__).parent / "requirements.txt").read_text())
    named = {canonicalize_name(Requirement(line.split("#", 1)[0]).name)
             for text in texts[1:] for line in text.splitlines() if line.split("#", 1)[0].strip()}
    return [*texts, locked(locks.RUNNER, named)]


def must_be_signed(loaded: LoadedManifest, target: ImageTarget, trust: policy.Trust) -> bool:
    """True when the policy requires a version of `target` to be signed: then every version it holds must be,
    and is verified before it goes in."""
    m = loaded.manifest
    return bool(trust.required([v.version for v in m.versions], m.deployments) & set(target.versions))


def verifies(loaded: LoadedManifest, target: ImageTarget, trust: policy.Trust) -> bool:
    """True when the image's runner verifies signatures before it loads: its versions must be signed, and it
    serves the signed artifacts (a compiled image serves graphs the build made from verified artifacts)."""
    return must_be_signed(loaded, target, trust) and not compiled_image(loaded, target)


def compiled_image(loaded: LoadedManifest, target: ImageTarget) -> bool:
    """True when `target` serves its versions compiled to ONNX; refused when it would mix the two."""
    m = loaded.manifest
    kinds = {v: m.compiled(v) is not None for v in target.versions}
    if len(set(kinds.values())) > 1:
        env = target.envs[0] if target.envs else ""
        which = ", ".join(f"{v} {'compiled' if c else 'as it is'}" for v, c in kinds.items())
        raise ModelopsError(f"image {target.tag} would serve compiled and uncompiled versions together ({which})",
                            file=loaded.display, line=loaded.line("deployments", env) if env else None,
                            field=f"deployments.{env}" if env else "compile",
                            hint="compile every version a deployment routes to, or none of them")
    return all(kinds.values())


def _installed(package: str) -> str:
    try:
        return installed_version(package)
    except PackageNotFoundError:
        raise ModelopsError(f"{package} is not installed here, and compiled images pin the version that verified "
                            "their graph", hint="pip install onnxruntime skl2onnx onnxmltools") from None


def _image_manifest(m: Manifest, target: ImageTarget, uris: dict[str, str], compiled: dict[str, str]) -> dict:
    """The manifest as the image sees it: only the versions it serves, artifacts at their /model paths (a
    compiled image: an onnx model whose artifacts are the compiled graphs, `compiled` their sha256)."""
    data = m.model_dump(mode="json", exclude_defaults=True)
    data["versions"] = [{**v, "artifact": {"uri": uris[v["version"]],
                                           "sha256": compiled.get(v["version"], v["artifact"]["sha256"])}}
                        for v in data["versions"] if v["version"] in target.versions]
    if compiled:
        data["flavor"] = "onnx"
        data.pop("compile", None)
        for entry in data["versions"]:
            entry.pop("compile", None)
    # a deployment image's environments; a version's image: those it serves alone (Kubernetes runs `serve
    # /model --env ENV` on it) or as their main or canary version (a KServe revision: `--version V` with
    # MODELOPS_ENV), whose payload settings then apply
    envs = target.envs or [env for env, d in m.deployments.items()
                           if served(d) == target.versions or target.primary in served(d)[:1 + bool(d.canary)]]
    data["deployments"] = {env: data["deployments"][env] for env in envs}
    if not data["deployments"]:
        del data["deployments"]
    return data


def _copy(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def _fill(ws: Workspace, loaded: LoadedManifest, target: ImageTarget, out: Path, wheels: Path | None) -> Context:
    m, root, base_image = loaded.manifest, ws.root, ws.settings.base_image
    (out / "requirements").mkdir(parents=True)
    runner_txt, model_txt = out / "requirements" / "runner.txt", out / "requirements" / "model.txt"
    texts = requirement_texts(loaded, target, ws.trust)
    compiled = compiled_image(loaded, target)
    for path, text in zip((runner_txt, model_txt, out / "requirements" / "signing.txt"), texts[:-1], strict=False):
        path.write_text(text)
    signed, carried = must_be_signed(loaded, target, ws.trust), verifies(loaded, target, ws.trust)
    (out / "requirements" / "sbom-tool.txt").write_text(sbom_tool_requirements())
    (out / "wheels").mkdir()
    if wheels is not None:
        image_lock.check(sorted(wheels.glob("*.whl")))
        for wheel in wheel_strip.wheels(wheels, ws.reporter):
            try:
                os.link(wheel, out / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, out / "wheels" / wheel.name)
        platform = image_lock.platform_of(sorted((out / "wheels").glob("*.whl")))
        (out / "requirements" / "image.lock").write_text(image_lock.resolve(out / "wheels", texts, platform))
        (out / "requirements" / "sbom-tool.lock").write_text(
            image_lock.resolve(out / "wheels", [sbom_tool_requirements()], platform))
    _copy(Path(modelops.__file__).parent, out / "runner" / "modelops")

    model_out, uris, digests, graphs = out / "model", {}, {}, {}
    for number in target.versions:
        entry = m.version(number)
        try:
            verified = ws.fetch(entry.artifact.uri, loaded.folder, entry.artifact.sha256)
        except ModelopsError as exc:
            index = [v.version for v in m.versions].index(number)
            raise ModelopsError(exc.problem.message, file=loaded.display,
                                line=loaded.line("versions", index, "artifact"),
                                field=f"versions[{index}].artifact", hint=exc.problem.hint) from None
        if signed:
            _verified_signature(ws, loaded, number, verified, model_out if carried else None)
        relative = f"artifacts/{number}/" + (compile_check.COMPILED_FILE if compiled
                                             else "" if verified.is_dir() else verified.name)
        if compiled:
            graphs |= _compile(loaded, number, verified, model_out / relative)
        else:
            _copy(verified, model_out / relative)
        uris[number], digests[number] = relative, entry.artifact.sha256
    if carried:
        _trusted_keys(ws.trust, model_out / policy.IMAGE_KEYS)
    (model_out / m.requirements).write_text(texts[1])
    if m.example:
        (model_out / m.example).write_text(loaded.read("example"))
    (model_out / "model.yaml").write_text(
        "# The manifest as this image serves it (rendered by modelops).\n"
        + yaml.safe_dump(_image_manifest(m, target, uris, graphs), sort_keys=False))

    labels = {
        "org.opencontainers.image.title": f"{m.name} model runner",
        "org.opencontainers.image.description": m.description,
        "org.opencontainers.image.version": target.tag,
        "org.opencontainers.image.revision": ws.commit,
        "org.opencontainers.image.base.name": base_image,
        "io.modelops.model.name": m.name,
        "io.modelops.model.version": target.primary,
        "io.modelops.model.artifact.sha256": digests[target.primary],
        sbom.LABEL: sbom.IMAGE_PATH,
    }
    if graphs:
        labels[COMPILED_LABEL] = graphs[target.primary]
    if target.envs:
        labels["io.modelops.deployments"] = ",".join(target.envs)
        labels["io.modelops.model.versions"] = ",".join(f"{v}={digests[v]}" for v in target.versions)
        if graphs:
            labels[COMPILED_VERSIONS_LABEL] = ",".join(f"{v}={graphs[v]}" for v in target.versions)
    command = ["python", "-m", "modelops", "serve", MODEL_DIR, *target.serve_args()]
    values = {"model": m.name, "tag": target.tag, "base_image": base_image, "labels": labels,
              "command": command, "healthcheck": HEALTHCHECK, "port": PORT, "uid": UID, "sbom": sbom.IMAGE_PATH,
              "default_env": target.envs[0] if target.envs else "",
              "unused": unused_dependencies(loaded, texts[1], carried), "verifier": carried}
    (out / "Dockerfile").write_text(templates.render("Dockerfile.j2", values, root, loaded.folder))
    (out / ".dockerignore").write_text(templates.render("dockerignore.j2", values, root, loaded.folder))
    return Context(path=out, target=target, labels=labels)


def _verified_signature(ws: Workspace, loaded: LoadedManifest, number: str, artifact: Path,
                        model_out: Path | None) -> None:
    """Verify version `number`'s signature before its artifact goes in (copied to `model_out`, when the
    runner verifies it again)."""
    signature = policy.signature_path(loaded.folder, number)
    try:
        verify.check(artifact, signature, ws.trust)
    except verify.Unverified as exc:
        index = [v.version for v in loaded.manifest.versions].index(number)
        raise ModelopsError(f"{policy.SIGNATURE_DIR}/{signature.name}: {exc.problem.message}", file=loaded.display,
                            line=loaded.line("versions", index, "artifact"),
                            field=f"versions[{index}].artifact.signature", hint=exc.problem.hint) from None
    if model_out is not None:
        _copy(signature, model_out / policy.SIGNATURE_DIR / signature.name)


def _trusted_keys(trust: policy.Trust, out: Path) -> None:
    """The trusted signers, as the runner reads them (`policy.image_trust`)."""
    out.mkdir(parents=True)
    for i, key in enumerate(trust.keys):
        shutil.copyfile(key, out / (key.name if not (out / key.name).exists() else f"{i}-{key.name}"))
    if trust.identities:
        (out / policy.IDENTITIES).write_text(json.dumps([vars(i) for i in trust.identities]))


def _compile(loaded: LoadedManifest, number: str, artifact: Path, out: Path) -> dict[str, str]:
    """Compile version `number` into `out` (verified in the sandbox); {number: the graph's sha256}."""
    done, problems = compile_check.versions(loaded, {number: artifact}, {number: out})
    if problems:
        raise ModelopsError.of(problems)
    return {number: done[number].sha256}


def render(ws: Workspace, loaded: LoadedManifest, target: ImageTarget, out: Path, wheels: Path | None = None
           ) -> Context:
    """Write the build context of `target` to `out` (replaced whole, never left half-written).

    The wheels of `wheels` go in with their shared libraries stripped (see `wheel_strip`).
    """
    check_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        context = _fill(ws, loaded, target, staging, wheels)
        old = out.with_name(f".{out.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    context.path = out
    return context


def default_out(root: Path, target: ImageTarget) -> Path:
    """Where `render` writes a target's context by default: build/images/<model>-<tag>/."""
    return root / "build" / "images" / f"{target.model}-{target.tag}"
