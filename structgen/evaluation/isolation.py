"""Run untrusted work (one schema per task) in a pool of worker processes that a bad task cannot take down.

`run_isolated(func, items, init=..., ...)` calls `func(item)` for every item in a small pool of worker
processes, one task at a time per worker, and returns one `TaskOutcome` per item, in input order:

* `ok`: `func` returned; `value` is what it returned.
* `timeout`: the task used more than `time_limit_s` of CPU time (workers are single-threaded, so that is
  its uncontended running time, robust to other load on the machine), or ran `wall_factor` times that long
  in wall-clock time (a backstop for tasks that block without using CPU). Its worker is killed.
* `oom`: the task raised `MemoryError` (the worker's address space is capped with `RLIMIT_AS`, so a
  runaway allocation fails inside the worker instead of exhausting the machine), or its worker died
  (a native allocator aborting) after the task had grown its address space by `OOM_SHARE` of the
  headroom under the cap, or was killed by a `SIGKILL` the pool did not send (the kernel's OOM killer).
  The address space is sampled every `POLL_S`, so a worker that balloons and dies faster is a `crash`.
* `crash`: any other exception from `func` (detail: type and message), a worker that exited or died by a
  signal (detail: exit code or signal name), or an item / result that cannot be pickled.
* `skipped`: the `total_timeout_s` budget of the whole run ran out before the task finished; its detail
  says whether it had started.

After anything but `ok` the worker is replaced by a fresh one (its state may be damaged), and every
worker is also replaced after `max_tasks_per_child` tasks (bounding slow leaks). Each worker runs
`init(init_arg)` once before its first task, e.g. to build an engine and warm it up (compile a small
input so JIT caches load): that time counts against no task's limit, only against the total budget.
`on_result(index, outcome)` is called as each outcome is known (a progress bar's hook).

`func` and `init` must be plain module-level functions and items, `init_arg` and results picklable:
workers are started with multiprocessing's `forkserver` method (see `_context`). Linux only (`/proc`
gives each worker's CPU time and address space).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

STATUSES = ("ok", "timeout", "oom", "crash", "skipped")
DEFAULT_WORKERS = 2
DEFAULT_TIME_LIMIT_S = 10.0
DEFAULT_MEMORY_LIMIT_MB = 4096
DEFAULT_MAX_TASKS_PER_CHILD = 200
WALL_FACTOR = 3.0  # wall-clock backstop: a task is killed after WALL_FACTOR * its CPU-time limit regardless
OOM_SHARE = 0.3  # a worker dying after its task used this share of the headroom under the cap: `oom`
POLL_S = 0.1  # how often running tasks' CPU time and memory are sampled
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


@dataclass
class TaskOutcome:
    """How one task ended.

    `status`: one of `STATUSES`. `value`: the task's return value when `ok`, else a message saying why
    (also `detail`). `seconds`: the CPU time the task used; `wall_s`: its wall-clock time; `peak_mb`: the
    largest address space its worker was seen to have while it ran (sampled every `POLL_S`; 0 if never).
    """

    status: str
    value: Any = None
    seconds: float = 0.0
    wall_s: float = 0.0
    peak_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def detail(self) -> str:
        """Why the task did not succeed ("" when it did)."""
        return "" if self.status == "ok" else str(self.value)


# ------------------------------------------------------------------------------------------- worker side

def _limit_worker(memory_limit_mb: int | None) -> None:
    """One thread per worker (the pool is the parallelism), the address-space cap, no core dumps, no SIGINT,
    and death with the pool."""
    for var in THREAD_VARS:  # read by libraries when they initialize, so before any task loads them
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it kills the workers
    try:  # if the forkserver (our parent) dies, so do we, rather than spin on as an orphan
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing task must not write a core of its memory
    if memory_limit_mb:
        limit = int(memory_limit_mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:2000]


def _pool_worker(conn, init: Callable[[Any], None] | None, init_arg: Any, func: Callable[[Any], Any],
                 memory_limit_mb: int | None) -> None:
    """Worker main loop: init, then (index, item) → ("done", index, status, value, cpu_s, wall_s) until None."""
    _limit_worker(memory_limit_mb)
    try:
        if init is not None:
            init(init_arg)
    except BaseException as e:  # a broken setup, not a task outcome: the parent raises it
        conn.send(("init_failed", _describe(e)))
        return
    conn.send(("ready", None))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        index, item = msg
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            status, value = "ok", func(item)
        except MemoryError as e:
            status, value = "oom", f"MemoryError: {e}" if str(e) else "MemoryError"
        except BaseException as e:  # the task's failure, reported; the parent replaces this worker
            status, value = "crash", _describe(e)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        try:
            conn.send(("done", index, status, value, cpu, wall))
        except MemoryError:
            conn.send(("done", index, "oom", "MemoryError while sending the result", cpu, wall))
        except Exception as e:  # e.g. an unpicklable result: pickling fails before anything is written
            conn.send(("done", index, "crash", f"result could not be sent: {_describe(e)}", cpu, wall))


# ------------------------------------------------------------------------------------------- parent side

def _context():
    """The multiprocessing context: `forkserver`.

    Not `fork`: the parent may have imported numba/llvmlite, torch or tokenizers, which start thread
    pools (and torch possibly a CUDA context); forking a multi-threaded process copies locks held by
    threads that do not exist in the child, which can deadlock it, and CUDA cannot be used after fork.
    Not `spawn`: every replacement worker (after each timeout, oom or crash) would pay a fresh interpreter
    and all imports. `forkserver` starts one clean single-threaded server process (like spawn, once) and
    forks each worker from it: safe like spawn, and a worker starts from a fork of an interpreter that
    has already imported the parent's `__main__` (multiprocessing's default preload) and what it
    imports. The server keeps the environment as of its start; each worker gets the parent's current
    `sys.path` before unpickling its function. Libraries that the preloaded `__main__` imports read
    `THREAD_VARS` before a worker sets them: a caller that depends on those should set them in its own
    environment first (bench/mask_latency.py does).
    """
    import multiprocessing as mp

    return mp.get_context("forkserver")


def _proc_stat(pid: int) -> tuple[float, int]:
    """(utime + stime in seconds, address-space bytes) of process `pid` from /proc; (0, 0) when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[20])
    except (OSError, IndexError, ValueError):
        return 0.0, 0


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class _Worker:
    """One worker process, its pipe and the task it is running."""

    def __init__(self, ctx, job: tuple, memory_limit_mb: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_pool_worker, args=(child, *job, memory_limit_mb), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.spawned = time.monotonic()
        self.done = 0
        self.task: int | None = None
        self.started = self.cpu0 = 0.0
        self.base = self.peak = 0  # address space (bytes) when the task started / the most seen since

    def dispatch(self, index: int, item: Any) -> None:
        """Send task `index`; raises if `item` cannot be pickled (then nothing was sent)."""
        self.cpu0, self.base = _proc_stat(self.proc.pid)
        self.peak = self.base
        self.started = time.monotonic()
        self.conn.send((index, item))
        self.task = index

    def sample(self) -> float:
        """CPU seconds the current task has used so far; also records the peak address space."""
        cpu, vsize = _proc_stat(self.proc.pid)
        self.peak = max(self.peak, vsize)
        return max(0.0, cpu - self.cpu0)

    def outcome(self, status: str, value: Any, cpu: float | None = None, wall: float | None = None) -> TaskOutcome:
        """The current task's outcome; CPU / wall time as measured here unless given (by the worker)."""
        if cpu is None:
            cpu = self.sample()
        if wall is None:
            wall = time.monotonic() - self.started
        return TaskOutcome(status, value, round(cpu, 3), round(wall, 3), round(self.peak / 2**20, 1))

    def death(self, memory_limit_mb: int | None) -> tuple[str, str]:
        """(status, detail) once the worker died mid-task: `oom` when memory is the likely cause, else `crash`.

        Likely memory: the task had grown the address space by over `OOM_SHARE` of the headroom under the
        cap (a native allocator that aborts on failure, typically growing by doubling, fails once it has
        used about a third of it), or a SIGKILL the pool did not send (the kernel's OOM killer).
        """
        code = self.proc.exitcode
        how = f"killed by {_signal_name(-code)}" if code is not None and code < 0 else f"exited with code {code}"
        mb, base_mb = self.peak / 2**20, self.base / 2**20
        if memory_limit_mb and memory_limit_mb > base_mb and mb - base_mb >= OOM_SHARE * (memory_limit_mb - base_mb):
            return "oom", f"worker {how} with its address space at {mb:.0f} of {memory_limit_mb} MB"
        if code == -signal.SIGKILL:  # the pool kills only workers whose task it has already recorded
            return "oom", f"worker {how}, not by the pool (likely the kernel's OOM killer)"
        return "crash", f"worker {how}"

    def stop(self, kill: bool, wait_s: float = 2.0) -> None:
        """Ask the worker to exit (or kill it) and reap it; a worker not gone after `wait_s` is killed."""
        self.request_stop(kill)
        self.reap(wait_s)

    def request_stop(self, kill: bool) -> None:
        if kill:
            self.proc.kill()
        elif self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass

    def reap(self, wait_s: float) -> None:
        self.proc.join(wait_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def run_isolated(func: Callable[[Any], Any], items: Iterable[Any], *, init: Callable[[Any], None] | None = None,
                 init_arg: Any = None, workers: int = DEFAULT_WORKERS, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
                 total_timeout_s: float | None = None, memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
                 max_tasks_per_child: int = DEFAULT_MAX_TASKS_PER_CHILD, wall_factor: float = WALL_FACTOR,
                 startup_timeout_s: float = 300.0,
                 on_result: Callable[[int, TaskOutcome], None] | None = None) -> list[TaskOutcome]:
    """`func(item)` for every item, each in a worker process; one `TaskOutcome` per item, in input order.

    See the module docstring for the outcomes. `workers`: processes at once (each single-threaded).
    `time_limit_s`: CPU seconds per task (wall-clock backstop: `wall_factor` times that).
    `total_timeout_s`: wall-clock budget of the whole call (None: none); when it runs out, every task
    without an outcome is `skipped`, the workers are killed and the call returns. `memory_limit_mb`:
    address-space cap per worker (None or 0: none). `init(init_arg)` runs once per worker before its
    first task; a worker that fails it, or is not ready within `startup_timeout_s`, raises RuntimeError
    (a broken setup, not a task outcome). `on_result(index, outcome)` is called as outcomes arrive.
    """
    from multiprocessing.connection import wait

    todo = list(enumerate(items))
    total = len(todo)
    results: list[TaskOutcome | None] = [None] * total
    if not total:
        return []
    deadline = time.monotonic() + total_timeout_s if total_timeout_s is not None else float("inf")
    ctx = _context()
    job = (init, init_arg, func)
    queue = iter(todo)
    pending: tuple[int, Any] | None = None  # the next task, once taken from `queue`
    finished = 0
    out_of_time = False

    def next_task() -> tuple[int, Any] | None:
        nonlocal pending
        if pending is None:
            pending = next(queue, None)
        return pending

    def record(index: int, outcome: TaskOutcome) -> None:
        nonlocal finished
        results[index] = outcome
        finished += 1
        if on_result is not None:
            on_result(index, outcome)

    # a slot holds a worker, or None once it is retired with no work left for a replacement
    pool: list[_Worker | None] = []

    def finish(i: int, outcome: TaskOutcome) -> None:
        """Record worker `i`'s task; replace the worker after a failure or `max_tasks_per_child` tasks."""
        w = pool[i]
        index, w.task = w.task, None
        w.done += 1
        record(index, outcome)
        failed = outcome.status != "ok"
        if failed or w.done >= max_tasks_per_child:
            w.stop(kill=failed)
            pool[i] = _Worker(ctx, job, memory_limit_mb) if next_task() is not None else None

    try:
        for _ in range(max(1, min(workers, total))):
            pool.append(_Worker(ctx, job, memory_limit_mb))
        while finished < total:
            for i in range(len(pool)):  # hand out work
                w = pool[i]
                while w is not None and w.ready and w.task is None and next_task() is not None:
                    try:
                        w.dispatch(*pending)
                    except OSError:  # the worker died while idle: the task goes to its replacement
                        w.task = None
                        w.stop(kill=True)
                        pool[i] = _Worker(ctx, job, memory_limit_mb)
                        break
                    except Exception as e:  # e.g. too deeply nested to pickle: nothing was sent
                        why = f"task could not be sent to a worker: {_describe(e)}"
                        record(pending[0], TaskOutcome("crash", why))
                    pending = None
            now = time.monotonic()
            if now >= deadline or finished == total:
                break
            live = {w.conn: i for i, w in enumerate(pool) if w is not None}
            for conn in wait(list(live), min(POLL_S, deadline - now)):
                i = live[conn]
                w = pool[i]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the process died
                    w.proc.join()
                    if not w.ready:
                        raise RuntimeError(f"pool worker died while starting ({w.death(None)[1]})") from None
                    if w.task is not None:
                        finish(i, w.outcome(*w.death(memory_limit_mb)))
                    else:  # died between tasks: replace it
                        w.stop(kill=True)
                        pool[i] = _Worker(ctx, job, memory_limit_mb) if next_task() is not None else None
                    continue
                except Exception as e:  # a result that cannot be unpickled here (the pipe stays in sync)
                    if w.task is not None:
                        finish(i, w.outcome("crash", f"result could not be received: {_describe(e)}"))
                    continue
                if msg[0] == "ready":
                    w.ready = True
                elif msg[0] == "init_failed":
                    raise RuntimeError(f"pool worker init failed: {msg[1]}")
                else:
                    _, index, status, value, cpu, wall = msg
                    w.sample()
                    finish(i, w.outcome(status, value, cpu, wall))
            now = time.monotonic()
            for i, w in enumerate(pool):  # enforce the per-task limits
                if w is None:
                    continue
                if w.task is not None:
                    cpu, wall = w.sample(), now - w.started
                    if cpu > time_limit_s or wall > wall_factor * time_limit_s:
                        w.proc.kill()
                        why = (f"over the {time_limit_s:g} s CPU-time limit" if cpu > time_limit_s else
                               f"over the {wall_factor * time_limit_s:g} s wall-clock backstop")
                        finish(i, w.outcome("timeout", f"{why} ({cpu:.1f} s CPU, {wall:.1f} s wall)", cpu, wall))
                elif not w.ready and now - w.spawned > startup_timeout_s:
                    raise RuntimeError(f"pool worker not ready after {startup_timeout_s:g} s")
        if finished < total:  # the total budget ran out
            out_of_time = True
            budget = f"the total time budget of {total_timeout_s:g} s ran out"
            for w in pool:
                if w is not None and w.task is not None:
                    cpu = w.sample()
                    index, w.task = w.task, None
                    record(index, w.outcome("skipped", f"{budget} while it ran ({cpu:.1f} s CPU)", cpu))
            for index in range(total):
                if results[index] is None:
                    record(index, TaskOutcome("skipped", f"{budget} before it started"))
    finally:
        # idle, ready workers may exit cleanly (their finalizers run); anything else is killed
        live_workers = [w for w in pool if w is not None]
        for w in live_workers:
            w.request_stop(kill=out_of_time or w.task is not None or not w.ready or finished < total)
        for w in live_workers:
            w.reap(2.0)
    return results  # type: ignore[return-value]
