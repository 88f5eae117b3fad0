"""The `structgen` command run in this test process: `structgen.cli.main` with its output captured."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import warnings
from pathlib import Path

from datasets import REPO


def run_cli(args: list[str], cache_dir: str | Path) -> subprocess.CompletedProcess:
    """`structgen ARGS` through `structgen.cli.main` (a process start costs ~3 s of imports), from the
    repository root with STRUCTGEN_CACHE_DIR=cache_dir: the exit code and output `python -m structgen` gives."""
    from structgen.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_env, old_show = os.getcwd(), os.environ.get("STRUCTGEN_CACHE_DIR"), warnings.showwarning
    os.environ["STRUCTGEN_CACHE_DIR"] = str(cache_dir)
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old_cwd)
        warnings.showwarning = old_show  # main() reroutes warnings to one line each
        if old_env is None:
            os.environ.pop("STRUCTGEN_CACHE_DIR", None)
        else:
            os.environ["STRUCTGEN_CACHE_DIR"] = old_env
    return subprocess.CompletedProcess(["structgen", *args], code or 0, out.getvalue(), err.getvalue())
