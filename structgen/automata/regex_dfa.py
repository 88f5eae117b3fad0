"""Regular expressions → byte DFAs: Python's own regex parser, a Thompson NFA over UTF-8 byte
ranges, and a subset construction in numba (then dfa.py minimises and trims).

The dialect is the full-match Python one that frontend/regex.py and formats.py write (and that
interegular read before): `\\d`, `\\w`, `\\s` are the ASCII classes, `.` is any character but a
newline, `(?i)` folds case. Anchors, lookarounds, backreferences and atomic groups change or
escape the regular language of a full match and are refused with RegexError. The DFA accepts the
UTF-8 encodings of the matching strings (surrogates have none). Counted repetitions are copies of
their operand, nested (`a{0,3}` is `(a(a(a)?)?)?`), so the NFA's closures stay small.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import lru_cache
from re import _constants as C
from re import _parser as sre_parse

import numpy as np
from numba import njit

from ..budget import check as check_budget
from ..errors import LimitExceeded, RegexError, shown
from .dfa import ANY_CHAR, DEFAULT_MAX_STATES, ByteDFA, _frozen, _minimise, _product, _trim
from .product import pool_equal
from .utf8 import MAX_UNICODE, _encoded_sequences, complement_ranges, merge_ranges
from .views import NFAView

MAX_NFA_NODES = 2_000_000
SUBSET_SLACK = 4  # the subset construction's states per state of the minimal DFA allowed (see _dfa_of)
_ASCII = {
    C.CATEGORY_DIGIT: ((0x30, 0x39),),
    C.CATEGORY_WORD: ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    C.CATEGORY_SPACE: ((0x09, 0x0D), (0x20, 0x20)),  # \t \n \v \f \r and space
}
_NOT = {C.CATEGORY_NOT_DIGIT: C.CATEGORY_DIGIT, C.CATEGORY_NOT_WORD: C.CATEGORY_WORD,
        C.CATEGORY_NOT_SPACE: C.CATEGORY_SPACE}


@lru_cache(maxsize=1)
def _case_classes() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Python's re under IGNORECASE: the code points that match some other one (sorted), and those
    others. Two characters match alike iff their one-character lowercases are equal, or re's extra
    folds (re._casefix: ſ ~ s, K (Kelvin) ~ k, ẞ ~ ß, ...) link those. Built once (~0.5 s)."""
    from re._casefix import _EXTRA_CASES

    by_lower: dict[int, list[int]] = {}
    for cp in range(MAX_UNICODE + 1):
        low = chr(cp).lower()
        if len(low) == 1 and ord(low) != cp:
            by_lower.setdefault(ord(low), [ord(low)]).append(cp)
    for low, extra in _EXTRA_CASES.items():  # join the groups of lowercases re folds together
        group = set(by_lower.get(low, [low]))
        for e in extra:
            group.update(by_lower.get(e, [e]))
        by_lower[low] = sorted(group)
    others: dict[int, tuple[int, ...]] = {}
    for group in by_lower.values():
        for cp in group:
            others[cp] = tuple(sorted(set(others.get(cp, ())) | {x for x in group if x != cp}))
    return sorted(others), others


def case_variants(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """`ranges` closed under Python re's case-insensitive matching (see _case_classes)."""
    cased, others = _case_classes()
    extra = [(v, v) for lo, hi in ranges for cp in cased[bisect_left(cased, lo):bisect_right(cased, hi)]
             for v in others[cp]]
    return merge_ranges(list(ranges) + extra) if extra else ranges


@lru_cache(maxsize=4096)
def _sequences(ranges: tuple[tuple[int, int], ...], json_escape: bool) -> tuple[list[tuple[int, int]], ...]:
    """The byte-range sequences of a character set (UTF-8, or json.dumps' escaped form); repeated
    classes (`[\\s\\S]{1,1024}`) are expanded once."""
    return tuple(seq for lo, hi in ranges for seq in _encoded_sequences(lo, hi, json_escape))


class _NFA:
    """A Thompson NFA under construction: per node, epsilon targets and byte-range edges. With
    `json_escape`, a character is written as inside a JSON string (json.dumps' escapes)."""

    def __init__(self, max_nodes: int, json_escape: bool = False) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []
        self.max_nodes = max_nodes
        self.json_escape = json_escape

    def node(self) -> int:
        if len(self.eps) >= self.max_nodes:
            raise LimitExceeded(f"the regex needs more than {self.max_nodes} NFA nodes", limit="NFA nodes")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def chars(self, ranges: tuple[tuple[int, int], ...]) -> tuple[int, int]:
        """A fragment matching one character of `ranges` (its UTF-8 byte sequences share prefixes)."""
        start, end = self.node(), self.node()
        inner: dict[tuple[int, int, int], int] = {}
        for seq in _sequences(ranges, self.json_escape):
            cur = start
            for blo, bhi in seq[:-1]:
                nxt = inner.get((cur, blo, bhi))
                if nxt is None:
                    nxt = inner[(cur, blo, bhi)] = self.node()
                    self.edges[cur].append((blo, bhi, nxt))
                cur = nxt
            self.edges[cur].append((seq[-1][0], seq[-1][1], end))
        return start, end

    def empty(self) -> tuple[int, int]:
        n = self.node()
        return n, n


class _Builder:
    """sre_parse's parse tree → NFA fragments (a fragment is its (start, end) nodes)."""

    def __init__(self, pattern: str, max_nodes: int, json_escape: bool) -> None:
        self.pattern = pattern
        self.nfa = _NFA(max_nodes, json_escape)

    def fail(self, what: str) -> RegexError:
        return RegexError(f"cannot compile regex {self.pattern!r}: {what} is not supported")

    def seq(self, items, flags: int) -> tuple[int, int]:
        nfa = self.nfa
        start = cur = nfa.node()
        check_budget(lambda: f"regex {shown(self.pattern)}")
        for op, av in items:
            s, e = self.item(op, av, flags)
            nfa.eps[cur].append(s)
            cur = e
        return start, cur

    def charset(self, ranges, flags: int) -> tuple[int, int]:
        ranges = merge_ranges(ranges)
        if flags & C.SRE_FLAG_IGNORECASE:
            ranges = case_variants(ranges)
        return self.nfa.chars(ranges)

    def class_ranges(self, items, flags: int) -> tuple[tuple[int, int], ...]:
        """A class's characters. Under IGNORECASE its members are closed under case folding before a
        `^` negates them, and so are a negated category's (\\W is [^A-Za-z0-9_]: no K sign, no ſ)."""
        icase = bool(flags & C.SRE_FLAG_IGNORECASE)
        negate = False
        ranges: list[tuple[int, int]] = []
        for op, av in items:
            if op is C.NEGATE:
                negate = True
            elif op is C.LITERAL:
                ranges.append((av, av))
            elif op is C.RANGE:
                ranges.append(av)
            elif op is C.CATEGORY:
                ranges.extend(self.category(av, icase))
            else:
                raise self.fail(f"{op} in a character class")
        if icase:
            ranges = list(case_variants(merge_ranges(ranges)))
        return complement_ranges(merge_ranges(ranges)) if negate else merge_ranges(ranges)

    def category(self, cat, icase: bool = False) -> tuple[tuple[int, int], ...]:
        if cat in _ASCII:
            return _ASCII[cat]
        if cat in _NOT:
            pos = _ASCII[_NOT[cat]]
            return complement_ranges(case_variants(pos) if icase else pos)
        raise self.fail(f"the class {cat}")

    def item(self, op, av, flags: int) -> tuple[int, int]:
        nfa = self.nfa
        if op is C.LITERAL:
            return self.charset(((av, av),), flags)
        if op is C.NOT_LITERAL:
            lits = case_variants(((av, av),)) if flags & C.SRE_FLAG_IGNORECASE else ((av, av),)
            return nfa.chars(complement_ranges(merge_ranges(lits)))
        if op is C.ANY:
            return nfa.chars(((0, MAX_UNICODE),) if flags & C.SRE_FLAG_DOTALL else ((0, 9), (11, MAX_UNICODE)))
        if op is C.IN:
            return nfa.chars(self.class_ranges(av, flags))
        if op is C.SUBPATTERN:
            _, add, remove, sub = av
            return self.seq(sub, (flags | add) & ~remove)
        if op is C.BRANCH:
            start, end = nfa.node(), nfa.node()
            for alt in av[1]:
                s, e = self.seq(alt, flags)
                nfa.eps[start].append(s)
                nfa.eps[e].append(end)
            return start, end
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            if op is C.POSSESSIVE_REPEAT:
                raise self.fail("a possessive repetition")
            lo, hi, sub = av
            start = cur = nfa.node()
            for _ in range(lo):
                s, e = self.seq(sub, flags)
                nfa.eps[cur].append(s)
                cur = e
            if hi == C.MAXREPEAT:
                s, e = self.seq(sub, flags)
                loop = nfa.node()
                nfa.eps[cur].append(loop)
                nfa.eps[loop].append(s)
                nfa.eps[e].append(loop)
                return start, loop
            end = nfa.node()
            nfa.eps[cur].append(end)
            for _ in range(hi - lo):  # nested optional copies: (a(a(a)?)?)?
                s, e = self.seq(sub, flags)
                nfa.eps[cur].append(s)
                nfa.eps[e].append(end)
                cur = e
            return start, end
        if op is C.AT:
            raise self.fail("an anchor")
        if op in (C.ASSERT, C.ASSERT_NOT):
            raise self.fail("a lookaround")
        if op in (C.GROUPREF, C.GROUPREF_EXISTS):
            raise self.fail("a backreference")
        if op is C.ATOMIC_GROUP:
            raise self.fail("an atomic group")
        raise self.fail(str(op))


def regex_nfa(pattern: str, *, quoted: bool = False, max_nodes: int = MAX_NFA_NODES):
    """(the byte NFA as a views.NFAView, start node, accept node) of a full-match regex; `quoted`:
    of the JSON string literals (quotes, json.dumps' escapes) whose value matches."""
    try:
        tree = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as e:
        raise RegexError(f"cannot compile regex {pattern!r}: {e}") from None
    b = _Builder(pattern, max_nodes, quoted)
    try:
        start, end = b.seq(tree.data, tree.state.flags)
    except RecursionError:
        raise RegexError(f"cannot compile regex {pattern!r}: nested too deeply") from None
    if quoted:  # raw quotes around the escaped value
        nfa = b.nfa
        s0, e1 = nfa.node(), nfa.node()
        nfa.edges[s0].append((0x22, 0x22, start))
        nfa.edges[end].append((0x22, 0x22, e1))
        start, end = s0, e1
    return _csr(b.nfa), start, end


def _dfa_of(pattern: str, quoted: bool, max_states: int) -> ByteDFA:
    """The minimal trimmed DFA (possibly with no state: the empty language). `max_states` bounds the
    minimal DFA; the subset construction before minimising may use up to SUBSET_SLACK times that."""
    nfa = regex_nfa(pattern, quoted=quoted)
    trans, accept = nfa_to_dfa(*nfa, max_states=SUBSET_SLACK * max_states, desc=pattern)
    trans, accept = _minimise(trans, accept)
    dfa = _trim(trans, accept)
    if dfa.num_states > max_states:
        raise LimitExceeded(f"regex {shown(pattern)} needs {dfa.num_states} DFA states, more than {max_states}",
                            limit="max_dfa_states")
    return dfa


@lru_cache(maxsize=1024)
def regex_dfa(pattern: str, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """Minimal byte-level DFA of a Python-dialect regex (full match) over UTF-8. Cached, read-only;
    RegexError if it matches nothing."""
    return _nonempty(_dfa_of(pattern, False, max_states), pattern)


@lru_cache(maxsize=1024)
def quoted_dfa(pattern: str, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """DFA of the JSON string literals (quotes included, json.dumps' escapes) whose value fully
    matches `pattern`; possibly empty (no state). Every string has one such literal, so these
    DFAs combine exactly by intersection and difference (`meet`, dfa.difference)."""
    bounds = _LENGTH.fullmatch(pattern)
    if bounds is not None:  # minLength / maxLength
        lo, comma, hi = bounds.groups()
        return _frozen(_quoted_length_dfa(int(lo), int(hi) if hi else None if comma else int(lo), max_states))
    return _frozen(_dfa_of(pattern, True, max_states))


_LENGTH = re.compile(r"\[\\s\\S\]\{(\d+)(,?)(\d*)\}")  # ANY_CHAR{lo}, {lo,} or {lo,hi}


def _quoted_length_dfa(lo: int, hi: int | None, max_states: int) -> ByteDFA:
    """quoted_dfa of ANY_CHAR{lo,hi} (hi None: no upper bound), built from the one of ANY_CHAR*
    (`"`, a loop of one character at state a, `"`): a copy of the loop per count of characters
    written, each character leading into the next copy, the closing quote allowed from count lo
    on. Past hi only the closing quote; with no bound, count lo is a state whose characters run
    through copy lo - 1's insides (they end at count lo either way). The subset construction
    took 0.3 s for {0,1024}; this is a few ms. Minimal, as the regex route's DFA is."""
    star = quoted_dfa(ANY_CHAR + "*", max_states)
    if hi is None and lo == 0:
        return star
    quote = ord('"')
    a = int(star.trans[0, quote])
    f = int(star.trans[a, quote])
    inner = [x for x in range(star.num_states) if x not in (0, a, f)]
    local = np.full(star.num_states, -1, dtype=np.int32)  # star state -> its index in a copy (a first)
    local[[a] + inner] = np.arange(1 + len(inner), dtype=np.int32)
    block = star.trans[[a] + inner]
    inside = np.where(block >= 0, local[np.maximum(block, 0)], -1)
    code = np.where(block == a, _NEXT, np.where(block == f, _CLOSE, inside))
    m = block.shape[0]
    copies = lo if hi is None else hi  # full copies (a and the inside of a character); then one state
    n = 1 + copies * m + 1 + 1
    if n > max_states:
        raise LimitExceeded(f"a string of {lo} to {hi if hi is not None else 'any number of'} characters needs {n} "
                            f"DFA states, more than {max_states}", limit="max_dfa_states")
    trans = np.full((n, 256), -1, dtype=np.int32)
    accept = np.zeros(n, dtype=np.bool_)
    accept[n - 1] = True
    trans[0, quote] = 1
    _length_copies(trans, code.astype(np.int32), np.int64(copies), np.int64(lo), hi is None)
    return ByteDFA(trans, accept)


_NEXT, _CLOSE = -2, -3  # _length_copies' codes: a character ends here; the closing quote


@njit(cache=True, nogil=True)
def _length_copies(trans, code, copies, lo, unbounded):
    """Rows 1 .. of _quoted_length_dfa: copy k of the character loop at 1 + k * m (code: local
    targets, _NEXT, _CLOSE, -1), then the count-`copies` state (only the closing quote; with no
    bound also the characters, into the last copy's insides), then the final state."""
    m = code.shape[0]
    final = trans.shape[0] - 1
    last = 1 + copies * m
    for k in range(copies):
        base = 1 + k * m
        for x in range(m):
            for b in range(256):
                c = code[x, b]
                if c >= 0:
                    trans[base + x, b] = base + c
                elif c == _NEXT:
                    trans[base + x, b] = base + m if k + 1 < copies else last
                elif c == _CLOSE and k >= lo:
                    trans[base + x, b] = final
    for b in range(256):
        c = code[0, b]
        if c == _CLOSE:
            trans[last, b] = final
        elif unbounded and c >= 0:
            trans[last, b] = 1 + (copies - 1) * m + c
        elif unbounded and c == _NEXT:  # a one-byte character
            trans[last, b] = last


def meet(a: ByteDFA, b: ByteDFA, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """a ∩ b, minimised and trimmed; empty (no state) when they share no word."""
    if a.num_states == 0 or b.num_states == 0:
        return a if a.num_states == 0 else b
    return _product(a, b, False, max_states)


def minus(a: ByteDFA, b: ByteDFA, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """a − b, minimised and trimmed (possibly empty)."""
    if a.num_states == 0 or b.num_states == 0:
        return a
    return _product(a, b, True, max_states)


def json_string_dfa(value_patterns: list[str], max_states: int = DEFAULT_MAX_STATES,
                    exclude: tuple[list[str], ...] = ()) -> ByteDFA:
    """DFA of the JSON string literals (quotes included, json.dumps-style escapes) whose decoded
    value fully matches every regex in `value_patterns` (their intersection) and, for each group
    in `exclude`, fails at least one of its regexes. Cached: schemas repeat the same constraints."""
    return _json_string_dfa(tuple(value_patterns), max_states, tuple(tuple(g) for g in exclude))


@lru_cache(maxsize=1024)
def _json_string_dfa(value_patterns: tuple[str, ...], max_states: int, exclude: tuple[tuple[str, ...], ...]) -> ByteDFA:
    desc = " & ".join(value_patterns) or "any string"
    dfa = None
    for p in value_patterns or (ANY_CHAR + "*",):
        d = quoted_dfa(p, max_states)
        dfa = d if dfa is None else meet(dfa, d, max_states)
    for group in exclude:
        bad = None
        for p in group or (ANY_CHAR + "*",):
            d = quoted_dfa(p, max_states)
            bad = d if bad is None else meet(bad, d, max_states)
        dfa = minus(dfa, bad, max_states)
    return _nonempty(dfa, desc)


def _nonempty(dfa: ByteDFA, desc: str) -> ByteDFA:
    """dfa, read-only; RegexError if it accepts nothing."""
    if dfa.num_states == 0:
        raise RegexError(f"regex {desc!r} matches nothing")
    return _frozen(dfa)


@lru_cache(maxsize=256)
def json_string_body_dfa(value_pattern: str, max_states: int = DEFAULT_MAX_STATES) -> ByteDFA:
    """Like json_string_dfa([value_pattern]) without the quotes: the escaped contents of a string,
    so that a long string can be split into several lexemes."""
    quoted = json_string_dfa([value_pattern], max_states)
    trans, accept = quoted.trans.copy(), np.zeros(quoted.num_states, dtype=bool)
    quote = ord('"')
    first = int(trans[0, quote])
    is_end = quoted.accept & ~(quoted.trans >= 0).any(axis=1)  # after the closing quote
    closing = (trans[:, quote] >= 0) & is_end[np.maximum(trans[:, quote], 0)]
    accept[closing] = True
    trans[closing, quote] = -1  # the closing quote becomes its own lexeme
    perm = np.arange(len(accept))
    perm[[0, first]] = perm[[first, 0]]  # the state after the opening quote becomes state 0
    inv = np.argsort(perm)
    trans = np.where(trans >= 0, inv[np.maximum(trans, 0)], -1)[perm].astype(np.int32)
    trans, accept = _minimise(trans, accept[perm])
    return _frozen(_trim(trans, accept))


def _csr(nfa: _NFA) -> NFAView:
    n = len(nfa.eps)
    eps_ptr = np.zeros(n + 1, dtype=np.int64)
    eps_ptr[1:] = np.cumsum([len(x) for x in nfa.eps])
    eps_to = np.fromiter((t for x in nfa.eps for t in x), dtype=np.int32, count=int(eps_ptr[-1]))
    edge_ptr = np.zeros(n + 1, dtype=np.int64)
    edge_ptr[1:] = np.cumsum([len(x) for x in nfa.edges])
    flat = np.array([e for x in nfa.edges for e in x], dtype=np.int32).reshape(-1, 3)
    return NFAView(edge_ptr, np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1]),
                   np.ascontiguousarray(flat[:, 2]), eps_ptr, eps_to)


def nfa_to_dfa(nfa: NFAView, start: int, accept: int, max_states: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction: (trans (n, 256) int32 with -1 for none, accept (n,) bool), state 0 initial."""
    bounds = np.zeros(257, dtype=np.bool_)
    bounds[0] = True
    bounds[nfa.edge_lo] = True
    bounds[np.minimum(nfa.edge_hi.astype(np.int64) + 1, 256)] = True
    cls_of = (np.cumsum(bounds[:256]) - 1).astype(np.int32)
    rep = np.flatnonzero(bounds[:256]).astype(np.int32)
    trans, acc = _subset(nfa, np.int64(start), np.int64(accept), rep, np.int64(max_states))
    if trans.shape[0] == 0:
        raise LimitExceeded(f"regex {shown(desc)} needs more than {max_states // SUBSET_SLACK} DFA states",
                            limit="max_dfa_states")
    return np.ascontiguousarray(trans[:, cls_of]), acc


@njit(cache=True, nogil=True)
def _closure(seeds, n_seeds, eps_ptr, eps_to, mark, stamp, out):
    """The epsilon closure of seeds[:n_seeds] into out (unsorted); returns its size."""
    k = 0
    top = 0
    for i in range(n_seeds):
        u = seeds[i]
        if mark[u] != stamp:
            mark[u] = stamp
            out[k] = u
            k += 1
    while top < k:
        u = out[top]
        top += 1
        for j in range(eps_ptr[u], eps_ptr[u + 1]):
            v = eps_to[j]
            if mark[v] != stamp:
                mark[v] = stamp
                out[k] = v
                k += 1
    return k


@njit(cache=True, nogil=True)
def _set_hash(a, n):
    h = np.uint64(1469598103934665603)
    for i in range(n):
        h = (h ^ np.uint64(a[i])) * np.uint64(1099511628211)
    return h


@njit(cache=True, nogil=True)
def _subset(nfa, start, accept, rep, max_states):
    edge_ptr, edge_lo, edge_hi, edge_to = nfa.edge_ptr, nfa.edge_lo, nfa.edge_hi, nfa.edge_to
    eps_ptr, eps_to = nfa.eps_ptr, nfa.eps_to
    n_nodes = eps_ptr.shape[0] - 1
    n_cls = rep.shape[0]
    mark = np.zeros(n_nodes, dtype=np.int64)
    stamp = 0
    seeds = np.empty(n_nodes, dtype=np.int32)
    buf = np.empty(n_nodes, dtype=np.int32)
    pool = np.empty(1024, dtype=np.int32)  # the sets, concatenated
    ptr = np.zeros(65, dtype=np.int64)  # set i is pool[ptr[i]:ptr[i + 1]]
    trans = np.full((64, n_cls), -1, dtype=np.int32)
    acc = np.zeros(64, dtype=np.bool_)
    cap = 1 << 10
    slots = np.full(cap, -1, dtype=np.int64)
    hashes = np.zeros(64, dtype=np.uint64)
    # state 0: the closure of the start node
    stamp += 1
    seeds[0] = start
    k = _closure(seeds, 1, eps_ptr, eps_to, mark, stamp, buf)
    s = np.sort(buf[:k])
    pool[:k] = s
    ptr[1] = k
    hashes[0] = _set_hash(s, k)
    slots[hashes[0] & np.uint64(cap - 1)] = 0
    n = 1
    i = 0
    while i < n:
        a, b = ptr[i], ptr[i + 1]
        for j in range(a, b):
            if pool[j] == accept:
                acc[i] = True
        for c in range(n_cls):
            byte = rep[c]
            m = 0
            for j in range(a, b):
                u = pool[j]
                for e in range(edge_ptr[u], edge_ptr[u + 1]):
                    if edge_lo[e] <= byte <= edge_hi[e]:
                        seeds[m] = edge_to[e]
                        m += 1
            if m == 0:
                continue
            stamp += 1
            k = _closure(seeds, m, eps_ptr, eps_to, mark, stamp, buf)
            s = np.sort(buf[:k])
            h = _set_hash(s, k)
            slot = h & np.uint64(cap - 1)
            found = -1
            while slots[slot] >= 0:
                t = slots[slot]
                if hashes[t] == h and ptr[t + 1] - ptr[t] == k and pool_equal(pool, ptr[t], s, k):
                    found = t
                    break
                slot = (slot + np.uint64(1)) & np.uint64(cap - 1)
            if found < 0:
                if n >= max_states:
                    return np.zeros((0, n_cls), dtype=np.int32), np.zeros(0, dtype=np.bool_)
                found = n
                if n + 1 >= trans.shape[0]:  # grow the per-state arrays
                    grow = trans.shape[0] * 2
                    t2 = np.full((grow, n_cls), -1, dtype=np.int32)
                    t2[:n] = trans[:n]
                    trans = t2
                    a2 = np.zeros(grow, dtype=np.bool_)
                    a2[:n] = acc[:n]
                    acc = a2
                    h2 = np.zeros(grow, dtype=np.uint64)
                    h2[:n] = hashes[:n]
                    hashes = h2
                    p2 = np.zeros(grow + 1, dtype=np.int64)
                    p2[:n + 1] = ptr[:n + 1]
                    ptr = p2
                if ptr[n] + k > pool.shape[0]:
                    p3 = np.empty(max(pool.shape[0] * 2, ptr[n] + k), dtype=np.int32)
                    p3[:ptr[n]] = pool[:ptr[n]]
                    pool = p3
                pool[ptr[n]:ptr[n] + k] = s
                ptr[n + 1] = ptr[n] + k
                hashes[n] = h
                slots[slot] = n
                n += 1
                if 2 * n > cap:  # rehash
                    cap *= 2
                    slots = np.full(cap, -1, dtype=np.int64)
                    for t in range(n):
                        sl = hashes[t] & np.uint64(cap - 1)
                        while slots[sl] >= 0:
                            sl = (sl + np.uint64(1)) & np.uint64(cap - 1)
                        slots[sl] = t
            trans[i, c] = found
        i += 1
    return trans[:n].copy(), acc[:n].copy()


# --- case-insensitive literals (Lark's "select"i): a class of case variants per character

_EXTRA_FOLDS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def _case_variants(c: str) -> set[str]:
    """Characters that `re.fullmatch("(?i:" + c + ")", x)` matches, as Python's re defines it."""
    import re

    cands = {c, c.lower(), c.upper(), c.swapcase(), c.title(), c.casefold()}
    cands |= set(_EXTRA_FOLDS.get(c.lower(), ""))
    for letter, extra in _EXTRA_FOLDS.items():
        if c in extra:
            cands |= {letter, letter.upper()} | set(extra)
    pat = re.compile("(?i:" + re.escape(c) + ")")
    return {x for x in cands if len(x) == 1 and pat.fullmatch(x)}


def literal_dfa_ignorecase(text: str) -> ByteDFA:
    """DFA of a case-insensitive literal (Lark's `"select"i`) with Python re's case folding."""
    parts = []
    for c in text:
        chars = sorted(_case_variants(c))
        parts.append("[" + "".join(_class_escape(x) for x in chars) + "]")
    return regex_dfa("".join(parts))


def _class_escape(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c
