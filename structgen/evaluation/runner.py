"""`structgen bench` modes: run every engine over a dataset in isolated workers, then report side by side."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StructgenError
from . import report
from .datasets import load_rows, sample, json_schema_suite_rows
from .engines import ENGINE_NAMES, EngineUnavailable, make_engine
from .maskbench import run_maskbench, totals

TABLE_KEYS = ["schemas", "pass", "fail", "compile_error", "valid_rejected", "invalid_accepted", "timeout", "oom",
              "crash", "mask_disagreements", "mask p50 us", "mask p99 us", "mask p99.9 us", "mask max us", "ttfm p50 ms",
              "compile p50 ms"]


@dataclass
class BenchSettings:
    """What to run: the data, the engines, the tokenizer and the isolation limits."""

    data: str
    engines: list[str]
    tokenizer_json: str
    stop_ids: list[int]
    limit: int | None = None
    seed: int = 0
    per_dataset: bool = False
    workers: int = 1
    time_limit_s: float = 10.0
    total_timeout_s: float | None = None
    memory_limit_mb: int = 8192
    whitespace: str = "compact"  # JSON Schema engines: "compact" or "flexible" (see engines.py)
    out: str = "bench/results"
    stem: str = "maskbench"
    quiet: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items() if k not in ("extra", "quiet")}
        return {**d, **self.extra}


def parse_engines(text: str) -> list[str]:
    """`--engines a,b` → names, each one of ENGINE_NAMES."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ENGINE_NAMES]
    if bad or not names:
        raise StructgenError(f"--engines: unknown engine(s) {', '.join(bad) or '(none)'}; choose from "
                             f"{', '.join(ENGINE_NAMES)}")
    return names


def _progress(total: int, label: str, quiet: bool):
    """An on_result callback: a tqdm bar with ETA on a terminal, a line every 50 schemas in a log, nothing quiet."""
    if quiet:
        return None, (lambda: None)
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is None or not sys.stderr.isatty():  # a log: a line every 50 schemas
        done = [0]

        def line(i: int, outcome: Any) -> None:
            done[0] += 1
            if done[0] % 50 == 0 or done[0] == total:
                print(f"structgen bench: {label} {done[0]}/{total}", file=sys.stderr, flush=True)

        return line, (lambda: None)
    bar = tqdm(total=total, desc=label, unit="schema", file=sys.stderr)
    return (lambda i, outcome: bar.update(1)), bar.close


def engine_version(name: str, s: BenchSettings, engines: dict, all_rows: dict) -> str | None:
    """The engine's version, or None after recording it as unavailable (its package is not installed)."""
    try:
        return make_engine(name, s.tokenizer_json, s.stop_ids, s.whitespace).version()
    except EngineUnavailable as e:
        engines[name], all_rows[name] = {"version": None, "unavailable": str(e), "totals": {}}, []
        print(f"structgen bench: {name} skipped: {e}", file=sys.stderr)
        return None


def _engine_summary(name: str, records: list[dict], version: str | None) -> dict:
    masks = [t for r in records for t in r["mask_us"]]
    summary = {"version": version, "totals": totals(records),
               "mask_us": report.latency_stats(masks),
               "ttfm_ms": report.latency_stats([r["ttfm_ms"] for r in records if r["ttfm_ms"] is not None]),
               "compile_ms": report.latency_stats([r["compile_ms"] for r in records if r["compile_ms"] is not None])}
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["dataset"], []).append(r)
    summary["by_dataset"] = {d: {k: v for k, v in totals(rs).items() if k in ("schemas", "pass", "fail",
                                                                             "compile_error", "invalid_accepted")}
                             for d, rs in sorted(by.items())}
    return summary


def _row_stats(records: list[dict]) -> None:
    """Per-row mask statistics in place of every time (the results file's size)."""
    for r in records:
        stats = report.latency_stats(r["mask_us"])
        stats.pop("cdf", None)
        r["mask_us"] = stats


def glr_subset(all_rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Per engine, its figures on the schemas whose structgen grammar needs GLR (conflict cells or a
    lexer tie, per structgen's rows): how many it compiled and passed, and its mask and
    time-to-first-mask statistics on those that every engine compiled (`common`: the same schemas
    for each; raw per-row times, before _row_stats)."""
    glr = {(r["dataset"], r["id"]) for name, rows in all_rows.items() if name.startswith("structgen")
           for r in rows if r.get("glr")}
    common = set(glr)
    for rows in all_rows.values():
        common &= {(r["dataset"], r["id"]) for r in rows if r["outcome"] != "compile_error"}
    out = {}
    for name, rows in all_rows.items():
        sub = [r for r in rows if (r["dataset"], r["id"]) in glr]
        timed = [r for r in sub if (r["dataset"], r["id"]) in common]
        masks = report.latency_stats([t for r in timed for t in r["mask_us"]])
        ttfm = report.latency_stats([r["ttfm_ms"] for r in timed if r["ttfm_ms"] is not None])
        masks.pop("cdf", None)
        ttfm.pop("cdf", None)
        out[name] = {"schemas": len(glr), "compiled": sum(r["outcome"] != "compile_error" for r in sub),
                     "pass": sum(r["outcome"] == "pass" for r in sub), "common": len(common),
                     "mask_us": masks, "ttfm_ms": ttfm}
    return out


GLR_KEYS = ["schemas", "compiled", "pass", "compiled by every engine", "mask p50 us", "mask p99 us", "mask max us",
            "ttfm p50 ms"]


def glr_columns(subset: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """glr_subset's figures, for markdown_table."""
    return {name: {"schemas": e["schemas"], "compiled": e["compiled"], "pass": e["pass"],
                   "compiled by every engine": e["common"], "mask p50 us": e["mask_us"].get("p50"),
                   "mask p99 us": e["mask_us"].get("p99"), "mask max us": e["mask_us"].get("max"),
                   "ttfm p50 ms": e["ttfm_ms"].get("p50")}
            for name, e in subset.items()}


def table_columns(engines: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Per engine: totals plus the headline latency figures, for markdown_table."""
    cols = {}
    for name, e in engines.items():
        if "unavailable" in e:
            cols[name] = {"schemas": "unavailable"}
            continue
        m = e["mask_us"]
        cols[name] = {**e["totals"], "mask p50 us": m.get("p50"), "mask p99 us": m.get("p99"),
                      "mask p99.9 us": m.get("p99.9"), "mask max us": m.get("max"),
                      "ttfm p50 ms": e["ttfm_ms"].get("p50"), "compile p50 ms": e["compile_ms"].get("p50")}
    return cols


def run_replay(mode: str, rows: list[dict], s: BenchSettings) -> dict:
    """Replay `rows` with every engine of `s` (one isolated pool per engine); write and return the results."""
    machine = report.machine_info()  # the commit and load this run started with, not those at its end
    engines: dict[str, dict] = {}
    all_rows: dict[str, list[dict]] = {}
    for name in s.engines:
        version = engine_version(name, s, engines, all_rows)
        if version is None:
            continue
        on_result, close = _progress(len(rows), name, s.quiet)
        t0 = time.perf_counter()
        try:
            records = run_maskbench(name, rows, s.tokenizer_json, s.stop_ids, workers=s.workers,
                                    time_limit_s=s.time_limit_s, total_timeout_s=s.total_timeout_s,
                                    memory_limit_mb=s.memory_limit_mb, on_result=on_result, whitespace=s.whitespace)
        finally:
            close()
        engines[name] = _engine_summary(name, records, version)
        engines[name]["seconds"] = round(time.perf_counter() - t0, 1)
        all_rows[name] = records
    subset = glr_subset({n: rs for n, rs in all_rows.items() if rs})
    for name, figures in subset.items():
        engines[name]["glr_subset"] = figures
    for records in all_rows.values():
        _row_stats(records)
    doc = report.build_results(mode, s.as_dict(), engines, all_rows, machine)
    out = Path(s.out)
    report.write_results(doc, out, s.stem)
    table = report.markdown_table(table_columns(engines), TABLE_KEYS,
                                  f"{mode} ({len(rows)} schemas, {s.whitespace} whitespace)")
    if subset and next(iter(subset.values()))["schemas"]:
        table += "\n\n" + report.markdown_table(glr_columns(subset), GLR_KEYS,
                                                f"schemas whose structgen grammar needs GLR ({s.whitespace}; "
                                                "times on those every engine compiled)")
    (out / f"{s.stem}.md").write_text(table + "\n", encoding="utf-8")
    report.plot_cdf({n: e["mask_us"].get("cdf", []) for n, e in engines.items() if "mask_us" in e},
                    out / f"{s.stem}_mask_cdf.png", "per-token mask time (us, log)",
                    f"{mode}: mask latency CDF ({s.tokenizer_json.split('/')[-2] if '/' in s.tokenizer_json else ''})")
    print(table)
    return doc


def run_maskbench_mode(s: BenchSettings) -> dict:
    rows = sample(load_rows(s.data), s.limit, s.seed, s.per_dataset)
    return run_replay("maskbench", rows, s)


def run_test_suite_mode(s: BenchSettings, drafts: tuple[str, ...] = ("draft2020-12", "draft7")) -> dict:
    rows = [r for d in drafts for r in json_schema_suite_rows(s.data, d)]
    return run_replay("test-suite", sample(rows, s.limit, s.seed), s)
