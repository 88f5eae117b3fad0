"""MaskBench-style replay: every engine compiles each schema and walks each test instance token by token.

Per schema and engine: `compile_error` (a designed refusal, or `timeout` / `oom` / `crash` from the
isolated worker), `pass` (every valid instance accepted and every invalid one rejected), or `fail`,
with the indices of valid-rejected and invalid-accepted instances. Per token: the time of the mask
computation alone (`fill_mask` into a preallocated row; tokenization, serialization and the accept
step are outside the timer). Per schema: compile time and time to first mask (compile + first mask).
A token the mask forbids but the matcher accepts (or the reverse) is an engine inconsistency and is
counted, since the two must agree.

Each worker settles its heap after the warm-up the way serving processes do after start-up
(`gc.collect()` then `gc.freeze()`, as vLLM and SGLang do): the ~120k objects of the imports
(numba, Lark, jsonschema, the peers' bindings) then never enter a cyclic-GC collection, whose
40-130 ms pause would otherwise be timed in whichever engine call an allocation happens to start
it in. It is the same for every engine.

Instances are serialized one way for every engine, `json.dumps(data, ensure_ascii=False)` (what a
compact-whitespace grammar produces), and tokenized once with the shared tokenizer.
"""

from __future__ import annotations

import gc
import json
import time
from typing import Any, Callable

import numpy as np

from .. import bitset, warmup
from .engines import CompileError, make_engine
from .isolation import run_isolated

OUTCOMES = ("pass", "fail", "compile_error")
_ENGINE: Any = None
_STOP: int = -1


# replayed once per worker before timing (the structgen engines also run structgen.warm_up, which
# loads every kernel, GLR ones too): the schema of structgen.warmup, whose keys, enum, numbers, array
# and object of 9 optional members reach every kernel of a JSON Schema compile, and whose enum beside
# another keyword and `date-time` format reach the modules a compile imports on first use (jsonschema,
# the format table), so their ~7k objects are in the frozen heap, not walked by every full collection
# (structgen: 9.4 -> 7.1 ms each over 400 schemas)
WARMUP_ROW = {"dataset": "warmup", "id": "0", "schema": warmup.SCHEMA,
              "tests": [{"data": json.loads(warmup.INSTANCE), "valid": True}, {"data": {"a": 1}, "valid": False}]}


def init_worker(arg: tuple) -> None:
    """Pool initializer: build the engine once per worker process and warm it up (JIT caches)."""
    global _ENGINE, _STOP
    name, tokenizer_json, stop_ids, *rest = arg
    _ENGINE = make_engine(name, tokenizer_json, stop_ids, *rest)
    _STOP = int(stop_ids[0])
    replay_row(WARMUP_ROW)
    gc.collect()
    gc.freeze()


def _walk(matcher: Any, ids: list[int], row: np.ndarray, times: list[float]) -> tuple[bool, int]:
    """Walk `ids` then the stop token; (accepted, mask/accept disagreements). Appends mask seconds to `times`."""
    disagreements = 0
    for token in ids + [_STOP]:
        t0 = time.perf_counter()
        matcher.fill_mask(row)
        times.append(time.perf_counter() - t0)
        by_mask = bitset.has(row, token)
        ok = matcher.is_accepting() if token == _STOP else matcher.accept_token(token)
        disagreements += by_mask != bool(ok)
        if not ok:
            return False, disagreements
    return True, disagreements


def replay_row(row: dict) -> dict:
    """Pool task: compile one schema with the worker's engine and replay its test instances."""
    engine = _ENGINE
    tests = row.get("tests") or []
    res: dict[str, Any] = {"dataset": row["dataset"], "id": row["id"], "outcome": "compile_error", "reason": None,
                           "n_valid": sum(1 for t in tests if t["valid"]),
                           "n_invalid": sum(1 for t in tests if not t["valid"]), "valid_rejected": [],
                           "invalid_accepted": [], "crashes": [], "mask_disagreements": 0,
                           "compile_ms": None, "ttfm_ms": None, "mask_us": []}
    t0 = time.perf_counter()
    try:
        compiled = engine.compile(row["schema"])
    except CompileError as e:
        res["reason"] = (str(e) or "compile error")[:300]
        return res
    except RecursionError:
        res["reason"] = "crash: RecursionError"
        return res
    res["compile_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
    times: list[float] = []
    for i, test in enumerate(tests):
        text = json.dumps(test["data"], ensure_ascii=False)
        try:
            ids = engine.encode(text)
        except Exception:  # lone surrogates: no UTF-8 output spells this instance
            ids = None
        try:
            matcher = engine.matcher(compiled)
            row_bits = engine.allocate_mask()
            if ids is None:
                accepted = False
            else:
                accepted, bad = _walk(matcher, ids, row_bits, times)
                res["mask_disagreements"] += bad
        except Exception as e:  # an engine bug while matching: recorded, the schema fails
            res["crashes"].append(f"test {i}: {type(e).__name__}: {e}"[:300])
            continue
        if test["valid"] and not accepted:
            res["valid_rejected"].append(i)
        if not test["valid"] and accepted:
            res["invalid_accepted"].append(i)
        if i == 0 and times:
            res["ttfm_ms"] = round(res["compile_ms"] + times[0] * 1e3, 3)
    if res["ttfm_ms"] is None:  # no instances: compile + the first mask of an empty output
        row_bits = engine.allocate_mask()
        t1 = time.perf_counter()
        engine.matcher(compiled).fill_mask(row_bits)
        res["ttfm_ms"] = round(res["compile_ms"] + (time.perf_counter() - t1) * 1e3, 3)
    res["mask_us"] = [round(t * 1e6, 2) for t in times]
    res["glr"] = engine.needs_glr(compiled)
    bad = res["valid_rejected"] or res["invalid_accepted"] or res["crashes"] or res["mask_disagreements"]
    res["outcome"] = "fail" if bad else "pass"
    return res


def failed_row(row: dict, status: str, detail: Any) -> dict:
    """The record of a schema whose isolated task ended in timeout / oom / crash / skipped."""
    return {"dataset": row["dataset"], "id": row["id"], "outcome": "compile_error", "reason": status,
            "detail": str(detail)[:300] if detail is not None else None,
            "n_valid": sum(1 for t in row.get("tests") or [] if t["valid"]),
            "n_invalid": sum(1 for t in row.get("tests") or [] if not t["valid"]),
            "valid_rejected": [], "invalid_accepted": [], "crashes": [], "mask_disagreements": 0,
            "compile_ms": None, "ttfm_ms": None, "mask_us": []}


def run_maskbench(engine: str, rows: list[dict], tokenizer_json: str, stop_ids: list[int], *, workers: int = 1,
                  time_limit_s: float = 10.0, total_timeout_s: float | None = None, memory_limit_mb: int = 8192,
                  on_result: Callable[[int, Any], None] | None = None, whitespace: str = "compact") -> list[dict]:
    """Replay `rows` with one engine in isolated worker processes; one record per row, in order."""
    outcomes = run_isolated(replay_row, rows, init=init_worker,
                            init_arg=(engine, str(tokenizer_json), list(stop_ids), whitespace),
                            workers=workers, time_limit_s=time_limit_s, total_timeout_s=total_timeout_s,
                            memory_limit_mb=memory_limit_mb, on_result=on_result)
    out = []
    for row, o in zip(rows, outcomes):
        rec = o.value if o.status == "ok" else failed_row(row, o.status, o.value)
        rec["cpu_s"] = getattr(o, "seconds", None)
        out.append(rec)
    return out


def totals(records: list[dict]) -> dict[str, int]:
    """Counts over per-schema records: schemas, outcomes, instance-level errors and isolation failures."""
    t = {"schemas": len(records), "pass": 0, "fail": 0, "compile_error": 0, "valid_rejected": 0,
         "invalid_accepted": 0, "timeout": 0, "oom": 0, "crash": 0, "skipped": 0, "mask_disagreements": 0}
    for r in records:
        t[r["outcome"]] += 1
        t["valid_rejected"] += len(r["valid_rejected"])
        t["invalid_accepted"] += len(r["invalid_accepted"])
        t["mask_disagreements"] += r["mask_disagreements"]
        if r["reason"] in ("timeout", "oom", "crash", "skipped"):
            t[r["reason"]] += 1
        elif r["crashes"] or (r["reason"] or "").startswith("crash"):
            t["crash"] += 1
    return t
