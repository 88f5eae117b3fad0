"""Fuzz: the compile cache's files (structgen/compile_cache.py) under damage: entries truncated at
random offsets, random bit flips, zeroed ranges, appended garbage, an entry under another input's
name; several threads and processes compiling the same and different inputs into one folder; a
read-only folder. Never a crash, at most a CacheWarning, and masks equal a compile without cache
along a random token path (SmolLM2 tokenizer: a smaller vocabulary keeps masks cheap).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import tempfile
import threading
import warnings
import zipfile
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets import examples
from fuzz.strategies import TOKENIZERS, tokenizer
from structgen import GrammarCompiler, GrammarMatcher, TokenizerInfo
from structgen.compile_cache import CacheWarning

TOKENIZER = "smollm2"
INPUTS = {  # name -> (method, argument, options)
    "schema": ("compile_json_schema", {"type": "object", "properties": {"a": {"type": "integer", "maximum": 90},
                                                                         "b": {"enum": ["x", "yy", None]}}}, {}),
    "regex": ("compile_regex", r"[0-9]{3}-[a-z]+( x[0-9]+)?", {}),
    "glr": ("compile_grammar", 'start: e\ne: e "+" e | "(" e ")" | "a"\n', {}),
    "lenient": ("compile_json_schema", {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                {"strict": False}),
}
DAMAGE = ("truncate", "flip", "zero", "append", "empty")


def compile_input(compiler: GrammarCompiler, name: str):
    method, arg, options = INPUTS[name]
    return getattr(compiler, method)(arg, **options)


@lru_cache(maxsize=None)
def reference(name: str) -> tuple[tuple[int, ...], tuple]:
    """(token path, mask trace) of `name` compiled without a disk cache; the path is a seeded walk
    of allowed non-stop tokens."""
    tok = tokenizer(TOKENIZER)
    cg = compile_input(GrammarCompiler(tok), name)
    m, rng, path = GrammarMatcher(cg), random.Random(name), []
    stops = set(int(t) for t in tok.stop_token_ids)
    for _ in range(12):
        bits = np.unpackbits(m.next_token_bits().view(np.uint8), bitorder="little")[:tok.vocab_size]
        ids = [int(t) for t in np.flatnonzero(bits) if int(t) not in stops]
        if not ids:
            break
        path.append(rng.choice(ids))
        assert m.accept_token(path[-1])
    return tuple(path), mask_trace(cg, path)


def mask_trace(cg, path) -> tuple:
    """The mask and is_accepting before each token of `path` and after the last."""
    m, out = GrammarMatcher(cg), []
    for t in path:
        out.append((m.next_token_bits().tobytes(), m.is_accepting()))
        assert m.accept_token(t), f"token {t} of the reference path refused"
    out.append((m.next_token_bits().tobytes(), m.is_accepting()))
    return tuple(out)


def damage(path: Path, kind: str, spots: list[int]) -> None:
    """Corrupt the file at `path` in place (`spots` pick offsets and bits)."""
    data = bytearray(path.read_bytes())
    n = len(data)
    if kind == "truncate":
        del data[spots[0] % n:]
    elif kind == "flip":
        for s in spots:
            data[(s >> 3) % n] ^= 1 << (s & 7)
    elif kind == "zero":
        at = spots[0] % n
        data[at:at + 1 + spots[-1] % 64] = bytes(len(data[at:at + 1 + spots[-1] % 64]))
    elif kind == "append":
        data += bytes(s & 0xFF for s in spots)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))


def _entries(root: Path) -> set[Path]:
    return set(root.glob("*.npz"))


@contextlib.contextmanager
def _recorded(leaks_ok: bool = True):
    """Collect CacheWarnings; fail on any other warning. `leaks_ok` tolerates the ResourceWarning of
    a file np.load leaves open on a damaged zip (see test_damaged_entry_leaves_no_file_open)."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        yield got
    other = [w for w in got if not issubclass(w.category, CacheWarning)
             and not (leaks_ok and issubclass(w.category, ResourceWarning))]
    assert not other, [str(w.message) for w in other]
    got[:] = [w for w in got if issubclass(w.category, CacheWarning)]


def check_damaged_entry(name: str, kind: str, spots: list[int], trie: bool = False) -> str:
    """Write `name`'s entry (or the tokenizer's trie entry), damage it, compile again: no crash, at
    most CacheWarnings, the reference masks; then a third compile loads cleanly. Returns "warned",
    "loaded" (the damage left the entry readable: a zip field nobody reads)."""
    path, trace = reference(name)
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    try:
        tok = _tokenizer() if not trie else _fresh_tokenizer()
        before = _entries(root)
        if trie:
            GrammarCompiler(tok, cache_dir=root)  # writes the trie entry
        compile_input(GrammarCompiler(tok, cache_dir=root), name)
        (entry,) = sorted(_entries(root) - before, key=lambda p: p.stat().st_size, reverse=trie)[:1]
        damage(entry, kind, spots)
        tok2 = tok if not trie else _fresh_tokenizer()
        with _recorded() as got:
            cg = compile_input(GrammarCompiler(tok2, cache_dir=root), name)
        assert mask_trace(cg, path) == trace, f"{name} {kind} {spots}: masks differ after a damaged entry"
        with _recorded() as again:
            compiler = GrammarCompiler(tok2, cache_dir=root)
            compile_input(compiler, name)
        assert not again and compiler.last_from_disk, f"{name} {kind} {spots}: the rebuilt entry is not clean"
        return "warned" if got else "loaded"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _tokenizer():
    """The shared SmolLM2 TokenizerInfo with its trie built, so that a compiler with a cache folder
    writes no trie entry there (each folder then holds the grammar entries only)."""
    tok = tokenizer(TOKENIZER)
    tok.trie  # noqa: B018 - a cached property
    return tok


def _fresh_tokenizer() -> TokenizerInfo:
    """A TokenizerInfo of its own (no trie yet), so that a compiler reads or writes the trie entry."""
    return TokenizerInfo.from_tokenizer_json(TOKENIZERS / TOKENIZER / "tokenizer.json")


# the fuzzer's arguments (bench/fuzz.py runs check_damaged_entry on the same strategies)
FUZZ_ARGS = dict(name=st.sampled_from(sorted(INPUTS)), kind=st.sampled_from(DAMAGE),
                 spots=st.lists(st.integers(0, 2**40), min_size=1, max_size=8),
                 trie=st.integers(0, 9).map(lambda k: k == 9))


@settings(max_examples=examples(60), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**{k: v for k, v in FUZZ_ARGS.items() if k != "trie"})
def test_damaged_entries_are_rebuilt(name: str, kind: str, spots: list[int]) -> None:
    check_damaged_entry(name, kind, spots)


@settings(max_examples=examples(6), deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(DAMAGE), spots=st.lists(st.integers(0, 2**40), min_size=1, max_size=8))
def test_damaged_trie_entry_is_rebuilt(kind: str, spots: list[int]) -> None:
    check_damaged_entry("regex", kind, spots, trie=True)


def test_threads_share_one_folder() -> None:
    """Six threads, each with its own compiler on one folder, compile the inputs in rotated orders
    (the same input at once, different ones at once): no error, no warning, the reference masks."""
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    names = sorted(INPUTS)
    refs = {n: reference(n) for n in names}
    results, errors = [], []

    def work(k: int) -> None:
        try:  # a compiler per compile, so every compile goes to the folder
            for n in names[k % len(names):] + names[:k % len(names)] + [names[k % 2]]:
                cg = compile_input(GrammarCompiler(tokenizer(TOKENIZER), cache_dir=root), n)
                results.append((n, mask_trace(cg, refs[n][0])))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    try:
        with _recorded() as got:
            threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors, errors
        assert not got, [str(w.message) for w in got]
        assert all(trace == refs[n][1] for n, trace in results) and len(results) == 6 * (len(names) + 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def process_worker(root: str, names: list[str], paths: dict) -> list:
    """In a spawned process: compile `names` through the cache at `root`; their traces and warnings."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = [(n, mask_trace(compile_input(GrammarCompiler(tokenizer(TOKENIZER), cache_dir=root), n), paths[n]))
               for n in names]
    return out + [("warning", f"{w.category.__name__}: {w.message}") for w in got]


def test_processes_share_one_folder() -> None:
    """Three spawned processes compile the same and different inputs into one folder at once."""
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    names = sorted(INPUTS)
    refs = {n: reference(n) for n in names}
    paths = {n: refs[n][0] for n in names}
    orders = [names, names[::-1], names[1:] + names[:1]]
    try:
        with ProcessPoolExecutor(max_workers=3, mp_context=get_context("spawn")) as pool:
            outs = list(pool.map(process_worker, [str(root)] * 3, orders, [paths] * 3))
        for out in outs:
            assert [x for x in out if x[0] == "warning"] == [], out
            assert all(trace == refs[n][1] for n, trace in out), "a process got other masks"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def read_only(root: Path):
    """`root` made read-only: by mode, and where that does not bind (root user) by `chattr +i`."""
    root.chmod(0o555)
    immutable = False
    try:
        probe = root / ".probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
            writable = True
        except OSError:
            writable = False
        if writable:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(root)],
                                                                capture_output=True).returncode != 0:
                pytest.skip("cannot make a folder read-only here")
            immutable = True
        yield root
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(root)], check=False)
        root.chmod(0o755)


def _patch_zip(path: Path, how: str) -> None:
    """Damage one field of a cache entry (a zip of .npy members) in a way the fuzzer found uncaught."""
    data = bytearray(path.read_bytes())
    if how == "deflate":  # the first member's deflate stream starts with block type 3 (reserved)
        start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
        data[start] = 0xFF
    elif how == "zip_version":  # the first central-directory record needs zip version 25.5
        data[data.index(b"PK\x01\x02") + 6] = 0xFF
    else:  # "npy_header": a member whose .npy header has an unclosed parenthesis
        with zipfile.ZipFile(path, "w") as z:
            header = b"{'descr': '<i4', 'fortran_order': False, 'shape': (3, }"
            header += b" " * (117 - len(header)) + b"\n"
            z.writestr("action.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(12))
        return
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["deflate", "zip_version", "npy_header"])  # zlib.error, NotImplementedError,
# tokenize.TokenError: each escaped CompileCache.load before it caught every exception of a damaged file
def test_damaged_zip_only_warns(how: str) -> None:
    """A damaged entry is rebuilt with a CacheWarning, whatever zipfile, zlib or numpy raise on it."""
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    tok = _tokenizer()
    try:
        compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
        (entry,) = _entries(root)
        _patch_zip(entry, how)
        with _recorded() as got:
            cg = compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
        assert got and mask_trace(cg, reference("regex")[0]) == reference("regex")[1]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_damaged_entry_leaves_no_file_open() -> None:
    import gc

    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    tok = _tokenizer()
    try:
        compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
        (entry,) = _entries(root)
        damage(entry, "truncate", [4])  # b"PK\x03\x04": a zip's magic, then nothing
        with _recorded(leaks_ok=False):
            compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
            gc.collect()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("state", [
    "entries", "empty", "corrupt",  # corrupt: its unlink raised PermissionError from compile once
])
def test_read_only_folder(state: str) -> None:
    """A read-only cache folder holding good entries, nothing, or a corrupt entry: compiles work,
    masks are the reference's, and only CacheWarnings are raised."""
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    tok = _tokenizer()
    try:
        if state != "empty":
            compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
        if state == "corrupt":
            (entry,) = _entries(root)
            damage(entry, "truncate", [entry.stat().st_size // 2])
        with read_only(root):
            with _recorded() as got:
                compiler = GrammarCompiler(tok, cache_dir=root)
                cg = compile_input(compiler, "regex")
            assert mask_trace(cg, reference("regex")[0]) == reference("regex")[1]
            assert compiler.last_from_disk == (state == "entries")
            assert bool(got) == (state != "entries"), [str(w.message) for w in got]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_entry_under_another_name_is_not_trusted() -> None:
    """The regex's entry copied over the schema's: the schema must still get its own masks."""
    root = Path(tempfile.mkdtemp(prefix="sg-fuzz-cache-"))
    tok = _tokenizer()
    try:
        compile_input(GrammarCompiler(tok, cache_dir=root), "regex")
        (regex_entry,) = _entries(root)
        compile_input(GrammarCompiler(tok, cache_dir=root), "schema")
        (schema_entry,) = _entries(root) - {regex_entry}
        shutil.copyfile(regex_entry, schema_entry)
        with _recorded():
            cg = compile_input(GrammarCompiler(tok, cache_dir=root), "schema")
        path, trace = reference("schema")
        assert mask_trace(cg, path) == trace
    finally:
        shutil.rmtree(root, ignore_errors=True)
