"""JSON strings of a schema: patterns, formats and exclusions as one DFA terminal, and long strings
(length bounds above LONG_STRING) as runs of lexemes the grammar counts: chunks of 1..B characters
with one terminal where maxLength has a divisor B in range (chunked_string), else fixed blocks and a
rest (long_string). A mixin of Emitter (emit.py)."""

from __future__ import annotations

import re

from ...automata.dfa import ANY_CHAR, intersect
from ...automata.regex_dfa import json_string_body_dfa, json_string_dfa
from ...errors import RegexError
from .expr import EMPTY, Expr, cat, union
from .normalize import LONG_STRING, NoValue
from .vocabulary import JSON_STRING, NOT_STRINGS, NOT_VALUES


def chunk_size(lo: int, hi: int | None) -> int:
    """The chunk length for Emitter.chunked_string: the largest divisor of hi in 48..128, else in
    32..256, that is at least lo and leaves at most 512 chunks; 0 if none (then long_string)."""
    if hi is None:
        return 0
    for a, b in ((48, 128), (32, 256)):
        for c in range(min(b, hi), a - 1, -1):
            if hi % c == 0 and lo <= c and hi // c <= 512:
                return c
    return 0


class StringEmitter:
    """String values (Emitter's string methods)."""

    def string(self, s: dict, ptr: str) -> Expr:
        only_length = not any(k in s for k in ("pattern", "format", NOT_STRINGS, NOT_VALUES))
        hi = s.get("maxLength")
        if only_length and (("maxLength" in s and hi is not None and int(hi) > LONG_STRING) or
                            int(s.get("minLength", 0)) > LONG_STRING):
            return self.long_string(int(s.get("minLength", 0)), None if hi is None else int(hi), ptr)
        patterns = self.string_patterns(s, ptr)
        exclude = list(s.get(NOT_STRINGS, []))
        literals = [v for v in s.get(NOT_VALUES, []) if isinstance(v, str)]
        if literals:
            exclude.append(["|".join(re.escape(v) for v in literals)])
        hostname = s.get("format") == "hostname"
        if hostname:  # the label structure with the 253-character limit, as a DFA
            from ..formats import HOSTNAME, hostname_string_dfa

            patterns = [p for p in patterns if p != HOSTNAME]
        if not patterns and not exclude and not hostname:
            return self.named_terminal("JSON_STRING", JSON_STRING)
        try:
            if hostname:
                dfa = hostname_string_dfa()
                if patterns or exclude:
                    dfa = intersect(dfa, json_string_dfa(patterns, self.limits.max_dfa_states, tuple(exclude)),
                                    max_states=max(100_000, self.limits.max_dfa_states))
                return self.terminal("str", dfa=dfa)
            return self.terminal("str", dfa=json_string_dfa(patterns, self.limits.max_dfa_states, tuple(exclude)))
        except RegexError as e:  # e.g. a pattern that can never match, or contradicts the length
            raise NoValue("type", ptr, f"no string satisfies the constraints ({e})") from None

    def long_string(self, lo: int, hi: int | None, ptr: str) -> Expr:
        """A string of lo..hi characters as a run of fixed-size blocks plus a shorter rest, each a
        lexeme of its own: a block is lexed as soon as it is full, so a string of length L is
        always L // B blocks and the rest, and the grammar counts blocks (a DFA counting to hi
        would need ~14 states per character)."""
        chunk = chunk_size(lo, hi)
        if chunk:
            return self.chunked_string(lo, hi, chunk)
        top = hi if hi is not None else lo
        block = 64 if top <= 64 * 256 else 256
        if top > block * 256:
            self.unsupported("maxLength" if hi is not None else "minLength", ptr,
                             f"length bounds above {block * 256}", "more" if hi is not None else "less")
            return self.string({k: v for k, v in {"minLength": min(lo, 1024)}.items()}, ptr)
        quote = self.lit('"')
        key = ("long", lo, hi)
        if key in self.memo:
            return self.memo[key]

        def body(pattern: str, hint: str) -> Expr:
            tkey = ("body", pattern)
            if tkey not in self.memo:
                self.memo[tkey] = self.terminal(hint, dfa=json_string_body_dfa(pattern))
            return self.memo[tkey]

        full = body(f"{ANY_CHAR}{{{block}}}", "block")
        last = top // block if hi is not None else -(-lo // block)
        nxt: Expr = EMPTY
        for a in range(last, -1, -1):
            alts: list[Expr] = []
            if a < last:
                alts.append(cat(full, nxt))
            if hi is None and a == last:  # enough blocks for minLength: any rest
                alts.append(cat(body(ANY_CHAR + "+", "rest"), quote))
            else:
                r_lo, r_hi = max(1, lo - block * a), min(block - 1, (hi if hi is not None else 10 ** 9) - block * a)
                if r_lo <= r_hi:
                    alts.append(cat(body(f"{ANY_CHAR}{{{r_lo},{r_hi}}}", "rest"), quote))
            if lo <= block * a and (hi is None or block * a <= hi):
                alts.append(quote)
            nxt = self.new_rule("chars", union(*alts))
        self.memo[key] = self.new_rule("longstr", cat(quote, nxt))
        return self.memo[key]

    def chunked_string(self, lo: int, hi: int, chunk: int) -> Expr:
        """A string of lo..hi characters (chunk divides hi, lo <= chunk) as hi // chunk lexemes at
        most, each of 1..chunk characters: lexing is greedy, so every chunk but the last is full,
        and n chunks hold at most hi characters iff n <= hi // chunk. One terminal where
        long_string needs a block and a rest at every position, so a mask inside the string
        walks one lexer component, not three (the cold masks of long strings were the tail)."""
        key = ("chunked", lo, hi)
        if key in self.memo:
            return self.memo[key]
        quote = self.lit('"')

        def body(lo_chars: int) -> Expr:
            tkey = ("chunk", lo_chars, chunk)
            if tkey not in self.memo:
                self.memo[tkey] = self.terminal("chunk", dfa=json_string_body_dfa(f"{ANY_CHAR}{{{lo_chars},{chunk}}}"))
            return self.memo[tkey]

        nxt: Expr = quote
        for _ in range(hi // chunk - 1):
            nxt = self.new_rule("chunks", union(cat(body(1), nxt), quote))
        first = cat(body(max(lo, 1)), nxt)
        self.memo[key] = self.new_rule("longstr", cat(quote, union(first, quote) if lo == 0 else first))
        return self.memo[key]
