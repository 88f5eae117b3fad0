"""MaskBench correctness on a fixed sample: structgen (strict) and llguidance, one schema per isolated task.

The sample: every row of every `../shared/data/maskbench/*.jsonl.gz`, files in sorted order and lines in
file order, shuffled with `random.Random(0)`; the first N (default 1000). A schema is keyed
`<dataset>/<id>` (dataset = file stem).

Per schema, the engine compiles it (structgen: `compile_json_schema(schema, strict=True)`; llguidance:
default JSON options, a non-empty `validate_grammar` is a compile error) and walks every test instance
exactly as suite_runner.py does (`json.dumps(data, ensure_ascii=False)`, Llama-3 tokens, then the stop
token). Outcome: `compile_error`, `pass` (every valid instance accepted, every invalid one rejected; a
schema without tests passes when it compiles) or `fail`.

Each schema runs as one task in a pool of worker processes (`run_isolated` from
`structgen.evaluation.isolation`): the time limit (default 10 s) covers compile *and* matching and is
measured as the task's CPU time in its single-threaded worker, so other load on the machine does not
turn slow schemas into timeouts (a wall-clock backstop of 3x the limit still applies); a task over it
has its worker killed and counts as a compile error with reason `timeout`. A task that runs out of
memory under the per-worker address-space limit (a MemoryError, or a worker dying with its memory
near the cap) is a compile error with reason `oom`. A worker that dies otherwise (segfault, exit) or
any exception other than a designed compile error is a crash (a bug): compile crashes count as
`compile_error`, matching crashes as `fail`. Workers build their engine once, warm it up before their
first task, and are replaced after a failed task and after `--max-tasks-per-child` tasks.

    python tests/frontend/maskbench_runner.py --engine both      # side-by-side totals (+ ratchet diff)
    python tests/frontend/maskbench_runner.py --write            # (re)write ratchets/maskbench.json
    python tests/frontend/maskbench_runner.py --n 200 --per-schema

`--write` records structgen's per-schema outcomes and totals, its timeouts, crashes and `near_limit`
schemas (CPU time over half the limit: a later timeout of one of those is reported as SLOW, not as a
regression, since whether it finishes in time is noise), plus llguidance's totals for reference (kept
from the previous file when this run did not include llguidance).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `python tests/frontend/maskbench_runner.py` from the repo root
    sys.path.insert(0, str(HERE.parent))

from datasets import MASKBENCH  # noqa: E402
from structgen.evaluation.isolation import WALL_FACTOR, TaskOutcome, run_isolated  # noqa: E402,F401  (re-exported)
from frontend.suite_runner import (  # noqa: E402
    ENGINE_NAMES,
    SchemaCheck,
    SchemaEngine,
    check_schema,
    engine_names,
    make_engine,
    side_by_side,
)

RATCHET = HERE / "ratchets" / "maskbench.json"
SEED = 0
DEFAULT_N = 1000
TIME_LIMIT_S = 10.0
WORKERS = 2
MAX_TASKS_PER_CHILD = 200
MEMORY_LIMIT_MB = 8192  # per worker, RLIMIT_AS
NEAR_LIMIT = 0.5  # a schema using over this share of the limit is `near_limit` in the ratchet
TOTAL_KEYS = ("attempted", "compile_error", "pass", "fail", "valid_rejected", "invalid_accepted",
              "timeouts", "ooms", "crashes", "untested")


# ---------------------------------------------------------------------------------------------- data

def load_rows(root: Path = MASKBENCH) -> list[dict]:
    """Every row of every `*.jsonl.gz` under `root` (files sorted, lines in order), each with `dataset`."""
    rows = []
    for path in sorted(root.glob("*.jsonl.gz")):
        dataset = path.name[: -len(".jsonl.gz")]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                row["dataset"] = dataset
                row.setdefault("tests", [])
                rows.append(row)
    return rows


def row_key(row: dict) -> str:
    return f"{row['dataset']}/{row['id']}"


def sample(n: int = DEFAULT_N, seed: int = SEED) -> list[dict]:
    """The fixed MaskBench sample: all rows shuffled with `random.Random(seed)`, the first `n`."""
    rows = load_rows()
    random.Random(seed).shuffle(rows)
    return rows[:n]


# ------------------------------------------------------------------------------ per-schema engine task

_ENGINE: SchemaEngine | None = None


def init_engine(name: str) -> None:
    """Pool initializer: build the engine once per process and warm it up (JIT caches, first walk)."""
    global _ENGINE
    _ENGINE = make_engine(name)
    check_schema(_ENGINE, {"type": "object", "properties": {"a": {"type": "string"}}},
                 [{"data": {"a": "x"}, "valid": True}])


def schema_result(key: str, tests: list[dict], check: SchemaCheck) -> dict:
    """Compact per-schema record of a `SchemaCheck` (what workers send back and the reports read)."""
    res = {"key": key, "outcome": "compile_error", "reason": None, "timeout": False, "oom": False, "crash": None,
           "n_valid": sum(1 for t in tests if t["valid"]), "n_invalid": sum(1 for t in tests if not t["valid"]),
           "valid_rejected": [], "invalid_accepted": [],
           "compile_s": round(check.compile_s, 4), "match_s": round(check.match_s, 4)}
    if not check.compiled:
        if check.crash and check.crash.startswith("MemoryError"):  # the worker's memory cap, not a bug
            res.update(oom=True, reason="oom")
            return res
        res["timeout"] = check.compile_error == "timeout"
        res["crash"] = check.crash and f"compile: {check.crash}"
        res["reason"] = check.compile_error or f"crash: {check.crash}"
        return res
    res["valid_rejected"] = [i for i, (t, ok) in enumerate(zip(tests, check.accepted)) if t["valid"] and ok is False]
    res["invalid_accepted"] = [i for i, (t, ok) in enumerate(zip(tests, check.accepted)) if not t["valid"] and ok]
    if check.match_crashes:
        res["crash"] = "match " + "; ".join(check.match_crashes)
    bad = res["valid_rejected"] or res["invalid_accepted"] or res["crash"]
    res["outcome"] = "fail" if bad else "pass"
    return res


def check_row(row: dict) -> dict:
    """Pool task: one schema row (`dataset`, `id`, `schema`, `tests`) through the process's engine."""
    tests = row.get("tests", [])
    return schema_result(row_key(row), tests, check_schema(_ENGINE, row["schema"], tests))


def _failed_task(row: dict, outcome: TaskOutcome) -> dict:
    """The record of a schema whose isolated task did not return: a compile error with reason `timeout`,
    `oom` or `skipped` (the first two flagged like a timeout), or `crash: <detail>` (a bug)."""
    tests = row.get("tests", [])
    res = schema_result(row_key(row), tests, SchemaCheck(compile_error=outcome.status, compile_s=outcome.seconds))
    res["timeout"] = outcome.status == "timeout"
    res["oom"] = outcome.status == "oom"
    if outcome.status == "crash":
        res.update(crash=f"task: {outcome.detail}", reason=f"crash: {outcome.detail}")
    return res


def run_engine(name: str, rows: list[dict], *, workers: int = WORKERS, time_limit_s: float = TIME_LIMIT_S,
               max_tasks_per_child: int = MAX_TASKS_PER_CHILD, memory_limit_mb: int | None = MEMORY_LIMIT_MB,
               progress: bool = False) -> dict[str, dict]:
    """`schema_result` per row key, each schema an isolated task with `time_limit_s` for compile + matching."""

    done = 0

    def show(index: int, outcome: TaskOutcome) -> None:
        nonlocal done
        done += 1
        if done % 50 == 0 or done == len(rows):
            print(f"  {name}: {done}/{len(rows)}", file=sys.stderr, flush=True)

    outcomes = run_isolated(check_row, rows, init=init_engine, init_arg=name, workers=workers,
                            time_limit_s=time_limit_s, max_tasks_per_child=max_tasks_per_child,
                            memory_limit_mb=memory_limit_mb, on_result=show if progress else None)
    results = {}
    for row, out in zip(rows, outcomes):
        res = out.value if out.status == "ok" else _failed_task(row, out)
        res["cpu_s"] = out.seconds
        results[row_key(row)] = res
    return results


def totals(results: dict[str, dict]) -> dict[str, int]:
    """Schema counts (attempted / compile_error / pass / fail / timeouts / ooms / crashes / untested = no
    tests) and instance counts (valid_rejected / invalid_accepted)."""
    t = dict.fromkeys(TOTAL_KEYS, 0)
    for r in results.values():
        t["attempted"] += 1
        t[r["outcome"]] += 1
        t["valid_rejected"] += len(r["valid_rejected"])
        t["invalid_accepted"] += len(r["invalid_accepted"])
        t["timeouts"] += bool(r["timeout"])
        t["ooms"] += bool(r.get("oom"))
        t["crashes"] += bool(r["crash"])
        t["untested"] += r["n_valid"] + r["n_invalid"] == 0
    return t


# --------------------------------------------------------------------------------------------- ratchet

def load_ratchet(path: Path | None = None) -> dict:
    """The ratchet file (default `RATCHET`)."""
    return json.loads((path or RATCHET).read_text(encoding="utf-8"))


@dataclass
class Comparison:
    """`results` against the ratchet: lines describing each schema that changed."""

    regressions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)  # tolerated timeouts of schemas near the limit
    slow_passing: int = 0  # how many of those passed in the ratchet


def compare(ratchet: dict, results: dict[str, dict]) -> Comparison:
    """Regressions: a schema that passes in the ratchet and does not now; a crash the ratchet does not
    record for that schema; a timeout of a schema that the ratchet records neither as a timeout nor
    as `near_limit` (over NEAR_LIMIT of the time limit: whether it finishes in time is noise; such a
    timeout is listed in `slow` instead). Improvements: a schema that now passes or now compiles.
    """
    tolerated = set(ratchet.get("timeouts", [])) | set(ratchet.get("near_limit", []))
    old_crashes = set(ratchet.get("crashes", []))
    out = Comparison()
    for key, old in ratchet["schemas"].items():
        r = results.get(key)
        if r is None:
            out.regressions.append(f"{key}: not in this run (sample changed? rerun with --write)")
            continue
        new = r["outcome"]
        if r["timeout"] and key in tolerated:
            if old != "compile_error":
                out.slow.append(f"{key}: timeout (ratchet: {old}, near the limit)")
                out.slow_passing += old == "pass"
        elif r["timeout"]:
            out.regressions.append(f"{key}: timeout (ratchet: {old})")
        elif r["crash"] and key not in old_crashes:
            out.regressions.append(f"{key}: crash (ratchet: {old}): {r['crash']}")
        elif old == "pass" and new != "pass":
            out.regressions.append(f"{key}: {new} (ratchet: pass): {_why(r)}")
        elif new != old and (new == "pass" or old == "compile_error"):
            out.improvements.append(f"{key}: {old} -> {new}")
    return out


def _why(r: dict) -> str:
    if r["outcome"] == "compile_error":
        return str(r["reason"])[:300]
    return f"valid rejected {r['valid_rejected']}, invalid accepted {r['invalid_accepted']}" + (
        f", {r['crash']}" if r["crash"] else "")


def write_ratchet(results: dict[str, dict], n: int, time_limit_s: float, ll_totals: dict | None,
                  path: Path | None = None) -> None:
    """structgen's per-schema outcomes + totals, and llguidance's totals for reference."""
    meta = {
        "_comment": "tests/frontend/maskbench_runner.py: structgen (strict) on the fixed MaskBench sample. "
                    "test_maskbench.py asserts no invalid instance accepted, no schema passing here stops "
                    "passing, no new crashes, no timeouts but of schemas listed in timeouts / near_limit "
                    "(CPU time over half the limit here), and at least this many passing schemas. "
                    "Regenerate with `python tests/frontend/maskbench_runner.py --engine both --write`.",
        "sample": {"n": n, "seed": SEED, "time_limit_s": time_limit_s},
        "totals": {"structgen": totals(results), "llguidance": ll_totals},
        "timeouts": sorted(k for k, r in results.items() if r["timeout"]),
        "near_limit": sorted(k for k, r in results.items()
                             if not r["timeout"] and r["cpu_s"] > NEAR_LIMIT * time_limit_s),
        "crashes": sorted(k for k, r in results.items() if r["crash"]),
    }
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(results[k]['outcome'])}" for k in sorted(results))
    text = f"{{\n{head},\n \"schemas\": {{\n{rows}\n }}\n}}\n"
    assert json.loads(text)["schemas"] == {k: r["outcome"] for k, r in results.items()}
    path = path or RATCHET
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=ENGINE_NAMES + ("both",), default="both")
    ap.add_argument("--n", type=int, default=DEFAULT_N, help=f"sample size (default {DEFAULT_N})")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="per-schema limit, compile + matching")
    ap.add_argument("--workers", type=int, default=WORKERS)
    ap.add_argument("--max-tasks-per-child", type=int, default=MAX_TASKS_PER_CHILD)
    ap.add_argument("--memory-limit-mb", type=int, default=MEMORY_LIMIT_MB, help="per worker; 0: none")
    ap.add_argument("--per-schema", action="store_true", help="print every schema's outcome per engine")
    ap.add_argument("--write", action="store_true", help="write the ratchet (structgen's outcomes)")
    args = ap.parse_args(argv)
    names = engine_names(args.engine)
    if args.write and "structgen" not in names:
        ap.error("--write records structgen's outcomes: use --engine structgen or both")

    rows = sample(args.n)
    runs: dict[str, dict[str, dict]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        runs[name] = run_engine(name, rows, workers=args.workers, time_limit_s=args.time_limit,
                                max_tasks_per_child=args.max_tasks_per_child,
                                memory_limit_mb=args.memory_limit_mb or None, progress=True)
        seconds[name] = time.perf_counter() - t0

    if args.per_schema:
        for row in rows:
            key = row_key(row)
            print(f"{key:<60} " + " ".join(f"{n}={runs[n][key]['outcome']:<13}" for n in names))
        print()
    secs = ", ".join(f"{n} {seconds[n]:.1f}s" for n in names)
    print(f"== MaskBench sample n={len(rows)} seed={SEED}, {args.time_limit:g} s/schema, "
          f"{args.workers} workers ({secs})")
    print(side_by_side(TOTAL_KEYS, {n: totals(runs[n]) for n in names}))

    sg = runs.get("structgen")
    status = 0
    if sg is not None:
        for key, r in sg.items():
            if r["invalid_accepted"]:
                print(f"INVALID ACCEPTED  {key} | tests {r['invalid_accepted']}")
            if r["crash"]:
                print(f"CRASH  {key} | {r['crash'][:500]}")
            if r["timeout"]:
                print(f"TIMEOUT  {key}")
            if r["oom"]:
                print(f"OOM  {key}")
        slow = sorted(sg.values(), key=lambda r: -r["cpu_s"])[:10]
        print(f"structgen CPU: {sum(r['cpu_s'] for r in sg.values()):.1f} s in all; slowest: "
              + ", ".join(f"{r['key']} {r['cpu_s']:.1f}" for r in slow))
        status = 1 if any(r["crash"] or r["invalid_accepted"] for r in sg.values()) else 0
        if RATCHET.exists():
            ratchet = load_ratchet()
            if ratchet["sample"]["n"] == len(rows):
                cmp = compare(ratchet, sg)
                for line in cmp.regressions:
                    print(f"REGRESSION  {line}")
                for line in cmp.slow:
                    print(f"SLOW  {line}")
                for line in cmp.improvements:
                    print(f"IMPROVEMENT  {line}")
                if cmp.improvements and not args.write:
                    print(f"{len(cmp.improvements)} improvements: regenerate the ratchet with --write")
            else:
                print(f"(ratchet is for n={ratchet['sample']['n']}; not compared)")
    if args.write:
        ll = totals(runs["llguidance"]) if "llguidance" in runs else None
        if ll is None and RATCHET.exists() and load_ratchet()["sample"]["n"] == len(rows):
            ll = load_ratchet()["totals"].get("llguidance")
        write_ratchet(sg, len(rows), args.time_limit, ll)
    return status


if __name__ == "__main__":
    sys.exit(main())
