"""The README's examples run: its Python blocks, and every `structgen generate` command in it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import run_cli
from datasets import REPO, grammar_text, tiered

README = (REPO / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_install_and_test_commands() -> None:
    first = _blocks("bash")[0].strip().splitlines()
    assert "pip install" in first[0] and "structgen generate" in first[0]
    assert "pytest" in first[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = first[1].split("&&")[-1].strip()
    assert test_command in ci.splitlines(), "CI must run exactly the README's test command"


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=300)


def _commands() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            if "structgen generate" in line:
                out.append(line[line.index("structgen generate"):])
    return out


def _check(args: list[str], text: str) -> None:
    if "--schema" in args:
        import jsonschema

        schema = json.loads((REPO / args[args.index("--schema") + 1]).read_text(encoding="utf-8"))
        jsonschema.validate(json.loads(text), schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    elif "--grammar" in args and args[args.index("--grammar") + 1].endswith(".gbnf"):
        sys.path.insert(0, str(REPO / "tests" / "frontend"))
        import lark
        from gbnf_oracle import gbnf_to_lark_earley  # an independent translation (Earley)

        path = REPO / args[args.index("--grammar") + 1]
        lark.Lark(gbnf_to_lark_earley(path.read_text(encoding="utf-8")), parser="earley", lexer="dynamic",
                  start="root").parse(text)
    elif "--grammar" in args:
        name = args[args.index("--grammar") + 1]
        if name == "json":
            json.loads(text)
        else:
            import lark

            lark.Lark(grammar_text(name), parser="lalr").parse(text)
    elif "--regex" in args:
        assert re.fullmatch(args[args.index("--regex") + 1], text), text


@pytest.mark.slow
@pytest.mark.parametrize("command", _commands())
def test_generate_commands_run(command: str) -> None:
    args = shlex.split(command)[2:]
    if "--max-tokens" not in args:
        args += ["--max-tokens", "96"]
    res = subprocess.run([sys.executable, "-m", "structgen", "generate", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    if "--asap" in args:  # one "count<TAB>text" line per distinct sample
        rows = [line.split("\t", 1) for line in res.stdout.strip().splitlines()]
        assert sum(int(n) for n, _ in rows) == int(args[args.index("--asap") + 1])
        for _, text in rows:
            _check(args, text)
    elif "--smc" in args:  # one "weight<TAB>text" line per distinct finished output, weights summing to 1
        rows = [line.split("\t", 1) for line in res.stdout.strip().splitlines()]
        assert rows and abs(sum(float(w) for w, _ in rows) - 1) < 1e-3, res.stdout
        for _, text in rows:
            _check(args, text)
    else:
        _check(args, res.stdout.strip())


def _other_commands() -> list[str]:
    """The README's `structgen validate` / `structgen compile` lines, without their comments."""
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            if line.startswith(("structgen validate", "structgen compile", "structgen bench")):
                out.append(line.split("  #")[0].strip())
    return out


EXPECTED = {"validate --schema": "structgen: valid; jsonschema: valid", "--check": "compiles exactly",
            "validate --regex": "match", "compile": "parser states", "bench maskbench": "| invalid_accepted |"}


@pytest.fixture(scope="module")
def cli_cache(tmp_path_factory) -> Path:
    """One STRUCTGEN_CACHE_DIR for the README's commands: the embedded tokenizer is read from the GGUF once."""
    return tmp_path_factory.mktemp("structgen-cache")


@pytest.mark.parametrize("command", tiered(_other_commands(), {c for c in _other_commands() if c.startswith("structgen bench")}))
def test_validate_and_compile_commands_run(command: str, tmp_path, cli_cache) -> None:
    args = shlex.split(command)[1:]
    if args[0] == "bench":  # a bounded sample, and results away from bench/results
        args[args.index("--limit") + 1] = "10"
        args += ["--out", str(tmp_path / "results"), "--quiet"]
    res = run_cli(args, cli_cache)  # in this process: the same exit code and output as the command
    assert res.returncode == 0, res.stderr[-2000:]
    want = [v for k, v in EXPECTED.items() if k in command]
    assert want and want[-1] in res.stdout, res.stdout
