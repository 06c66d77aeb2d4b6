"""`modelops canary` against the real parts: two `modelops serve` runners (a good canary, a failing one)
under a bounded load, scraped every second by a real Prometheus; the verdicts are promote and roll back,
and the rewritten manifests validate."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from modelops import settings
from modelops.canary import observe
from modelops.kubernetes import rollouts
from modelops.manifest.loading import load
from tests.canary.broken import Broken
from tests.conftest import run_cli
from tests.processes import free_port, stop_group
from tests.runner.conftest import Servers, make_model

PROMETHEUS = Path("/usr/bin/prometheus")
POLICY = {"steps": [50, 100], "window": "1m", "min_requests": 50, "max_error_rate": 0.05,
          "max_error_rate_ratio": 2, "max_p99_ratio": 50}
ROW = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 2.0]]}}
BURSTS, PER_BURST = 6, 50  # per runner: 300 requests over about 3 s, so that several scrapes see them


@dataclass
class Stack:
    repo: Path
    pristine: Path  # the repository before any test rewrote it
    prometheus: str
    runners: dict[str, httpx.Client]  # environment -> its runner
    answered: dict[str, Counter]  # environment -> {(version, status): count}, from the answers' headers


def _repo(folder: Path) -> Path:
    x = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]
    y = [0, 1, 1, 0]
    versions = {"1.0.0": LogisticRegression().fit(x, y), "1.1.0": DecisionTreeClassifier().fit(x, y),
                "1.2.0": Broken()}
    def policy(**more: object) -> dict:  # a copy each: YAML would write one object twice as an anchor
        return {**POLICY, "steps": list(POLICY["steps"]), **more}

    deployments = {"good": {"version": "1.0.0", "canary": {"version": "1.1.0", "weight": 50}, "rollout": policy()},
                   "bad": {"version": "1.0.0", "canary": {"version": "1.2.0", "weight": 50},
                           "rollout": policy(auto_rollback=True)}}
    make_model(folder / "models" / "toy", versions, deployments)
    (folder / "models/toy/requirements.txt").write_text("scikit-learn==1.5.2\n")
    (folder / "pyproject.toml").write_text("[tool.modelops]\n")
    return folder


def _prometheus(folder: Path, targets: dict[str, int]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "runners", "static_configs": [
                  {"targets": [f"127.0.0.1:{p}"], "labels": {  # as a cluster's relabelling names pod labels
                      "app_kubernetes_io_name": "toy", "modelops_environment": env, "rollouts_pod_template_hash": env}}
                  for env, p in targets.items()]}]}
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen([str(PROMETHEUS), f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                                "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return process, url
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            raise AssertionError(f"prometheus did not start:\n{(folder / 'prometheus.log').read_text()}")
        time.sleep(0.2)


def _load(client: httpx.Client, count: int) -> Counter:
    def one(_: int) -> tuple[str, int]:
        answer = client.post("/invocations", json=ROW)
        return answer.headers["x-model-version"], answer.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        return Counter(pool.map(one, range(count)))


def _total(url: str, query: str) -> float:
    result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else -1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not PROMETHEUS.is_file():  # a skip says why; with MODELOPS_REQUIRE_SERVICES=1 it fails
        reason = "prometheus is not installed: run scripts/setup.sh --system (scripts/apt-packages.txt)"
        if os.environ.get("MODELOPS_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("canary")
    pristine = _repo(folder / "pristine")
    repo = folder / "repo"
    shutil.copytree(pristine, repo)
    servers = Servers(folder)
    prometheus = None
    try:
        runners = {env: servers.start(str(repo / "models" / "toy"), "--env", env) for env in ("good", "bad")}
        prometheus, url = _prometheus(folder, {env: int(c.base_url.port) for env, c in runners.items()})
        deadline = time.monotonic() + 30
        while _total(url, "sum(up)") != len(runners):  # its first scrapes wait for service discovery (~5 s)
            assert time.monotonic() < deadline, "prometheus scraped no runner"
            time.sleep(0.3)
        answered = {env: _load(client, 20) for env, client in runners.items()}  # every series exists, then
        time.sleep(2.5)  # ... Prometheus holds their first values
        for _ in range(BURSTS):
            for env, client in runners.items():
                answered[env] += _load(client, PER_BURST)
            time.sleep(0.4)
        deadline = time.monotonic() + 20
        for env, client in runners.items():  # until Prometheus has scraped the last answers
            own = sum(s.value for s in observe._samples(str(client.base_url)) if s.name == "modelops_requests_total")
            query = f'sum(modelops_requests_total{{modelops_environment="{env}"}})'
            while _total(url, query) != own:
                assert time.monotonic() < deadline, "prometheus did not scrape the runners"
                time.sleep(0.3)
        yield Stack(repo, pristine, url, runners, answered)
    finally:
        if prometheus is not None:
            stop_group(prometheus)
        servers.stop_all()


def canary(stack: Stack, *args: str, repo: Path | None = None, env: dict | None = None) -> tuple[int, dict, str]:
    result = run_cli("canary", "toy", *args, "--format", "json", cwd=repo or stack.repo, env=env)
    assert "Traceback" not in result.err, result.err
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def test_the_load_reached_both_versions_of_each_runner(stack: Stack) -> None:
    good, bad = stack.answered["good"], stack.answered["bad"]
    assert sum(good.values()) == sum(bad.values()) == 20 + BURSTS * PER_BURST
    assert set(good) == {("1.0.0", 200), ("1.1.0", 200)}
    assert set(bad) == {("1.0.0", 200), ("1.2.0", 500)}  # the broken canary fails every time, and says so
    assert min(good.values()) > POLICY["min_requests"] and min(bad.values()) > POLICY["min_requests"]


def test_a_good_canary_is_promoted_and_the_manifest_rewritten(stack: Stack) -> None:
    code, report, err = canary(stack, "--env", "good", "--prometheus", stack.prometheus, "--write")
    assert code == 0, err or report
    (verdict,) = report["verdicts"]
    assert (verdict["verdict"], verdict["candidate"], verdict["written"]) == ("promote", "1.1.0", True)
    assert verdict["summary"] == "promote 1.1.0: it becomes the version (canary removed)"
    assert all(check["ok"] for check in verdict["checks"])
    seen = verdict["observed"]["versions"]["1.1.0"]
    # increase() extrapolates over the window: close to what the canary answered, never exact
    assert seen["requests"] == pytest.approx(stack.answered["good"][("1.1.0", 200)], rel=0.25)
    assert seen["errors"] == 0 and seen["p99_s"] > 0
    assert verdict["observed"]["window"] == "1m" and report["auto_merge"] is False
    manifest = yaml.safe_load((stack.repo / "models/toy/model.yaml").read_text())
    assert manifest["deployments"]["good"] == {"version": "1.1.0", "rollout": POLICY}
    assert run_cli("validate", "--offline", cwd=stack.repo).code == 0


def test_a_failing_canary_is_rolled_back_with_the_numbers(stack: Stack) -> None:
    result = run_cli("canary", "toy", "--env", "bad", "--prometheus", stack.prometheus, cwd=stack.repo)
    assert result.code == 3, result.err
    lines = result.out.splitlines()
    assert lines[0] == "toy bad: rollback: roll back canary 1.2.0 (canary removed): max_error_rate, " \
                       "max_error_rate_ratio failed"
    assert lines[1] == f"  read from Prometheus {stack.prometheus}, in the last 1m"
    assert any(line.startswith("  FAIL  error rate 100.00 % (") and line.endswith("vs at most 5.00 % (max_error_rate)")
               for line in lines), result.out
    assert "(run with --write to rewrite the manifest)" in result.out
    code, report, err = canary(stack, "--env", "bad", "--prometheus", stack.prometheus, "--write")
    assert code == 3, err
    assert report["auto_merge"] is True  # the policy lets its rollback merge unreviewed
    assert "-  bad:" not in report["verdicts"][0]["diff"]
    manifest = yaml.safe_load((stack.repo / "models/toy/model.yaml").read_text())
    assert "canary" not in manifest["deployments"]["bad"] and manifest["deployments"]["bad"]["version"] == "1.0.0"
    assert run_cli("validate", "--offline", cwd=stack.repo).code == 0
    assert canary(stack, "--env", "bad", "--prometheus", stack.prometheus, "--write")[0] == 2  # nothing left to judge


def test_too_few_answers_hold_and_say_what_they_wait_for(stack: Stack, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(stack.pristine, repo)
    path = repo / "models/toy/model.yaml"
    path.write_text(path.read_text().replace("min_requests: 50", "min_requests: 100000"))
    before = path.read_text()
    code, report, err = canary(stack, "--env", "good", "--prometheus", stack.prometheus, "--write", repo=repo)
    assert code == 2, err
    (verdict,) = report["verdicts"]
    assert verdict["verdict"] == "hold" and verdict["changes"] == {} and not verdict["written"]
    answered = round(verdict["observed"]["versions"]["1.1.0"]["requests"])
    assert verdict["summary"] == (f"canary 1.1.0 answered {answered:,} scoring requests in the last 1m; the policy "
                                  "waits for 100,000 (min_requests) in 1m (window)")
    assert path.read_text() == before


def test_the_runners_own_metrics_count_exactly_what_they_answered(stack: Stack, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(stack.pristine, repo)
    code, report, err = canary(stack, "--env", "bad", "--metrics-url", str(stack.runners["bad"].base_url), repo=repo)
    assert code == 3, err
    (verdict,) = report["verdicts"]
    seen = verdict["observed"]
    assert seen["window"] is None and seen["source"] == "/metrics of 1 runner"
    answered = stack.answered["bad"]
    assert seen["versions"]["1.2.0"] == {"requests": answered[("1.2.0", 500)], "errors": answered[("1.2.0", 500)],
                                         "p99_s": seen["versions"]["1.2.0"]["p99_s"]}
    assert seen["versions"]["1.0.0"]["requests"] == answered[("1.0.0", 200)]


def test_a_step_lasts_at_least_the_window_since_the_manifest_changed_in_git(stack: Stack, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(stack.pristine, repo)
    for args in (("init", "-q"), ("add", "-A"), ("-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit",
                                                  "-qm", "the canary at 50 %")):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout
    code, report, err = canary(stack, "--env", "good", "--metrics-url", str(stack.runners["good"].base_url),
                               "--write", repo=repo)
    assert code == 2, err
    (verdict,) = report["verdicts"]
    assert verdict["summary"].startswith("the manifest changed ") and verdict["summary"].endswith(
        f"ago (commit {sha[:12]}): each step lasts at least 1m (window) before the next"), verdict["summary"]
    assert [c["ok"] for c in verdict["checks"]] == [True, True, True, True, None]  # healthy, but too soon
    assert not verdict["written"]


def test_the_argo_rollouts_analysis_asks_prometheus_the_same_numbers(stack: Stack) -> None:
    conf = replace(settings.load(stack.pristine), prometheus_url=stack.prometheus)
    loaded = load(stack.pristine / "models/toy", stack.pristine)
    for env in ("good", "bad"):
        # one runner holds both versions: here the "new pods" and the "stable pods" are the same target
        metrics = {m["name"]: m["query"].replace(rollouts.CANARY, env).replace(rollouts.STABLE, env)
                   for m in rollouts.analysis(loaded, env, conf)["metrics"]}
        value = {name: _total(stack.prometheus, query) for name, query in metrics.items()}
        answered = stack.answered[env]
        assert value["min-requests"] == pytest.approx(sum(answered.values()), rel=0.25)
        failed = sum(n for (_, status), n in answered.items() if status >= 500) / sum(answered.values())
        assert value["max-error-rate"] == pytest.approx(failed, abs=0.1)
        assert value["max-error-rate-ratio"] <= 0 and value["max-p99-ratio"] < 0  # x - 2x, x - 50x
    assert failed > POLICY["max_error_rate"]  # the analysis fails the bad environment, as `modelops canary` does


def test_the_argo_rollouts_analysis_judges_no_bound_before_min_requests(stack: Stack, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(stack.pristine, repo)
    path = repo / "models/toy/model.yaml"
    conf = replace(settings.load(repo), prometheus_url=stack.prometheus)
    answered = {env: sum(stack.answered[env].values()) for env in ("good", "bad")}
    failed = sum(n for (_, status), n in stack.answered["bad"].items() if status >= 500)
    least = 1000  # more answers than either has: only errors beyond 5 % of 1000 judge the error rate early
    assert max(answered.values()) < least and failed > POLICY["max_error_rate"] * least
    for min_requests, early in ((least, {"bad": {"max-error-rate"}}), (100000, {})):
        path.write_text(path.read_text().replace("min_requests: 50\n", f"min_requests: {min_requests}\n")
                        .replace(f"min_requests: {least}\n", f"min_requests: {min_requests}\n"))
        loaded = load(repo / "models/toy", repo)
        for env in ("good", "bad"):
            metrics = {m["name"]: m["query"].replace(rollouts.CANARY, env).replace(rollouts.STABLE, env)
                       for m in rollouts.analysis(loaded, env, conf)["metrics"]}
            value = {name: _total(stack.prometheus, query) for name, query in metrics.items()}
            assert value["min-requests"] == pytest.approx(answered[env], rel=0.25)  # there, but too few
            judged = {name for name, v in value.items() if v != -1.0} - {"min-requests"}  # -1: no result
            assert judged == early.get(env, set()), (min_requests, env, value)  # the others: inconclusive
            if judged:
                assert value["max-error-rate"] > POLICY["max_error_rate"]  # it fails the step
        code, report, err = canary(stack, "--env", "bad", "--prometheus", stack.prometheus, repo=repo)
        checks = {c["name"]: c["ok"] for c in report["verdicts"][0]["checks"]}  # modelops canary judges alike
        rate = False if early else None
        assert (code, checks) == (3 if early else 2, {"min_requests": None, "max_error_rate": rate,
                                                      "max_error_rate_ratio": None, "max_p99_ratio": None}), err


def test_a_runner_of_another_deployment_is_refused(stack: Stack, tmp_path: Path) -> None:
    code, _, err = canary(stack, "--env", "good", "--metrics-url", str(stack.runners["bad"].base_url))
    assert code == 1
    assert err.startswith(f"error: --metrics-url: {stack.runners['bad'].base_url} serves 'toy' in 'bad', not 'toy' "
                          "in 'good'\n  hint: give the runners of this deployment"), err


def test_an_unreachable_prometheus_is_a_clear_error(stack: Stack) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = canary(stack, "--env", "good", env={"MODELOPS_PROMETHEUS_URL": dead})
    assert code == 1
    assert err.startswith(f"MODELOPS_PROMETHEUS_URL: tool.modelops.prometheus_url: cannot reach Prometheus at {dead}: "
                          "Connection refused\n  hint: start Prometheus, or set prometheus_url"), err
    code, _, err = canary(stack, "--env", "good", "--prometheus", stack.prometheus + "/nowhere")
    assert code == 1 and "answered HTTP 404 to /api/v1/query" in err and "--prometheus" in err, err
