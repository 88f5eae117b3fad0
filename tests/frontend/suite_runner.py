"""Run the official JSON-Schema-Test-Suite through the strict JSON Schema compiler.

For every schema group of every keyword file the schema is compiled once (strict mode). A
`StructgenError` is a compile error by design: every test of the group counts as `compile_error`.
Every instance is serialized the one way our grammars produce (`json.dumps(data,
ensure_ascii=False)`), tokenized with the given tokenizer and walked token by token, then the stop
token; the instance is accepted iff every step is accepted.

Counts per file: compile_error, valid_accepted, valid_rejected, invalid_accepted, invalid_rejected.
Anything else that goes wrong (a non-StructgenError exception from compile or matching) is a crash:
it is counted under `crash` and recorded in `run.crashes`. Compiles that exceed the per-group time
limit count as compile_error and are recorded in `run.timeouts`. Invalid instances that are
accepted are recorded (file, schema description, test description) in `run.invalid_accepted`.

    python tests/frontend/suite_runner.py            # table per file + totals for both drafts
    python tests/frontend/suite_runner.py --write    # also (re)write ratchets/json_schema_test_suite.json
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `python tests/frontend/suite_runner.py` from the repo root
    sys.path.insert(0, str(HERE.parent))

from datasets import DATA, TOKENIZERS  # noqa: E402

SUITE = DATA / "json-schema-test-suite" / "tests"
RATCHET = HERE / "ratchets" / "json_schema_test_suite.json"
LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
DRAFTS = ("draft2020-12", "draft7")
DRAFT7_URI = "http://json-schema.org/draft-07/schema#"
KEYS = ("compile_error", "valid_accepted", "valid_rejected", "invalid_accepted", "invalid_rejected")


class _Timeout(Exception):
    pass


class SuiteRun(dict):
    """`dict[file, counts]` plus the details the counts summarize."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes: list[tuple[str, str, str]] = []          # (file, group, message)
        self.timeouts: list[tuple[str, str]] = []              # (file, group)
        self.invalid_accepted: list[tuple[str, str, str]] = []  # (file, group, test)
        self.compile_errors: list[tuple[str, str, str]] = []   # (file, group, reason)
        self.seconds = 0.0


def suite_files(draft: str) -> list[str]:
    """Keyword files of one draft: the top-level ones plus optional/format/*, as `draft/rel/path.json`."""
    root = SUITE / draft
    paths = sorted(root.glob("*.json")) + sorted((root / "optional" / "format").glob("*.json"))
    return [f"{draft}/{p.relative_to(root).as_posix()}" for p in paths]


def _prepare_schema(draft: str, schema):
    if draft == "draft7" and isinstance(schema, dict) and "$schema" not in schema:
        schema = copy.deepcopy(schema)
        schema["$schema"] = DRAFT7_URI
    return schema


def _compile_with_limit(compile_fn, schema, time_limit_s: float):
    """Compile under a SIGALRM-based wall-clock limit (main thread only; elsewhere unguarded)."""
    if not time_limit_s or threading.current_thread() is not threading.main_thread():
        return compile_fn(schema)

    def on_alarm(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(time_limit_s))
    try:
        return compile_fn(schema)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def walk_tokens(cg, tokenizer, stop_id: int, text: str) -> bool:
    """Accepted iff every token of `text` and then the stop token are accepted."""
    from structgen import GrammarMatcher

    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no UTF-8 output can spell this instance
        return False
    m = GrammarMatcher(cg)
    for tid in tokenizer.encode(text, add_special_tokens=False).ids:
        if not m.accept_token(tid):
            return False
    return bool(m.accept_token(stop_id))


def run_suite(draft: str, compiler, tokenizer, stop_id: int, files=None, time_limit_s: float = 10) -> SuiteRun:
    """Counts per keyword file of `draft` (see the module docstring); `files` restricts to those keys."""
    from structgen import StructgenError

    run = SuiteRun()
    t0 = time.perf_counter()
    wanted = suite_files(draft) if files is None else [f for f in files if f.startswith(draft + "/")]
    for key in wanted:
        counts = dict.fromkeys(KEYS, 0)
        groups = json.loads((SUITE / key).read_text(encoding="utf-8"))
        for group in groups:
            gdesc = group["description"]
            tests = group["tests"]
            schema = _prepare_schema(draft, group["schema"])
            try:
                cg = _compile_with_limit(lambda s: compiler.compile_json_schema(s, strict=True), schema, time_limit_s)
            except _Timeout:
                counts["compile_error"] += len(tests)
                run.timeouts.append((key, gdesc))
                run.compile_errors.append((key, gdesc, "timeout"))
                continue
            except StructgenError as e:
                counts["compile_error"] += len(tests)
                run.compile_errors.append((key, gdesc, f"{type(e).__name__}: {e}"))
                continue
            except Exception as e:  # a bug: not a designed compile error
                counts["crash"] = counts.get("crash", 0) + len(tests)
                run.crashes.append((key, gdesc, f"compile: {type(e).__name__}: {e}"))
                continue
            for test in tests:
                text = json.dumps(test["data"], ensure_ascii=False)
                try:
                    ok = walk_tokens(cg, tokenizer, stop_id, text)
                except Exception as e:
                    counts["crash"] = counts.get("crash", 0) + 1
                    run.crashes.append((key, gdesc, f"match {test['description']!r}: {type(e).__name__}: {e}"))
                    continue
                if test["valid"]:
                    counts["valid_accepted" if ok else "valid_rejected"] += 1
                else:
                    counts["invalid_accepted" if ok else "invalid_rejected"] += 1
                    if ok:
                        run.invalid_accepted.append((key, gdesc, test["description"]))
        run[key] = counts
    run.seconds = time.perf_counter() - t0
    return run


def summary(counts: dict) -> dict[str, int]:
    """Totals over files (`counts` is `dict[file, dict[str, int]]`)."""
    total = dict.fromkeys(KEYS, 0)
    for c in counts.values():
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def ratchet_entry(counts: dict[str, int]) -> dict[str, int]:
    """What the ratchet keeps per file: the raw counts plus `correct` = valid_accepted + invalid_rejected."""
    out = {k: counts.get(k, 0) for k in KEYS}
    out["correct"] = out["valid_accepted"] + out["invalid_rejected"]
    return out


def load_ratchet() -> dict[str, dict[str, int]]:
    return json.loads(RATCHET.read_text(encoding="utf-8"))["files"]


def _table(counts: dict) -> str:
    cols = ("compile_error", "valid_accepted", "valid_rejected", "invalid_accepted", "invalid_rejected", "crash")
    short = ("cerr", "v_acc", "v_rej", "i_acc", "i_rej", "crash")
    w = max([len(k) for k in counts] + [5])
    lines = [f"{'file':<{w}} " + " ".join(f"{s:>6}" for s in short)]
    for k in sorted(counts):
        lines.append(f"{k:<{w}} " + " ".join(f"{counts[k].get(c, 0):>6}" for c in cols))
    tot = summary(counts)
    lines.append(f"{'TOTAL':<{w}} " + " ".join(f"{tot.get(c, 0):>6}" for c in cols))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write the ratchet file")
    ap.add_argument("--draft", choices=DRAFTS, action="append", help="only this draft (repeatable)")
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-group compile limit in seconds")
    args = ap.parse_args(argv)

    from tokenizers import Tokenizer

    from structgen import GrammarCompiler, TokenizerInfo

    info = TokenizerInfo.from_tokenizer_json(LLAMA3)
    compiler = GrammarCompiler(info)
    tokenizer = Tokenizer.from_file(str(LLAMA3))
    stop_id = int(info.stop_token_ids[0])

    all_counts: dict[str, dict[str, int]] = {}
    failures = 0
    for draft in args.draft or DRAFTS:
        run = run_suite(draft, compiler, tokenizer, stop_id, time_limit_s=args.time_limit)
        print(f"== {draft} ({run.seconds:.1f}s)")
        print(_table(run))
        for f, g, t in run.invalid_accepted:
            print(f"INVALID ACCEPTED  {f} | {g} | {t}")
        for f, g, msg in run.crashes:
            print(f"CRASH  {f} | {g} | {msg}")
        for f, g in run.timeouts:
            print(f"TIMEOUT  {f} | {g}")
        failures += len(run.crashes)
        all_counts.update(run)
        print()
    if args.write:
        RATCHET.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "_comment": "Per-file counts of tests/frontend/suite_runner.py (strict mode, Llama-3 tokenizer). "
                        "The ratchet: `correct` (valid_accepted + invalid_rejected) must not drop and "
                        "`invalid_accepted` must not rise. Regenerate with "
                        "`python tests/frontend/suite_runner.py --write`.",
            "files": {k: ratchet_entry(all_counts[k]) for k in sorted(all_counts)},
        }
        rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in payload["files"].items())
        text = f'{{\n "_comment": {json.dumps(payload["_comment"], ensure_ascii=False)},\n "files": {{\n{rows}\n }}\n}}\n'
        assert json.loads(text) == payload
        RATCHET.write_text(text, encoding="utf-8")
        print(f"wrote {RATCHET}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
