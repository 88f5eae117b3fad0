"""`structgen bench`: results that follow results.schema.json, runs that survive pathological schemas, data loaders."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from datasets import DATA, MASKBENCH, REPO, TOKENIZERS
from structgen.evaluation import report
from structgen.evaluation.datasets import load_rows, sample, json_schema_suite_rows

LLAMA3 = TOKENIZERS / "llama3"


def bench(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "STRUCTGEN_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "structgen", "bench", *args, "--quiet", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


def _write_jsonl(path, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_maskbench_results_follow_the_schema(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = sample(load_rows(MASKBENCH), 6, seed=1)
    _write_jsonl(data / "sample.jsonl.gz", [{"id": r["id"], "schema": r["schema"], "tests": r["tests"]} for r in rows])
    res = bench("maskbench", "--data", str(data), "--engines", "structgen,llguidance", "--tokenizer", str(LLAMA3),
                tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "maskbench.json").read_text())
    report.validate_results(doc)  # also checked on write; this is the file a user reads
    for name in ("structgen", "llguidance"):
        assert doc["engines"][name]["totals"]["schemas"] == 6
        assert len(doc["rows"][name]) == 6
        assert doc["engines"][name]["totals"]["invalid_accepted"] == 0
    assert "| pass |" in res.stdout and (tmp_path / "maskbench.md").is_file()


def test_maskbench_reports_the_schemas_that_need_glr_next_to_the_peers(tmp_path) -> None:
    # anyOf of two objects that both allow any key: their key strings tie in the lexer (a GLR fork)
    glr = {"anyOf": [{"type": "object", "properties": {"foo": {"type": "string"}}},
                     {"type": "object", "properties": {"baz": {"type": "object",
                                                            "properties": {"bar": {"type": "number"}}}}}]}
    lalr = {"type": "object", "properties": {"a": {"type": "integer"}}}
    data = tmp_path / "data"
    data.mkdir()
    _write_jsonl(data / "glr.jsonl.gz", [{"id": "glr", "schema": glr, "tests": [{"data": {"foo": "x"}, "valid": True}]},
                                         {"id": "lalr", "schema": lalr, "tests": [{"data": {"a": 1}, "valid": True}]}])
    res = bench("maskbench", "--data", str(data), "--engines", "structgen,llguidance", "--tokenizer", str(LLAMA3),
                tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "maskbench.json").read_text())
    assert {r["id"]: r["glr"] for r in doc["rows"]["structgen"]} == {"glr": True, "lalr": False}
    for name in ("structgen", "llguidance"):  # the same schema for each engine
        sub = doc["engines"][name]["glr_subset"]
        assert (sub["schemas"], sub["compiled"], sub["pass"]) == (1, 1, 1)
        assert sub["mask_us"]["n"] > 0
    assert "schemas whose structgen grammar needs GLR" in res.stdout


def test_results_schema_rejects_a_malformed_document() -> None:
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        report.validate_results({"results_version": 1, "mode": "maskbench", "engines": {}})


@pytest.mark.slow
def test_pathological_schemas_are_recorded_and_the_run_goes_on(tmp_path) -> None:
    """Deep recursion, a 100k-value enum and an exploding regex: each gets an outcome; the normal one passes."""
    deep = '{"type": "array", "items": ' * 3000 + '{"type": "string"}' + "}" * 3000  # too deep for json.dumps
    rows = [
        {"id": "huge-enum", "schema": {"enum": [f"value-{i}" for i in range(100_000)]},
         "tests": [{"data": "value-7", "valid": True}]},
        {"id": "exploding-regex", "schema": {"type": "string", "pattern": "^(a|b)*a(a|b){20}$"},
         "tests": [{"data": "a" * 21, "valid": True}]},
        {"id": "normal", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
         "tests": [{"data": {"n": 3}, "valid": True}, {"data": {"n": "x"}, "valid": False}]},
    ]
    data = tmp_path / "data"
    data.mkdir()
    lines = ['{"id": "deep", "schema": ' + deep + ', "tests": []}'] + [json.dumps(r) for r in rows]
    (data / "hard.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = bench("maskbench", "--data", str(data), "--engines", "structgen", "--tokenizer", str(LLAMA3),
                "--time-limit", "5", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "maskbench.json").read_text())
    got = {r["id"]: r for r in doc["rows"]["structgen"]}
    assert set(got) == {"deep", "huge-enum", "exploding-regex", "normal"}
    for rid in ("deep", "huge-enum", "exploding-regex"):  # refused by design, or stopped by the isolation
        assert got[rid]["outcome"] in ("compile_error", "pass"), got[rid]
        assert got[rid]["reason"] or got[rid]["outcome"] == "pass"
    assert got["normal"]["outcome"] == "pass"


def test_loaders_read_every_format(tmp_path) -> None:
    (tmp_path / "a.json").write_text('{"type": "integer"}')
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.jsonl").write_text('{"id": 7, "schema": "{\\"type\\": \\"string\\"}"}\n')
    rows = load_rows(tmp_path)
    assert [(r["id"], r["schema"]) for r in rows] == [("a", {"type": "integer"}), ("7", {"type": "string"})]
    suite = json_schema_suite_rows(DATA / "json-schema-test-suite", "draft7")
    assert suite and all(r["schema"].get("$schema", "").startswith("http://json-schema.org/draft-07")
                         for r in suite if isinstance(r["schema"], dict))
    per = sample(load_rows(DATA / "jsonschemabench" / "Glaiveai2K.jsonl.gz"), 3, per_dataset=True)
    assert len(per) == 3


@pytest.mark.slow
def test_bad_bench_input_is_a_clear_error(tmp_path) -> None:
    res = bench("maskbench", "--data", str(tmp_path / "missing"), tmp_path=tmp_path)
    assert res.returncode == 2 and "no such file or folder" in res.stderr and "Traceback" not in res.stderr
    res = bench("maskbench", "--data", str(tmp_path), "--engines", "structgen,nope", tmp_path=tmp_path)
    assert res.returncode == 2 and "unknown engine(s) nope" in res.stderr


def test_test_suite_mode_counts_per_keyword_file(tmp_path) -> None:
    res = bench("test-suite", "--data", str(DATA / "json-schema-test-suite"), "--engines", "structgen",
                "--tokenizer", str(LLAMA3), "--limit", "25", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "test_suite.json").read_text())
    by = doc["engines"]["structgen"]["by_dataset"]
    assert sum(v["schemas"] for v in by.values()) == 25
    assert all(k.startswith(("draft2020-12/", "draft7/")) for k in by)
    assert doc["engines"]["structgen"]["totals"]["invalid_accepted"] == 0


@pytest.mark.slow
def test_coverage_mode_generates_and_validates(tmp_path) -> None:
    backend = "llama-cpp" if _has("llama_cpp") else "transformers"
    res = bench("coverage", "--data", str(DATA / "jsonschemabench" / "Glaiveai2K.jsonl.gz"), "--engines",
                "structgen,llguidance", "--limit", "2", "--backend", backend, "--max-tokens", "128",
                "--time-limit", "300", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads((tmp_path / "coverage.json").read_text())
    for name in ("structgen", "llguidance"):
        t = doc["engines"][name]["totals"]
        assert t["schemas"] == 2 and t["compiled"] == 2 and t["invalid"] == 0  # a finished output is valid


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_results_keep_the_machine_state_the_run_started_with() -> None:
    """The git commit and load average are those read when a run starts (runner, coverage), not at its end."""
    start = {**report.machine_info(), "loadavg_at_start": [9.0, 9.0, 9.0]}
    doc = report.build_results("maskbench", {}, {}, {}, start)
    assert doc["machine"] is start
    assert report.build_results("maskbench", {}, {}, {})["machine"]["git"].keys() >= {"commit", "dirty"}
