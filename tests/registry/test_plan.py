"""The pure diff: desired state (from a real manifest) against hand-built registry states."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from modelops.errors import ModelopsError
from modelops.manifest.loading import load as load_manifest
from modelops.registry import projection as state
from modelops.registry.plan import diff
from modelops.registry.projection import ActualModel, ActualVersion, DesiredModel
from modelops.registry.report import render


def load(root: Path, edit: tuple[str, str] = ("", "")) -> DesiredModel:
    """iris's desired state, after replacing edit[0] by edit[1] in its manifest."""
    path = root / "models" / "iris" / "model.yaml"
    path.write_text(path.read_text().replace(*edit))
    return state.desired(load_manifest(path.parent, root), "abc123")


@pytest.fixture
def root(make_repo) -> Path:
    return make_repo(iris="iris")


@pytest.fixture
def iris(root: Path) -> DesiredModel:
    return load(root)


def in_sync(model: DesiredModel) -> ActualModel:
    """The registry exactly as apply leaves it for `model` (versions numbered 1, 2, 3 in manifest order)."""
    versions = tuple(ActualVersion(str(i), v.description, {**model.version_tags(v), state.COMPLETE: "true"})
                     for i, v in enumerate(model.versions, start=1))
    numbers = {v.version: str(i) for i, v in enumerate(model.versions, start=1)}
    return ActualModel(model.name, model.description, {**model.model_tags(), state.DEPLOYMENTS: model.deployments},
                       {alias: numbers[semver] for alias, semver in model.aliases.items()}, versions)


def kinds(plan) -> list[tuple[str, str]]:
    return [(a.kind, a.alias or a.version) for a in plan.actions]


def test_aliases_follow_the_documented_naming(iris: DesiredModel) -> None:
    assert iris.aliases == {"staging": "1.2.0", "production": "1.0.0", "production-canary": "1.1.0",
                            "production-shadow-0": "1.2.0"}


def test_in_sync_plans_nothing(iris: DesiredModel) -> None:
    plan = diff([iris], {"iris": in_sync(iris)}, {"iris"})
    assert plan.to_json() == {"actions": [], "drift": [], "notes": []}
    assert render(plan, "text") == "no changes: the registry matches git"


def test_empty_registry_plans_everything_in_order(iris: DesiredModel) -> None:
    plan = diff([iris], {}, set())
    assert kinds(plan) == [("create-model", ""), ("register", "1.0.0"), ("register", "1.1.0"), ("register", "1.2.0"),
                           ("set-alias", "production"), ("set-alias", "production-canary"),
                           ("set-alias", "production-shadow-0"), ("set-alias", "staging"), ("update-model", "")]
    assert plan.drift == ()


def test_alias_moved_by_hand_is_drift_and_repaired(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    actual = replace(actual, aliases={**actual.aliases, "production": "3"})
    plan = diff([iris], {"iris": actual})
    assert kinds(plan) == [("set-alias", "production")]
    assert plan.actions[0].old == "1.2.0" and plan.actions[0].new == "1.0.0" and plan.actions[0].number == "1"
    assert [(d.kind, d.subject) for d in plan.drift] == [("alias", "production")]


def test_promotion_in_git_is_an_action_not_drift(root: Path, iris: DesiredModel) -> None:
    promoted = load(root, ("  staging:\n    version: 1.2.0", "  staging:\n    version: 1.1.0"))
    plan = diff([promoted], {"iris": in_sync(iris)})
    assert kinds(plan) == [("set-alias", "staging"), ("update-model", "")]
    assert plan.actions[1].tags == {state.DEPLOYMENTS: promoted.deployments}
    assert plan.drift == ()


def test_alias_added_by_hand_is_deleted(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    actual = replace(actual, aliases={**actual.aliases, "experiment": "2"})
    plan = diff([iris], {"iris": actual})
    assert kinds(plan) == [("delete-alias", "experiment")]
    assert plan.drift[0].message == "iris@experiment points at 1.1.0; apply last set nothing"


def test_changed_digest_of_a_registered_version_blocks(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    first = actual.versions[0]
    edited = replace(first, tags={**first.tags, state.SHA256: "0" * 64})
    plan = diff([iris], {"iris": replace(actual, versions=(edited, *actual.versions[1:]))})
    assert [(d.kind, d.blocking) for d in plan.drift] == [("digest", True)]
    assert plan.conflicts[0].file == "models/iris/model.yaml" and plan.conflicts[0].line == 21
    assert plan.conflicts[0].hint.startswith("a registered version never changes: bump the version")


def test_sha256_tag_edited_in_the_registry_is_not_blamed_on_the_manifest(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    first = actual.versions[0]
    edited = replace(first, tags={**first.tags, state.SHA256: "0" * 64}, uploaded_sha256=iris.versions[0].sha256)
    plan = diff([iris], {"iris": replace(actual, versions=(edited, *actual.versions[1:]))})
    sha = iris.versions[0].sha256
    assert plan.conflicts[0].message == (f"iris 1.0.0 (MLflow version 1): the registry's tag modelops.sha256 was "
                                         f"changed outside git to {'0' * 64}; its uploaded files and the manifest "
                                         f"have {sha}")
    assert plan.conflicts[0].hint == (f"restore the tag modelops.sha256 of MLflow version 1 to {sha} in MLflow, "
                                      "or register the artifact as a new version")
    assert render(plan, "text") == "0 action(s), 1 drift (1 blocks apply)"


def test_half_registered_version_is_finished_not_doubled(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    last = actual.versions[2]
    half = replace(last, tags={k: v for k, v in last.tags.items() if k != state.COMPLETE})
    plan = diff([iris], {"iris": replace(actual, versions=(*actual.versions[:2], half))})
    assert kinds(plan) == [("finish-version", "1.2.0")]
    assert plan.actions[0].tags == {state.COMPLETE: "true"} and plan.actions[0].number == "3"


def test_half_registered_version_of_another_artifact_is_replaced(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    last = actual.versions[2]
    half = replace(last, tags={state.VERSION: "1.2.0", state.SHA256: "f" * 64})
    actual = replace(actual, versions=(*actual.versions[:2], half),
                     aliases={k: v for k, v in actual.aliases.items() if v != "3"})
    plan = diff([iris], {"iris": actual})
    assert kinds(plan) == [("delete-incomplete", "1.2.0"), ("register", "1.2.0"), ("set-alias", "production-shadow-0"),
                           ("set-alias", "staging")]


def test_removed_version_tags_are_drift_and_repaired(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    first = actual.versions[0]
    edited = replace(first, tags={k: v for k, v in first.tags.items() if k not in (state.GIT_COMMIT, state.VERSION)})
    plan = diff([iris], {"iris": replace(actual, versions=(edited, *actual.versions[1:]))})
    assert kinds(plan) == [("update-version", "1.0.0")]
    assert plan.actions[0].tags == {state.VERSION: "1.0.0", state.GIT_COMMIT: "abc123"}
    assert sorted(d.message for d in plan.drift) == [
        "iris 1.0.0 (MLflow version 1): tag modelops.git_commit was removed",
        "iris 1.0.0 (MLflow version 1): tag modelops.version was removed"]


def test_renamed_registered_version_is_refused(root: Path, iris: DesiredModel) -> None:
    renamed = load(root, ("1.2.0", "1.3.0"))
    plan = diff([renamed], {"iris": in_sync(iris)})
    assert [(p.file, p.line, p.field) for p in plan.conflicts] == [("models/iris/model.yaml", 27,
                                                                     "versions[2].version")]
    assert plan.conflicts[0].message == ("1.3.0 has the artifact of 1.2.0, registered as MLflow version 3: "
                                         "a registered version is never renamed")
    assert plan.conflicts[0].hint == "keep 1.2.0, or register a new artifact as a new version"
    assert plan.drift == ()
    assert all(a.kind != "update-version" for a in plan.actions)


def test_versions_and_models_git_no_longer_lists_are_reported_never_deleted(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    extra = ActualVersion("4", "", {state.VERSION: "0.9.0", state.SHA256: "e" * 64, state.COMPLETE: "true"})
    manual = ActualVersion("5", "registered by hand", {})
    plan = diff([iris], {"iris": replace(actual, versions=(*actual.versions, extra, manual))}, {"iris", "retired"})
    assert plan.actions == ()
    assert [(d.kind, d.subject) for d in plan.drift] == [("not-in-git", "retired")]
    assert plan.notes == ("iris 0.9.0 (MLflow version 4) is not in the manifest (kept, never deleted)",
                          "iris (no modelops.version tag) (MLflow version 5) is not in the manifest (kept, never "
                          "deleted)")


def test_version_removed_from_git_is_a_note_and_aliases_name_its_semver(root: Path, iris: DesiredModel) -> None:
    removed = load(root, ("    shadow: [1.2.0]\n", ""))
    removed = load(root, ("  staging:\n    version: 1.2.0", "  staging:\n    version: 1.1.0"))
    removed = replace(removed, versions=removed.versions[:2])
    plan = diff([removed], {"iris": in_sync(iris)})
    assert plan.drift == ()
    assert [a.text() for a in plan.actions[:2]] == ["move alias iris@staging: 1.2.0 -> 1.1.0",
                                                    "delete alias iris@production-shadow-0 (was 1.2.0)"]
    assert plan.notes == ("iris 1.2.0 (MLflow version 3) is not in the manifest (kept, never deleted)",)


def test_markdown_and_json_renderings(root: Path, iris: DesiredModel) -> None:
    promoted = load(root, ("    version: 1.0.0\n    canary", "    version: 1.2.0\n    canary"))
    plan = diff([promoted], {"iris": in_sync(iris)})
    markdown = render(plan, "markdown")
    assert "| iris | set-alias | @production | 1.0.0 | 1.2.0 |" in markdown
    data = json.loads(render(plan, "json"))
    assert data["drift"] == []
    assert data["actions"][0] == {"kind": "set-alias", "model": "iris", "number": "3", "alias": "production",
                                  "old": "1.0.0", "new": "1.2.0"}


def test_reserved_alias_names_are_refused(root: Path) -> None:
    with pytest.raises(ModelopsError, match="MLflow reserves") as caught:
        load(root, ("  staging:\n", "  latest:\n"))
    assert caught.value.problem.field == "deployments.latest"


def test_deployment_changes_are_described_per_environment(root: Path, iris: DesiredModel) -> None:
    heavier = load(root, ("weight: 10", "weight: 30"))
    plan = diff([heavier], {"iris": in_sync(iris)})
    assert render(plan, "text") == ("  + update registered model iris: production canary 1.1.0 weight 10 -> 30\n"
                                     "1 action(s), 0 drift")
    assert "| iris | update-model | production canary 1.1.0 weight 10 -> 30 |  |  |" in render(plan, "markdown")
    moved = load(root, ("    canary: {version: 1.1.0, weight: 30}\n    shadow: [1.2.0]\n", ""))
    assert plan_text(moved, iris) == "production canary 1.1.0 weight 10 -> none; production shadow 1.2.0 -> none"
    assert plan_text(iris, None) == ("production added (version 1.0.0, canary 1.1.0 weight 10, shadow 1.2.0); "
                                     "staging added (version 1.2.0)")


def plan_text(model: DesiredModel, registered: DesiredModel | None) -> str:
    """What the plan of `model` says it changes in the registered model's deployments."""
    plan = diff([model], {"iris": in_sync(registered)} if registered else {})
    return next(a for a in plan.actions if a.kind == "update-model").changes()


def with_first(actual: ActualModel, **changes) -> ActualModel:
    """`actual` with its first version changed (dataclasses.replace)."""
    return replace(actual, versions=(replace(actual.versions[0], **changes), *actual.versions[1:]))


def without_method_tag(actual: ActualModel, mlmodel_method: str) -> ActualModel:
    """`actual` whose first version has no METHOD tag (registered before it), its MLmodel read as answering
    `mlmodel_method`."""
    first = actual.versions[0]
    return with_first(actual, tags={k: v for k, v in first.tags.items() if k != state.METHOD},
                      mlmodel_method=mlmodel_method)


def test_versions_are_registered_with_the_manifests_method(iris: DesiredModel) -> None:
    plan = diff([iris], {}, set())
    assert {a.tags[state.METHOD] for a in plan.actions if a.kind == "register"} == {"predict"}


def test_registered_version_of_another_method_blocks_at_the_manifests_method_line(root: Path) -> None:
    iris = load(root, ("flavor: sklearn\n", "flavor: sklearn\nmethod: predict\n"))
    plan = diff([iris], {"iris": with_first(in_sync(iris), tags={**in_sync(iris).versions[0].tags,
                                                                 state.METHOD: "predict_proba"})})
    assert [(d.kind, d.subject, d.blocking) for d in plan.drift] == [("method", "1.0.0", True)]
    assert plan.actions == ()
    (conflict,) = plan.conflicts
    assert (conflict.file, conflict.line, conflict.field) == ("models/iris/model.yaml", 6, "method")
    assert conflict.message == ("iris 1.0.0 (MLflow version 1) is registered answering predict_proba (its tag "
                                "modelops.method); the manifest says predict")
    assert conflict.hint == ("a registered version never changes: to serve predict, list the artifact again as a new "
                             "version (modelops release) in place of this one (it stays in MLflow), or set method "
                             "back to predict_proba; if modelops.method was edited by hand, restore it")
    assert render(plan, "text") == "0 action(s), 1 drift (1 blocks apply)"
    assert json.loads(render(plan, "json"))["drift"] == [{
        "kind": "method", "model": "iris", "subject": "1.0.0", "blocking": True,
        "message": "iris 1.0.0 (MLflow version 1) answers predict_proba; the manifest says predict"}]


def test_method_read_from_the_mlmodel_of_an_untagged_version_is_checked(iris: DesiredModel) -> None:
    plan = diff([iris], {"iris": without_method_tag(in_sync(iris), "predict_proba")})
    assert [(d.kind, d.blocking) for d in plan.drift] == [("method", True)]
    assert plan.conflicts[0].field == "method" and plan.actions == ()


def test_untagged_version_answering_the_manifests_method_gets_the_tag(iris: DesiredModel) -> None:
    plan = diff([iris], {"iris": without_method_tag(in_sync(iris), "predict")})
    assert kinds(plan) == [("update-version", "1.0.0")] and plan.conflicts == ()
    assert plan.actions[0].tags == {state.METHOD: "predict"} and plan.actions[0].number == "1"
    assert [d.message for d in plan.drift] == [
        "iris 1.0.0 (MLflow version 1): tag modelops.method is missing (its MLmodel answers predict)"]
    assert render(plan, "text").startswith("  + update iris 1.0.0 (MLflow version 1): set modelops.method\n")


def test_untagged_version_whose_mlmodel_was_not_read_plans_nothing(iris: DesiredModel) -> None:
    plan = diff([iris], {"iris": without_method_tag(in_sync(iris), "")})
    assert (plan.actions, plan.drift, plan.conflicts) == ((), (), ())


def test_artifact_of_a_registered_version_of_another_method_is_a_new_registration(iris: DesiredModel) -> None:
    """A version of 0.9.0's artifact, which git no longer lists, is not a rename when 0.9.0 answers another
    method: that is how an artifact is listed again to serve the manifest's new method."""
    actual = in_sync(iris)
    older = {**actual.versions[0].tags, state.VERSION: "0.9.0", state.METHOD: "predict_proba"}
    plan = diff([iris], {"iris": with_first(actual, tags=older)})
    assert plan.conflicts == () and not any(d.blocking for d in plan.drift)
    assert kinds(plan)[:2] == [("register", "1.0.0"), ("set-alias", "production")]
    assert plan.notes == ("iris 0.9.0 (MLflow version 1) is not in the manifest (kept, never deleted)",)


def test_half_registered_version_of_another_method_is_replaced(iris: DesiredModel) -> None:
    actual = in_sync(iris)
    last = actual.versions[2]
    half = replace(last, tags={**{k: v for k, v in last.tags.items() if k != state.COMPLETE},
                               state.METHOD: "predict_proba"})
    plan = diff([iris], {"iris": replace(actual, versions=(*actual.versions[:2], half))})
    assert kinds(plan)[:2] == [("delete-incomplete", "1.2.0"), ("register", "1.2.0")]
