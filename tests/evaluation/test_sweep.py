"""bench/sweep.py: the robustness sweep's core on a tiny sample, its outcome classes and its resume file."""

from __future__ import annotations

import importlib
import json

import pytest

from datasets import DATA, TOKENIZERS

sweep = importlib.import_module("bench.sweep")  # the repository root is on pytest's pythonpath

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
SYNTHETIC = [  # one refusal and one plain pass, whatever the sample holds
    {"uid": "synthetic/x/unique", "source": "maskbench", "dataset": "x", "id": "unique",
     "schema": {"type": "array", "uniqueItems": True}, "tests": [{"data": [1, 2], "valid": True}]},
    {"uid": "synthetic/x/plain", "source": "maskbench", "dataset": "x", "id": "plain",
     "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
     "tests": [{"data": {"n": 3}, "valid": True}, {"data": {"n": "x"}, "valid": False}, {"data": {}, "valid": False}]},
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    rows = sweep.load_inputs(list(sweep.SOURCES), limit=3, seed=0, data_dir=DATA) + [dict(r) for r in SYNTHETIC]
    out = tmp_path_factory.mktemp("sweep")
    doc = sweep.run_sweep(rows, out=out, workers=1, time_limit_s=60, tokenizer_json=LLAMA3, limit=3,
                          sources=list(sweep.SOURCES), quiet=True)
    return rows, out, doc


def test_every_input_gets_one_outcome_and_the_totals_add_up(swept) -> None:
    rows, out, doc = swept
    assert {r["source"] for r in rows[:6]} == set(sweep.SOURCES) and len(rows) == 8
    assert set(doc["totals"]) == {"all", "maskbench", "jsonschemabench"}
    for group, t in doc["totals"].items():
        assert t["inputs"] == sum(t[o] for o in sweep.OUTCOMES if o in t), group
    assert doc["totals"]["all"]["inputs"] == 8
    assert doc["totals"]["maskbench"]["inputs"] == 5 and doc["totals"]["jsonschemabench"]["inputs"] == 3
    assert sum(t["inputs"] for t in doc["by_dataset"].values()) == 8
    assert doc["settings"]["whitespace"] == "compact" and doc["settings"]["property_order"] == "any"
    assert doc["machine"]["cpu_count"] and doc["run"]["ran"] == 8
    for key in ("compile_wall_s", "compile_cpu_s", "rss_peak_mb", "address_space_peak_mb"):
        assert doc["resources"]["all"][key]["n"] >= 1
        assert set(doc["resources"]["all"][key]) >= {"p50", "max"}
    assert all(p["outcome"] not in ("ok", "refused") for p in doc["problems"])
    assert (out / "sweep.md").read_text().startswith("# structgen robustness sweep")
    assert json.loads((out / "sweep.json").read_text())["totals"] == doc["totals"]


def test_partial_results_are_json_lines_with_a_header(swept) -> None:
    rows, out, _ = swept
    lines = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    assert lines[0]["header"]["whitespace"] == "compact"
    recs = {r["uid"]: r for r in lines[1:]}
    assert set(recs) == {r["uid"] for r in rows}
    for r in recs.values():
        assert r["outcome"] in sweep.OUTCOMES
        assert r["rss_peak_mb"] and r["rss_peak_mb"] > 0 and r["address_space_mb"] >= 0
        if r["compiled"]:
            assert r["compile_wall_s"] >= 0 and r["compile_cpu_s"] >= 0
    unique, plain = recs["synthetic/x/unique"], recs["synthetic/x/plain"]
    assert unique["outcome"] == "refused" and unique["detail"]["class"] == "UnsupportedFeature"
    assert "uniqueItems" in unique["detail"]["message"] and not unique["compiled"]
    assert plain["outcome"] == "ok" and (plain["n_valid"], plain["n_invalid"]) == (1, 2)


def test_resume_runs_nothing_twice(swept) -> None:
    rows, out, doc = swept
    again = sweep.run_sweep(rows, out=out, workers=1, tokenizer_json=LLAMA3, resume=out / "sweep.jsonl",
                            limit=3, sources=list(sweep.SOURCES), quiet=True)
    assert again["run"]["ran"] == 0 and again["run"]["resumed"] == 8
    assert again["totals"] == doc["totals"]
    with pytest.raises(SystemExit):  # other engine settings: not the same sweep
        sweep.run_sweep(rows, out=out, whitespace="flexible", tokenizer_json=LLAMA3, resume=out / "sweep.jsonl",
                        quiet=True)


def _row(tests=()):
    return {"uid": "s/d/i", "source": "maskbench", "dataset": "d", "id": "i", "tests": list(tests)}


def _replay(**kw):
    rep = {"compile_ms": 1.0, "valid_rejected": [], "invalid_accepted": [], "crashes": [], "mask_disagreements": 0,
           "ttfm_ms": 1.0, "mask_us": [], "reason": None}
    return {**rep, **kw}


def test_classes_of_replays() -> None:
    tests = [{"data": 1, "valid": True}, {"data": 2, "valid": False}]
    ev = {"compile_wall_s": 0.01, "compile_cpu_s": 0.01}
    assert sweep.classify(_row(tests), _replay(), ev, None)["outcome"] == "ok"
    rec = sweep.classify(_row(tests), _replay(invalid_accepted=[1], valid_rejected=[0]), ev, None)
    assert (rec["outcome"], rec["invalid_accepted"], rec["valid_rejected"]) == ("invalid_accepted", 1, 1)
    assert sweep.classify(_row(tests), _replay(valid_rejected=[0]), ev, None)["outcome"] == "valid_rejected"
    assert sweep.classify(_row(tests), _replay(mask_disagreements=2), ev, None)["outcome"] == "mask_disagreement"
    bug = {"phase": "match", "type": "IndexError", "message": "x", "frames": ["a.py:1 in f: x"]}
    rec = sweep.classify(_row(tests), _replay(crashes=["test 0: IndexError: x"]), {**ev, "match_untyped": bug}, None)
    assert rec["outcome"] == "untyped" and rec["detail"]["type"] == "IndexError"
    refused = {"phase": "compile", "class": "LimitExceeded", "message": "over the budget",
               "limit": "max_compile_seconds"}
    rec = sweep.classify(_row(tests), _replay(compile_ms=None, reason="LimitExceeded: over"),
                         {**ev, "compile_refused": refused}, None)
    assert rec["outcome"] == "refused" and rec["detail"]["limit"] == "max_compile_seconds" and not rec["compiled"]
    err = {"phase": "compile", "type": "KeyError", "message": "'a'", "frames": []}
    assert sweep.classify(_row(tests), None, {}, err)["outcome"] == "untyped"


def test_untyped_exceptions_keep_their_last_frames() -> None:
    def inner():
        raise ValueError("boom")

    try:
        inner()
    except ValueError as e:
        d = sweep.untyped(e, "compile")
    assert d["type"] == "ValueError" and d["message"] == "boom" and "in inner" in d["frames"][-1]
    assert d["frames"][-1].startswith("tests/evaluation/test_sweep.py:")


def test_isolation_failures_map_to_classes() -> None:
    from structgen.evaluation.isolation import TaskOutcome

    for status, cls in (("timeout", "hang"), ("oom", "oom"), ("crash", "crash")):
        rec = sweep.failed_record(_row(), TaskOutcome(status, "why"))
        assert rec["outcome"] == cls and rec["detail"] == {"message": "why"}


def test_refusal_prefixes_group_by_kind() -> None:
    a = sweep.message_prefix("UnsupportedFeature", "unsupported keyword 'oneOf' at #/definitions/a/oneOf: branches 0 "
                                                   "and 1 are not provably disjoint (compiled as anyOf)")
    b = sweep.message_prefix("UnsupportedFeature", "unsupported keyword 'oneOf' at https://x.org/s.json#/oneOf: "
                                                   "branches 2 and 5 are not provably disjoint (compiled as anyOf)")
    assert a == b and "'oneOf'" in a
    c = sweep.message_prefix("LimitExceeded", "intersection needs more than 20000 states (the max_dfa_states "
                                              "limit), at #/properties/email")
    assert c == "LimitExceeded: intersection needs more than N states (the max_dfa_states limit)"
