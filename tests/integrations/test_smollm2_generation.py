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
        "Give a JSON object with a boolean field ok set to true.",
        "Represent a point with x and y coordinates as JSON.",
        "List three fruits as a JSON array of strings.",
        "Return an empty JSON object.",
        "Give a JSON object describing a dog with a name.",
    ],
    "sql": [
        "Write an SQL query that selects all columns from the table users.",
        "Write an SQL query for the names of customers from Paris.",
        "Write an SQL query counting orders per customer.",
        "Write an SQL query for the ten most expensive products.",
        "Write an SQL query for employees whose salary is greater than 50000.",
        "Write an SQL query for distinct cities from the addresses table.",
        "Write an SQL query for the average price of books grouped by author.",
        "Write an SQL query for titles of movies released after 2000 ordered by year.",
        "Write an SQL query joining orders and customers on customer id.",
        "Write an SQL query for all rows of the table logs where level is 'error'.",
    ],
    "arithmetic": [
        "Write the expression 3 + 4 * 2.",
        "Write the expression for the area of a circle: pi * r ** 2.",
        "Write an expression that adds 12 and 30.",
        "Write an expression for the average of a, b and c.",
        "Write the expression a * x ** 2 + b * x + c.",
        "Write an expression for 15 percent of 80.",
        "Write an expression for 1 + 2 + 3 + 4.",
        "Write an expression for (10 - 4) / 3.",
        "Write an expression for 7 times 6.",
        "Write an expression for sqrt(a ** 2 + b ** 2).",
    ],
}
# Prompt formats chosen so the 135M model ends its answers within the budget (greedy, with a mild
# repetition penalty against loops); neither changes what the mask allows.
SUFFIX = {"json": " Reply with one short JSON value on a single line.", "sql": " Reply with only the SQL, nothing else."}
ARITHMETIC_SHOTS = [
    ("Write the expression two plus two.", "2 + 2"),
    ("Write the expression for x squared times three.", "3 * x ** 2"),
    ("Write an expression for half of the sum of a and b.", "(a + b) / 2"),
]
MAX_NEW_TOKENS = {"json": 300, "sql": 120, "arithmetic": 80}


def _prompt(tok, name: str, text: str) -> str:
    from structgen.models import chat_prompt

    if name != "arithmetic":
        return chat_prompt(tok, text + SUFFIX[name])
    msgs = []
    for q, a in ARITHMETIC_SHOTS:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": text})
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


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

    tok, model, info = smollm2
    cg = GrammarCompiler(info).compile_grammar(grammar_text(name))
    stops = list(info.stop_token_ids)
    outputs, terminated = [], []
    for text in PROMPTS[name]:  # one at a time: no padding, so each output is independent of the others
        inputs = tok(_prompt(tok, name, text), return_tensors="pt", add_special_tokens=False)
        proc = LogitsProcessor(cg)
        with torch.no_grad():
            out = model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), do_sample=False,
                                 repetition_penalty=1.15, max_new_tokens=MAX_NEW_TOKENS[name], eos_token_id=stops,
                                 pad_token_id=stops[0])
        terminated.append(proc.finalize(out)[0])
        row = out[0, inputs["input_ids"].shape[1]:].tolist()
        outputs.append(tok.decode(row[: next((k for k, t in enumerate(row) if t in stops), len(row))]))
    oracle = _oracle(name)
    print(f"\n{name}: " + "\n".join(repr(o) for o in outputs))
    assert all(terminated), [o for o, t in zip(outputs, terminated) if not t]
    for text in outputs:
        oracle(text)  # raises on an invalid output
