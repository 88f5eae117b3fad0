"""The command line: help, and clear errors (exit code 2, no traceback) for bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli_runner import run_cli
from datasets import REPO


CACHE = {}


@pytest.fixture(scope="module", autouse=True)
def cache_root(tmp_path_factory) -> None:
    """One fresh STRUCTGEN_CACHE_DIR for these tests (the tokenizer is cached there once)."""
    CACHE["root"] = tmp_path_factory.mktemp("structgen-cache")


def run_process(*args: str) -> subprocess.CompletedProcess:
    """`python -m structgen ARGS` in a fresh process."""
    env = {**os.environ, "STRUCTGEN_CACHE_DIR": str(CACHE["root"])}
    return subprocess.run([sys.executable, "-m", "structgen", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def run(*args: str) -> subprocess.CompletedProcess:
    """`structgen ARGS` in this process (tests/cli_runner.py), with this module's cache folder."""
    return run_cli(list(args), CACHE["root"])


def test_help_shows_examples() -> None:
    res = run_process("generate", "--help")
    assert res.returncode == 0
    assert "structgen generate --grammar json" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "--grammar", "no-such-grammar", "hi"], "no such file and no shipped grammar"),
        (["generate", "--regex", "[unclosed", "hi"], "invalid regex '[unclosed': unterminated character set"),
        (["generate", "--grammar", "tests/data/bad_syntax.lark", "hi"], "invalid Lark grammar"),
        (["generate", "--grammar", "tests/data/unproductive.lark", "hi"], "unproductive"),
        (["validate", "--schema", "no/such/schema.json", "examples/ada.json"], "cannot read schema file"),
        (["validate", "--schema", "examples/person.json", "no/such/instance.json"], "cannot read instance file"),
        (["validate", "--schema", "examples/person.json", "README.md"], "not valid JSON"),
        (["validate", "--schema", '{"type": "wat"}', "examples/ada.json"], "unknown type"),
        (["validate", "--schema", "examples/person.json"], "validate needs an input"),
        (["compile", "--schema", '{"type": "array", "uniqueItems": true}'], "unsupported keyword 'uniqueItems'"),
        (["generate", "--pydantic", "no_such_module:Model", "hi"], "cannot load the class"),
        (["generate", "--schema", '{"not": {}}', "hi"], "unsupported keyword"),
        (["compile", "--schema", '{"type": "object"'], "schema is not valid JSON: Expecting ',' delimiter: line 1"),
        (["compile", "--grammar", "tests/data/bad_syntax.lark"], "at line 1 column 13"),
        (["generate", "--backend", "llama-cpp", "--model", "x", "--regex", "a"], "embedded model only"),
        (["compile", "--regex", "a", "--cache-dir", "README.md"], "cannot write the compile cache"),
        (["generate", "--asap", "0", "--regex", "a"], "--asap needs a number of samples >= 1"),
    ],
)
def test_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    res = run(*args)
    if "--cache-dir" in args:  # an unusable cache is a warning, not a failure
        assert res.returncode == 0 and message in res.stderr, res.stderr
        return
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_source_is_a_usage_error() -> None:
    res = run("generate", "hi")
    assert res.returncode == 2
    assert "one of the arguments --grammar --regex --schema --pydantic is required" in res.stderr


def test_validate_instance_agrees_with_jsonschema(tmp_path) -> None:
    res = run("validate", "--schema", "examples/person.json", "examples/ada.json")
    assert res.returncode == 0 and "structgen: valid; jsonschema: valid" in res.stdout, res.stderr
    bad = tmp_path / "old.json"
    bad.write_text('{"age": 360, "name": "Ada"}')
    res = run("validate", "--schema", "examples/person.json", str(bad))
    assert res.returncode == 1 and "structgen: invalid; jsonschema: invalid" in res.stdout
    assert "maximum" in res.stdout
    # structgen's own reason: where the instance (as written compactly) leaves the language, and what fits there
    assert "leaves the language at byte 10 (b'{\"age\": 360' <-); expected" in res.stdout, res.stdout


def test_unreadable_schema_errors_name_no_pointer() -> None:
    """A missing file or bad JSON is not a place in a schema: no "(at #)" after the message."""
    for schema in ("no/such/schema.json", '{"type": "object"'):
        res = run("validate", "--schema", schema, "examples/ada.json")
        assert res.returncode == 2 and "(at #)" not in res.stderr, res.stderr


def test_help_examples_name_files_that_exist() -> None:
    import re

    from structgen.cli import EXAMPLES

    paths = set(re.findall(r"(examples/[\w.]+|tests/[\w./]+)", EXAMPLES))
    assert paths and all((REPO / p).is_file() for p in paths), paths


def test_validate_check_lists_relaxations() -> None:
    res = run("validate", "--schema", "examples/person.json", "--check")
    assert res.returncode == 0 and "compiles exactly" in res.stdout
    res = run("validate", "--schema", '{"type": "array", "uniqueItems": true}', "--check")
    assert res.returncode == 1 and "relaxed uniqueItems at #/uniqueItems" in res.stdout


def test_validate_text_names_the_offset() -> None:
    assert run("validate", "--regex", "[0-9]{3}-[0-9]{4}", "555-1234").returncode == 0
    res = run("validate", "--regex", "[0-9]{3}-[0-9]{4}", "555-12a4")
    assert res.returncode == 1 and "at byte 6" in res.stdout
    assert run("validate", "--grammar", "json", "examples/ada.json").returncode == 0


def test_compile_reports_size_and_emits_lark() -> None:
    res = run("compile", "--schema", "examples/person.json", "--emit-lark")
    assert res.returncode == 0, res.stderr
    assert "start:" in res.stdout and "compiled in" in res.stdout and "parser states" in res.stdout
    assert "<dfa" not in res.stdout and "T3_STR: /" in res.stdout  # terminals as regexes: standalone Lark


def test_debug_shows_the_traceback() -> None:
    res = run_process("validate", "--schema", "no/such/schema.json", "x", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr and "cannot read schema file" in res.stderr


def test_text_errors_name_the_expected_terminals(tmp_path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text('{"a": [1, 2')
    res = run("validate", "--grammar", "json", str(doc))
    assert res.returncode == 1 and "ends too early (after 11 bytes); expected one of COMMA, NUMBER, RSQB" in res.stdout
    doc.write_text('{"a": [1, 2,, 3]}')
    res = run("validate", "--grammar", "json", str(doc))
    assert res.returncode == 1 and "at byte 12" in res.stdout and "expected one of FALSE, LBRACE" in res.stdout


def test_second_compile_comes_from_the_disk_cache(tmp_path) -> None:
    args = ("compile", "--schema", "examples/person.json", "--cache-dir", str(tmp_path))
    first, second = run(*args), run(*args)
    assert first.returncode == 0 and first.stdout.startswith("compiled in"), first.stderr
    assert second.returncode == 0 and second.stdout.startswith("loaded from the disk cache in"), second.stderr
    assert first.stdout.split(":", 1)[1] == second.stdout.split(":", 1)[1]  # same sizes reported
    for entry in tmp_path.glob("*.npz"):  # corrupt every entry: each is rebuilt, with a warning
        entry.write_bytes(entry.read_bytes()[:100])
    third = run(*args)
    assert third.returncode == 0 and third.stdout.startswith("compiled in"), third.stderr
    assert "structgen: warning: compile cache entry" in third.stderr and "is corrupt" in third.stderr
    assert run(*args).stdout.startswith("loaded from the disk cache in")


def test_bench_finds_the_shared_data_without_data_option(tmp_path) -> None:
    if not (REPO.parent / "shared" / "data" / "maskbench").exists():
        pytest.skip("no ../shared/data/maskbench beside the checkout")
    res = run("bench", "maskbench", "--engines", "structgen", "--limit", "1", "--quiet", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "| pass |" in res.stdout and (tmp_path / "maskbench.json").exists()


def test_gbnf_grammars_by_extension_or_syntax(tmp_path) -> None:
    res = run("compile", "--grammar", "grammars/todo.gbnf")
    assert res.returncode == 0, res.stderr
    text = tmp_path / "todo.txt"
    text.write_text("- [high] Buy milk\n- [low] Call mom", encoding="utf-8")
    res = run("validate", "--grammar", "grammars/todo.gbnf", str(text))
    assert res.returncode == 0 and "match" in res.stdout, res.stdout + res.stderr
    plain = tmp_path / "todo.grammar"
    plain.write_text((REPO / "grammars" / "todo.gbnf").read_text(encoding="utf-8"), encoding="utf-8")
    assert run("compile", "--grammar", str(plain), "--syntax", "gbnf").returncode == 0
    res = run("compile", "--grammar", str(plain))  # read as Lark: a clear syntax error
    assert res.returncode == 2 and "invalid Lark grammar" in res.stderr
