"""The engine adapters of structgen.evaluation.engines, on small schemas with the Llama-3 tokenizer.

Every available engine compiles each schema, accepts a valid compact instance and rejects an invalid
one, and its mask allows every next token of the valid instance's walk (and the stop token at its
end). structgen's mask is compared with llguidance's at every step of those walks (the exactness
oracle, DESIGN.md §7). They differ only in ways where llguidance departs from the language and
structgen follows it; each case lists which of these it may show, and nothing else may differ:

- `forced`: where the grammar forces text (llguidance's `compute_ff_bytes`), llguidance allows only
  the canonical tokenization of it; tokens spelling a proper prefix of the forced text also continue
  the output to a word, so structgen allows them too (DESIGN.md §4, completeness).
- `string-chars`: inside strings llguidance excludes U+007F (RFC 8259 allows it unescaped and
  `json.dumps` writes it raw) and the escapes `\\/` and `\\uXXXX` of non-control characters (valid
  JSON); structgen allows them. Both sides' tokens contain the byte 0x7F or a backslash.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache

import numpy as np
import pytest

from datasets import TOKENIZERS
from structgen.evaluation.engines import (
    ENGINE_NAMES,
    EngineUnavailable,
    SchemaEngine,
    available_engines,
    engine_names,
    make_engine,
)

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"
STOP_IDS = (128001, 128009)  # <|end_of_text|>, <|eot_id|>
PEER_MODULES = {"llguidance": "llguidance", "xgrammar": "xgrammar", "xgrammar-strict": "xgrammar",
                "outlines-core": "outlines_core"}

pytestmark = pytest.mark.skipif(not LLAMA3.is_file(), reason=f"Llama-3 tokenizer not found at {LLAMA3}")

# id -> (schema, valid instance, invalid instance, differences from llguidance it may show)
CASES: dict[str, tuple[dict, object, object, tuple[str, ...]]] = {
    "object-required": (
        {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
         "required": ["name", "age"]},
        {"name": "Ada", "age": 36}, {"name": "Ada"}, ("forced", "string-chars"),
    ),
    "enum": ({"enum": ["red", "green", "blue"]}, "green", "purple", ()),
    "array-of-ints": ({"type": "array", "items": {"type": "integer"}}, [1, -2, 30], [1, "2"], ()),
    "string-max-length": ({"type": "string", "maxLength": 5}, "héllo", "toolong", ("string-chars",)),
}


@lru_cache(maxsize=None)
def _engine(name: str) -> SchemaEngine:
    return make_engine(name, LLAMA3, STOP_IDS)


@lru_cache(maxsize=None)
def _compiled(name: str, case: str):
    return _engine(name).compile(CASES[case][0])


@pytest.fixture(params=ENGINE_NAMES)
def engine_name(request) -> str:
    if request.param in PEER_MODULES:
        pytest.importorskip(PEER_MODULES[request.param])
    return request.param


def _text(data) -> str:
    return json.dumps(data, ensure_ascii=False)


def _allowed(row: np.ndarray) -> np.ndarray:
    """Bit t of the packed row as element t (little-endian bit order within each int32 word)."""
    return np.unpackbits(row.view(np.uint8), bitorder="little").astype(bool)


# ------------------------------------------------------------------------------------- registry


def test_registry() -> None:
    assert ENGINE_NAMES == ("structgen", "structgen-declared", "llguidance", "xgrammar", "xgrammar-strict", "outlines-core")
    assert "structgen" in available_engines()
    assert set(available_engines()) <= set(ENGINE_NAMES)
    assert engine_names("both") == ("structgen", "llguidance")
    assert engine_names("all") == ENGINE_NAMES
    assert engine_names("xgrammar") == ("xgrammar",)
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("nope", LLAMA3, STOP_IDS)


@pytest.mark.parametrize("name", list(PEER_MODULES))
def test_missing_peer_raises_engine_unavailable(name: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, PEER_MODULES[name], None)  # makes `import <module>` fail
    with pytest.raises(EngineUnavailable) as info:
        make_engine(name, LLAMA3, STOP_IDS)
    assert info.value.name == name and PEER_MODULES[name] in info.value.reason


def test_version(engine_name: str) -> None:
    version = _engine(engine_name).version()
    assert isinstance(version, str) and version and version != "unknown"


# -------------------------------------------------------------------------------- per engine


@pytest.mark.parametrize("case", list(CASES))
def test_accepts_valid_rejects_invalid(engine_name: str, case: str) -> None:
    _, valid, invalid, _ = CASES[case]
    engine, compiled = _engine(engine_name), _compiled(engine_name, case)
    assert engine.accepts(compiled, _text(valid))
    assert not engine.accepts(compiled, _text(invalid))


@pytest.mark.parametrize("case", list(CASES))
def test_mask_allows_each_next_token(engine_name: str, case: str) -> None:
    engine = _engine(engine_name)
    ids = engine.encode(_text(CASES[case][1]))
    m = engine.matcher(_compiled(engine_name, case))
    row = engine.allocate_mask()
    assert row.shape == ((engine.vocab_size + 31) // 32,) and row.dtype == np.int32
    m.fill_mask(row)
    first = row.copy()
    for step, t in enumerate(ids):
        m.fill_mask(row)
        assert _allowed(row)[t], f"{engine_name}: step {step} mask forbids the next token {t}"
        assert m.accept_token(t)
    assert m.is_accepting()
    m.fill_mask(row)
    assert _allowed(row)[list(STOP_IDS)].all(), f"{engine_name}: the stop tokens are not allowed at the end"
    assert m.accept_token(STOP_IDS[0])
    assert not m.is_accepting()  # terminated: no second stop token
    m.reset()
    assert not m.is_accepting()
    m.fill_mask(row)
    assert np.array_equal(row, first), "reset does not restore the initial mask"


@pytest.mark.parametrize("name", ["structgen", "llguidance", "xgrammar"])
def test_flexible_whitespace_mode(name: str) -> None:
    if name in PEER_MODULES:
        pytest.importorskip(PEER_MODULES[name])
    engine = make_engine(name, LLAMA3, STOP_IDS, "flexible")
    schema, valid, invalid, _ = CASES["object-required"]
    compiled = engine.compile(schema)
    assert engine.accepts(compiled, json.dumps(valid, indent=2))
    assert not engine.accepts(compiled, json.dumps(invalid, indent=2))
    strict_compact = make_engine(name, LLAMA3, STOP_IDS)
    assert not strict_compact.accepts(strict_compact.compile(schema), json.dumps(valid, indent=2))


# ------------------------------------------------------------------ structgen vs llguidance


def _explained(kind: str, data: bytes, forced: bytes) -> bool:
    if kind == "forced":
        return bool(forced) and len(data) < len(forced) and forced.startswith(data)
    if kind == "string-chars":
        return b"\x7f" in data or b"\\" in data
    raise ValueError(kind)


@pytest.mark.parametrize("case", list(CASES))
def test_structgen_mask_equals_llguidance(case: str) -> None:
    llguidance = pytest.importorskip("llguidance")
    schema, valid, _, known = CASES[case]
    # llguidance writes members in declared order: the same language as structgen-declared
    sg, ll = _engine("structgen-declared"), _engine("llguidance")
    sg_m, ll_m = sg.matcher(_compiled("structgen-declared", case)), ll.matcher(_compiled("llguidance", case))
    # a raw llguidance matcher in lockstep, to ask for the forced text
    probe = llguidance.LLMatcher(ll.lltok, _compiled("llguidance", case), log_level=0)
    token_bytes = sg.info.token_bytes
    ids = sg.encode(_text(valid))
    a, b = sg.allocate_mask(), ll.allocate_mask()
    unexplained, explained = [], []
    for step, t in enumerate(ids + [None]):
        sg_m.fill_mask(a)
        ll_m.fill_mask(b)
        forced = bytes(probe.compute_ff_bytes())
        for tok in np.nonzero(_allowed(a) != _allowed(b))[0]:
            data = bytes(token_bytes[tok])
            ok = _allowed(a)[tok] and any(_explained(k, data, forced) for k in known)
            line = (f"step {step}: token {int(tok)} {data!r} structgen={int(_allowed(a)[tok])} "
                    f"llguidance={int(_allowed(b)[tok])} forced={forced!r}")
            (explained if ok else unexplained).append(line)
        if t is None:
            break
        assert sg_m.accept_token(t) and ll_m.accept_token(t) and probe.consume_token(t)
    if explained:
        print(f"\n{case}: {len(explained)} known differences\n  " + "\n  ".join(explained))
    assert not unexplained, f"{case}: structgen and llguidance masks differ:\n" + "\n".join(unexplained)
