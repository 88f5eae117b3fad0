"""The persistent compile cache: disk entries give the same masks, are rebuilt when corrupt, and never unpickle."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import structgen
from datasets import REPO, TOKENIZERS, grammar_text
from structgen.compile_cache import CacheWarning, CompileCache

SCHEMA = json.loads((REPO / "examples" / "person.json").read_text(encoding="utf-8"))
INSTANCE = json.dumps(json.loads((REPO / "examples" / "ada.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def tok() -> structgen.TokenizerInfo:
    return structgen.TokenizerInfo.from_tokenizer_json(TOKENIZERS / "smollm2" / "tokenizer.json")


def _masks(cg, text: str) -> list[bytes]:
    """The mask before every token of `text` (tokenized greedily by the trie) and at the end."""
    m = structgen.GrammarMatcher(cg)
    info = cg.tokenizer_info
    out, data = [], text.encode()
    while data:
        out.append(m.next_token_bits().tobytes())
        node, best, i = 0, None, 0
        while i < len(data) and (node := info.trie.find(data[:i + 1])) >= 0:  # longest token prefix
            i += 1
            ids = info.trie.token_ids_at(node)
            if ids:
                best = (ids[0], i)
        assert best is not None and m.accept_token(best[0])
        data = data[best[1]:]
    out.append(m.next_token_bits().tobytes())
    assert m.is_accepting()
    return out


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("*.npz"))


@pytest.mark.parametrize("kind", ["schema", "grammar", "regex", "lenient"])
def test_disk_entry_gives_identical_masks(tok, tmp_path, kind: str) -> None:
    def compile_with(compiler):
        if kind == "schema":
            return compiler.compile_json_schema(SCHEMA), INSTANCE
        if kind == "lenient":
            return compiler.compile_json_schema({"type": "array", "uniqueItems": True}, strict=False), "[1, 1]"
        if kind == "grammar":
            return compiler.compile_grammar(grammar_text("json")), INSTANCE
        return compiler.compile_regex(r"[0-9]{3}-[0-9]{4}( x[0-9]+)?"), "555-1234 x12"

    first = structgen.GrammarCompiler(tok, cache_dir=tmp_path)
    cg1, text = compile_with(first)
    assert not first.last_from_disk and _entries(tmp_path)
    second = structgen.GrammarCompiler(tok, cache_dir=tmp_path)
    cg2, _ = compile_with(second)
    assert second.last_from_disk and cg2 is not cg1
    assert cg2.grammar == cg1.grammar and cg2.relaxations == cg1.relaxations
    assert _masks(cg2, text) == _masks(cg1, text)
    # restored product DFAs keep their component vectors (the mask store assembles walks from them)
    assert all(cg2.lexer.components(ls) == cg1.lexer.components(ls) for ls in cg1.mask_store._lexeme)
    assert not list(tmp_path.glob(".tmp-*")), "temporary files are renamed into place or removed"


def _corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_array(path: Path) -> None:
    """A well-formed archive whose contents no longer match their checksum (an edited table)."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["action"] = arrays["action"] + 1
    np.savez(path, **arrays)


def _corrupt_pickle(path: Path) -> None:
    """An entry holding an object array: loading it would need pickle, which is never allowed."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["action"] = np.array([object()], dtype=object)
    np.savez(path, **arrays)


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_array, _corrupt_pickle])
def test_corrupt_entry_is_rebuilt_with_a_warning(tok, tmp_path, corrupt) -> None:
    cg1 = structgen.GrammarCompiler(tok, cache_dir=tmp_path).compile_json_schema(SCHEMA)
    grammar_entries = [p for p in _entries(tmp_path) if p.stat().st_size < 200_000]  # not the token trie
    assert len(grammar_entries) == 1
    corrupt(grammar_entries[0])
    compiler = structgen.GrammarCompiler(tok, cache_dir=tmp_path)
    with pytest.warns(CacheWarning, match="corrupt"):
        cg2 = compiler.compile_json_schema(SCHEMA)
    assert not compiler.last_from_disk
    assert _masks(cg2, INSTANCE) == _masks(cg1, INSTANCE)
    again = structgen.GrammarCompiler(tok, cache_dir=tmp_path)  # the rebuilt entry is good again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.compile_json_schema(SCHEMA)
    assert again.last_from_disk


def test_keys_separate_inputs_tokenizers_and_options(tok, tmp_path) -> None:
    cache = CompileCache(tmp_path)
    keys = {cache.key("grammar", "start: A"), cache.key("grammar", "start: B"), cache.key("grammar", "start: A", "x"),
            cache.key("gramma", "rstart: A")}
    assert len(keys) == 4
    compiler = structgen.GrammarCompiler(tok, cache_dir=tmp_path)
    compiler.compile_json_schema(SCHEMA)
    compiler.compile_json_schema(SCHEMA, whitespace="flexible")
    llama = structgen.TokenizerInfo.from_tokenizer_json(TOKENIZERS / "llama3" / "tokenizer.json")
    other = structgen.GrammarCompiler(llama, cache_dir=tmp_path)
    other.compile_json_schema(SCHEMA)
    assert not other.last_from_disk  # another tokenizer is another entry
    assert len([p for p in _entries(tmp_path) if p.stat().st_size < 200_000]) == 3  # beside the tokens' tries


def test_unwritable_cache_only_warns(tok, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(CacheWarning, match="cannot write"):
        cg = structgen.GrammarCompiler(tok, cache_dir=blocker / "cache").compile_regex("[a-z]+")
    assert structgen.GrammarMatcher(cg).accept_string("abc")


def test_no_cache_dir_writes_nothing(tok, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    structgen.GrammarCompiler(tok).compile_regex("[a-z]+")
    assert not any(tmp_path.rglob("*.npz"))
