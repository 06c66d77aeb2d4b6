"""Every bad manifest gets exit 1, a message naming the file, the line and the field, and no traceback."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.scan.conftest import SAFETY_DB

IRIS = "models/iris/model.yaml"


def sub(old: str, new: str, file: str = IRIS) -> Callable[[Path], None]:
    """An edit replacing the first `old` by `new` in `file`."""

    def edit(repo: Path) -> None:
        path = repo / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))

    return edit


def write(text: str, file: str = IRIS) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        (repo / file).write_text(text)

    return edit


def symlink_escape(repo: Path) -> None:
    (repo / "models/iris/artifacts/outside").symlink_to("/etc")
    sub("uri: artifacts/1.0.0/", "uri: artifacts/outside/")(repo)


def write_bytes(data: bytes, file: str = IRIS) -> Callable[[Path], None]:
    def edit(repo: Path) -> None:
        (repo / file).write_bytes(data)

    return edit


def symlink(file: str, target: str) -> Callable[[Path], None]:
    """An edit replacing `file` by a symbolic link to `target`."""

    def edit(repo: Path) -> None:
        (repo / file).unlink()
        (repo / file).symlink_to(target)

    return edit


def fifo(repo: Path) -> None:
    (repo / "models/iris/requirements.txt").unlink()
    os.mkfifo(repo / "models/iris/requirements.txt")


def special_file(kind: str) -> Callable[[Path], None]:
    """An edit adding a FIFO or a Unix socket to the artifact folder of iris 1.0.0."""

    def edit(repo: Path) -> None:
        path = repo / "models/iris/artifacts/1.0.0" / kind
        if kind == "fifo":
            os.mkfifo(path)
        else:
            with socket.socket(socket.AF_UNIX) as server:  # relative to the repository: short enough to bind
                server.bind(str(path.relative_to(Path.cwd())))

    return edit


REQS = "models/iris/requirements.txt"
EXAMPLE = "models/iris/example.json"


def requirement(line: str) -> Callable[[Path], None]:
    return write(f"numpy==2.0.0\n{line}\n", REQS)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n"

# (id, edit, file the message names, line, field, words in the message)
CASES = [
    ("missing-field", sub("description: Iris species classifier (0 setosa, 1 versicolor, 2 virginica)\n", ""),
     IRIS, None, "description", "Field required"),
    ("typo-field", sub("owners:", "ownres:"), IRIS, 4, "ownres", "did you mean 'owners'"),
    ("wrong-type-owners", sub('owners: ["@ml-team"]', 'owners: "@ml-team"'), IRIS, 4, "owners", "valid list"),
    ("duplicate-owner", sub('owners: ["@ml-team"]', 'owners: ["@ml-team", "@ML-Team"]'), IRIS, 4, "owners[1]",
     "@ML-Team is listed twice"),
    ("bad-name", sub("name: iris", "name: Iris_Model"), IRIS, 2, "name", "lowercase letters"),
    ("name-differs-from-folder", sub("name: iris", "name: iris-two"), IRIS, 2, "name", "differs from its folder"),
    ("version-as-number", sub("version: 1.0.0\n", "version: 1.0\n"), IRIS, 17, "versions[0].version",
     "valid string"),
    ("bad-semver", sub("version: 1.0.0\n", "version: v1\n"), IRIS, 17, "versions[0].version", "semantic version"),
    ("duplicate-version", sub("version: 1.1.0\n", "version: 1.0.0\n"), IRIS, 22, "versions[1].version",
     "listed twice"),
    ("versions-out-of-order", sub("version: 1.2.0\n    description", "version: 0.9.0\n    description"), IRIS,
     27, "versions[2].version", "comes after"),
    ("deploy-unknown-version", sub("staging:\n    version: 1.2.0", "staging:\n    version: 9.9.9"), IRIS, 34,
     "deployments.staging.version", "not in versions"),
    ("canary-weight-too-high", sub("weight: 10", "weight: 150"), IRIS, 37, "deployments.production.canary.weight",
     "less than or equal to 99"),
    ("canary-weight-zero", sub("weight: 10", "weight: 0"), IRIS, 37, "deployments.production.canary.weight",
     "greater than or equal to 1"),
    ("shadow-unknown-version", sub("shadow: [1.2.0]", "shadow: [2.0.0]"), IRIS, 38,
     "deployments.production.shadow[0]", "not in versions"),
    ("duplicate-shadow", sub("shadow: [1.2.0]", "shadow: [1.2.0, 1.2.0]"), IRIS, 38,
     "deployments.production.shadow[1]", "1.2.0 shadows twice"),
    ("bad-environment-name", sub("staging:", "Stag!ng:"), IRIS, 34, "deployments.Stag!ng", "is not valid"),
    ("environment-name-ending-in-a-dash", sub("staging:", "staging-:"), IRIS, 34, "deployments.staging-",
     "ending with a letter or digit"),
    ("reserved-alias-latest", sub("staging:", "latest:"), IRIS, 34, "deployments.latest",
     "makes the alias 'latest', which MLflow reserves"),
    ("reserved-alias-version", sub("staging:", "v2:"), IRIS, 34, "deployments.v2", "which MLflow reserves"),
    ("colliding-aliases", sub("staging:", "production-canary:"), IRIS, 36, "deployments.production",
     "makes the alias 'production-canary', which environment 'production-canary' also makes"),
    ("unknown-flavor", sub("flavor: sklearn", "flavor: tensorflow"), IRIS, 5, "flavor", "allowed values are"),
    ("unknown-column-type", sub("{name: species, type: long}", "{name: species, type: int64}"), IRIS, 13,
     "signature.outputs[0].type", "'int64' is not allowed"),
    ("no-outputs", sub("  outputs:\n    - {name: species, type: long}\n", "  outputs: []\n"), IRIS, 12,
     "signature.outputs", "at least 1 item"),
    ("bad-sha256", sub("sha256: 839f", "sha256: xyz"), IRIS, 21, "versions[0].artifact.sha256", "must match"),
    ("digest-mismatch", sub("sha256: 839f", "sha256: 939f"), IRIS, 21, "versions[0].artifact.sha256",
     "sha256 mismatch"),
    ("artifact-missing", sub("uri: artifacts/1.0.0/", "uri: artifacts/7.0.0/"), IRIS, 20,
     "versions[0].artifact.uri", "does not exist"),
    ("artifact-dotdot-escape", sub("uri: artifacts/1.0.0/", "uri: ../diabetes/artifacts/1.0.0/model.skops"), IRIS,
     20, "versions[0].artifact.uri", "leaves the model folder"),
    ("artifact-absolute-path", sub("uri: artifacts/1.0.0/", "uri: /etc/passwd"), IRIS, 20,
     "versions[0].artifact.uri", "leaves the model folder"),
    ("artifact-symlink-escape", symlink_escape, IRIS, 20, "versions[0].artifact.uri", "outside the model folder"),
    ("artifact-unsupported-scheme", sub("uri: artifacts/1.0.0/", "uri: ftp://host/model"), IRIS, 20,
     "versions[0].artifact.uri", "unsupported scheme 'ftp'"),
    ("artifact-fifo", special_file("fifo"), IRIS, 20, "versions[0].artifact.uri",
     "artifacts/1.0.0/fifo is not a regular file"),
    ("artifact-socket", special_file("socket"), IRIS, 20, "versions[0].artifact.uri",
     "artifacts/1.0.0/socket is not a regular file"),
    ("artifact-malformed-uri", sub("uri: artifacts/1.0.0/", 'uri: "http://[::1"'), IRIS, 20,
     "versions[0].artifact.uri", "is not a valid URI: Invalid IPv6 URL"),
    ("unpinned-requirement", write("scikit-learn>=1.0\nnumpy==2.0.0\n", "models/iris/requirements.txt"),
     "models/iris/requirements.txt", 1, "requirements", "not pinned with =="),
    ("requirement-url", write("numpy==2.0.0\nhttps://evil.example/pkg.whl\n", "models/iris/requirements.txt"),
     "models/iris/requirements.txt", 2, "requirements", "not pinned with =="),
    ("requirement-bad-marker", requirement("numpy==2.0.0; garbage !!"), REQS, 2, "requirements", "not pinned"),
    ("requirement-option-after-marker",
     requirement('numpy==2.0.0; python_version >= "3" --index-url https://evil.example/simple'), REQS, 2,
     "requirements", "not pinned"),
    ("requirement-include", requirement("-r other.txt"), REQS, 2, "requirements", "not pinned"),
    ("requirement-editable", requirement("-e ."), REQS, 2, "requirements", "not pinned"),
    ("requirement-at-url", requirement("numpy @ https://evil.example/numpy.whl"), REQS, 2, "requirements",
     "not pinned"),
    ("requirement-wildcard", requirement("numpy==2.*"), REQS, 2, "requirements", "not pinned"),
    ("requirement-two-specifiers", requirement("numpy==2.0.0,>=1"), REQS, 2, "requirements", "not pinned"),
    ("requirements-symlink", symlink(REQS, "/etc/passwd"), IRIS, 15, "requirements",
     "requirements.txt is a symbolic link"),
    ("requirements-symlink-inside", symlink(REQS, "example.json"), IRIS, 15, "requirements",
     "requirements.txt is a symbolic link"),
    ("requirements-fifo", fifo, IRIS, 15, "requirements", "requirements.txt is not a regular file"),
    ("example-symlink", symlink("models/iris/example.json", "/proc/self/environ"), IRIS, 14, "example",
     "example.json is a symbolic link"),
    ("requirements-missing", sub("requirements: requirements.txt", "requirements: reqs.txt"), IRIS, 15,
     "requirements", "does not exist"),
    ("example-missing", sub("example: example.json", "example: sample.json"), IRIS, 14, "example",
     "does not exist"),
    ("example-folder", sub("example: example.json", "example: artifacts"), IRIS, 14, "example",
     "artifacts is not a regular file"),
    ("example-path-escape", sub("example: example.json", "example: ../diabetes/example.json"), IRIS, 14,
     "example", "is not valid"),
    ("example-unknown-column", sub('"sepal_length"', '"sepal_len"', "models/iris/example.json"),
     "models/iris/example.json", None, "example.inputs", "unknown column 'sepal_len'"),
    ("example-wrong-type", sub('"sepal_length": 5.1', '"sepal_length": "5.1"', "models/iris/example.json"),
     "models/iris/example.json", None, "example.inputs", "is not a number"),
    ("example-null-required", sub('"sepal_length": 5.1', '"sepal_length": null', "models/iris/example.json"),
     "models/iris/example.json", None, "example.inputs", "'sepal_length' is required"),
    ("example-not-json", write("{inputs: nope", "models/iris/example.json"), "models/iris/example.json", None,
     "example", "invalid JSON"),
    ("example-nan", write('{"inputs": [{"sepal_length": NaN}]}', EXAMPLE), EXAMPLE, None, "example",
     "NaN is not a number JSON allows"),
    ("example-infinity", write('{"inputs": [{"sepal_length": Infinity}]}', EXAMPLE), EXAMPLE, None, "example",
     "Infinity is not a number JSON allows"),
    ("example-minus-infinity", write('{"inputs": [{"sepal_length": -Infinity}]}', EXAMPLE), EXAMPLE, None,
     "example", "-Infinity is not a number JSON allows"),
    ("example-overflow", write('{"inputs": [{"sepal_length": 1e400}]}', EXAMPLE), EXAMPLE, None, "example",
     "1e400 overflows to infinity"),
    ("example-deep-nesting", write('{"inputs": ' + "[" * 5000 + "]" * 5000 + "}", EXAMPLE), EXAMPLE, None,
     "example", "nested deeper than 64 levels"),
    ("yaml-deep-flow-nesting", write("x: " + "[" * 5000 + "\n"), IRIS, 1, "", "nested deeper than 64 levels"),
    ("yaml-deep-block-nesting", write("x:\n" + "".join("  " * i + "- \n" for i in range(1, 100))), IRIS, 65, "",
     "nested deeper than 64 levels"),
    ("yaml-alias-bomb", write(BOMB), IRIS, 1, "", "anchors (&name) are not allowed"),
    ("python-object-tag", write('name: !!python/object/apply:os.system ["touch pwned"]\n'), IRIS, 1, "name",
     "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    ("invalid-utf8", write_bytes(b"name: iris\ndescription: caf\xe9\n"), IRIS, 2, "",
     "not UTF-8: invalid byte at offset 27"),
    ("empty-file", write(""), IRIS, None, "", "the file is empty"),
    ("non-mapping-document", write("- name: iris\n"), IRIS, 1, "", "is a list, not a mapping"),
    ("invalid-yaml", write("name: iris\n  description: [unclosed\n"), IRIS, 2, "", "invalid YAML"),
    ("duplicate-key", sub("flavor: sklearn", "flavor: sklearn\nflavor: pyfunc"), IRIS, 6, "flavor",
     "duplicate key 'flavor'"),
    ("huge-file", write("# padding\n" * 40000), IRIS, None, "", "more than the 262144 allowed"),
    ("control-character-in-description", sub("description: Iris species", 'description: "Iris\\x1b species'),
     IRIS, None, "", "invalid YAML"),
]


@pytest.mark.parametrize(("edit", "file", "line", "field", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_manifest_is_reported_precisely(repo: Path, edit, file: str, line: int | None, field: str,
                                            words: str) -> None:
    edit(repo)
    result = run_cli("validate", "models/iris", "--offline", cwd=repo)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err + result.out
    location = f"{file}:{line}:" if line else f"{file}"
    assert location in result.err, result.err
    assert words in result.err, result.err
    if field:
        assert f" {field}: " in result.err, result.err
    assert not (repo / "pwned").exists()
    assert "root:x:0" not in result.err + result.out


def test_every_problem_is_reported_at_once_in_json(repo: Path) -> None:
    sub("weight: 10", "weight: 150")(repo)
    write("scikit-learn>=1.0\n", "models/iris/requirements.txt")(repo)
    sub("sha256: 50514d", "sha256: 60514d")(repo)
    result = run_cli("validate", "--offline", "--format", "json", cwd=repo)
    assert result.code == 1
    report = json.loads(result.out)
    assert report["ok"] is False
    # the schema error stops that manifest's deeper checks; fix it and the rest appear
    assert [p["field"] for p in report["problems"]] == ["deployments.production.canary.weight"]
    sub("weight: 150", "weight: 10")(repo)
    report = json.loads(run_cli("validate", "--offline", "--format", "json", cwd=repo).out)
    assert sorted(p["field"] for p in report["problems"]) == ["requirements", "versions[2].artifact.sha256"]
    assert all(set(p) == {"file", "line", "field", "message", "hint"} for p in report["problems"])


def test_github_format_gives_workflow_annotations(repo: Path) -> None:
    sub("weight: 10", "weight: 150")(repo)
    result = run_cli("validate", "--offline", "--format", "github", cwd=repo)
    assert result.code == 1
    assert result.out.startswith(
        "::error file=models/iris/model.yaml,line=37,title=deployments.production.canary.weight::")


def test_the_examples_are_valid(repo: Path) -> None:
    result = run_cli("validate", "--offline", cwd=repo)
    assert (result.code, result.out.strip()) == (0, "3 model(s) valid")


def test_pins_with_extras_markers_and_comments_are_valid(repo: Path) -> None:
    with (repo / REQS).open("a") as handle:
        handle.write('# a comment\n\nnumpy[extra]==2.0.0 ; python_version >= "3.9"  # why\n')
    result = run_cli("validate", "--offline", "models/iris", cwd=repo)
    assert result.code == 0, result.err


def test_a_rejected_requirement_is_echoed_short(repo: Path) -> None:
    requirement("x" * 30 + "SECRET" * 100)(repo)
    result = run_cli("validate", "--offline", "models/iris", cwd=repo)
    assert result.code == 1
    assert "xxxxxxxxxxSECRET" in result.err and result.err.count("SECRET") < 5, result.err


@pytest.mark.parametrize("command", [("render", "models/iris"), ("scan", "--db", str(SAFETY_DB), "models/iris")])
def test_every_reader_of_the_requirements_refuses_a_symlink(repo: Path, command: tuple[str, ...]) -> None:
    symlink(REQS, "/etc/passwd")(repo)
    result = run_cli(*command, cwd=repo)
    assert result.code == 1
    assert "requirements.txt is a symbolic link" in result.err + result.out, result.err + result.out
    assert "root:x:0" not in result.err + result.out


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_digest_refuses_what_is_not_a_regular_file(repo: Path, kind: str) -> None:
    special_file(kind)(repo)
    folder = repo / "models/iris/artifacts/1.0.0"
    for path in (folder, folder / kind):
        result = run_cli("digest", str(path), cwd=repo, timeout=30)
        assert result.code == 1
        assert f"{folder / kind} is not a regular file" in result.err, result.err
        assert "Traceback" not in result.err
