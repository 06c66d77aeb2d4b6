"""`modelops canary` refuses what it cannot judge with a located error and no traceback (a tiny local server
stands in for a Prometheus or a runner that answers something unexpected)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.canary.answering import Answering, answering
from tests.conftest import run_cli
from tests.processes import free_port

IRIS = "models/iris/model.yaml"
POLICY = "    rollout: {steps: [10, 30, 100], window: 10m, min_requests: 500, max_error_rate: 0.01}\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Answering]:
    with answering() as running:
        yield running


@pytest.fixture
def rolled_out(repo: Path) -> Path:
    """The repository with a rollout policy on iris in production."""
    path = repo / IRIS
    path.write_text(path.read_text().replace("    shadow: [1.2.0]\n", "    shadow: [1.2.0]\n" + POLICY))
    return repo


# (id, arguments, environment, the first lines of stderr)
CASES = [
    ("no-prometheus-set", ("iris", "--env", "production"), {},
     "pyproject.toml: tool.modelops.prometheus_url: no Prometheus to read the runners' metrics from\n"
     "  hint: set prometheus_url in [tool.modelops] (or MODELOPS_PROMETHEUS_URL), pass --prometheus URL, or read "
     "the runners themselves with --metrics-url URL"),
    ("not-a-url", ("iris", "--prometheus", "ftp://host"), {},
     "error: --prometheus: 'ftp://host' is not an http(s) URL"),
    ("bad-setting", ("iris",), {"MODELOPS_PROMETHEUS_URL": "prometheus:9090"},
     "MODELOPS_PROMETHEUS_URL: tool.modelops.prometheus_url: 'prometheus:9090' is not valid"),
    ("bad-selector", ("iris",), {"MODELOPS_PROMETHEUS_SELECTOR": 'job="x"} or vector(1) #'},
     "MODELOPS_PROMETHEUS_SELECTOR: tool.modelops.prometheus_selector: "),
    ("no-policy-there", ("iris", "--env", "staging"), {},
     f"{IRIS}:34: deployments.staging.rollout: deployments.staging has no rollout policy"),
    ("no-such-env", ("iris", "--env", "qa"), {},
     f"{IRIS}: deployments: iris does not deploy to 'qa'\n  hint: its environments are: staging, production"),
    ("no-such-model", ("nosuch",), {}, "error: MODEL: no model 'nosuch': neither a folder nor a model under models/"),
    ("two-sources", ("iris", "--env", "production", "--prometheus", "http://127.0.0.1:9", "--metrics-url",
                     "http://127.0.0.1:9"), {},
     "error: --prometheus: --prometheus and --metrics-url name two sources of the same numbers: give one\n"
     "  hint: --prometheus URL reads Prometheus over the policy's window; --metrics-url URL reads the runners since "
     "they started"),
    ("metrics-url-not-http", ("iris", "--metrics-url", "file:///etc/passwd"), {},
     "error: --metrics-url: 'file:///etc/passwd' is not an http(s) URL"),
]


@pytest.mark.parametrize(("args", "env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_it_cannot_judge_is_a_clear_error(rolled_out: Path, args: tuple, env: dict, expected: str) -> None:
    result = run_cli("canary", *args, cwd=rolled_out, env={"MODELOPS_PROMETHEUS_URL": "", **env})
    assert result.code == 1, result.out + result.err
    assert result.err.startswith(expected), result.err
    assert "Traceback" not in result.err and result.out == ""
    assert "root:x:0" not in result.err


def test_metrics_url_reads_one_deployment(rolled_out: Path) -> None:
    staging = rolled_out / IRIS
    staging.write_text(staging.read_text().replace("    version: 1.2.0\n", "    version: 1.2.0\n" + POLICY, 1))
    result = run_cli("canary", "--metrics-url", "http://127.0.0.1:9/metrics", cwd=rolled_out)
    assert result.code == 1
    assert result.err.startswith("error: --metrics-url: --metrics-url reads the runners of one deployment, but 2 "
                                 "have a rollout policy\n  hint: name one MODEL and its --env"), result.err


def test_without_any_policy_there_is_nothing_to_judge(repo: Path) -> None:
    result = run_cli("canary", "--format", "json", cwd=repo, env={"MODELOPS_PROMETHEUS_URL": ""})
    assert (result.code, result.out.split()) == (0, ['{', '"verdicts":', '[],', '"auto_merge":', 'false', '}'])
    text = run_cli("canary", cwd=repo, env={"MODELOPS_PROMETHEUS_URL": ""})
    assert (text.code, text.err) == (0, "no deployment has a rollout policy (deployments.ENV.rollout): nothing to "
                                        "judge\n")


def test_the_prometheus_of_pyproject_is_named_when_it_cannot_be_reached(rolled_out: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    pyproject = rolled_out / "pyproject.toml"
    setting = f'[tool.modelops]\nprometheus_url = "{dead}"\n'
    pyproject.write_text(pyproject.read_text().replace("[tool.modelops]\n", setting))
    result = run_cli("canary", "iris", "--env", "production", cwd=rolled_out, env={"MODELOPS_PROMETHEUS_URL": ""})
    assert result.code == 1
    assert result.err.startswith(f"pyproject.toml: tool.modelops.prometheus_url: cannot reach Prometheus at {dead}: "
                                 "Connection refused"), result.err


def _vector(*values: str, kind: str = "vector") -> bytes:
    result = [{"metric": {"version": "1.1.0"}, "value": [1.0, v]} for v in values]
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}}).encode()


# (id, what Prometheus answers, the rest of the error's first line)
PROMETHEUS_ANSWERS = [
    ("a-list", b"[1,2]", "the scoring requests with [1, 2] (not a success status)"),
    ("no-data", b'{"status":"success"}', 'the scoring requests with {"status": "success"} (no data.result list)'),
    ("not-a-number", _vector("abc"), 'the scoring requests with the value "abc", not a number'),
    ("no-value", b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}',
     'the scoring requests with the sample {"metric": {}} (not {metric, value: [time, "number"]})'),
    ("a-matrix", b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"]]}]}}',
     'the scoring requests with a result of type "matrix", not an instant vector'),
    ("nan", _vector("NaN"), "the scoring requests with the value 'NaN' of {\"version\": \"1.1.0\"}: a count is a "
                            "finite number, not negative"),
    ("infinite", _vector("+Inf"), "the scoring requests with the value '+Inf' of {\"version\": \"1.1.0\"}: a count is "
                                 "a finite number, not negative"),
    ("negative", _vector("-3"), "the scoring requests with the value '-3' of {\"version\": \"1.1.0\"}: a count is a "
                              "finite number, not negative"),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in PROMETHEUS_ANSWERS],
                         ids=[c[0] for c in PROMETHEUS_ANSWERS])
def test_an_unexpected_answer_of_prometheus_is_a_located_error(rolled_out: Path, server: Answering, body: bytes,
                                                                 expected: str) -> None:
    server.body = body
    result = run_cli("canary", "iris", "--env", "production", "--prometheus", server.url, cwd=rolled_out,
                     env={"MODELOPS_PROMETHEUS_URL": ""})
    assert result.code == 1, result.out + result.err
    assert result.err.startswith(f"error: --prometheus: Prometheus at {server.url} answered {expected}"), result.err
    assert "Traceback" not in result.err and "report it" not in result.err and result.out == ""


def test_an_unexpected_answer_names_the_setting_it_came_from(rolled_out: Path, server: Answering) -> None:
    server.body = _vector("-1")
    result = run_cli("canary", "iris", "--env", "production", cwd=rolled_out,
                     env={"MODELOPS_PROMETHEUS_URL": server.url})
    assert result.code == 1
    assert result.err.startswith(f"MODELOPS_PROMETHEUS_URL: tool.modelops.prometheus_url: Prometheus at {server.url} "
                                 "answered the scoring requests with the value '-1'"), result.err


SCORED = 'endpoint="invocations",version="1.1.0"'
# (id, what the runner's /metrics answers, the rest of the error's first line)
METRICS_ANSWERS = [
    ("bucket-without-le", f"modelops_request_duration_seconds_bucket{{{SCORED}}} 3\n",
     f"modelops_request_duration_seconds_bucket{{{SCORED}}} has no le label (a bucket's upper bound)"),
    ("le-not-a-number", f'modelops_request_duration_seconds_bucket{{{SCORED},le="abc"}} 3\n',
     "modelops_request_duration_seconds_bucket{endpoint=\"invocations\",le=\"abc\",version=\"1.1.0\"} has "
     "le='abc', not a number"),
    ("nan-counter", f'modelops_requests_total{{code="200",{SCORED}}} NaN\n',
     f"modelops_requests_total{{code=\"200\",{SCORED}}} has the value nan: a count is a finite number, not negative"),
    ("negative-counter", f'modelops_requests_total{{code="200",{SCORED}}} -2\n',
     f"modelops_requests_total{{code=\"200\",{SCORED}}} has the value -2: a count is a finite number, not "
     "negative"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in METRICS_ANSWERS], ids=[c[0] for c in METRICS_ANSWERS])
def test_an_unexpected_sample_of_a_runner_is_a_located_error(rolled_out: Path, server: Answering, text: str,
                                                               expected: str) -> None:
    server.body = text.encode()
    url = f"{server.url}/metrics"
    result = run_cli("canary", "iris", "--env", "production", "--metrics-url", url, cwd=rolled_out)
    assert result.code == 1, result.out + result.err
    assert result.err.splitlines()[0] == f"error: --metrics-url: {url}: the sample {expected}", result.err
    assert "Traceback" not in result.err and result.out == ""


def test_a_manifest_changed_while_it_was_judged_is_not_written(rolled_out: Path, server: Answering) -> None:
    server.body = _vector("600")  # every query: 600 answers of the canary, 600 of them errors: roll back
    path = rolled_out / IRIS
    judged = path.read_text()
    args = ("canary", "iris", "--env", "production", "--prometheus", server.url, "--write")
    changed = judged.replace("    shadow: [1.2.0]\n", "    shadow: [1.2.0]  # changed meanwhile\n")

    def change() -> None:  # as someone pushes while Prometheus answers
        path.write_text(changed)

    server.on_request = change
    try:
        result = run_cli(*args, cwd=rolled_out, env={"MODELOPS_PROMETHEUS_URL": ""})
    finally:
        server.on_request = None
    assert result.code == 1, result.out + result.err
    assert result.err.startswith(f"{IRIS}: changed while its canaries were judged: nothing written\n  hint: run "
                                 "modelops canary again, to judge the manifest as it is now"), result.err
    assert path.read_text() == changed and result.out == ""
    again = run_cli(*args, cwd=rolled_out, env={"MODELOPS_PROMETHEUS_URL": ""})  # judged as it is now: written
    assert again.code == 3, again.err
    assert "  candidate 1.1.0: 600 scoring requests, 600 server errors, p99 600000.0 ms\n" in again.out
    assert "canary:" not in path.read_text() and "# changed meanwhile" in path.read_text()
