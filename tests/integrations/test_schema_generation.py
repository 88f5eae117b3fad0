"""`structgen generate --schema` end to end on the embedded SmolLM2: JSONSchemaBench schemas (Glaiveai2K,
Github_easy) that compile in strict mode, the CLI's prompt (which shows the schema), greedy decoding;
every output that terminates within the budget validates with jsonschema (formats checked).

CI runs a bounded sample (STRUCTGEN_GENERATION_SCHEMAS, default 4); the issue's 20-schema check:
STRUCTGEN_GENERATION_SCHEMAS=20 python -m pytest -q -s tests/integrations/test_schema_generation.py
"""

from __future__ import annotations

import gzip
import json
import os
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from datasets import DATA  # noqa: E402

JSB = DATA / "jsonschemabench"
N = int(os.environ.get("STRUCTGEN_GENERATION_SCHEMAS", "4"))
MAX_NEW_TOKENS = 256


def _schemas(compiler, n: int) -> list[tuple[str, dict, object]]:
    """The first n compilable schemas of Glaiveai2K + Github_easy, alternating, each shuffled with seed 0."""
    from structgen import StructgenError

    pools = []
    for name in ("Glaiveai2K", "Github_easy"):
        with gzip.open(JSB / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            rows = [json.loads(line) for line in f]
        random.Random(0).shuffle(rows)
        pools.append(rows)
    out = []
    for pair in zip(*pools):
        for row in pair:
            if len(out) == n:
                return out
            if len(json.dumps(row["schema"])) > 4000:  # keep the prompt inside the small model's context
                continue
            try:
                out.append((row["id"], row["schema"], compiler.compile_json_schema(row["schema"])))
            except StructgenError:
                continue
    return out


@pytest.mark.slow
@pytest.mark.skipif(not JSB.is_dir(), reason="JSONSchemaBench data not found")
def test_generated_json_is_valid_under_the_schema() -> None:
    """What `structgen generate --schema S "Produce an example."` does (the CLI's prompt, greedy, the
    same generate_transformers call), per schema."""
    import jsonschema

    from structgen import GrammarCompiler, TokenizerInfo
    from structgen.cli.source import schema_hint
    from structgen.integrations.transformers import generate_transformers
    from structgen.models import chat_prompt, load_default_model, load_default_tokenizer

    tok, model = load_default_tokenizer(), load_default_model()
    compiler = GrammarCompiler(TokenizerInfo.from_huggingface(tok))
    results = []
    for sid, schema, cg in _schemas(compiler, N):
        prompt = chat_prompt(tok, f"Produce an example. {schema_hint(schema)}")
        text, _, done = generate_transformers(model, tok, cg, prompt, max_tokens=MAX_NEW_TOKENS,
                                              repetition_penalty=1.15)
        if done:
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(json.loads(text)))
            assert not errors, (sid, text, errors[0].message)
        results.append((sid, done, text))
    print(f"\n{sum(d for _, d, _ in results)}/{len(results)} terminated within {MAX_NEW_TOKENS} tokens, all valid")
    for sid, done, text in results:
        print(f"  {'ok ' if done else 'cut'} {sid}: {text[:100]!r}")
    assert len(results) == N
