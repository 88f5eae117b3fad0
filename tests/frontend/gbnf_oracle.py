"""Test-only oracles for the GBNF frontend (never imported by the engine).

* `parse_gbnf` / `gbnf_to_lark_earley` / `gbnf_to_llguidance_lark`: an independent reading of
  llama.cpp's GBNF (a regex tokenizer and a small parser, written apart from structgen's), emitted
  as Lark text for `lark.Lark(..., parser="earley", lexer="dynamic", start="root")` and as
  llguidance Lark text. Both keep the character-level semantics: every character of a literal and
  every class is its own one-character terminal (llguidance lexemes are greedy, so multi-character
  lexemes could change the language; one-code-point lexemes cannot, UTF-8 being prefix-free).
  llguidance ships `llguidance.gbnf_to_lark`, but it turns terminal-only rules into greedy lexemes
  and `.` into `/./` (no newline), which changes languages; so it is not used here.
* `IREarley`: an Earley recognizer over a compiled Grammar IR (code points in, a terminal matches
  a code point when its DFA accepts its UTF-8 encoding).
* `random_words`, `mutations`: words drawn from the IR by random derivation, and nearby candidates.
"""

from __future__ import annotations

import random
import re

import numpy as np

_TOKEN = re.compile(r"""
    (?P<skip>[ \t\r\n]+|\#[^\r\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<cls>\[(?:[^\]\\]|\\.)*\])
  | (?P<define>::=)
  | (?P<name>[A-Za-z0-9_-]+)
  | (?P<rep>\{\s*\d*\s*(?:,\s*\d*\s*)?\})
  | (?P<op>[()|*+?.])
""", re.X | re.S)
_ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]"}


def _unescape(body: str) -> list[int]:
    """Code points of a literal or class body, with llama.cpp's escapes."""
    out, i = [], 0
    while i < len(body):
        if body[i] != "\\":
            out.append(ord(body[i]))
            i += 1
            continue
        e = body[i + 1]
        if e in _ESC:
            out.append(ord(_ESC[e]))
            i += 2
        else:
            size = {"x": 2, "u": 4, "U": 8}[e]  # KeyError: an escape llama.cpp refuses
            out.append(int(body[i + 2:i + 2 + size], 16))
            i += 2 + size
    return out


def _class_ranges(body: str) -> tuple[bool, list[tuple[int, int]]]:
    """`[...]` body -> (negated, ranges); `a-b` when `-` is not last (llama.cpp), empty `z-a` dropped."""
    neg = body.startswith("^")
    # tokenize into characters first (escapes kept together), then read ranges
    chars, i, raw = [], 1 if neg else 0, []
    while i < len(body):
        j = i + 1
        if body[i] == "\\":
            j = i + 2 + {"x": 2, "u": 4, "U": 8}.get(body[i + 1], 0)
        raw.append(body[i:j])
        i = j
    k = 0
    while k < len(raw):
        lo = _unescape(raw[k])[0]
        if k + 2 < len(raw) and raw[k + 1] == "-":
            hi = _unescape(raw[k + 2])[0]
            k += 3
        else:
            hi, k = lo, k + 1
        if lo <= hi:
            chars.append((lo, hi))
    return neg, chars


def parse_gbnf(text: str) -> dict[str, tuple]:
    """GBNF text -> {rule: AST}; the last definition of a name wins (llama.cpp).

    AST: ("lit", str) | ("cls", negated, ranges) | ("any",) | ("ref", name) | ("seq", [..]) |
    ("alt", [..]) | ("rep", node, m, n or None)."""
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"oracle: cannot read {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "skip":
            toks.append((m.lastgroup, m.group()))
    toks.append(("eof", ""))
    rules: dict[str, tuple] = {}
    k = 0

    def is_def(j: int) -> bool:
        return toks[j][0] == "name" and toks[j + 1][0] == "define"

    def alts() -> tuple:
        nonlocal k
        out = [seq()]
        while toks[k][1] == "|":
            k += 1
            out.append(seq())
        return ("alt", out)

    def seq() -> tuple:
        nonlocal k
        items: list = []
        while toks[k][0] != "eof" and toks[k][1] not in ("|", ")") and not is_def(k):
            kind, val = toks[k]
            k += 1
            if kind == "str":
                node = ("lit", "".join(map(chr, _unescape(val[1:-1]))))
            elif kind == "cls":
                node = ("cls", *_class_ranges(val[1:-1]))
            elif kind == "name":
                node = ("ref", val)
            elif val == ".":
                node = ("any",)
            elif val == "(":
                node = alts()
                assert toks[k][1] == ")", "oracle: expected )"
                k += 1
            else:
                raise ValueError(f"oracle: unexpected {val!r}")
            while toks[k][0] == "rep" or toks[k][1] in ("*", "+", "?"):
                v = toks[k][1]
                k += 1
                if v in "*+?":
                    node = ("rep", node, 1 if v == "+" else 0, 1 if v == "?" else None)
                else:
                    lo, comma, hi = re.fullmatch(r"\{\s*(\d*)\s*(,)?\s*(\d*)\s*\}", v).groups()
                    lo = int(lo or 0)
                    node = ("rep", node, lo, lo if not comma else (int(hi) if hi else None))
            items.append(node)
        return ("seq", items)

    while toks[k][0] != "eof":
        assert is_def(k), f"oracle: expected a rule at {toks[k]}"
        name = toks[k][1]
        k += 2
        rules.pop(name, None)
        rules[name] = alts()
    return rules


def _rule_names(rules: dict[str, tuple], start: str, start_as: str) -> dict[str, str]:
    return {name: start_as if name == start else f"r{i}_{re.sub(r'[^a-z0-9]', '_', name.lower())}"
            for i, name in enumerate(rules)}


def _regex_char(cp: int) -> str:
    """A class member for both Lark (which evaluates \\x escapes before compiling, so the regex
    metacharacters must be written escaped) and llguidance (Rust regex)."""
    if chr(cp) in "\\]^-[/":
        return "\\" + chr(cp)
    return _hex(cp)


def _hex(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x80 else (f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")


def _lark_string(s: str) -> str:
    """A string literal for Lark and llguidance; a backslash is written `\\\\` (Lark evaluates
    `\\x5c` twice inside a longer string)."""
    esc = {"\\": "\\\\", '"': '\\"'}
    return '"' + "".join(c if c.isalnum() or c in " _" else esc.get(c) or _hex(ord(c)) for c in s) + '"'


def _emit(node: tuple, names: dict[str, str], split_literals: bool, llg: bool, extra: list[str]) -> str:
    kind = node[0]
    if kind == "lit":
        if not node[1]:
            return '""' if llg else "( )"
        parts = list(node[1]) if split_literals else [node[1]]
        return "(" + " ".join(_lark_string(p) for p in parts) + ")"
    if kind == "cls":
        if not node[2]:
            assert node[1], "oracle: empty class"
            return "/(?s:.)/"
        body = "".join(_regex_char(lo) if lo == hi else f"{_regex_char(lo)}-{_regex_char(hi)}" for lo, hi in node[2])
        return f"/[{'^' if node[1] else ''}{body}]/"
    if kind == "any":
        return "/(?s:.)/"
    if kind == "ref":
        return names[node[1]]
    if kind == "seq":
        if not node[1]:
            return '""' if llg else "( )"
        return "(" + " ".join(_emit(x, names, split_literals, llg, extra) for x in node[1]) + ")"
    if kind == "alt":
        return "(" + " | ".join(_emit(x, names, split_literals, llg, extra) for x in node[1]) + ")"
    inner, m, n = _emit(node[1], names, split_literals, llg, extra), node[2], node[3]
    if n is None:
        if llg:
            return f"{inner}{{{m},}}"
        return {0: f"{inner}*", 1: f"{inner}+"}.get(m) or f"({inner} ~ {m} {inner}*)"
    if n == 0:
        return '""' if llg else "( )"
    if llg:
        return f"{inner}{{{m},{n}}}"
    if (m, n) == (0, 1):
        return f"{inner}?"
    # Lark's own `x ~ m..n` makes its Earley analysis slow (seconds for `{0,20}`): a chain of
    # helper rules u_j: x u_(j-1) | () instead (the shape llama.cpp itself uses)
    prev = "( )"
    for _ in range(n - m):
        name = f"u{len(extra)}_rep"
        extra.append(f"{name}: {inner} {prev} | ( )")
        prev = name
    return (f"{inner} ~ {m} " if m else "") + prev


def _to_lark(text: str, start: str, start_as: str, split_literals: bool, llg: bool) -> str:
    rules = parse_gbnf(text)
    names = _rule_names(rules, start, start_as)
    lines = ['%llguidance {}'] if llg else []
    extra: list[str] = []
    for name, body in rules.items():
        alts = [_emit(s, names, split_literals, llg, extra) for s in body[1]]
        lines.append(f"{names[name]}: " + " | ".join(alts))
    return "\n".join(lines + extra) + "\n"


def gbnf_to_lark_earley(text: str, start: str = "root") -> str:
    """GBNF -> Lark text for an Earley parser (start rule named `root`); literals stay whole strings
    (the dynamic lexer makes that exact), classes are one-character regexes."""
    return _to_lark(text, start, "root", split_literals=False, llg=False)


def gbnf_to_llguidance_lark(text: str, start: str = "root") -> str:
    """GBNF -> llguidance Lark text (start rule `start`), every character its own lexeme."""
    return _to_lark(text, start, "start", split_literals=True, llg=True)


def lark_earley_parser(text: str, start: str = "root"):
    import lark

    return lark.Lark(gbnf_to_lark_earley(text, start), parser="earley", lexer="dynamic", start="root")


def lark_accepts(parser, data: bytes) -> bool:
    import lark

    try:
        parser.parse(data.decode("utf-8"))
        return True
    except (UnicodeDecodeError, lark.exceptions.LarkError):
        return False


class _ByteTokenizer:
    """256 one-byte tokens and an end token, for llguidance's TokenizerWrapper."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
    special_token_ids = [256]

    def __call__(self, data) -> list[int]:
        return list(data.encode("utf-8") if isinstance(data, str) else data)


def llguidance_acceptor(text: str, start: str = "root"):
    """data -> whether llguidance (byte tokens) accepts it as a complete word of the GBNF text."""
    import llguidance

    tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()), slices=[])
    grammar = llguidance.LLMatcher.grammar_from_lark(gbnf_to_llguidance_lark(text, start))

    m = llguidance.LLMatcher(tok, grammar, log_level=0)
    if m.is_error():
        raise RuntimeError(m.get_error())

    def accepts(data: bytes) -> bool:
        c = m.deep_copy()  # (reset() keeps an error state)
        return bool(c.consume_tokens(list(data))) and not c.is_error() and c.is_accepting()
    return accepts


# --- the IR side -----------------------------------------------------------------------------------


class IREarley:
    """Earley recognizer (with Aycock-Horspool nullable prediction) over a Grammar IR."""

    def __init__(self, g) -> None:
        self.g = g
        self.by_lhs: dict[int, list[int]] = {}
        for r, a in enumerate(g.lhs):
            self.by_lhs.setdefault(a, []).append(r)
        self.nullable = _nullable(g)
        self._match: dict[tuple[int, int], bool] = {}

    def matches(self, t: int, cp: int) -> bool:
        key = (t, cp)
        got = self._match.get(key)
        if got is None:
            got = self._match[key] = self.g.terminals[t].dfa.matches(chr(cp).encode("utf-8"))
        return got

    def accepts(self, data: bytes) -> bool:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        g, rhs, lhs = self.g, self.g.rhs, self.g.lhs
        start = g.start
        items = [(r, 0, 0) for r in self.by_lhs.get(start, ())]
        cur = self._close(items, 0, [])
        sets = [cur]
        for i, ch in enumerate(text):
            cp = ord(ch)
            nxt = []
            for (r, d, o) in cur[0]:
                if d < len(rhs[r]) and rhs[r][d] >= 0 and self.matches(rhs[r][d], cp):
                    nxt.append((r, d + 1, o))
            if not nxt:
                return False
            cur = self._close(nxt, i + 1, sets)
            sets.append(cur)
        return any(lhs[r] == start and d == len(rhs[r]) and o == 0 for (r, d, o) in cur[0])

    def _close(self, seeds, i, sets):
        """The Earley set at position i from its scanned items: (items, waiting[nonterminal])."""
        rhs, lhs, nullable, by_lhs = self.g.rhs, self.g.lhs, self.nullable, self.by_lhs
        seen = set(seeds)
        order = list(seeds)
        waiting: dict[int, list] = {}
        predicted = set()
        completed_here = set()  # nonterminals completed with origin i
        k = 0
        while k < len(order):
            r, d, o = order[k]
            k += 1
            body = rhs[r]
            if d == len(body):
                a = lhs[r]
                src = waiting if o == i else sets[o][1]
                if o == i:
                    completed_here.add(a)
                for (r2, d2, o2) in list(src.get(a, ())):
                    it = (r2, d2 + 1, o2)
                    if it not in seen:
                        seen.add(it)
                        order.append(it)
                continue
            s = body[d]
            if s >= 0:
                continue
            b = ~s
            waiting.setdefault(b, []).append((r, d, o))
            if b in nullable or b in completed_here:
                it = (r, d + 1, o)
                if it not in seen:
                    seen.add(it)
                    order.append(it)
            if b not in predicted:
                predicted.add(b)
                for r2 in by_lhs.get(b, ()):
                    it = (r2, 0, i)
                    if it not in seen:
                        seen.add(it)
                        order.append(it)
        return order, waiting


def _nullable(g) -> set[int]:
    out: set[int] = set()
    changed = True
    while changed:
        changed = False
        for r, a in enumerate(g.lhs):
            if a not in out and all(s < 0 and ~s in out for s in g.rhs[r]):
                out.add(a)
                changed = True
    return out


def _min_lengths(g) -> tuple[list[float], list[int]]:
    """Shortest derivation length (in terminals) per nonterminal and a well-founded witness rule."""
    inf = float("inf")
    best = [inf] * len(g.nonterminals)
    witness = [-1] * len(g.nonterminals)
    changed = True
    while changed:
        changed = False
        for r, a in enumerate(g.lhs):
            cost = sum(1 if s >= 0 else best[~s] for s in g.rhs[r])
            if cost < best[a]:
                best[a], witness[a] = cost, r
                changed = True
    return best, witness


def _random_char(dfa, rng: random.Random, live: dict) -> bytes:
    """A random word of a terminal's DFA (one code point for the atoms), preferring ASCII;
    `live` caches each state's (bytes, ASCII bytes) with a transition."""
    out, s = bytearray(), 0
    while True:
        got = live.get((id(dfa), s))
        if got is None:
            alive = [int(b) for b in np.flatnonzero(dfa.trans[s] >= 0)]
            got = live[(id(dfa), s)] = (alive, [b for b in alive if b < 0x80])
        alive, ascii_ = got
        if dfa.accept[s] and (not alive or rng.random() < 0.5):
            return bytes(out)
        b = rng.choice(ascii_ if ascii_ and (s != 0 or rng.random() < 0.8) else alive)
        out.append(b)
        s = int(dfa.trans[s, b])


def random_words(g, n: int, seed: int = 0, max_len: int = 60) -> list[bytes]:
    """n words of the IR's language by random derivation; once the output (plus the shortest
    completion of what is pending) would pass max_len, each nonterminal takes its shortest rule."""
    rng = random.Random(seed)
    best, witness = _min_lengths(g)
    by_lhs: dict[int, list[int]] = {}
    for r, a in enumerate(g.lhs):
        if all(s >= 0 or best[~s] < float("inf") for s in g.rhs[r]):
            by_lhs.setdefault(a, []).append(r)
    words, live = [], {}
    for _ in range(n):
        out: list[bytes] = []
        stack = [~g.start]
        pending = best[g.start]
        steps = 0
        while stack:
            s = stack.pop()
            if s >= 0:
                out.append(_random_char(g.terminals[s].dfa, rng, live))
                pending -= 1
                continue
            a = ~s
            pending -= best[a]
            steps += 1
            if len(out) + pending + best[a] >= max_len or steps > 20 * max_len:
                r = witness[a]
            else:
                r = rng.choice(by_lhs[a])
            body = g.rhs[r]
            pending += sum(1 if x >= 0 else best[~x] for x in body)
            stack.extend(reversed(body))
        words.append(b"".join(out))
    return words


def mutations(word: bytes, rng: random.Random, k: int = 2) -> list[bytes]:
    """k nearby candidates (mostly invalid): a character deleted, inserted, replaced or swapped,
    the word truncated or extended; new characters come from the word itself or are random."""
    text = word.decode("utf-8")
    pool = list(set(text)) + list(" \n\t\"'{}[]()<>,.:;=+-*/0aZ_\\\u00e9\u3042\U0001F600")
    out = []
    for _ in range(k):
        chars = list(text)
        op = rng.randrange(6)
        pos = rng.randrange(len(chars) + 1)
        if op == 0 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op == 1:
            chars.insert(pos, rng.choice(pool))
        elif op == 2 and chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(pool)
        elif op == 3 and len(chars) > 1:
            j = rng.randrange(len(chars) - 1)
            chars[j], chars[j + 1] = chars[j + 1], chars[j]
        elif op == 4 and chars:
            chars = chars[:pos]
        else:
            chars.append(rng.choice(pool))
        out.append("".join(chars).encode("utf-8"))
    return out
