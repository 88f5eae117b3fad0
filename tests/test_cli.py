"""The command line: help, and clear errors (exit code 2, no traceback) for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datasets import REPO


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "structgen", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_help_shows_examples() -> None:
    res = run("generate", "--help")
    assert res.returncode == 0
    assert "structgen generate --grammar json" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--grammar", "no-such-grammar", "hi"], "no such file and no shipped grammar"),
        (["generate", "--regex", "[unclosed", "hi"], "invalid regular expression"),
        (["generate", "--grammar", "tests/data/bad_syntax.lark", "hi"], "invalid Lark grammar"),
        (["generate", "--grammar", "tests/data/not_lalr.lark", "hi"], "not LALR(1)"),
    ],
)
def test_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    res = run(*args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_source_is_a_usage_error() -> None:
    res = run("generate", "hi")
    assert res.returncode == 2
    assert "one of the arguments --grammar --regex is required" in res.stderr
