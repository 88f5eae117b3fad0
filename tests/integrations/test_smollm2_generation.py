"""SmolLM2-135M-Instruct (the embedded GGUF) generating under shipped grammars through the
transformers LogitsProcessor: every output is a complete word, checked by an independent oracle
(json.loads for JSON, Lark's own parser for SQL and arithmetic)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
lark = pytest.importorskip("lark")

from datasets import grammar_text  # noqa: E402

PROMPTS = {
    "json": [
        "Give a JSON object with keys name and age for a person called Ada who is 36.",
        "Return a JSON array of the first five prime numbers.",
        "Describe a book (title, author, year) as JSON.",
        "Output a JSON object mapping three colors to their hex codes.",
        "Write a JSON object for a city with name, country and population.",
        "Give JSON with a boolean field 'ok' set to true and a 'message' string.",
        "Represent a point with x and y coordinates as JSON.",
        "List three fruits as a JSON array of strings.",
        "Return an empty JSON object.",
        "Give a JSON object describing a cat: name, age, and a list of toys.",
    ],
    "sql": [
        "Write an SQL query that selects all columns from the table users.",
        "SQL: names of customers from Paris.",
        "SQL query counting orders per customer.",
        "Select the ten most expensive products in SQL.",
        "SQL: employees whose salary is greater than 50000.",
        "Write SQL to get distinct cities from the addresses table.",
        "SQL query: average price of books grouped by author.",
        "SQL: titles of movies released after 2000 ordered by year.",
        "Write an SQL query joining orders and customers on customer id.",
        "SQL: all rows of the table logs where level is 'error'.",
    ],
    "arithmetic": [
        "Write an arithmetic expression that equals 10.",
        "Give the formula for the area of a circle with radius r.",
        "Write 3 plus 4 times 2 as an expression.",
        "An expression computing the average of a, b and c.",
        "Write the quadratic expression a times x squared plus b times x plus c.",
        "Express 15 percent of 80 as arithmetic.",
        "Write the sum of the first four positive integers.",
        "Give an expression using parentheses and division.",
        "Convert 100 degrees Fahrenheit to Celsius as an expression.",
        "Write the expression for the hypotenuse with sides a and b using sqrt.",
    ],
}
MAX_NEW_TOKENS = {"json": 120, "sql": 80, "arithmetic": 60}


@pytest.fixture(scope="module")
def smollm2():
    from structgen import TokenizerInfo
    from structgen.models import load_default_model, load_default_tokenizer

    tok = load_default_tokenizer()
    model = load_default_model()
    return tok, model, TokenizerInfo.from_huggingface(tok)


def _oracle(name: str):
    if name == "json":
        return json.loads
    parser = lark.Lark(grammar_text(name), parser="lalr")
    return parser.parse


@pytest.mark.slow
@pytest.mark.parametrize("name", ["json", "sql", "arithmetic"])
def test_smollm2_outputs_are_complete_words(smollm2, name: str) -> None:
    from transformers import LogitsProcessorList

    from structgen import GrammarCompiler
    from structgen.integrations.transformers import LogitsProcessor
    from structgen.models import chat_prompt

    tok, model, info = smollm2
    cg = GrammarCompiler(info).compile_grammar(grammar_text(name))
    stops = list(info.stop_token_ids)
    tok.padding_side = "left"
    texts = [chat_prompt(tok, p, system=f"You answer with {name.upper()} only.") for p in PROMPTS[name]]
    inputs = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    proc = LogitsProcessor(cg)
    with torch.no_grad():
        out = model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), do_sample=False,
                             max_new_tokens=MAX_NEW_TOKENS[name], eos_token_id=stops, pad_token_id=stops[0])
    terminated = proc.finalize(out)
    oracle = _oracle(name)
    outputs = []
    for row in out[:, inputs["input_ids"].shape[1]:].tolist():
        body = row[: next((k for k, t in enumerate(row) if t in stops), len(row))]
        outputs.append(tok.decode(body, skip_special_tokens=False))
    print(f"\n{name}: " + "\n".join(repr(o) for o in outputs))
    assert all(terminated), [o for o, t in zip(outputs, terminated) if not t]
    for text in outputs:
        oracle(text)  # raises on an invalid output
