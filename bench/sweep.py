#!/usr/bin/env python
"""Robustness sweep: every MaskBench and JSONSchemaBench schema through structgen in isolated workers.

    python bench/sweep.py                                  # everything, compact whitespace, 1 worker
    python bench/sweep.py --whitespace flexible --workers 2
    python bench/sweep.py --limit 30 --out /tmp/sweep      # a seeded sample of 30 inputs per source
    python bench/sweep.py --resume                         # go on from <out>/<name>.jsonl after a stop

Each input (a MaskBench row: a schema with valid and invalid instances; a JSONSchemaBench row: a schema
alone) is one task of `structgen.evaluation.isolation.run_isolated` (forkserver workers, a CPU-time
limit per task with a 3x wall-clock backstop, an address-space cap per worker). The task is the MaskBench
replay of `structgen.evaluation.maskbench.replay_row`: compile (`strict=True`, the bench's
`property_order="any"`, `--whitespace`), then walk every instance token by token (Llama-3 tokenizer)
and the stop token; a row without instances is compiled and its first mask filled. A fresh
`GrammarCompiler` compiles every input, so no input is answered from another's cache.

Outcome of each input (one class; the first that applies):

* `crash`: the worker died (a signal, an exit) or its result could not be sent back.
* `hang`: past the CPU-time limit (`--time-limit`), or 3x that in wall-clock time.
* `oom`: MemoryError under the address-space cap, or a worker death that looks like memory.
* `untyped`: an exception that is not a `StructgenError` (compiling or matching): type, message and
  the traceback's last frames are recorded.
* `refused`: a `StructgenError` from the compile (a designed refusal: class and message), or one
  raised while matching an instance (recorded with `phase: "match"`).
* `invalid_accepted`: an invalid instance was accepted (the count of such instances is recorded).
* `valid_rejected`: a valid instance was rejected (count).
* `mask_disagreement`: a token the mask forbade was accepted, or the reverse (an engine inconsistency;
  not in issue 22's list, kept apart from `ok` since it is a bug).
* `ok`: compiled, every instance classified right.

Per input also: compile wall / CPU seconds (measured around `compile_json_schema` inside the worker),
the worker's peak RSS during the task (VmHWM, reset through /proc/self/clear_refs before each task),
and the largest address space the pool saw. Every result is appended to `<out>/<name>.jsonl` as it
arrives (a header line with the settings, then one record per input); `--resume` skips the inputs
already there. At the end `<out>/<name>.json` (machine, settings, totals per source and per dataset
file, every input that is neither ok nor refused, refusals by class and by message prefix, compile
time and memory statistics) and `<out>/<name>.md` (tables) are written.
"""

from __future__ import annotations

import os

if __name__ in ("__main__", "__mp_main__"):  # run as the script (not imported by a test): one thread per worker,
    for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "RAYON_NUM_THREADS"):  # set before numpy / numba load, since the workers fork from these imports
        os.environ[_var] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from structgen.errors import StructgenError  # noqa: E402
from structgen.evaluation import maskbench, report  # noqa: E402
from structgen.evaluation.datasets import load_rows, sample  # noqa: E402
from structgen.evaluation.engines import CompileError, EngineMatcher, StructgenEngine  # noqa: E402
from structgen.evaluation.isolation import TaskOutcome, run_isolated  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SOURCES = ("maskbench", "jsonschemabench")
TOKENIZER = DATA / "tokenizers" / "llama3" / "tokenizer.json"
OUTCOMES = ("ok", "refused", "crash", "hang", "oom", "untyped", "invalid_accepted", "valid_rejected",
            "mask_disagreement", "skipped")
PROBLEMS = tuple(o for o in OUTCOMES if o not in ("ok", "refused"))
ISOLATION = {"timeout": "hang", "oom": "oom", "crash": "crash", "skipped": "skipped"}  # run_isolated → class
ENGINE_KEYS = ("whitespace", "property_order", "strict", "tokenizer")  # settings a resumed run must share
DEFAULT_TIME_LIMIT_S = 30.0
DEFAULT_MEMORY_MB = 8192
MESSAGE_CHARS = 200
FRAMES = 8

# ------------------------------------------------------------------------------------------- worker side


class SweepEngine(StructgenEngine):
    """The bench's structgen adapter with what the sweep needs besides: a fresh compiler per input (no
    answer from another input's cache), compile wall / CPU time, and the exception objects behind a
    refusal or a failure (class, message, traceback), in `events`."""

    def __init__(self, tokenizer_json: Path, stop_ids: list[int], whitespace: str, property_order: str) -> None:
        super().__init__(tokenizer_json, stop_ids, whitespace)
        self.property_order = property_order
        self.events: dict[str, Any] = {}

    def compile(self, schema: Any) -> Any:
        from structgen import GrammarCompiler

        ev = self.events
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            return GrammarCompiler(self.info).compile_json_schema(
                schema, strict=True, whitespace=self.whitespace, property_order=self.property_order)
        except StructgenError as e:
            ev["compile_refused"] = refusal(e, "compile")
            raise CompileError(f"{type(e).__name__}: {e}") from e
        except MemoryError:
            raise
        except BaseException as e:
            ev["compile_untyped"] = untyped(e, "compile")
            raise
        finally:
            ev["compile_wall_s"] = time.perf_counter() - w0
            ev["compile_cpu_s"] = time.process_time() - c0

    def matcher(self, compiled: Any) -> EngineMatcher:
        return _TracingMatcher(super().matcher(compiled), self.events)


class _TracingMatcher(EngineMatcher):
    """Delegates to the structgen matcher; records the first exception of each kind in `events`."""

    def __init__(self, inner: EngineMatcher, events: dict) -> None:
        self._m, self._ev = inner, events

    def _call(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except MemoryError:
            raise
        except StructgenError as e:
            self._ev.setdefault("match_refused", refusal(e, "match"))
            raise
        except BaseException as e:
            self._ev.setdefault("match_untyped", untyped(e, "match"))
            raise

    def fill_mask(self, bitmask: np.ndarray) -> None:
        self._call(self._m.fill_mask, bitmask)

    def accept_token(self, token_id: int) -> bool:
        return self._call(self._m.accept_token, token_id)

    def is_accepting(self) -> bool:
        return self._call(self._m.is_accepting)

    def reset(self) -> None:
        self._call(self._m.reset)


def refusal(e: BaseException, phase: str) -> dict:
    d = {"phase": phase, "class": type(e).__name__, "message": str(e)[:MESSAGE_CHARS]}
    if getattr(e, "limit", None):
        d["limit"] = e.limit
    return d


def untyped(e: BaseException, phase: str) -> dict:
    frames = []
    for f in traceback.extract_tb(e.__traceback__)[-FRAMES:]:
        name = f.filename
        if name.startswith(str(REPO) + os.sep):
            name = name[len(str(REPO)) + 1:]
        frames.append(f"{name}:{f.lineno} in {f.name}: {(f.line or '').strip()}"[:300])
    return {"phase": phase, "type": type(e).__name__, "message": str(e)[:1000], "frames": frames}


def _reset_hwm() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm_mb() -> float | None:
    """This process's peak RSS in MB (VmHWM), else ru_maxrss (the process lifetime's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except (ImportError, OSError):
        return None


_HWM_RESETS = True


def init_worker(arg: tuple) -> None:
    """Pool initializer: the engine, installed where `maskbench.replay_row` reads it, then a warm-up replay."""
    global _HWM_RESETS
    tokenizer_json, stop_ids, whitespace, property_order = arg
    maskbench._ENGINE = SweepEngine(Path(tokenizer_json), list(stop_ids), whitespace, property_order)
    maskbench._STOP = int(stop_ids[0])
    maskbench.replay_row(maskbench.WARMUP_ROW)
    gc.collect()
    gc.freeze()
    _HWM_RESETS = _reset_hwm()


def sweep_task(row: dict) -> dict:
    """Pool task: replay one input (`maskbench.replay_row`) and classify it."""
    engine: SweepEngine = maskbench._ENGINE
    engine.events = ev = {}
    _reset_hwm()
    rep, err = None, None
    try:
        rep = maskbench.replay_row(row)
    except MemoryError:
        raise  # the pool records it as `oom`
    except BaseException as e:
        err = untyped(e, "compile" if "compile_wall_s" not in ev else "task")
    rec = classify(row, rep, ev, err)
    rec["rss_peak_mb"] = _hwm_mb()
    rec["rss_peak_is_task"] = _HWM_RESETS  # else it is the worker's lifetime peak
    return rec


def _base(row: dict) -> dict:
    tests = row.get("tests") or []
    return {"uid": row["uid"], "source": row["source"], "dataset": row["dataset"], "id": row["id"],
            "outcome": None, "detail": None, "n_valid": sum(1 for t in tests if t["valid"]),
            "n_invalid": sum(1 for t in tests if not t["valid"]), "invalid_accepted": 0, "valid_rejected": 0,
            "compiled": False, "compile_wall_s": None, "compile_cpu_s": None}


def classify(row: dict, rep: dict | None, ev: dict, err: dict | None) -> dict:
    """One input's record from the replay `rep` (None if the replay raised `err`) and the engine's `events`."""
    rec = _base(row)
    if "compile_wall_s" in ev:
        rec["compile_wall_s"] = round(ev["compile_wall_s"], 4)
        rec["compile_cpu_s"] = round(ev["compile_cpu_s"], 4)
    rec["compiled"] = rep is not None and rep.get("compile_ms") is not None
    if rep is not None:
        rec["invalid_accepted"] = len(rep["invalid_accepted"])
        rec["valid_rejected"] = len(rep["valid_rejected"])
        rec["invalid_accepted_idx"] = rep["invalid_accepted"]
        rec["valid_rejected_idx"] = rep["valid_rejected"]
        rec["mask_disagreements"] = rep["mask_disagreements"]
        rec["ttfm_ms"] = rep["ttfm_ms"]
        rec["masks"] = len(rep["mask_us"])
    crashes = (rep or {}).get("crashes") or []
    bug = ev.get("compile_untyped") or ev.get("match_untyped") or err
    if bug is None and crashes and "match_refused" not in ev:  # raised outside the matcher's calls
        bug = {"phase": "match", "type": crashes[0].split(":", 2)[1].strip(), "message": crashes[0], "frames": []}
    if bug is None and rep is not None and (rep.get("reason") or "").startswith("crash") \
            and "compile_refused" not in ev:
        bug = {"phase": "compile", "type": "unknown", "message": rep["reason"], "frames": []}
    if bug is not None:
        rec["outcome"], rec["detail"] = "untyped", {**bug, **({"instances": crashes} if crashes else {})}
    elif "compile_refused" in ev:
        rec["outcome"], rec["detail"] = "refused", ev["compile_refused"]
    elif rec["invalid_accepted"]:
        rec["outcome"], rec["detail"] = "invalid_accepted", {"instances": rep["invalid_accepted"]}
    elif rec["valid_rejected"]:
        rec["outcome"], rec["detail"] = "valid_rejected", {"instances": rep["valid_rejected"]}
    elif "match_refused" in ev:
        rec["outcome"], rec["detail"] = "refused", {**ev["match_refused"], "instances": crashes}
    elif rep["mask_disagreements"]:
        rec["outcome"], rec["detail"] = "mask_disagreement", {"steps": rep["mask_disagreements"]}
    else:
        rec["outcome"] = "ok"
    return rec


# ------------------------------------------------------------------------------------------- parent side

def load_inputs(sources: list[str], limit: int | None = None, seed: int = 0, data_dir: Path = DATA) -> list[dict]:
    """Rows of every source (each `{"uid", "source", "dataset", "id", "schema", "tests"}`), at most `limit`
    per source (a `random.Random(seed)` sample), shuffled together with `seed` so that a run cut short
    covers every dataset."""
    rows: list[dict] = []
    for src in sources:
        got = load_rows(Path(data_dir) / src)
        for r in got:
            r["source"] = src
            r["uid"] = f"{src}/{r['dataset']}/{r['id']}"
        rows += sample(got, limit, seed)
    random.Random(seed).shuffle(rows)
    return rows


def failed_record(row: dict, o: TaskOutcome) -> dict:
    rec = _base(row)
    rec["outcome"] = ISOLATION.get(o.status, "crash")
    rec["detail"] = {"message": o.detail[:1000]}
    return rec


def stats(values: list[float], digits: int = 4) -> dict:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    p50, p99 = np.percentile(a, [50, 99])
    return {"n": int(a.size), "mean": round(float(a.mean()), digits), "p50": round(float(p50), digits),
            "p99": round(float(p99), digits), "max": round(float(a.max()), digits)}


_PREFIX_SUBS = [(re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),  # quoted names, values
                (re.compile(r"(?:https?://[^\s#]*)?#[^\s,;:)]*|https?://[^\s,;)]*"), "#…"),  # JSON pointers, URIs
                (re.compile(r"\d[\d,._]*"), "N")]


def _blank(text: str) -> str:
    for pat, sub in _PREFIX_SUBS:
        text = pat.sub(sub, text)
    return text


def message_prefix(cls: str, message: str, width: int = 80) -> str:
    """A refusal's class and the start of its message, with names, pointers and numbers blanked, so that
    refusals of one kind group together: `UnsupportedFeature: unsupported keyword 'oneOf': branches N
    and N are not provably disjoint ...` (the keyword kept, its place dropped), `GrammarError: the
    schema's grammar is ambiguous ...` (up to the first ": ", after which come rule names)."""
    m = re.match(r"unsupported keyword '([^']*)' at \S*?(?:: (.*))?$", message, re.S)
    if m:
        text = f"unsupported keyword '{m.group(1)}'" + (f": {_blank(m.group(2))}" if m.group(2) else "")
    else:
        text = re.sub(r", at \S*$", "", _blank(message.split(": ", 1)[0]))
    return f"{cls}: {text[:width]}"


def totals(records: list[dict]) -> dict:
    t = {"inputs": len(records), **dict.fromkeys(OUTCOMES, 0), "instances_valid": 0, "instances_invalid": 0,
         "invalid_accepted_instances": 0, "valid_rejected_instances": 0}
    for r in records:
        t[r["outcome"]] += 1
        t["instances_valid"] += r["n_valid"]
        t["instances_invalid"] += r["n_invalid"]
        t["invalid_accepted_instances"] += r["invalid_accepted"]
        t["valid_rejected_instances"] += r["valid_rejected"]
    if not t["skipped"]:
        del t["skipped"]
    return t


def _resources(records: list[dict]) -> dict:
    compiled = [r for r in records if r.get("compiled")]
    refused = [r for r in records if r["outcome"] == "refused" and (r["detail"] or {}).get("phase") == "compile"]
    return {"compile_wall_s": stats([r["compile_wall_s"] for r in compiled]),
            "compile_cpu_s": stats([r["compile_cpu_s"] for r in compiled]),
            "refusal_wall_s": stats([r["compile_wall_s"] for r in refused]),
            "task_cpu_s": stats([r.get("task_cpu_s") for r in records]),
            "rss_peak_mb": stats([r.get("rss_peak_mb") for r in records], 1),
            "address_space_peak_mb": stats([r.get("address_space_mb") or None for r in records], 1)}


def summarize(records: list[dict], settings: dict, machine: dict, seconds: float, run_info: dict) -> dict:
    """The results document of the sweep (see the module docstring)."""
    groups = {src: [r for r in records if r["source"] == src] for src in settings["sources"]}
    by_dataset: dict[str, list[dict]] = {}
    for r in records:
        by_dataset.setdefault(f"{r['source']}/{r['dataset']}", []).append(r)
    refusals: dict[str, dict] = {}
    for name, rs in [("all", records), *groups.items()]:
        ref = [r["detail"] for r in rs if r["outcome"] == "refused"]
        refusals[name] = {
            "by_class": dict(Counter(d["class"] for d in ref).most_common()),
            "by_prefix": dict(Counter(message_prefix(d["class"], d["message"]) for d in ref).most_common()),
            "by_limit": dict(Counter(d["limit"] for d in ref if d.get("limit")).most_common())}
    problems = sorted((r for r in records if r["outcome"] in PROBLEMS), key=lambda r: (r["outcome"], r["uid"]))
    return {"mode": "sweep", "machine": machine, "settings": settings,
            "run": {**run_info, "seconds": round(seconds, 1)},
            "outcomes": list(OUTCOMES),
            "totals": {"all": totals(records), **{g: totals(rs) for g, rs in groups.items()}},
            "by_dataset": {d: totals(rs) for d, rs in sorted(by_dataset.items())},
            "problems": problems, "refusals": refusals,
            "resources": {"all": _resources(records), **{g: _resources(rs) for g, rs in groups.items()}}}


def _cell(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def markdown(doc: dict) -> str:
    s, tot = doc["settings"], doc["totals"]
    cols = list(tot)
    keys = [k for k in tot["all"] if k in OUTCOMES or k == "inputs"] + \
        ["instances_valid", "instances_invalid", "invalid_accepted_instances", "valid_rejected_instances"]
    out = [f"# structgen robustness sweep ({s['whitespace']} whitespace, property_order={s['property_order']}, "
           f"strict)", "",
           f"{tot['all']['inputs']} inputs, {s['workers']} worker(s), {s['time_limit_s']:g} s CPU per input, "
           f"{s['memory_mb']} MB address space per worker, limit {s['limit'] or 'none'} per source; "
           f"{doc['run']['seconds']:.0f} s this run ({doc['run']['resumed']} inputs taken from an earlier run); "
           f"commit {(doc['machine'].get('git') or {}).get('commit', '?')}"
           f"{' (dirty)' if (doc['machine'].get('git') or {}).get('dirty') else ''}.", "",
           "| outcome | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    out += [f"| {k} | " + " | ".join(_cell(tot[c].get(k, 0)) for c in cols) + " |" for k in keys]
    shown = [o for o in OUTCOMES if any(t.get(o) for t in doc["by_dataset"].values())] or ["ok"]
    out += ["", "| dataset | inputs | " + " | ".join(shown) + " |", "|---|---:|" + "---:|" * len(shown)]
    out += [f"| {d} | {t['inputs']} | " + " | ".join(str(t.get(o, 0)) for o in shown) + " |"
            for d, t in doc["by_dataset"].items()]
    res = doc["resources"]
    out += ["", "| resource | " + " | ".join(res) + " |", "|---|" + "---:|" * len(res)]
    for key, label in [("compile_wall_s", "compile wall s"), ("compile_cpu_s", "compile CPU s"),
                       ("refusal_wall_s", "time to refusal s"), ("rss_peak_mb", "peak RSS MB"),
                       ("address_space_peak_mb", "peak address space MB")]:
        for q in ("p50", "p99", "max") if "MB" not in label else ("p50", "max"):
            out.append(f"| {label} {q} | " + " | ".join(_cell(res[g][key].get(q)) for g in res) + " |")
    ref = doc["refusals"]["all"]
    if ref["by_class"]:
        out += ["", "| refusal class | inputs |", "|---|---:|"]
        out += [f"| {k} | {v} |" for k, v in ref["by_class"].items()]
        out += ["", "| refusal (message prefix) | inputs |", "|---|---:|"]
        out += [f"| {k.replace('|', '/')} | {v} |" for k, v in list(ref["by_prefix"].items())[:25]]
    if doc["problems"]:
        out += ["", f"Inputs neither ok nor refused ({len(doc['problems'])}; details in the JSON):", "",
                "| input | outcome | detail |", "|---|---|---|"]
        for r in doc["problems"][:100]:
            d = r["detail"] or {}
            text = d.get("message") or ", ".join(f"{k}={v}" for k, v in d.items())
            text = f"{d['type']}: {text}" if "type" in d else text
            out.append(f"| {r['uid']} | {r['outcome']} | {str(text)[:150].replace('|', '/')} |")
    return "\n".join(out) + "\n"


def _read_jsonl(path: Path) -> tuple[dict | None, dict[str, dict]]:
    """(header, records by uid) of a partial-results file; a torn last line is ignored."""
    header, done = None, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if "header" in obj:
                header = header or obj["header"]
            elif "uid" in obj:
                done[obj["uid"]] = obj
    return header, done


class Progress:
    """A line on stderr every `every` results or `seconds` seconds, and at the end."""

    def __init__(self, total: int, quiet: bool, every: int = 25, seconds: float = 20.0) -> None:
        self.total, self.quiet, self.every, self.seconds = total, quiet, every, seconds
        self.done, self.t0, self.last = 0, time.monotonic(), time.monotonic()
        self.counts: Counter = Counter()

    def __call__(self, rec: dict) -> None:
        self.done += 1
        self.counts[rec["outcome"]] += 1
        now = time.monotonic()
        due = self.done % self.every == 0 or now - self.last >= self.seconds or self.done == self.total
        if self.quiet or not due:
            return
        self.last = now
        el = now - self.t0
        eta = el / self.done * (self.total - self.done)
        counts = " ".join(f"{o} {self.counts[o]}" for o in OUTCOMES if self.counts[o])
        print(f"sweep: {self.done}/{self.total} ({100 * self.done / max(1, self.total):.0f}%) {counts} | "
              f"{el / 60:.1f} min, eta {eta / 60:.1f} min", file=sys.stderr, flush=True)


def stop_ids_of(tokenizer_json: Path) -> list[int]:
    from structgen import TokenizerInfo

    return [int(t) for t in TokenizerInfo.from_tokenizer_json(tokenizer_json).stop_token_ids]


def run_sweep(rows: list[dict], *, out: Path, name: str = "sweep", whitespace: str = "compact",
              property_order: str = "any", workers: int = 1, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
              memory_mb: int = DEFAULT_MEMORY_MB, tokenizer_json: Path = TOKENIZER, resume: Path | None = None,
              limit: int | None = None, seed: int = 0, sources: list[str] | None = None,
              quiet: bool = False) -> dict:
    """Sweep `rows` (from `load_inputs`); write `<out>/<name>.jsonl`, `.json` and `.md`; return the document."""
    machine = report.machine_info()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"engine": "structgen", "strict": True, "whitespace": whitespace, "property_order": property_order,
                "tokenizer": str(tokenizer_json), "sources": sources or sorted({r["source"] for r in rows}),
                "limit": limit, "seed": seed, "workers": workers, "time_limit_s": time_limit_s,
                "wall_backstop_s": 3 * time_limit_s, "memory_mb": memory_mb}
    jsonl = out / f"{name}.jsonl"
    done: dict[str, dict] = {}
    header = None
    if resume is not None and Path(resume).is_file():
        header, done = _read_jsonl(Path(resume))
        if header is not None:
            differ = [k for k in ENGINE_KEYS if header.get(k) != settings[k]]
            if differ:
                raise SystemExit(f"--resume {resume}: recorded with other settings ({', '.join(differ)})")
    wanted = {r["uid"] for r in rows}
    done = {u: r for u, r in done.items() if u in wanted}
    todo = [r for r in rows if r["uid"] not in done]
    append = header is not None and Path(resume).resolve() == jsonl.resolve()
    if not append:  # a fresh file: the header, then what the resumed file already holds for these inputs
        with open(jsonl, "w", encoding="utf-8") as f:
            f.write(json.dumps({"header": settings}) + "\n")
            for r in done.values():
                f.write(json.dumps(r) + "\n")
    if not quiet:
        print(f"sweep: {len(rows)} inputs, {len(done)} done before, {len(todo)} to run with {workers} worker(s); "
              f"results appended to {jsonl}", file=sys.stderr, flush=True)
    progress = Progress(len(todo), quiet)
    records = dict(done)
    stop_ids = stop_ids_of(tokenizer_json)
    t0 = time.perf_counter()
    with open(jsonl, "rb+") as f:  # a line torn by a stop ends before the next record, not inside it
        if f.seek(0, 2) and (f.seek(-1, 2), f.read(1))[1] != b"\n":
            f.write(b"\n")
    with open(jsonl, "a", encoding="utf-8") as sink:
        def on_result(index: int, o: TaskOutcome) -> None:
            row = todo[index]
            rec = o.value if o.status == "ok" else failed_record(row, o)
            rec["task_cpu_s"], rec["task_wall_s"], rec["address_space_mb"] = o.seconds, o.wall_s, o.peak_mb
            records[rec["uid"]] = rec
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
            progress(rec)

        if todo:
            run_isolated(sweep_task, todo, init=init_worker,
                         init_arg=(str(tokenizer_json), stop_ids, whitespace, property_order), workers=workers,
                         time_limit_s=time_limit_s, memory_limit_mb=memory_mb, on_result=on_result)
    seconds = time.perf_counter() - t0
    ordered = [records[r["uid"]] for r in rows]
    doc = summarize(ordered, settings, machine, seconds, {"resumed": len(done), "ran": len(todo),
                                                          "results_jsonl": str(jsonl)})
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(markdown(doc), encoding="utf-8", errors="backslashreplace")
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default=",".join(SOURCES), help="comma-separated: maskbench,jsonschemabench")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N inputs per source")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S,
                   help="CPU seconds per input (wall-clock backstop: 3x); past it: hang")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, help="address-space cap per worker")
    p.add_argument("--whitespace", choices=("compact", "flexible"), default="compact")
    p.add_argument("--property-order", choices=("any", "declared"), default="any",
                   help="'any' is the bench's structgen engine (default); 'declared' its structgen-declared")
    p.add_argument("--tokenizer", default=str(TOKENIZER), help="tokenizer.json (default: Llama-3, as MaskBench)")
    p.add_argument("--data", default=str(DATA), help="folder holding maskbench/ and jsonschemabench/")
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--name", default=None, help="output stem (default: sweep, or sweep_flexible)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="JSONL",
                   help="skip inputs already in this partial-results file (default: <out>/<name>.jsonl)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    sources = [s.strip() for s in a.sources.split(",") if s.strip()]
    if not sources or any(s not in SOURCES for s in sources):
        p.error(f"--sources: choose from {','.join(SOURCES)}")
    name = a.name or ("sweep" if a.whitespace == "compact" else "sweep_flexible")
    tok = Path(a.tokenizer)
    tok = tok / "tokenizer.json" if tok.is_dir() else tok
    resume = None if a.resume is None else Path(a.resume or Path(a.out) / f"{name}.jsonl")
    rows = load_inputs(sources, a.limit, a.seed, Path(a.data))
    doc = run_sweep(rows, out=Path(a.out), name=name, whitespace=a.whitespace, property_order=a.property_order,
                    workers=a.workers, time_limit_s=a.time_limit, memory_mb=a.memory_mb, tokenizer_json=tok,
                    resume=resume, limit=a.limit, seed=a.seed, sources=sources, quiet=a.quiet)
    t = doc["totals"]["all"]
    print(" ".join(f"{k} {v}" for k, v in t.items() if v) + f" | {doc['run']['seconds']:.0f} s | "
          f"{Path(a.out) / name}.json", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
