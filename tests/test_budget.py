"""The compile budget and the inputs that once hung (issue 22): each compiles or is refused with a
LimitExceeded that names the budget and where in the input it ran out. No wall-clock thresholds:
the budget is exercised with a zero-length one, which every compile passes at its first check."""

from __future__ import annotations

import pickle
import random
import threading

import pytest

from structgen import GrammarCompiler
from structgen.budget import compile_budget, remaining
from structgen.errors import LimitExceeded, SchemaError

SPENT = 1e-9  # a budget every compile has used up by its first check


@pytest.fixture(scope="module")
def compiler(tokenizer_llama3) -> GrammarCompiler:
    return GrammarCompiler(tokenizer_llama3)


def _words(n: int) -> list[str]:
    r = random.Random(0)
    return sorted({"".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(3, 10))) for _ in range(n)})


@pytest.mark.parametrize("whitespace", ["compact", "flexible"])
def test_three_hundred_optional_properties_compile(compiler, whitespace: str) -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(300)}}
    assert compiler.compile_json_schema(schema, whitespace=whitespace).parser.num_states > 0


def test_a_flat_object_of_three_thousand_properties_is_no_depth_problem(compiler) -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(3000)}}
    compiler.compile_json_schema(schema)  # once refused as "nested too deeply"


def test_a_pattern_of_twenty_thousand_words_is_refused_by_its_state_limit(compiler) -> None:
    schema = {"type": "string", "pattern": "^(" + "|".join(_words(20000)) + ")$"}
    with pytest.raises(LimitExceeded) as e:
        compiler.compile_json_schema(schema)
    assert e.value.limit == "max_dfa_states" and e.value.where == "#"
    assert len(str(e.value)) < 400  # the regex is shown cut, not all 150,000 characters


def test_three_thousand_nested_parentheses_compile_or_are_refused(compiler) -> None:
    n = 3000
    compiler.compile_grammar("start: " + '"(" ' * n + '"x"' + ' ")"' * n + "\n")  # in the language
    with pytest.raises(LimitExceeded) as e:  # in the grammar's text: deeper than Lark's loader can read
        compiler.compile_grammar("start: " + "(" * n + '"x"' + ")" * n + "\n")
    assert e.value.limit == "recursion depth"


def test_a_spent_budget_names_itself_and_the_json_pointer(compiler) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "pattern": "[a-z]+"}}}}
    with pytest.raises(LimitExceeded) as e:
        compiler.compile_json_schema(schema, max_compile_seconds=SPENT)
    assert e.value.limit == "max_compile_seconds" and e.value.where == "#"
    assert "time budget" in str(e.value) and "max_compile_seconds" in str(e.value) and str(e.value).endswith("at #")
    again = pickle.loads(pickle.dumps(e.value))  # isolated workers send it across processes
    assert (again.limit, again.where, str(again)) == (e.value.limit, e.value.where, str(e.value))


def test_a_spent_budget_in_a_grammar_names_the_place(compiler) -> None:
    with pytest.raises(LimitExceeded) as e:
        compiler.compile_grammar('start: "a" B\nB: /[0-9]+/\n', max_compile_seconds=SPENT)
    assert e.value.limit == "max_compile_seconds" and e.value.where
    with pytest.raises(LimitExceeded, match="max_compile_seconds"):
        compiler.compile_grammar("root ::= [a-z]+", syntax="gbnf", max_compile_seconds=SPENT)
    with pytest.raises(LimitExceeded, match="max_compile_seconds"):
        compiler.compile_regex("[a-z]+@[a-z]+", max_compile_seconds=SPENT)


def test_no_budget_and_the_default_budget_compile(compiler) -> None:
    schema = {"type": "object", "properties": {"b": {"type": "integer"}}}
    compiler.compile_json_schema(schema, max_compile_seconds=0)
    compiler.compile_json_schema(schema)
    assert remaining() is None  # no budget outlives its compile


def test_budgets_are_per_thread_and_a_nested_one_keeps_the_outer() -> None:
    seen: list[float | None] = []
    with compile_budget(100.0):
        with compile_budget(1.0):
            seen.append(remaining())
        t = threading.Thread(target=lambda: seen.append(remaining()))
        t.start()
        t.join()
    assert seen[0] is not None and seen[0] > 50 and seen[1] is None


def test_grammar_text_size_is_bounded(compiler) -> None:
    text = "start: " + " | ".join(f'"w{i}"' for i in range(40000)) + "\n"
    with pytest.raises(LimitExceeded) as e:
        compiler.compile_grammar(text)
    assert e.value.limit == "max_grammar_bytes"


@pytest.mark.parametrize("schema, cycle", [
    ({"$ref": "#"}, "# -> #"),
    ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
     "#/$defs/a -> #/$defs/b -> #/$defs/a"),
    ({"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]}, "# -> #"),
])
def test_a_ref_cycle_that_derives_nothing_is_named(compiler, schema, cycle: str) -> None:
    with pytest.raises(SchemaError, match="derives no finite value") as e:
        compiler.compile_json_schema(schema)
    assert f"$ref cycle {cycle} " in str(e.value)


def test_a_ref_cycle_with_a_way_out_compiles(compiler) -> None:
    schema = {"type": "object", "properties": {"next": {"$ref": "#"}}}  # {} ends it
    compiler.compile_json_schema(schema)
