"""JSONSchemaBench's coverage experiment: generate under each engine with the embedded model, then validate.

Per schema and engine: declared coverage (the engine compiles the schema), empirical coverage (the
greedy output ends within `max_tokens` and `jsonschema` accepts it, Draft 2020-12 unless `$schema`
says otherwise, formats checked) and compliance (valid outputs among compiled schemas). Efficiency:
grammar compile time, TTFT (compile + prompt + first token) and TPOT (mean time per later token).

The prompt is two-shot, as the paper's: a system message asking for a JSON object matching the
schema, two fixed schema → instance exchanges, then the schema. Every engine sees the same prompt and
model (SmolLM2-135M-Instruct, llama-cpp or transformers backend) and runs in its own worker process.
Decoding is greedy; a repetition penalty (transformers' semantics, default 1.15 as in `structgen
generate`) keeps the 135M model from looping in arrays until `max_tokens`, for every engine alike.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import StructgenError
from . import report
from .engines import CompileError, make_engine
from .isolation import run_isolated

SYSTEM = ("You need to generate a JSON object that matches the schema below. Reply with the JSON object only, "
          "on one line.")
SHOTS = [
    ({"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
      "required": ["city", "population"]}, {"city": "Lyon", "population": 522250}),
    ({"type": "object", "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
                                       "done": {"type": "boolean"}}, "required": ["title", "done"]},
     {"title": "Write the report", "tags": ["work", "urgent"], "done": False}),
]


def messages(schema: Any) -> list[dict]:
    """The two-shot chat: system, (schema, instance) twice, then the schema to answer."""
    out = [{"role": "system", "content": SYSTEM}]
    for s, inst in SHOTS:
        out += [{"role": "user", "content": json.dumps(s)}, {"role": "assistant", "content": json.dumps(inst)}]
    return out + [{"role": "user", "content": json.dumps(schema)}]


class _AsStructgenMatcher:
    """An evaluation EngineMatcher behind the matcher protocol structgen's logits processors call."""

    def __init__(self, m: Any, stop_ids: set[int]) -> None:
        self.m, self.stops, self.terminated = m, stop_ids, False
        self.mask_s: list[float] = []

    def reset(self) -> None:
        self.m.reset()
        self.terminated = False

    def fill_next_token_bitmask(self, bitmask: Any, index: int = 0) -> None:
        row = bitmask.numpy() if hasattr(bitmask, "numpy") else bitmask
        row = row if row.ndim == 1 else row[index]
        t0 = time.perf_counter()
        self.m.fill_mask(row)
        self.mask_s.append(time.perf_counter() - t0)

    def accept_token(self, token: int) -> bool:
        if token in self.stops:
            if self.terminated or not self.m.is_accepting():
                return False
            self.terminated = True
            return True
        return bool(self.m.accept_token(int(token)))

    def is_terminated(self) -> bool:
        return self.terminated


_W: dict[str, Any] = {}
N_CTX = 8192  # SmolLM2's context length: room for large schemas in the prompt


def init_worker(arg: tuple[str, str, list[int], str, int, float]) -> None:
    """Pool initializer: the engine, the model (one thread) and its tokenizer, once per worker."""
    name, tokenizer_json, stop_ids, backend, max_tokens, penalty = arg
    from ..models import load_default_tokenizer

    _W.update(engine=make_engine(name, tokenizer_json, stop_ids), stops=set(stop_ids), backend=backend,
              max_tokens=max_tokens, penalty=penalty, hf_tok=load_default_tokenizer())
    if backend == "llama-cpp":
        from ..models import load_default_llama

        _W["llm"] = load_default_llama(n_threads=1, n_ctx=N_CTX)
    else:
        import torch

        from ..models import load_default_model

        torch.set_num_threads(1)
        _W["model"] = load_default_model()
    from .. import TokenizerInfo

    _W["info"] = TokenizerInfo.from_tokenizer_json(tokenizer_json, stop_token_ids=stop_ids)


def _generate(compiled: Any, prompt: str) -> tuple[str, bool, list[float], float, float]:
    """(text, terminated, mask seconds, seconds to the first token, total seconds) for one greedy generation."""
    engine = _W["engine"]
    wrapped = _AsStructgenMatcher(engine.matcher(compiled), _W["stops"])
    first: list[float] = []
    t0 = time.perf_counter()

    def on_token(_: int) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    if _W["backend"] == "llama-cpp":
        from ..integrations.llama_cpp import generate_llama_cpp

        text, _, done = generate_llama_cpp(_W["llm"], _CompiledShim(compiled, _W["info"]), prompt,
                                           max_tokens=_W["max_tokens"], temperature=0.0, seed=0,
                                           repetition_penalty=_W["penalty"], on_token=on_token,
                                           matcher_factory=lambda _: wrapped)
    else:
        from ..integrations.transformers import generate_transformers

        text, _, done = generate_transformers(_W["model"], _W["hf_tok"], _CompiledShim(compiled, _W["info"]), prompt,
                                              max_tokens=_W["max_tokens"], repetition_penalty=_W["penalty"],
                                              on_text=lambda _t: on_token(0),
                                              matcher_factory=lambda _: wrapped)
    return text, bool(done), wrapped.mask_s, (first[0] if first else 0.0), time.perf_counter() - t0


class _CompiledShim:
    """What the generation loops read from a compiled grammar (tokenizer_info), for any engine's handle."""

    def __init__(self, compiled: Any, info: Any) -> None:
        self.compiled, self.tokenizer_info = compiled, info


def generate_row(row: dict) -> dict:
    """Pool task: compile, generate greedily, validate; one coverage record."""
    from ..models import chat_prompt

    rec: dict[str, Any] = {"dataset": row["dataset"], "id": row["id"], "outcome": "compile_error", "reason": None,
                           "compile_ms": None, "ttft_ms": None, "tpot_ms": None, "tokens": 0, "output": None}
    t0 = time.perf_counter()
    try:
        compiled = _W["engine"].compile(row["schema"])
    except CompileError as e:
        rec["reason"] = (str(e) or "compile error")[:300]
        return rec
    compile_s = time.perf_counter() - t0
    rec["compile_ms"] = round(compile_s * 1e3, 3)
    prompt = chat_prompt_from(messages(row["schema"]), _W["hf_tok"], chat_prompt)
    try:
        text, done, mask_s, first_s, total_s = _generate(compiled, prompt)
    except StructgenError as e:  # e.g. a schema too long for the model's context: no engine can answer
        rec.update(outcome="error", reason=str(e)[:300])
        return rec
    n = len(mask_s)
    rec.update(output=text[:2000], tokens=n, ttft_ms=round((compile_s + first_s) * 1e3, 3),
               tpot_ms=round((total_s - first_s) / max(n - 1, 1) * 1e3, 3),
               mask_us=report.latency_stats([t * 1e6 for t in mask_s]))
    rec["mask_us"].pop("cdf", None)
    if not done:
        rec["outcome"] = "unterminated"
        return rec
    rec["outcome"] = "valid" if schema_valid(row["schema"], text) else "invalid"
    return rec


def chat_prompt_from(msgs: list[dict], hf_tok: Any, fallback) -> str:
    """The chat template applied to `msgs`, ending with the assistant's turn."""
    if not getattr(hf_tok, "chat_template", None):
        return fallback(hf_tok, msgs[-1]["content"], msgs[0]["content"])
    return hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def schema_valid(schema: Any, text: str) -> bool:
    """Does `text` parse as JSON that `jsonschema` accepts (its draft, default 2020-12; formats checked)?"""
    import jsonschema

    try:
        instance = json.loads(text)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(instance)
    except (ValueError, jsonschema.exceptions.SchemaError, RecursionError, TypeError):
        return False


def coverage_totals(records: list[dict]) -> dict[str, float]:
    """Declared / empirical coverage and compliance (fractions), with the counts behind them."""
    n = len(records)
    compiled = sum(r["outcome"] != "compile_error" for r in records)
    valid = sum(r["outcome"] == "valid" for r in records)
    return {"schemas": n, "compiled": compiled, "valid": valid,
            "invalid": sum(r["outcome"] == "invalid" for r in records),
            "unterminated": sum(r["outcome"] == "unterminated" for r in records),
            "error": sum(r["outcome"] == "error" for r in records),
            "timeout": sum(r["reason"] == "timeout" for r in records),
            "declared_coverage": round(compiled / n, 4) if n else 0.0,
            "empirical_coverage": round(valid / n, 4) if n else 0.0,
            "compliance": round(valid / compiled, 4) if compiled else 0.0}


def run_coverage_mode(s: Any) -> dict:
    """`structgen bench coverage`: every engine of `s` over the (sampled) JSONSchemaBench rows."""
    from .datasets import load_rows, sample
    from .runner import _progress, engine_version

    backend, max_tokens = s.extra.get("backend", "transformers"), int(s.extra.get("max_tokens", 512))
    penalty = float(s.extra.get("repetition_penalty", 1.0))
    if backend == "llama-cpp":
        from ..models import load_default_llama

        load_default_llama()  # fail early with the install hint
    rows = sample(load_rows(s.data), s.limit, s.seed, s.per_dataset)
    machine = report.machine_info()  # the commit and load this run started with
    engines: dict[str, dict] = {}
    all_rows: dict[str, list[dict]] = {}
    for name in s.engines:
        version = engine_version(name, s, engines, all_rows)
        if version is None:
            continue
        on_result, close = _progress(len(rows), name, s.quiet)
        try:
            outcomes = run_isolated(generate_row, rows, init=init_worker,
                                    init_arg=(name, s.tokenizer_json, s.stop_ids, backend, max_tokens, penalty),
                                    workers=s.workers, time_limit_s=s.time_limit_s, total_timeout_s=s.total_timeout_s,
                                    memory_limit_mb=s.memory_limit_mb, on_result=on_result)
        finally:
            close()
        records = []
        for row, o in zip(rows, outcomes):
            records.append(o.value if o.status == "ok" else
                           {"dataset": row["dataset"], "id": row["id"], "outcome": "compile_error",
                            "reason": o.status, "detail": str(o.value)[:300], "compile_ms": None, "ttft_ms": None,
                            "tpot_ms": None, "tokens": 0, "output": None})
        by: dict[str, list[dict]] = {}
        for r in records:
            by.setdefault(r["dataset"], []).append(r)
        engines[name] = {
            "version": version, "totals": coverage_totals(records),
            "compile_ms": report.latency_stats([r["compile_ms"] for r in records if r["compile_ms"] is not None]),
            "ttft_ms": report.latency_stats([r["ttft_ms"] for r in records if r["ttft_ms"] is not None]),
            "tpot_ms": report.latency_stats([r["tpot_ms"] for r in records if r["tpot_ms"] is not None]),
            "by_dataset": {d: coverage_totals(rs) for d, rs in sorted(by.items())},
        }
        all_rows[name] = records
    doc = report.build_results("coverage", s.as_dict(), engines, all_rows, machine)
    report.write_results(doc, s.out, s.stem)
    keys = ["schemas", "compiled", "valid", "invalid", "unterminated", "error", "timeout", "declared_coverage",
            "empirical_coverage", "compliance", "compile p50 ms", "ttft p50 ms", "tpot p50 ms"]
    cols = {n: ({**e["totals"], "compile p50 ms": e["compile_ms"].get("p50"), "ttft p50 ms": e["ttft_ms"].get("p50"),
                 "tpot p50 ms": e["tpot_ms"].get("p50")} if "unavailable" not in e else {"schemas": "unavailable"})
            for n, e in engines.items()}
    table = report.markdown_table(cols, keys, f"coverage ({len(rows)} schemas, {backend})")
    per_ds = {d: {n: e["by_dataset"][d]["empirical_coverage"] for n, e in engines.items() if "by_dataset" in e}
              for d in sorted({r["dataset"] for r in rows})}
    lines = ["| dataset | " + " | ".join(f"{n} declared / empirical" for n in engines) + " |",
             "|---|" + "---:|" * len(engines)]
    for d in per_ds:
        cells = [f"{e['by_dataset'][d]['declared_coverage']:.2f} / {e['by_dataset'][d]['empirical_coverage']:.2f}"
                 if "by_dataset" in e and d in e["by_dataset"] else "—" for e in engines.values()]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    text = table + "\n\n" + "\n".join(lines) + "\n"
    (report.Path(s.out) / f"{s.stem}.md").write_text(text, encoding="utf-8")
    report.plot_bars(per_ds, report.Path(s.out) / f"{s.stem}_by_dataset.png", "empirical coverage",
                     f"JSONSchemaBench coverage ({backend}, SmolLM2-135M)")
    print(text)
    return doc

