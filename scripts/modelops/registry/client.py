"""The MLflow adapter: read the registry's state in batches, carry out one action, and lock a model.

Works against any tracking URI MLflow's client accepts (the embedded SQLite store, `http(s)://` servers,
databases). Versions are registered without a run: the verified artifact is uploaded as a logged model
(`create_logged_model` -> `log_model_artifacts` -> `finalize_logged_model`) in the `modelops`
experiment, then registered from `models:/<model id>`, so the registry owns a copy of the files.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelops import artifacts
from modelops.errors import ModelopsError
from modelops.flavors.python_function import answered_method
from modelops.manifest.model import METHODS
from modelops.registry import lock
from modelops.registry import mlflow_model as wrap
from modelops.registry.plan import Action
from modelops.registry.projection import (
    COMPLETE,
    METHOD,
    SHA256,
    VERSION,
    ActualModel,
    ActualVersion,
    DesiredModel,
)
from modelops.settings import STATE_DIR, Settings
from modelops.workspace import Workspace

EXPERIMENT = "modelops"
_NAMES_PER_QUERY = 50
# module a database URI's driver lacks -> what to pip install
_DRIVERS = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient",
            "pymysql": "PyMySQL", "pyodbc": "pyodbc", "pymssql": "pymssql"}


class Registry:
    """One MLflow tracking/registry URI."""

    def __init__(self, ws: Workspace, settings: Settings | None = None) -> None:
        import mlflow
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        self.workspace = ws
        settings = settings or ws.settings  # another registry than the repository's (import reads one)
        if settings.artifact_root:
            (settings.root / STATE_DIR).mkdir(exist_ok=True)
        self.settings = settings
        # The stores resolve `models:/<model id>` sources through the process-wide URIs: set them too.
        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.tracking_uri)
        try:  # a database URI opens (and migrates) its database here
            self.client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
        except ImportError as exc:
            raise _missing_driver(settings, exc) from None
        except (MlflowException, SQLAlchemyError, OSError) as exc:
            message = str(getattr(exc, "message", exc)).strip().splitlines()[0][:300]
            raise settings.error("tracking_uri", f"cannot open the registry at {settings.tracking_uri}: {message}",
                                 hint="check the tracking URI, that its server or database runs, and the "
                                      "credentials in the environment") from None
        self._experiment_id = ""
        self._files: dict[tuple[str, str], str] = {}  # (model, MLflow version) -> the digest of its files
        self._methods: dict[tuple[str, str], str] = {}  # (model, MLflow version) -> the method its MLmodel answers

    # reading -----------------------------------------------------------------------------------------
    def read(self, names: Iterable[str]) -> tuple[dict[str, ActualModel], set[str], dict[str, str]]:
        """The named models (those that exist), the names of every managed model, and the named models
        whose lock another apply holds (name -> who holds it until when), in a few requests."""
        wanted = set(names)
        found, managed, locks = {}, set(), {}
        for model in _pages(lambda token: self.client.search_registered_models(max_results=1000, page_token=token)):
            if model.tags.get("modelops.managed") == "true":
                managed.add(model.name)
            if model.name in wanted:
                found[model.name] = model
            if lock.model_of(model.name) in wanted - {model.name}:
                locks[lock.model_of(model.name)] = lock.Holder(dict(model.tags)).describe()
        versions = self._versions(sorted(found))
        actual = {name: self._with_methods(_actual(m, versions.get(name, []))) for name, m in found.items()}
        return actual, managed, locks

    def registered(self) -> dict[str, dict[str, str]]:
        """Every registered model's name and tags."""
        return {m.name: dict(m.tags) for m in _pages(
            lambda token: self.client.search_registered_models(max_results=1000, page_token=token))}

    def read_one(self, name: str) -> ActualModel | None:
        """One model, read afresh (under its lock)."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return self._with_methods(_actual(model, self._versions([name]).get(name, [])))

    def _versions(self, names: list[str]) -> dict[str, list[Any]]:
        by_model: dict[str, list[Any]] = {}
        for start in range(0, len(names), _NAMES_PER_QUERY):
            chunk = ", ".join(f"'{n}'" for n in names[start:start + _NAMES_PER_QUERY])
            query = f"name IN ({chunk})"
            for version in _pages(lambda token, q=query: self.client.search_model_versions(
                    filter_string=q, max_results=10000, page_token=token)):
                by_model.setdefault(version.name, []).append(version)
        return by_model

    def _with_methods(self, model: ActualModel) -> ActualModel:
        """`model` with the method each complete version answers when its METHOD tag does not say (registered
        before that tag, the tag removed or edited to no method), read from its registered MLmodel once per
        version: a tagged version costs no request."""
        def method(version: ActualVersion) -> ActualVersion:
            if not version.complete or version.tags.get(METHOD) in METHODS:
                return version
            key = (model.name, version.number)
            if key not in self._methods:
                self._methods[key] = _mlmodel_method(registered_uri(*key))
            return replace(version, mlmodel_method=self._methods[key])

        return replace(model, versions=tuple(map(method, model.versions)))

    def with_uploaded(self, model: ActualModel) -> ActualModel:
        """`model` with the sha256 tag of each version's uploaded files (one request per version)."""
        from mlflow.exceptions import MlflowException

        def uploaded(version: ActualVersion) -> str:
            if not version.source.startswith("models:/"):
                return ""
            try:
                return self.client.get_logged_model(version.source.removeprefix("models:/")).tags.get(SHA256, "")
            except MlflowException:
                return ""

        return replace(model, versions=tuple(replace(v, uploaded_sha256=uploaded(v)) for v in model.versions))

    def with_files(self, model: ActualModel) -> ActualModel:
        """`model` with the digest of the files of each version it may adopt (`ActualVersion.adoptable`), as
        `models:/<name>/<version>` downloads them (kept in the artifact cache, by digest), and the method their
        MLmodel answers, once per version. A version whose files cannot be fetched is not adopted."""
        def files(version: ActualVersion) -> ActualVersion:
            if not version.adoptable:
                return version
            key = (model.name, version.number)
            if key not in self._files:
                try:
                    path, sha256 = artifacts.download(registered_uri(model.name, version.number))
                    self._files[key], self._methods[key] = sha256, _method_in(path / "MLmodel")
                except ModelopsError:
                    self._files[key] = ""
            return replace(version, files_sha256=self._files[key], mlmodel_method=self._methods.get(key, ""))

        return replace(model, versions=tuple(map(files, model.versions)))

    # writing -----------------------------------------------------------------------------------------
    def execute(self, action: Action, model: DesiredModel, numbers: dict[str, str]) -> None:
        """Carry out `action`; `numbers` maps semantic versions registered by this apply to MLflow numbers."""
        c, name = self.client, action.model
        if action.kind == "create-model":
            c.create_registered_model(name, tags=action.tags, description=action.description)
        elif action.kind == "delete-incomplete":
            c.delete_model_version(name, action.number)
        elif action.kind == "register":
            numbers[action.version] = self._register(action, model)
        elif action.kind in ("adopt-version", "finish-version", "update-version"):
            if action.description is not None:
                c.update_model_version(name, action.number, description=action.description)
            # the semantic version after the digest, complete last: an adoption cut short is finished later
            for key in sorted(action.tags, key=lambda k: (k == COMPLETE, k == VERSION, k)):
                c.set_model_version_tag(name, action.number, key, action.tags[key])
        elif action.kind == "set-alias":
            c.set_registered_model_alias(name, action.alias, action.number or numbers[action.new])
        elif action.kind == "delete-alias":
            c.delete_registered_model_alias(name, action.alias)
        elif action.kind == "update-model":
            if action.description is not None:
                c.update_registered_model(name, description=action.description)
            for key, value in action.tags.items():
                c.set_registered_model_tag(name, key, value)
        else:
            raise ValueError(action.kind)

    def _register(self, action: Action, model: DesiredModel) -> str:
        from mlflow.entities import LoggedModelStatus

        version = next(v for v in model.versions if v.version == action.version)
        path = self.workspace.fetch(version.uri, model.folder, version.sha256)
        with tempfile.TemporaryDirectory(prefix="modelops-register-") as work:
            pins = self.workspace.manifest(model.folder).read("requirements")
            source = wrap.model_dir(path, model.manifest, pins, Path(work))
            logged = self.client.create_logged_model(self._experiment(), name=_logged_name(model.name, version.version),
                                                     tags={k: action.tags[k] for k in sorted(action.tags)})
            self.client.log_model_artifacts(logged.model_id, str(source))
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        created = self.client.create_model_version(model.name, source=f"models:/{logged.model_id}",
                                                   model_id=logged.model_id, tags=action.tags,
                                                   description=action.description)
        self.client.set_model_version_tag(model.name, created.version, COMPLETE, "true")
        return created.version

    def _experiment(self) -> str:
        """The `modelops` experiment that holds the uploaded models (created once)."""
        from mlflow.exceptions import MlflowException

        if not self._experiment_id:
            found = self.client.get_experiment_by_name(EXPERIMENT)
            if found is None:
                with contextlib.suppress(MlflowException):  # a concurrent apply may create it first
                    self.client.create_experiment(EXPERIMENT, artifact_location=self.settings.artifact_root)
                found = self.client.get_experiment_by_name(EXPERIMENT)
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            self._experiment_id = found.experiment_id
        return self._experiment_id

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Hold `name`'s lock while changing it (see `registry.lock`)."""
        return lock.hold(self.client, self.settings, name, self.workspace.reporter)

    def unlock(self, name: str, *, force: bool = False) -> str:
        """Release `name`'s lock for an operator (refused while its holder looks alive, unless `force`)."""
        return lock.unlock(self.client, self.settings, name, force=force)


def registered_uri(name: str, number: str) -> str:
    """The URI of the files of version `number` of registered model `name`."""
    return f"models:/{name}/{number}"


def _logged_name(model: str, version: str) -> str:
    """A logged model's name (no dots allowed): iris-v1_2_0."""
    return f"{model}-v{version.replace('.', '_')}"


def _actual(model: Any, versions: list[Any]) -> ActualModel:
    return ActualModel(name=model.name, description=model.description or "", tags=dict(model.tags),
                       aliases={alias: str(number) for alias, number in (model.aliases or {}).items()},
                       versions=tuple(ActualVersion(number=str(v.version), description=v.description or "",
                                                    tags=dict(v.tags), source=v.source or "") for v in versions))


def _mlmodel_method(uri: str) -> str:
    """The method the MLmodel of the registered version at `uri` answers, that file downloaded alone and read as
    data (the model is never loaded); a ModelopsError when it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="modelops-mlmodel-") as work:
        path = artifacts.download_data(f"{uri}/MLmodel", Path(work))
        method = _method_in(path)
    if not method:
        raise ModelopsError(f"cannot read the MLmodel of {uri}, to check the method it answers (it has no "
                            "modelops.method tag)", hint="check that the registry's artifact store is reachable; "
                            f"a version modelops registered has an MLmodel file (restore the tag {METHOD})")
    return method


def _method_in(mlmodel: Path) -> str:
    """What the MLmodel file `mlmodel` answers (`answered_method`); "" when it cannot be read as one."""
    import yaml

    try:
        return answered_method(yaml.safe_load(mlmodel.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return ""


def _pages(search: Callable[[str | None], Any]) -> Iterator[Any]:
    token = None
    while True:
        page = search(token)
        yield from page
        token = page.token
        if not token:
            return


@contextlib.contextmanager
def errors(settings: Settings, again: str = "apply resumes where it stopped") -> Iterator[None]:
    """Turn MLflow and transport failures into one user error naming the registry; `again` says what running
    the command again does."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        down = re.search(r"Max retries exceeded.*?\[Errno -?\d+\] ([^\"')]+)", str(exc.message))
        if down:  # the transport gave up: say why in a few words rather than urllib3's whole story
            raise ModelopsError(f"cannot reach the registry at {settings.tracking_uri}: {down.group(1)}",
                                hint=f"is the MLflow server running? {again}") from None
        raise ModelopsError(f"the registry at {settings.tracking_uri} refused: {str(exc.message)[:500]}",
                            hint=f"check the tracking URI, the credentials in the environment, and retry: {again}"
                            ) from None
    except ImportError as exc:
        raise _missing_driver(settings, exc) from None
    except OSError as exc:
        raise ModelopsError(f"cannot reach the registry at {settings.tracking_uri}: {exc}",
                            hint=f"is the MLflow server running? {again}") from None


def _missing_driver(settings: Settings, exc: ImportError) -> ModelopsError:
    """The error for a database URI whose driver is not installed."""
    package = _DRIVERS.get(exc.name or "", exc.name)
    return settings.error("tracking_uri", f"the tracking URI {settings.tracking_uri} needs the Python module "
                          f"{exc.name}, which is not installed",
                          hint=f"pip install {package}, or name an installed driver in the URI "
                               "(such as postgresql+psycopg2:// or mysql+pymysql://)")
