"""Benchmark reports: the results JSON (checked against results.schema.json), a markdown table, PNG plots."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"
RESULTS_VERSION = 1
VERSIONED = ("structgen", "numpy", "numba", "llguidance", "xgrammar", "outlines-core", "tokenizers", "torch",
             "transformers", "llama-cpp-python")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                                    timeout=10).stdout.strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty}


def machine_info() -> dict:
    """Where and with what a benchmark ran: platform, CPU, Python, package versions, git state, load."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"platform": platform.platform(), "cpu_model": cpu, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "versions": {d: _version(d) for d in VERSIONED}, "git": _git()}
    if hasattr(os, "getloadavg"):
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def latency_stats(values: list[float]) -> dict:
    """n, mean, p50, p90, p99, p99.9, max of a list of times (any unit), plus a 101-point CDF (percentiles 0..100)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p50, p90, p99, p999 = np.percentile(a, [50, 90, 99, 99.9])
    return {"n": int(a.size), "mean": round(float(a.mean()), 3), "p50": round(float(p50), 3),
            "p90": round(float(p90), 3), "p99": round(float(p99), 3), "p99.9": round(float(p999), 3),
            "max": round(float(a.max()), 3),
            "cdf": [round(float(x), 3) for x in np.percentile(a, np.arange(101))]}


def build_results(mode: str, settings: dict, per_engine: dict[str, dict], rows: dict[str, list[dict]],
                  machine: dict | None = None) -> dict:
    """The results document: `per_engine[name]` holds totals and statistics, `rows[name]` per-schema records;
    `machine` is machine_info() read when the run started (its git state and load), else read now."""
    return {"results_version": RESULTS_VERSION, "mode": mode, "machine": machine or machine_info(),
            "settings": settings, "engines": per_engine, "rows": rows}


def validate_results(doc: dict) -> None:
    """Raise jsonschema.ValidationError when `doc` does not follow results.schema.json."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


def write_results(doc: dict, out_dir: str | Path, stem: str) -> Path:
    """Validate and write `<out_dir>/<stem>.json` (rows of mask times kept as statistics only)."""
    validate_results(doc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def markdown_table(columns: dict[str, dict[str, Any]], keys: list[str], title: str = "") -> str:
    """A markdown table: one row per key, one column per engine."""
    names = list(columns)
    lines = [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for k in keys:
        cells = []
        for n in names:
            v = columns[n].get(k)
            cells.append("—" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_cdf(series: dict[str, list[float]], path: str | Path, xlabel: str, title: str) -> Path | None:
    """CDF per engine on a log x-axis (None when matplotlib is not installed)."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, cdf in series.items():
        if cdf:
            ax.plot(cdf, np.linspace(0, 1, len(cdf)), label=name)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_bars(groups: dict[str, dict[str, float]], path: str | Path, ylabel: str, title: str) -> Path | None:
    """Grouped bars: `groups[group][engine] = value` (e.g. coverage per dataset per engine)."""
    plt = _pyplot()
    if plt is None:
        return None
    names = sorted({e for g in groups.values() for e in g})
    fig, ax = plt.subplots(figsize=(max(7, len(groups) * 0.9), 4))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        ax.bar([i + k * width for i in range(len(groups))], [groups[g].get(name, 0) for g in groups], width,
               label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))])
    ax.set_xticklabels(list(groups), rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt
