"""The isolated worker pool: a task that hangs, sleeps, crashes or exhausts memory records its outcome and
the run goes on; the total budget skips what is left; results keep input order; init runs once per worker.

Task functions are module-level (workers unpickle them by name). Limits are generous and nothing asserts
a tight wall-clock bound, so the tests hold on a loaded machine.
"""

from __future__ import annotations

import os
import resource
import signal
import time

import pytest

from datasets import TOKENIZERS
from structgen.evaluation.isolation import STATUSES, TaskOutcome, run_isolated

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"

# ------------------------------------------------------------------------------ synthetic worker tasks

_INIT: dict = {"calls": 0, "arg": None}


def _init(arg) -> None:
    if arg == "fail":
        raise ValueError("init refuses")
    _INIT["calls"] += 1
    _INIT["arg"] = arg


def _task(item):
    """`item` names what the task does; `("ok", x)` returns `(x, pid, init calls, init arg)`."""
    kind, arg = item if isinstance(item, tuple) else (item, None)
    if kind == "ok":
        return arg, os.getpid(), _INIT["calls"], _INIT["arg"]
    if kind == "loop":  # burns CPU forever
        while True:
            pass
    if kind == "sleep":  # blocks without CPU: only the wall-clock backstop or the total budget ends it
        if arg:
            with open(arg, "w") as f:
                f.write(str(os.getpid()))
        time.sleep(600)
    if kind == "exit":
        os._exit(3)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "raise":
        raise ValueError("boom")
    if kind == "huge":  # one allocation far beyond the cap
        return len(bytearray(64 * 2**30))
    if kind == "grow":  # many allocations up to the cap (bytearray zero-fills: ~1 GB of pages touched)
        chunks = []
        while True:
            chunks.append(bytearray(64 * 2**20))
    if kind == "balloon":  # memory up to the cap, then a native-style abort (as an allocator failing would)
        chunks = []
        try:
            while True:
                chunks.append(bytearray(16 * 2**20))
        except MemoryError:
            pass
        time.sleep(1.5)  # the parent samples the address space every 0.1 s
        os.kill(os.getpid(), signal.SIGABRT)
    if kind == "unpicklable_result":
        return lambda: None
    if kind == "limit":
        return resource.getrlimit(resource.RLIMIT_AS)[0]
    raise AssertionError(f"unknown task {kind!r}")


def _run(items, **kw) -> list[TaskOutcome]:
    kw.setdefault("workers", 2)
    kw.setdefault("time_limit_s", 2.0)
    kw.setdefault("memory_limit_mb", 2048)
    kw.setdefault("init", _init)
    return run_isolated(_task, items, **kw)


def test_results_in_input_order_and_init_once_per_worker() -> None:
    seen: list[tuple[int, str]] = []
    out = _run([("ok", i) for i in range(9)], init_arg="engine", max_tasks_per_child=3,
               on_result=lambda i, o: seen.append((i, o.status)))
    assert [o.status for o in out] == ["ok"] * 9
    assert [o.value[0] for o in out] == list(range(9))
    assert all(o.value[2] == 1 and o.value[3] == "engine" for o in out), "init runs once per worker, with init_arg"
    pids = {o.value[1] for o in out}
    assert len(pids) >= 3, "workers are replaced after max_tasks_per_child tasks"
    assert sorted(seen) == [(i, "ok") for i in range(9)], "on_result once per task"


def test_cpu_loop_times_out_and_the_run_goes_on() -> None:
    out = _run(["loop", ("ok", 1), ("ok", 2)], workers=1, time_limit_s=1.0)
    assert [o.status for o in out] == ["timeout", "ok", "ok"]
    assert "limit" in out[0].detail or "backstop" in out[0].detail  # the backstop if the machine is loaded
    assert out[1].value[2] == out[2].value[2] == 1  # the replacement worker was initialized, once


def test_sleeping_task_hits_the_wall_clock_backstop() -> None:
    out = _run(["sleep", ("ok", 1)], workers=1, time_limit_s=0.5, wall_factor=2.0)
    assert [o.status for o in out] == ["timeout", "ok"]
    assert "wall-clock backstop" in out[0].detail
    assert out[0].seconds < 0.5


def test_worker_exit_signal_and_exception_are_crashes() -> None:
    out = _run(["exit", "segv", "raise", ("ok", 1)])
    assert [o.status for o in out] == ["crash", "crash", "crash", "ok"]
    assert "exited with code 3" in out[0].detail
    assert "SIGSEGV" in out[1].detail
    assert out[2].detail == "ValueError: boom"


def test_unsendable_item_and_result_are_crashes() -> None:
    deep: list = []
    for _ in range(100_000):  # too deeply nested to pickle
        deep = [deep]
    out = _run([("ok", deep), "unpicklable_result", ("ok", 2)])
    assert [o.status for o in out] == ["crash", "crash", "ok"]
    assert "could not be sent" in out[0].detail and "RecursionError" in out[0].detail
    assert "result could not be sent" in out[1].detail


def test_memory_cap_gives_oom() -> None:
    # touching ~1 GB of pages takes 0.5-1 s here, more beside a test run: the time limit is not the subject
    out = _run(["limit", "huge", "grow", ("ok", 1)], memory_limit_mb=1024, time_limit_s=20.0)
    assert out[0].value == 1024 * 2**20, "RLIMIT_AS is set in the worker"
    assert [o.status for o in out[1:]] == ["oom", "oom", "ok"]
    assert out[1].detail.startswith("MemoryError") and out[2].detail.startswith("MemoryError")


@pytest.mark.slow
def test_worker_dying_with_memory_at_the_cap_is_oom() -> None:
    out = _run(["balloon", "segv", ("ok", 1)], workers=1, memory_limit_mb=1024, time_limit_s=10.0)
    assert [o.status for o in out] == ["oom", "crash", "ok"]
    assert "SIGABRT" in out[0].detail and "1024 MB" in out[0].detail
    assert out[0].peak_mb > 900


def test_total_budget_skips_the_rest_and_kills_the_workers(tmp_path) -> None:
    pid_files = [tmp_path / "a", tmp_path / "b"]
    items = [("sleep", str(p)) for p in pid_files] + [("ok", i) for i in range(4)]
    seen: list[int] = []
    t0 = time.monotonic()
    out = _run(items, time_limit_s=100.0, total_timeout_s=3.0, on_result=lambda i, o: seen.append(i))
    assert time.monotonic() - t0 < 60, "returned long before the sleeping tasks or their backstop would end"
    assert [o.status for o in out] == ["skipped"] * 6
    assert all("before it started" in o.detail for o in out[2:])
    assert sorted(seen) == list(range(6))
    for p, o in zip(pid_files, out):  # a sleeping task that started (surely, given 3 s) was killed with its worker
        if p.exists():
            assert "while it ran" in o.detail
            with pytest.raises(ProcessLookupError):
                os.kill(int(p.read_text()), 0)
        else:
            assert "while it ran" in o.detail or "before it started" in o.detail


def test_init_failure_raises_and_empty_input() -> None:
    with pytest.raises(RuntimeError, match="init refuses"):
        _run([("ok", 1)], init_arg="fail")
    assert _run([]) == []
    assert set(STATUSES) == {"ok", "timeout", "oom", "crash", "skipped"}


# ------------------------------------------------------------------------ the real engine in the worker

_COMPILER = None


def _init_compiler(tokenizer_json: str) -> None:
    """Build structgen's compiler once per worker and warm it up."""
    global _COMPILER
    import structgen

    _COMPILER = structgen.GrammarCompiler(structgen.TokenizerInfo.from_tokenizer_json(tokenizer_json))
    _COMPILER.compile_json_schema({"type": "object", "properties": {"a": {"type": "string"}}})


def _schema(spec: tuple[str, object]) -> object:
    """The schema a spec names, built in the worker (a 5,000-deep schema cannot even be pickled)."""
    kind, arg = spec
    if kind == "deep":
        s: object = {"type": "integer"}
        for _ in range(arg):
            s = {"type": "array", "items": s}
        return s
    if kind == "enum":
        return {"type": "string", "enum": [f"value{i:06d}" for i in range(arg)]}
    if kind == "pattern":
        return {"type": "string", "pattern": arg}
    return arg


def _compile(spec: tuple[str, object]) -> str:
    """Pool task: compile one schema; a designed refusal (StructgenError) is a value, anything else raises."""
    import structgen

    try:
        _COMPILER.compile_json_schema(_schema(spec))
    except structgen.StructgenError as e:
        return f"refused: {type(e).__name__}: {e}"
    return "compiled"


@pytest.mark.slow
@pytest.mark.skipif(not LLAMA3.exists(), reason=f"tokenizer not found at {LLAMA3}")
def test_pathological_schemas_do_not_take_the_run_down() -> None:
    specs = [
        ("deep", 5000),  # 5,000 nested arrays
        ("enum", 1_000_000),  # a 1,000,000-value string enum: 4.8 s of CPU on a fast spell (2026-12-08), 2x the limit
        ("pattern", "(a|b)*a(a|b){20}"),  # a regex whose DFA has ~2^21 states
        ("plain", {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
                   "required": ["name"]}),
    ]
    out = run_isolated(_compile, specs, init=_init_compiler, init_arg=str(LLAMA3), workers=1, time_limit_s=2.5)
    for spec, o in zip(specs[:3], out):
        assert o.status in ("timeout", "oom", "crash") or str(o.value).startswith("refused: "), (
            f"{spec[0]}: expected a non-ok outcome or a designed refusal, got {o} "
            "(if the engine got this fast, make the case harder)")
    assert out[3].status == "ok" and out[3].value == "compiled", out[3]
