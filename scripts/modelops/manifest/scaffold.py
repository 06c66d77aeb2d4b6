"""`modelops new NAME`: a model folder from `templates/new-model/`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated

from modelops import templates
from modelops.errors import ModelopsError, excerpt
from modelops.manifest.model import MAX_TEXT, MODELS_DIR, NAME_HINT, NAME_RE, Manifest

SOURCE = "new-model"
PLACEHOLDER_DIGEST = "0" * 64  # the sha256 of a version whose artifact is not in yet (`release` fills it in)
# flavor -> where the first version's artifact goes, and the requirements (pinned) it needs at run time
SCAFFOLDS = {
    "sklearn": ("artifacts/0.1.0/model.skops",
                "scikit-learn==1.9.1\nnumpy==2.4.6\nscipy==1.17.1\nskops==0.16.0\n"),
    "xgboost": ("artifacts/0.1.0/model.ubj", "xgboost-cpu==3.2.0\nnumpy==2.4.6\nscipy==1.17.1\n"),
    "lightgbm": ("artifacts/0.1.0/model.txt", "lightgbm==4.7.0\nnumpy==2.4.6\nscipy==1.17.1\nnarwhals==2.29.0\n"),
    "catboost": ("artifacts/0.1.0/model.cbm", "catboost==1.2.10\nnumpy==2.4.6\nscipy==1.17.1\npandas==3.1.1\n"),
    "onnx": ("artifacts/0.1.0/model.onnx", "onnxruntime==1.32.0\nnumpy==2.4.6\n"),
    "pyfunc": ("artifacts/0.1.0/", "mlflow-skinny==3.17.2\npandas==3.1.1\nnumpy==2.4.6\n"),
}


def new(root: Path, name: str, owner: str, description: str, flavor: str = "sklearn") -> Path:
    """Write `models/<name>/` (manifest, example, requirements, model card) for an artifact of `flavor`;
    returns the folder."""
    if not re.match(NAME_RE, name):
        raise ModelopsError(f"{name!r} is not a valid model name", field="name",
                            hint=NAME_HINT)
    if flavor not in SCAFFOLDS:
        raise ModelopsError(f"no scaffold for flavor {flavor!r}", field="flavor",
                            hint=f"allowed values are: {', '.join(SCAFFOLDS)}")
    _check_field("owners", [owner])
    _check_field("description", description)
    folder = root / MODELS_DIR / name
    if folder.exists():
        raise ModelopsError(f"{MODELS_DIR}/{name} already exists", hint="choose another name, or edit that model")
    source = root / "templates" / SOURCE
    if not source.is_dir():
        raise ModelopsError(f"no templates/{SOURCE}/ folder in {root}", file=f"templates/{SOURCE}",
                            hint="run modelops new in a repository made from the modelops template, or copy its "
                                 f"templates/{SOURCE}/ folder in")
    env = templates.environment(root)
    artifact, requirements = SCAFFOLDS[flavor]
    values = {"name": name, "owner": owner, "description": description, "sha256": PLACEHOLDER_DIGEST,
              "flavor": flavor, "artifact": artifact, "requirements": requirements}
    staging = root / MODELS_DIR / f".{name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for path in sorted(source.iterdir()):
            if path.suffix == ".j2":
                text = env.get_template(f"{SOURCE}/{path.name}").render(values)
                (staging / path.stem).write_text(text)
            else:
                shutil.copyfile(path, staging / path.name)
        (staging / "artifacts").mkdir()
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _check_field(field: str, value: object) -> None:
    """Validate one user-given value with the manifest's own field type."""
    from pydantic import TypeAdapter, ValidationError

    info = Manifest.model_fields[field]
    kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    try:
        TypeAdapter(kind).validate_python(value, strict=True)
    except ValidationError:
        shown = value[0] if isinstance(value, list) else value
        raise ModelopsError(f"{excerpt(str(shown))} is not valid", field=field,
                            hint=_FIELD_HINTS[field]) from None


_FIELD_HINTS = {"owners": "an owner is @user, @org/team or an e-mail address",
                "description": f"a description is text of at most {MAX_TEXT} characters without control characters"}
