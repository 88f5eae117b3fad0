"""The compile budget: a wall-clock deadline that a compile's long loops check, so that no input
(a crafted schema, a huge regex) can hold a compile, and a server, for unbounded time.

`GrammarCompiler` runs each compile inside `compile_budget(limits.max_compile_seconds)`; the loops
that grow with the input (schema nodes, LR states, regex and product DFA states, grammar rules)
call `check(where)`, which raises LimitExceeded naming the budget and `where` once it has run out.
Time numba spends compiling or loading its own kernels is not charged: it is the process's cost,
not the input's. The budget is per thread (a context variable), so concurrent compiles are separate.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from .errors import LimitExceeded


class _Budget:
    __slots__ = ("end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.perf_counter() + seconds


_current: ContextVar[_Budget | None] = ContextVar("structgen_compile_budget", default=None)
_jit_listener_installed = False


def _install_jit_listener() -> None:
    """Extend the running budget by the time numba spends compiling (or loading) a kernel."""
    global _jit_listener_installed
    if _jit_listener_installed:
        return
    from numba.core import event

    class _JitTime(event.Listener):
        depth = 0  # numba compiles nested kernels inside one outer compile, under its global lock
        t0 = 0.0

        def on_start(self, ev) -> None:
            self.depth += 1
            if self.depth == 1:
                self.t0 = time.perf_counter()

        def on_end(self, ev) -> None:
            self.depth -= 1
            b = _current.get()
            if self.depth == 0 and b is not None:
                b.end += time.perf_counter() - self.t0

    event.register("numba:compile", _JitTime())
    _jit_listener_installed = True


@contextmanager
def compile_budget(seconds: float | None) -> Iterator[None]:
    """Run the body under a deadline of `seconds` (None or 0: no deadline). A nested call keeps the
    outer deadline: one compile has one budget."""
    if not seconds or _current.get() is not None:
        yield
        return
    _install_jit_listener()
    token = _current.set(_Budget(float(seconds)))
    try:
        yield
    finally:
        _current.reset(token)


def check(where: str | Callable[[], str] = "") -> None:
    """Raise LimitExceeded if the running compile's budget has run out; `where` (or its value, when
    a function) names the place in the input being compiled (a JSON pointer, a rule, a regex)."""
    b = _current.get()
    if b is not None and time.perf_counter() > b.end:
        raise LimitExceeded(f"the compile ran past its time budget of {b.seconds:g} s", limit="max_compile_seconds",
                            where=where() if callable(where) else where)


def remaining() -> float | None:
    """Seconds left in the running compile's budget (None outside a budget)."""
    b = _current.get()
    return None if b is None else b.end - time.perf_counter()


__all__ = ["check", "compile_budget", "remaining"]
