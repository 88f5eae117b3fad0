#!/usr/bin/env python
"""The fuzzers of tests/fuzz/ for longer: hypothesis runs each fuzzer's check on its strategies, in
chunks (at least three rounds, at most 60 s each), in rotation, until a CPU-time budget is spent;
failures are shrunk and kept as reproducers.

    python bench/fuzz.py --minutes 60 --seed 1 --out bench/results/fuzz.json
    python bench/fuzz.py --minutes 5 --fuzzers regex,lark

The checks and strategies are the tests' own (tests/fuzz/test_fuzz_*.py: `check_*` and *_ARGS;
tests/fuzz/strategies.py), so a reproducer found here is a test case there. Per fuzzer the JSON
records examples run (shrinking included), outcomes (checked / refused / known bug ...), CPU
seconds, and each distinct failure (error, falsifying example). An example running past
--example-timeout is recorded as a hang (not shrunk). The file is rewritten after every chunk.
"""

from __future__ import annotations

import argparse
import json
import signal
import warnings
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "fuzz"), str(REPO / "tests"), str(REPO)]

FUZZERS = {  # name -> (test module, check function, its strategies)
    "json_schema": ("test_fuzz_json_schema", "check_json_schema", "FUZZ_ARGS"),
    "json_schema_broken": ("test_fuzz_json_schema", "check_broken_schema", "BROKEN_ARGS"),
    "regex": ("test_fuzz_regex", "check_regex", "FUZZ_ARGS"),
    "regex_soup": ("test_fuzz_regex", "check_regex_soup", "SOUP_ARGS"),
    "lark": ("test_fuzz_lark", "check_lark", "FUZZ_ARGS"),
    "lark_soup": ("test_fuzz_lark", "check_lark_soup", "SOUP_ARGS"),
    "tokens": ("test_fuzz_tokens", "check_token_stream", "FUZZ_ARGS"),
    "cache": ("test_fuzz_cache", "check_damaged_entry", "FUZZ_ARGS"),
}


class Hang(Exception):
    """An example ran past --example-timeout."""


def _on_alarm(signum, frame) -> None:
    raise Hang()


class Fuzzer:
    """One fuzzer's strategies, check and running totals."""

    def __init__(self, name: str) -> None:
        import importlib

        module_name, check_name, args_name = FUZZERS[name]
        module = importlib.import_module(module_name)
        self.name, self.args, self.check = name, getattr(module, args_name), getattr(module, check_name)
        self.examples, self.cpu_s, self.chunks = 0, 0.0, 0
        self.outcomes: Counter = Counter()
        self.failures: dict[str, dict] = {}
        self.per_example = 1.0  # CPU seconds, estimated from the chunks so far

    def run_chunk(self, seed: int, seconds: float, deadline: float, example_timeout: int) -> None:
        """About `seconds` of CPU time of examples (none past `deadline`, a process_time)."""
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hypothesis_seed

        n = max(3, int(min(seconds, deadline - time.process_time()) / self.per_example))

        @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False)
        @hypothesis_seed(seed)
        @given(**self.args)
        def prop(**kw) -> None:
            if time.process_time() > deadline:
                return  # the budget is spent: let hypothesis finish the chunk without work
            self.examples += 1
            signal.alarm(example_timeout)
            try:
                self.outcomes[self.check(**kw)] += 1
            except Hang:
                self._record("hang", f"example ran past {example_timeout} s", repr(kw))
            finally:
                signal.alarm(0)

        t0, ran0 = time.process_time(), self.examples
        try:
            prop()
        except Exception as e:  # noqa: BLE001 - every failure is a finding; shrunk by hypothesis
            notes = "\n".join(getattr(e, "__notes__", []))
            self._record(type(e).__name__, "".join(traceback.format_exception_only(e)).strip()[:4000], notes[:4000],
                         "".join(traceback.format_tb(e.__traceback__)[-3:])[-3000:])
        spent = time.process_time() - t0
        self.cpu_s += spent
        self.chunks += 1
        if self.examples > ran0:
            self.per_example = max(0.001, spent / (self.examples - ran0))

    def _record(self, kind: str, error: str, example: str, where: str = "") -> None:
        key = f"{kind}: {error.splitlines()[0][:200] if error else ''}"
        if key in self.failures:
            self.failures[key]["count"] += 1
        else:
            self.failures[key] = {"kind": kind, "error": error, "example": example, "where": where, "count": 1}
        self.outcomes["FAILURE"] += 1

    def summary(self) -> dict:
        return {"examples": self.examples, "chunks": self.chunks, "cpu_s": round(self.cpu_s, 2),
                "outcomes": dict(self.outcomes), "failures": list(self.failures.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10, help="CPU-time budget for all fuzzers together")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fuzzers", default=",".join(FUZZERS), help=f"comma-separated, of {', '.join(FUZZERS)}")
    ap.add_argument("--example-timeout", type=int, default=60, help="seconds before one example counts as a hang")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "fuzz.json"))
    args = ap.parse_args()
    names = [n.strip() for n in args.fuzzers.split(",") if n.strip()]
    unknown = set(names) - set(FUZZERS)
    if unknown:
        ap.error(f"unknown fuzzers {sorted(unknown)}")
    signal.signal(signal.SIGALRM, _on_alarm)
    warnings.simplefilter("ignore", FutureWarning)  # Python's re on regex soup (`[[`: possible future set syntax)
    from structgen.evaluation.report import machine_info

    fuzzers = [Fuzzer(n) for n in names]
    start = time.process_time()
    deadline = start + args.minutes * 60
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"seed": args.seed, "minutes": args.minutes, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "machine": machine_info(), "fuzzers": {}}
    chunk = min(60.0, max(5.0, args.minutes * 60 / (3 * len(fuzzers))))  # at least 3 rounds of every fuzzer
    rounds = 0
    while time.process_time() < deadline:
        for k, f in enumerate(fuzzers):
            if time.process_time() >= deadline:
                break
            f.run_chunk(args.seed * 1_000_003 + rounds * 101 + k, chunk, deadline, args.example_timeout)
            report["fuzzers"] = {g.name: g.summary() for g in fuzzers}
            report["cpu_s"] = round(time.process_time() - start, 2)
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"[{report['cpu_s']:8.1f} s] {f.name:12s} examples {f.examples:6d}  "
                  f"failures {len(f.failures)}  {dict(f.outcomes)}", flush=True)
        rounds += 1
    failures = sum(len(f.failures) for f in fuzzers)
    print(f"wrote {out}: {sum(f.examples for f in fuzzers)} examples, {failures} distinct failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
