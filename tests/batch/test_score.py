"""`modelops score`: the online runner's predictions, every row checked, bad rows by number, nothing half-written."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelops import api
from modelops.errors import ModelopsError
from modelops.reporter import LineRecorder
from tests.batch.conftest import (
    DIABETES,
    DIABETES_COLUMNS,
    IRIS,
    IRIS_ROWS,
    diabetes_rows,
    read_csv,
    write_csv,
)
from tests.conftest import run_cli
from tests.runner.conftest import PYTHONPATH, ROOT
from tests.runner.test_server import _NOT_IN_IMAGES

IRIS_COLUMNS = list(IRIS_ROWS[0])


def _iris_csv(path: Path, rows: list[list] | None = None) -> Path:
    return write_csv(path, IRIS_COLUMNS, rows if rows is not None else [[r[c] for c in IRIS_COLUMNS]
                                                                        for r in IRIS_ROWS])


def test_the_output_rows_equal_the_online_runners_predictions(tmp_path: Path, diabetes_server: httpx.Client) -> None:
    rows = diabetes_rows(1500)
    source = write_csv(tmp_path / "rows.csv", DIABETES_COLUMNS, rows)
    result = run_cli("score", str(DIABETES), "--env", "production", "--input", str(source), "--output",
                     str(tmp_path / "scored.csv"), "--chunk-rows", "400", cwd=ROOT)
    assert result.code == 0, result.err
    assert "scored 1,500 rows with diabetes 1.0.0" in result.out and "[#" not in result.err  # no bar: no terminal
    scored = read_csv(tmp_path / "scored.csv")
    answer = diabetes_server.post("/invocations", json={"dataframe_split": {"columns": DIABETES_COLUMNS,
                                                                             "data": rows}})
    assert answer.status_code == 200, answer.text
    assert [float(r["progression"]) for r in scored] == answer.json()["predictions"]  # exactly, row for row
    assert {r["model_version"] for r in scored} == {answer.headers["x-model-version"]}
    assert [[float(r[c]) for c in DIABETES_COLUMNS] for r in scored] == rows  # the inputs, in order


def test_an_environment_with_a_canary_is_scored_by_its_primary_version(tmp_path: Path, iris_model: dict) -> None:
    source = _iris_csv(tmp_path / "rows.csv")
    reporter = LineRecorder()
    scored = api.score(str(IRIS), str(source), str(tmp_path / "scored.jsonl"), "production", reporter=reporter)
    assert (scored.version, scored.rows, scored.rejected) == ("1.0.0", len(IRIS_ROWS), 0)
    assert scored.note == "canary 1.1.0 (10 %) and shadow 1.2.0 not used: batch scoring uses the primary version 1.0.0"
    records = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    expected = iris_model["1.0.0"].predict([[r[c] for c in IRIS_COLUMNS] for r in IRIS_ROWS]).tolist()
    assert [r["species"] for r in records] == expected
    assert {r["model_version"] for r in records} == {"1.0.0"}
    assert records[0] == {**IRIS_ROWS[0], "species": expected[0], "model_version": "1.0.0"}
    one = api.score(str(IRIS), str(source), str(tmp_path / "one.jsonl"), version="1.1.0")
    assert (one.version, one.note) == ("1.1.0", "")


_BAD_CSV = """sepal_length,sepal_width,petal_length,petal_width
5.1,3.5,1.4,0.2
5.1,abc,1.4,0.2
6.0,3.0,4.5

5.9,,5.1,1.8
6.3,1e400,4.9,1.5
7.0,3.2,4.7,1.4
"""


def test_bad_rows_fail_the_run_by_number_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(_BAD_CSV)
    result = run_cli("score", str(IRIS), "--version", "1.0.0", "--input", "rows.csv", "--output", "scored.csv",
                     cwd=tmp_path)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.splitlines()[1:] == [
        "rows.csv:3: row 2.sepal_width: column 'sepal_width': 'abc' is not double",
        "rows.csv:4: row 3: expected 4 values, one per column, got 3",
        "rows.csv:6: row 4.sepal_width: column 'sepal_width' is required: null is not allowed",
        "rows.csv:7: row 5.sepal_width: column 'sepal_width': inf is not a number (double)",
        "rows.csv: 4 row(s) up to row 6 do not fit the signature or the model; nothing was written",
        "  hint: fix those rows, or pass --rejects FILE to score the others and write every bad row there"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no output, no partial file


def test_with_a_rejects_file_every_bad_row_is_there_and_the_others_are_scored(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(_BAD_CSV)
    scored = api.score(str(IRIS), str(tmp_path / "rows.csv"), str(tmp_path / "scored.csv"), version="1.0.0",
                       rejects=str(tmp_path / "rejects.jsonl"), chunk_rows=2)  # numbers run on across chunks
    assert (scored.rows, scored.rejected) == (2, 4)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["line"], [p["field"] for p in r["problems"]]) for r in rejects] == [
        (2, 3, ["sepal_width"]), (3, 4, [""]), (4, 6, ["sepal_width"]), (5, 7, ["sepal_width"])]
    assert rejects[0]["input"] == {"sepal_length": "5.1", "sepal_width": "abc", "petal_length": "1.4",
                                   "petal_width": "0.2"}
    assert [r["sepal_length"] for r in read_csv(tmp_path / "scored.csv")] == ["5.1", "7.0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rejects.jsonl", "rows.csv", "scored.csv"]


def test_a_row_the_model_refuses_is_a_reject_and_the_chunk_is_still_scored(tmp_path: Path) -> None:
    rows = diabetes_rows(5)
    rows[3][2] = 1e300  # a double, but beyond the float32 the forest casts to
    source = write_csv(tmp_path / "rows.csv", DIABETES_COLUMNS, rows)
    scored = api.score(str(DIABETES), str(source), str(tmp_path / "scored.csv"), rejects=str(tmp_path / "bad.jsonl"))
    (reject,) = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert (scored.rows, reject["row"]) == (4, 4)
    assert reject["problems"][0]["message"].startswith("the model cannot score this row: ")


def test_json_lines_and_parquet_score_as_csv_does_and_keep_carries_an_id(tmp_path: Path) -> None:
    rows = diabetes_rows(30)
    write_csv(tmp_path / "rows.csv", ["id", *DIABETES_COLUMNS], [[f"p{i}", *r] for i, r in enumerate(rows)])
    records = [{"id": f"p{i}", **dict(zip(DIABETES_COLUMNS, r, strict=True))} for i, r in enumerate(rows)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(30)],
                             **{c: [r[j] for r in rows] for j, c in enumerate(DIABETES_COLUMNS)}}),
                   tmp_path / "rows.parquet")
    outputs = {}
    for source in ("csv", "jsonl", "parquet"):
        for target in ("csv", "jsonl", "parquet"):
            out = tmp_path / f"{source}-to.{target}"
            api.score(str(DIABETES), str(tmp_path / f"rows.{source}"), str(out), keep=("id",), chunk_rows=7)
            if target == "csv":
                table = [{**r, "progression": float(r["progression"])} for r in read_csv(out)]
            elif target == "jsonl":
                table = [json.loads(line) for line in out.read_text().splitlines()]
            else:
                table = pq.read_table(out).to_pylist()
            outputs[source, target] = [(r["id"], r["progression"], r["model_version"]) for r in table]
    first = outputs["csv", "csv"]
    assert len(first) == 30 and first[0][0] == "p0"
    assert all(found == first for found in outputs.values())
    schema = pq.read_table(tmp_path / "csv-to.parquet").schema
    assert (str(schema.field("age").type), str(schema.field("progression").type)) == ("double", "double")


@pytest.mark.parametrize(("line", "message"), [
    ('{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}', "required column(s) missing: petal_width"),
    ('{"sepal_lenght": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}',
     "unknown column 'sepal_lenght'; did you mean 'sepal_length'?"),
    ('{"sepal_length": 5.1,', "not JSON: "),
    ('[5.1, 3.5, 1.4, 0.2]', "expected a JSON object: a record {column: value}"),
    ('{"sepal_length": "5.1", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}',
     "column 'sepal_length': '5.1' is not a number (double)"),
])
def test_a_bad_json_line_is_rejected_by_its_row_number(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps(IRIS_ROWS[0])
    (tmp_path / "rows.jsonl").write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), str(tmp_path / "rows.jsonl"), str(tmp_path / "out.csv"), version="1.0.0")
    first = caught.value.problems[0]
    assert (first.line, first.field.split(".")[0]) == (3, "row 2")  # the blank line is no row
    assert first.message.startswith(message)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(("header", "expected"), [
    ("sepal_length,sepal_width,petal_length", "rows.csv:1: columns: required column(s) missing: petal_width"),
    ("sepal_length,sepal_width,petal_length,petal_width,id",
     "rows.csv:1: columns: unknown column 'id'; the signature's columns are: sepal_length, sepal_width, "
     "petal_length, petal_width"),
])
def test_a_header_that_does_not_fit_stops_before_any_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         header: str, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("rows.csv").write_text(header + "\n1,2,3,4,5\n")
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), "rows.csv", "out.csv")
    assert caught.value.render().startswith(expected) and "hint: " in caught.value.render()
    assert not Path("out.csv").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (("--input", "rows.txt", "--output", "out.csv"), "rows.txt: cannot tell the format from the suffix '.txt'"),
    (("--input", "missing.csv", "--output", "out.csv"), "--input: missing.csv: no such file"),
    (("--input", "rows.csv", "--output", "nowhere/out.csv"), "--output: nowhere/out.csv: no folder nowhere"),
    (("--input", "ftp://host/rows.csv", "--output", "out.csv"), "unsupported scheme 'ftp'"),
    (("--input", "rows.csv", "--output", "out.csv", "--keep", "id"), "--keep names column(s) the file does not "
                                                                      "have: id"),
    (("--input", "rows.csv", "--output", "out.csv", "--env", "nope"), "no deployment for environment 'nope'"),
    (("--input", "rows.csv", "--output", "out.csv", "--rejects", "out.csv"),
     "--rejects: --output and --rejects name the same file, out.csv"),
    (("--input", "rows.csv", "--output", "out.csv", "--keep", "sepal_length"),
     "--keep: the output would have column(s) 'sepal_length' twice"),
])
def test_a_wrong_argument_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...],
                                             expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    _iris_csv(tmp_path / "rows.csv")
    (tmp_path / "rows.txt").write_text("x\n")
    options = dict(zip(args[::2], args[1::2], strict=True))
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), options["--input"], options["--output"], options.get("--env"),
                  rejects=options.get("--rejects"), keep=(options["--keep"],) if "--keep" in options else ())
    assert expected in caught.value.render()
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(("output", "rejects", "expected"), [
    ("rows.csv", None, "--output: --input and --output name the same file, rows.csv"),
    ("out.csv", "rows.csv", "--rejects: --input and --rejects name the same file, rows.csv"),
    ("./out.csv", "out.csv", "--rejects: --output and --rejects name the same file, ./out.csv and out.csv"),
    ("sub/../rows.csv", None, "--input and --output name the same file, rows.csv and sub/../rows.csv"),
    ("link.csv", None, "--input and --output name the same file, rows.csv and link.csv"),  # a symbolic link
    ("file://{tmp}/rows.csv", None, "--input and --output name the same file"),
])
def test_score_never_writes_over_its_input_or_its_other_file(tmp_path: Path, output: str, rejects: str | None,
                                                             expected: str) -> None:
    source = _iris_csv(tmp_path / "rows.csv")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(source)
    before = source.read_bytes()
    result = run_cli("score", str(IRIS), "--input", "rows.csv", "--output", output.format(tmp=tmp_path),
                     *(("--rejects", rejects) if rejects else ()), cwd=tmp_path)
    assert result.code == 1 and expected in result.err and "hint: give --" in result.err, result.err
    assert "Traceback" not in result.err and source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "rows.csv", "sub"]  # no partial file


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served by a real HTTP server on a free 127.0.0.1 port: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_input_is_fetched_from_a_store_uri_as_artifacts_are(tmp_path: Path, http_folder: tuple[Path, str]) -> None:
    folder, base = http_folder
    _iris_csv(folder / "rows.csv")
    scored = api.score(str(IRIS), f"{base}/rows.csv", str(tmp_path / "scored.csv"), version="1.0.0")
    assert scored.rows == len(IRIS_ROWS) == len(read_csv(tmp_path / "scored.csv"))
    with pytest.raises(ModelopsError, match=r"cannot fetch 'http://.*/absent\.csv': "):
        api.score(str(IRIS), f"{base}/absent.csv", str(tmp_path / "other.csv"), version="1.0.0")
    assert not (tmp_path / "other.csv").exists()


def test_a_progress_bar_on_request_and_a_summary_for_machines(tmp_path: Path) -> None:
    _iris_csv(tmp_path / "rows.csv")
    result = run_cli("score", str(IRIS), "--input", "rows.csv", "--output", "out.csv", "--progress", "--format",
                     "json", cwd=tmp_path)
    assert result.code == 0 and "[##############################] 100 %  102 B of 102 B" in result.err, result.err
    summary = json.loads(result.out)
    assert {k: v for k, v in summary.items() if k != "seconds"} == {
        "model": "iris", "version": "1.0.0", "environment": "production", "rows": 3, "rejected": 0,
        "output": "out.csv", "rejects": None}


_BLOCKED = (*_NOT_IN_IMAGES, "pandas", "pyarrow")
_SCORE_AS_IMAGES_RUN_IT = f"""
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {_BLOCKED!r}:
            raise ImportError('runner images do not install ' + name)
sys.meta_path.insert(0, Block())
sys.argv = ['modelops', 'score', *sys.argv[1:]]
runpy.run_module('modelops', run_name='__main__')
"""


def test_the_score_command_imports_only_what_runner_images_install(tmp_path: Path) -> None:
    """`python -m modelops score` as an image runs it, with every package that images do not install (pyarrow
    and pandas included) blocked: CSV and JSON Lines score; Parquet says what to install."""
    _iris_csv(tmp_path / "rows.csv")

    def score(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", _SCORE_AS_IMAGES_RUN_IT, str(IRIS), "--version", "1.0.0", *args],
                              cwd=tmp_path, env={"PYTHONPATH": PYTHONPATH, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=120)

    done = score("--input", "rows.csv", "--output", "scored.jsonl")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "scored.jsonl").read_text().splitlines()) == len(IRIS_ROWS)
    parquet = score("--input", "rows.csv", "--output", "scored.parquet")
    assert parquet.returncode == 1 and "the pyarrow package is missing" in parquet.stderr
    assert "add pyarrow==<version> to the model's requirements.txt" in parquet.stderr
    assert not (tmp_path / "scored.parquet").exists()


def test_every_column_type_is_read_from_each_format(tmp_path: Path) -> None:
    import datetime as dt

    from tests.runner.conftest import make_model
    from tests.runner.fakes import Constant

    inputs = [{"name": "when", "type": "datetime"}, {"name": "n", "type": "long"},
              {"name": "flag", "type": "boolean", "required": False}, {"name": "word", "type": "string"}]
    folder = make_model(tmp_path / "toy", {"1.0.0": Constant(7)}, {"production": {"version": "1.0.0"}}, inputs)
    stamps = [dt.datetime(2026, 12, 1, 2, 0), dt.datetime(2026, 12, 2, 2, 30)]
    pq.write_table(pa.table({"when": stamps, "n": [1, 2], "flag": [True, None], "word": ["a", "b"]}),
                   tmp_path / "rows.parquet")
    write_csv(tmp_path / "rows.csv", ["when", "n", "flag", "word"],
              [["2026-12-01T02:00:00", "1", "true", "a"], ["2026-12-02 02:30", "2", "", "b"],
               ["yesterday", "3", "maybe", "c"]])
    parquet = api.score(str(folder), str(tmp_path / "rows.parquet"), str(tmp_path / "p.jsonl"))
    text = api.score(str(folder), str(tmp_path / "rows.csv"), str(tmp_path / "c.jsonl"),
                     rejects=str(tmp_path / "bad.jsonl"))
    assert (parquet.rows, text.rows, text.rejected) == (2, 2, 1)
    scored = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(r["n"], r["flag"], r["word"], r["label"]) for r in scored] == [(1, True, "a", 7), (2, None, "b", 7)]
    assert dt.datetime.fromisoformat(scored[0]["when"]) == stamps[0]  # a timestamp is read as ISO text
    (bad,) = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert (bad["row"], [p["field"] for p in bad["problems"]]) == (3, ["when", "flag"])  # every problem of the row
    assert bad["problems"][1]["message"] == "column 'flag': 'maybe' is not boolean"


def test_a_kept_column_is_text_in_parquet_whatever_each_chunk_holds(tmp_path: Path) -> None:
    ids = [None, 1, "A2", True, {"a": 1}]  # missing from the first chunk, then a number, then text, ...
    rows = [IRIS_ROWS[i % len(IRIS_ROWS)] for i in range(len(ids))]
    records = [{**r, **({"id": i} if i is not None else {})} for r, i in zip(rows, ids, strict=True)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    scored = api.score(str(IRIS), str(tmp_path / "rows.jsonl"), str(tmp_path / "out.parquet"), version="1.0.0",
                       keep=("id",), chunk_rows=1)
    table = pq.read_table(tmp_path / "out.parquet")
    assert scored.rows == len(ids) and str(table.schema.field("id").type) == "string"
    assert table.column("id").to_pylist() == [None, "1", "A2", "true", '{"a":1}']
    assert table.column("sepal_length").to_pylist() == [r["sepal_length"] for r in rows]


def _damaged(path: Path, at: int | None) -> Path:
    """A Parquet file of iris rows in row groups of 100, its bytes from `at` (the third row group's data when
    None) overwritten."""
    pq.write_table(pa.table({c: [float(i % 7) for i in range(500)] for c in IRIS_COLUMNS}), path,
                   row_group_size=100)
    data = bytearray(path.read_bytes())
    start = pq.ParquetFile(path).metadata.row_group(2).column(0).data_page_offset if at is None else at
    data[start:start + 600] = b"\xff" * 600
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("at", "expected"), [
    (None, "rows.parquet: not a readable Parquet file (after row 200): "),  # a damaged row group
    (-700, "rows.parquet: not a readable Parquet file: "),  # a damaged footer
])
def test_a_damaged_parquet_file_is_named_in_its_error(tmp_path: Path, at: int | None, expected: str) -> None:
    source = _damaged(tmp_path / "rows.parquet", at)
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), str(source), str(tmp_path / "out.csv"), version="1.0.0", chunk_rows=100)
    assert caught.value.render().startswith(str(tmp_path / expected)), caught.value.render()
    assert "hint: the file is damaged or not Parquet" in caught.value.render()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.parquet"]


def test_an_output_that_cannot_be_uploaded_leaves_no_rejects_file(tmp_path: Path, http_folder: tuple[Path, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, base = http_folder  # a real HTTP server that takes no upload (PUT is 501)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
    (tmp_path / "rows.csv").write_text(_BAD_CSV)
    with pytest.raises(ModelopsError):
        api.score(str(IRIS), str(tmp_path / "rows.csv"), "mlflow-artifacts:/batch/scored.csv", version="1.0.0",
                  rejects=str(tmp_path / "rejects.jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "served"]  # no rejects, no partial file


_HEADER = ",".join(IRIS_COLUMNS)


def test_a_byte_that_is_not_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_bytes(f"{_HEADER}\n5.1,3.5,1.4,0.2\n5.1,3.5,1.4,0.2\n5.1,3.5,\xe9,0.2\n"
                                        .encode("latin-1"))
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), str(tmp_path / "rows.csv"), str(tmp_path / "out.csv"), version="1.0.0",
                  rejects=str(tmp_path / "bad.jsonl"))
    assert caught.value.render().startswith(f"{tmp_path / 'rows.csv'}:4: not UTF-8: byte 0xe9 (9 bytes into the line)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_a_row_the_csv_module_refuses_is_a_reject_at_the_line_it_starts_on(tmp_path: Path) -> None:
    big = "9" * 200_000  # more than the csv module's default limit (131,072 characters)
    (tmp_path / "rows.csv").write_text(f'{_HEADER}\n5.1,3.5,1.4,0.2\n5.1,"3."5,1.4,0.2\n5.1,{big},1.4,0.2\n'
                                       f'"5.1",3.0,"1.4",0.2\n7.0,3.2,4.7,"1.4\n6.3,3.3,6.0,2.5\n')
    scored = api.score(str(IRIS), str(tmp_path / "rows.csv"), str(tmp_path / "out.csv"), version="1.0.0",
                       rejects=str(tmp_path / "bad.jsonl"))
    assert (scored.rows, scored.rejected) == (2, 3)
    bad = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [(r["row"], r["line"]) for r in bad] == [(2, 3), (3, 4), (5, 6)]
    assert bad[0]["problems"][0]["message"].startswith("not CSV: ',' expected after '\"'")
    assert bad[1]["problems"] == [{"field": "sepal_width",  # read whole, and checked as any value is
                                   "message": "column 'sepal_width': inf is not a number (double)"}]
    assert bad[1]["input"]["sepal_width"] == big
    assert bad[2]["problems"][0]["message"] == ("a quoted value is never closed: a \" on line 6 opens it and the "
                                                "file ends inside it (at line 7)")
    big_value = "9" * (8 * 1024 * 1024 + 1)  # past the most a value may hold
    (tmp_path / "huge.csv").write_text(f"{_HEADER}\n5.1,{big_value},1.4,0.2\n6.3,3.3,6.0,2.5\n")
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), str(tmp_path / "huge.csv"), str(tmp_path / "out2.csv"), version="1.0.0")
    assert caught.value.problems[0].line == 2
    assert caught.value.problems[0].message == ("a value longer than 8,388,608 characters, the most a CSV value "
                                                "may hold here")


def test_a_rejects_file_is_named_as_the_json_lines_it_holds(tmp_path: Path) -> None:
    source = _iris_csv(tmp_path / "rows.csv")
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), str(source), str(tmp_path / "out.csv"), rejects=str(tmp_path / "bad.csv"))
    assert caught.value.render() == (f"error: --rejects: {tmp_path / 'bad.csv'}: the rejects file is JSON Lines, "
                                     "whatever its name says\n  hint: name it .jsonl (or .ndjson)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_an_env_that_does_not_route_to_the_version_is_said_to_be_unused(tmp_path: Path) -> None:
    source = _iris_csv(tmp_path / "rows.csv")
    result = run_cli("score", str(IRIS), "--version", "1.2.0", "--env", "production", "--input", "rows.csv",
                     "--output", "out.csv", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "note: --env production not used: it does not route to 1.2.0, which was scored" in result.err
    assert "scored 3 rows with iris 1.2.0" in result.out
    routed = api.score(str(IRIS), str(source), str(tmp_path / "canary.csv"), "production", "1.1.0")
    assert (routed.version, routed.environment, routed.note) == ("1.1.0", "production", "")  # its canary


def test_an_unsupported_scheme_names_the_tracking_servers_as_the_docs_do(tmp_path: Path) -> None:
    with pytest.raises(ModelopsError) as caught:
        api.score(str(IRIS), "ftp://host/rows.csv", str(tmp_path / "out.csv"))
    assert "mlflow-artifacts:/ (the tracking server's)" in caught.value.render()
    assert "mlflow-artifacts://" not in caught.value.render()
