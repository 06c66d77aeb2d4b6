"""`modelops history`: which versions each environment of a model served (main, canary and weight, shadows),
from when to when, and the commit and author that changed it, read from the manifest in each commit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelops import git
from modelops.errors import ModelopsError
from modelops.manifest import safe_yaml
from modelops.manifest.model import MANIFEST, MODELS_DIR
from modelops.manifest.serving import Serving


@dataclass(frozen=True)
class Span:
    """One environment serving the same versions, from the commit that set them until the one that
    changed them (None: it still does)."""

    environment: str
    serving: Serving
    commit: git.Commit
    until: git.Commit | None = None

    def to_json(self) -> dict:
        return {"environment": self.environment, **self.serving.to_json(), "since": self.commit.date,
                "until": self.until.date if self.until else None, "commit": self.commit.sha,
                "author": self.commit.author, "email": self.commit.email, "subject": self.commit.subject,
                "ended_by": self.until.sha if self.until else None}


@dataclass(frozen=True)
class History:
    """Every span of a model's environments, in the order they began, and what could not be read."""

    model: str
    file: str
    spans: tuple[Span, ...]
    notes: tuple[str, ...] = ()

    def of(self, env: str, field: str = "ENV") -> list[Span]:
        """The spans of `env`; raises (naming the option or argument `field`) when it never appears."""
        spans = [span for span in self.spans if span.environment == env]
        if not spans:
            envs = sorted({s.environment for s in self.spans})
            raise ModelopsError(f"{env} never appears in the deployments of {self.file} in git", field=field,
                                hint=f"environments in its history: {', '.join(envs) or 'none'}")
        return spans

    def to_json(self) -> dict:
        return {"model": self.model, "file": self.file, "spans": [s.to_json() for s in self.spans],
                "notes": list(self.notes)}


def history(root: Path, name: str) -> History:
    """The history of `models/<name>/model.yaml` in git (the commits of the branch checked out). A commit
    whose manifest does not parse is skipped with a note; a commit that removes the file ends every span."""
    path = f"{MODELS_DIR}/{name}/{MANIFEST}"
    commits = git.file_log(root, path)
    if not commits:
        raise ModelopsError(f"{path} has no history: no commit of this branch changed it",
                            hint=f"commit it first (git add {path} && git commit), or check the model's name")
    notes = [f"the clone is shallow: the history starts at {commits[0].sha[:12]} (fetch it whole: "
             "git fetch --unshallow)"] if git.shallow(root) else []
    open_spans: dict[str, Span] = {}
    done: list[Span] = []
    contents = git.blobs(root, [f"{c.sha}:{c.path}" for c in commits])
    for commit, content in zip(commits, contents, strict=True):
        if content is None:
            states: dict[str, Serving] = {}
            notes.append(f"{commit.sha[:12]} removed {commit.path}")
        else:
            try:
                states = _states(content, f"{commit.path} at {commit.sha[:12]}")
            except ModelopsError as exc:
                notes.append(f"{commit.sha[:12]}: skipped: {exc.problem.render()}")
                continue
        for env, span in list(open_spans.items()):
            if states.get(env) != span.serving:
                done.append(Span(env, span.serving, span.commit, commit))
                del open_spans[env]
        for env, serving in states.items():
            if env not in open_spans:
                open_spans[env] = Span(env, serving, commit)
    order = {c.sha: i for i, c in enumerate(commits)}
    spans = sorted([*done, *open_spans.values()], key=lambda s: (order[s.commit.sha], s.environment))
    return History(name, path, tuple(spans), tuple(notes))


def _states(content: bytes, display: str) -> dict[str, Serving]:
    """What each environment serves in one commit's manifest, parsed with the manifests' safe loader."""
    data, lines = safe_yaml.parse(content, display)
    deployments = data.get("deployments") if isinstance(data, dict) else None
    if deployments is None:
        return {}
    if not isinstance(deployments, dict):
        raise ModelopsError("is not a mapping of environments", file=display, field="deployments",
                            line=lines.get(("deployments",)))
    states = {}
    for env, deployment in deployments.items():
        try:
            states[env] = Serving.parse(deployment)
        except ValueError as exc:
            raise ModelopsError(f"{exc}", file=display, field=f"deployments.{env}",
                                line=lines.get(("deployments", env))) from None
    return states


def previous(found: History, env: str) -> Serving:
    """What `env` served before its last committed change: where `promote --rollback` goes back to."""
    spans = found.of(env)
    last = spans[-1]
    if last.until is not None:  # the environment was removed (or the file): bring back what it served
        return last.serving
    if len(spans) < 2:
        raise ModelopsError(f"{env} has served only {last.serving.describe()} since it appeared "
                            f"({last.commit.sha[:12]}): there is nothing to roll back to", field="ENV",
                            hint="name the versions to serve instead: modelops promote MODEL ENV VERSION")
    return spans[-2].serving

