"""Pure parts of the runner: A/B routing, shadow agreement, micro-batching, the compiled signature."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from modelops.errors import ModelopsError
from modelops.manifest.model import Column
from modelops.runner import cpus
from modelops.runner.batching import Batcher, Cost
from modelops.runner.http import RequestError
from modelops.runner.infer import InferParser
from modelops.runner.routing import Router, agreeing_rows
from modelops.runner.runtime import RunnerSettings
from modelops.runner.serve import predict_threads
from modelops.signature.compiled import CompiledSignature, SignatureError
from tests.runner.fakes import Counting


def test_a_ten_percent_canary_gets_ten_percent_of_keys_and_of_keyless_requests() -> None:
    router = Router("1.0.0", "1.1.0", 10)
    keyed = sum(router.choose(f"customer-{i}") == "1.1.0" for i in range(10_000))
    keyless = sum(router.choose(None) == "1.1.0" for i in range(10_000))
    assert 850 <= keyed <= 1150
    assert 850 <= keyless <= 1150


def test_a_request_key_always_gets_the_same_version() -> None:
    router, again = Router("1.0.0", "1.1.0", 50), Router("1.0.0", "1.1.0", 50)
    for i in range(500):
        assert len({router.choose(f"k{i}") for _ in range(5)} | {again.choose(f"k{i}")}) == 1


def test_without_a_canary_everything_goes_to_the_version() -> None:
    assert {Router("2.0.0").choose(str(i)) for i in range(100)} == {"2.0.0"}


@pytest.mark.parametrize(("served", "shadow", "agree"), [
    ([1, 2, 3], [1, 2, 4], 2),
    ([0.5, 1.0], [0.5 + 1e-12, 2.0], 1),
    ([[1, 2], [3, 4]], [[1, 2], [3, 5]], 1),
    (["a", "b"], ["a", "b"], 2),
    ([1, 2], [1, 2, 3], 0),
])
def test_shadow_agreement_counts_rows(served: list, shadow: list, agree: int) -> None:
    assert agreeing_rows(np.array(served), np.array(shadow)) == agree


def _batcher(model: Counting, **options: object) -> Batcher:
    return Batcher(model.predict, "t", **{"max_wait": 0.05, "max_rows": 1024, **options})


def test_concurrent_requests_are_scored_in_one_predict() -> None:
    async def scenario() -> list:
        model = Counting(delay=0.05)
        batcher = _batcher(model)
        batcher.start()
        first = asyncio.ensure_future(batcher.predict(np.ones((1, 2))))
        await asyncio.sleep(0.01)  # the first predict is running: the next eight queue behind it
        rest = [asyncio.ensure_future(batcher.predict(np.full((2, 2), i))) for i in range(8)]
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return [model.calls, [r.tolist() for r in results]]

    calls, results = asyncio.run(scenario())
    assert calls == [1, 16]
    assert results[0] == [2.0]
    assert results[1:] == [[2.0 * i, 2.0 * i] for i in range(8)]


def test_a_lone_request_does_not_wait_and_a_bad_one_fails_alone() -> None:
    async def scenario() -> tuple:
        model = Counting(delay=0.05)
        batcher = _batcher(model, max_wait=5.0)
        batcher.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await batcher.predict(np.ones((1, 2)))
        lone = loop.time() - start
        blocker = asyncio.ensure_future(batcher.predict(np.ones((1, 2))))
        await asyncio.sleep(0.01)
        good = asyncio.ensure_future(batcher.predict(np.ones((1, 2))))
        bad = asyncio.ensure_future(batcher.predict(-np.ones((1, 2))))
        outcome = await asyncio.gather(blocker, good, bad, return_exceptions=True)
        await batcher.stop()
        return lone, outcome, model.calls

    lone, (blocker, good, bad), calls = asyncio.run(scenario())
    assert lone < 1.0  # max_wait is 5 s: nobody else was coming, so no wait
    assert good.tolist() == [2.0] and blocker.tolist() == [2.0]
    assert isinstance(bad, ValueError)
    assert calls == [1, 1, 2, 1, 1]  # the failed batch of two is retried one by one


def test_a_request_abandoned_while_queued_is_not_scored() -> None:
    """A caller that timed out (or went away) while its rows waited: the model never scores them."""
    async def scenario() -> tuple:
        model = Counting(delay=0.05)
        batcher = _batcher(model)
        batcher.start()
        blocker = asyncio.ensure_future(batcher.predict(np.ones((1, 2))))
        await asyncio.sleep(0.01)  # scoring: the next two queue
        abandoned = asyncio.ensure_future(batcher.predict(np.ones((5, 2))))
        kept = asyncio.ensure_future(batcher.predict(np.ones((2, 2))))
        await asyncio.sleep(0)
        abandoned.cancel()
        outcome = await asyncio.gather(blocker, kept, abandoned, return_exceptions=True)
        await batcher.stop()
        return outcome, model.calls

    (blocker, kept, abandoned), calls = asyncio.run(scenario())
    assert blocker.tolist() == [2.0]
    assert isinstance(abandoned, asyncio.CancelledError) and kept.tolist() == [2.0, 2.0]
    assert calls == [1, 2]  # the 5 abandoned rows were dropped from the queue


class MeetsAnother:
    """Sums each row, but only once another call runs at the same time (on another thread)."""

    def __init__(self) -> None:
        self.meeting = threading.Barrier(2, timeout=5)
        self.threads: set[str] = set()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        self.meeting.wait()  # broken (an error) unless a second batch is being predicted meanwhile
        return batch.sum(axis=1)


def test_two_batches_are_scored_at_once_on_two_threads_each_caller_getting_its_rows() -> None:
    async def scenario() -> tuple:
        model = MeetsAnother()
        batcher = Batcher(model.predict, "t", max_wait=0.05, max_rows=1024, threads=2)
        batcher.start()
        first = asyncio.ensure_future(batcher.predict(np.ones((3, 2))))
        await asyncio.sleep(0.1)  # its batch waits in predict for another
        second = asyncio.ensure_future(batcher.predict(np.full((2, 2), 5.0)))
        answers = await asyncio.gather(first, second)
        await batcher.stop()
        return [a.tolist() for a in answers], model.threads

    (first, second), threads = asyncio.run(scenario())
    assert first == [2.0, 2.0, 2.0] and second == [10.0, 10.0]
    assert len(threads) == 2


def test_the_cost_of_a_call_is_fitted_from_the_calls_made() -> None:
    cost = Cost()
    assert cost.of(100) == 0.0  # nothing seen: no estimate, the budget does not bound
    assert cost.call() is None
    one_size = Cost()
    one_size.observe(10, 0.003)
    assert one_size.of(10) == 0.0  # one size seen: no fit; what a call saves is then its mean
    assert one_size.call() == pytest.approx(0.003)
    for rows in (1, 10, 100, 1000):
        cost.observe(rows, 0.002 + 0.00001 * rows)  # 2 ms a call, 10 us a row
    assert cost.of(0) == pytest.approx(0.002)
    assert cost.of(500) == pytest.approx(0.007)
    assert cost.call() == cost.of(0)  # what a request joining another's saves: the fixed part


def test_after_a_crowd_a_lone_caller_waits_at_most_what_a_call_costs() -> None:
    """The batcher waits for a crowd it saw lately to come back, but never longer than the call it would save."""
    async def scenario() -> float:
        model = Counting(delay=0.001)
        batcher = _batcher(model, max_wait=1.0)
        batcher.start()
        for _ in range(3):  # a crowd of eight callers, three times
            await asyncio.gather(*(batcher.predict(np.ones((1, 2))) for _ in range(8)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(5):  # then one caller alone, while the crowd is remembered
            await batcher.predict(np.ones((1, 2)))
        await batcher.stop()
        return loop.time() - start

    assert asyncio.run(scenario()) < 0.5  # 5 waits of max_wait would be 5 s; of a 1 ms call, about 5 ms



class SlowAtFirst:
    """Sums each row in 10 ms a call, but its first call takes 300 ms (a cold start)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        time.sleep(0.3 if len(self.calls) == 1 else 0.01)
        return batch.sum(axis=1)


def test_after_a_slow_first_call_a_crowd_coming_back_at_different_moments_is_scored_in_one_call() -> None:
    """A model with a real fixed cost (10 ms a call) waits for its crowd, whatever its cold first call cost."""
    async def scenario() -> list[int]:
        model = SlowAtFirst()
        batcher = _batcher(model, max_wait=0.05)
        batcher.start()
        await batcher.predict(np.ones((1, 2)))  # cold: 300 ms

        async def caller(i: int) -> None:
            for _ in range(10):
                await asyncio.sleep(0.0005 * (i % 4))  # back at different moments, sooner than a call's cost
                await batcher.predict(np.ones((1, 2)))

        await asyncio.gather(*(caller(i) for i in range(8)))
        await batcher.stop()
        return model.calls[1:]

    calls = asyncio.run(scenario())
    assert sum(calls) == 80 and len(calls) <= 12, calls  # ten rounds of eight: one call each, give or take two

class CostsPerRow:
    """Sums each row, in 10 ms a call and 1 ms a row."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        time.sleep(0.01 + 0.001 * len(batch))
        return batch.sum(axis=1)


def test_a_batch_stays_within_the_budget_its_cost_predicts() -> None:
    async def scenario() -> list:
        model = CostsPerRow()
        batcher = Batcher(model.predict, "t", max_wait=0.05, max_rows=1024, budget=0.06)
        batcher.start()
        for rows in (1, 20):  # two calls of different sizes teach the batcher their cost
            await batcher.predict(np.ones((rows, 2)))
        blocker = asyncio.ensure_future(batcher.predict(np.ones((1, 2))))
        await asyncio.sleep(0.005)  # scoring: the next six queue, 20 rows each
        rest = [asyncio.ensure_future(batcher.predict(np.ones((20, 2)))) for _ in range(6)]
        answers = await asyncio.gather(blocker, *rest)
        await batcher.stop()
        return model.calls[2:], [a.tolist() for a in answers[1:]]

    calls, answers = asyncio.run(scenario())
    # 40 rows cost 50 ms, within 60 ms; 60 rows (70 ms) do not fit
    assert calls == [1, 40, 40, 40]
    assert answers == [[2.0] * 20] * 6


def test_a_full_shadow_queue_refuses_instead_of_growing() -> None:
    async def scenario() -> list:
        batcher = _batcher(Counting(), limit=2)  # not started: nothing drains the queue
        return [batcher.offer(np.ones((1, 2))) is not None for _ in range(4)]

    assert asyncio.run(scenario()) == [True, True, False, False]


MIXED = CompiledSignature([Column(name="n", type="long"), Column(name="s", type="string"),
                           Column(name="b", type="boolean", required=False)], None)


def test_mixed_columns_make_an_object_array_and_optional_nulls_pass() -> None:
    array = MIXED.records([{"n": 1, "s": "a"}, {"n": 2, "s": "b", "b": True}], "rows")
    assert array.dtype == object
    assert array.tolist() == [[1, "a", None], [2, "b", True]]


@pytest.mark.parametrize(("rows", "field", "words"), [
    ([[1.5, "a", None]], "rows[0][0]", "1.5 is not an integer (long)"),
    ([[2**63, "a", None]], "rows[0][0]", "9223372036854775808 is out of the 64-bit integer range (long)"),
    ([[1, 2, None]], "rows[0][1]", "2 is not a string"),
    ([[1, "a", "yes"]], "rows[0][2]", "'yes' is not true or false"),
    ([[None, "a", True]], "rows[0][0]", "'n' is required"),
    ([1, 2], "rows[0]", "expected a list of 3 values"),
])
def test_wrong_cells_are_named(rows: list, field: str, words: str) -> None:
    with pytest.raises(SignatureError) as caught:
        MIXED.rows(rows, "rows")
    assert caught.value.field == field
    assert words in caught.value.message


def test_float_columns_refuse_values_beyond_float32() -> None:
    signature = CompiledSignature([Column(name="f", type="float")], None)
    assert signature.rows([[1.5]], "rows").dtype == np.float32
    with pytest.raises(SignatureError, match=r"column 'f': 1e\+39 is out of the float32 range \(±3.4e\+38\)"):
        signature.rows([[1e39]], "rows")
    with pytest.raises(SignatureError, match="'a' is not a number"):
        signature.rows([["a"]], "rows")


DOUBLES = CompiledSignature([Column(name="a", type="double"), Column(name="b", type="double")], None)


def _tensors(a: list, b: list, **changed: object) -> dict:
    tensor = {"name": "b", "datatype": "FP64", "shape": [len(b)], "data": b}
    return {"inputs": [{**tensor, **changed}, {"name": "a", "datatype": "FP64", "shape": [len(a)], "data": a}]}


_BEYOND_64_BITS = (b'{"inputs": [{"name": "a", "datatype": "FP64", "shape": [2], "data": [18446744073709551617, -0.0]},'
                   b' {"name": "b", "datatype": "FP64", "shape": [2], "data": [-9223372036854775809, 1e-400]}]}')
_DUPLICATE_KEYS = (b'{"id": 7, "id": "r-2", "inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1],'
                   b' "data": [2]}, {"name": "b", "datatype": "FP64", "shape": [1], "data": [3]}]}')


@pytest.mark.parametrize("body", [orjson.dumps(_tensors([1, 2.5], [3.0, -4])),
                                  orjson.dumps({**_tensors([0.5], [1]), "id": "r-1"}), _BEYOND_64_BITS,
                                  _DUPLICATE_KEYS],
                         ids=["columns out of order", "with an id", "integers beyond 64 bits, -0.0", "duplicate keys"])
def test_a_plain_v2_body_is_read_without_pydantic_as_the_full_parse_reads_it(body: bytes) -> None:
    parser = InferParser(DOUBLES, "toy")
    plain = parser._plain(body)
    full = parser(b'{"parameters": {}, ' + body[1:], None, None, None)  # parameters: the full parse reads it
    assert plain is not None and plain.array.dtype == full.array.dtype == np.float64
    assert plain.array.view(np.uint64).tolist() == full.array.view(np.uint64).tolist()  # bit for bit
    assert plain.reply == full.reply


@pytest.mark.parametrize(("body", "field"), [
    (_tensors([1.0], ["x"]), "inputs[0].data[0]"),
    (_tensors([1.0], [True]), "inputs[0].data[0]"),
    (_tensors([1.0], [2.0], shape=[True]), "inputs[0].shape[0]"),
    (_tensors([1.0], [2.0], shape=[2]), "inputs[0].shape"),
    (_tensors([1.0], [2.0], datatype="BOOL"), "inputs[0].datatype"),
    (_tensors([1.0], [2.0], name="a"), "inputs[1].name"),
    (_tensors([1.0], [2.0], name=["b"]), "inputs[0].name"),
    (_tensors([1.0], [2.0, 3.0]), "inputs[1].shape"),
    ({**_tensors([1.0], [2.0]), "id": 7}, "id"),
    ({"inputs": _tensors([1.0], [2.0])["inputs"][:1]}, "inputs.a"),
], ids=["a string", "a boolean", "shape [true]", "shape beyond the data", "another datatype", "a column twice",
        "a name not a string", "lengths that differ", "an id not a string", "a column missing"])
def test_a_v2_body_off_the_plain_shape_is_left_to_the_full_parse_which_names_the_field(body: dict,
                                                                                      field: str) -> None:
    parser = InferParser(DOUBLES, "toy")
    assert parser._plain(orjson.dumps(body)) is None
    with pytest.raises((RequestError, SignatureError)) as refused:  # a cell's refusal: SignatureError
        parser(orjson.dumps(body), None, None, None)
    assert refused.value.field == field


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("MODELOPS_MAX_IN_FLIGHT", "-1", "must be 0 or more"),
    ("MODELOPS_MAX_HEADER_BYTES", "0", "must be more than 0"),
    ("MODELOPS_REQUEST_TIMEOUT_S", "nan", "must be 0 or more"),
    ("MODELOPS_MAX_BODY_BYTES", "many", "is not a valid int"),
])
def test_a_setting_out_of_range_is_refused_naming_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                                                value: str, words: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ModelopsError) as raised:
        RunnerSettings.from_env()
    assert f"{variable}={value!r}" in str(raised.value) and words in str(raised.value)
    monkeypatch.setenv(variable, "0" if variable == "MODELOPS_MAX_IN_FLIGHT" else "5")
    assert RunnerSettings.from_env()  # in range


CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU: one thread
    ({"cpu.max": "150000 100000\n"}, min(2, CORES)),  # 1.5 CPUs rounded up, within the affinity
    ({"cpu.max": "max 100000\n"}, CORES),  # no quota
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, CORES),  # v1, no quota
    ({}, CORES),  # no cgroup files at all
])
def test_the_cpus_available_follow_the_container_quota(tmp_path: Path, files: dict, expected: int) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpus.available(tmp_path) == expected


@pytest.mark.parametrize(("cores", "workers", "flavor", "expected"), [
    (2, 1, "sklearn", 1), (4, 1, "xgboost", 3), (2, 1, "onnx", 2), (4, 2, "onnx", 2), (4, 2, "pyfunc", 1),
    (1, 1, "sklearn", 1), (2, 4, "onnx", 1)])
def test_each_worker_predicts_on_its_share_of_the_cpus_less_one_unless_the_flavor_frees_the_gil(
        cores: int, workers: int, flavor: str, expected: int) -> None:
    assert predict_threads(cores, workers, flavor) == expected
