"""Our LALR(1) construction (automata/lr.py) against Lark's: the same automaton, state for state.

Where Lark builds tables without a conflict, ours must have the same LR(0) states (matched by
walking both from the start state) and the same action in every cell. Where Lark resolves a
shift/reduce conflict silently, ours must refuse it unless `prefer_shift=True`, and then equal
Lark's choice. Where Lark reports a reduce/reduce collision, ours refuses it too.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import lark
import pytest
from lark.parsers.lalr_analysis import Shift

import numpy as np

from structgen.automata.lr import LRBuilder
from structgen.automata.lr_passes import _csr, _digraph_bits
from structgen.errors import GrammarError
from structgen.frontend.lark import lark_to_ir

GRAMMARS = sorted((Path(__file__).resolve().parents[2] / "grammars").glob("*.lark"))


def lark_table(text: str):
    """Lark's LALR parse table (states -> {symbol: (Shift, state) | (Reduce, rule)}), or None on a collision."""
    try:
        parser = lark.Lark(text, parser="lalr", lexer="basic", start="start")
    except lark.exceptions.GrammarError:
        return None
    return parser.parser.parser.parser.parse_table


def same_automaton(text: str, prefer_shift: bool = False) -> tuple[int, int]:
    """Walk our tables and Lark's from their start states together; return (our states, cells compared)."""
    ir = lark_to_ir(text)
    ours, unresolved, _ = LRBuilder(ir).tables(prefer_shift=prefer_shift)
    assert not unresolved
    pt = lark_table(text)
    assert pt is not None
    names = [t.name for t in ir.terminals] + ["$END"]
    nts = ours.nonterminal_names
    rule_key = [(ir.nonterminals[ir.lhs[r]], tuple(ir.symbol_name(s) for s in ir.rhs[r])) for r in range(ir.num_rules)]
    match = {ours.start_state: pt.start_states["start"]}
    work = [ours.start_state]
    cells = 0
    while work:
        s = work.pop()
        row = pt.states[match[s]]
        for col, name in enumerate(names):
            a = int(ours.action[s, col])
            theirs = row.get(name)
            if name == "$END" and a > 0:  # our accepting shift of $END: Lark accepts in its end state
                # (or, resolving conflicts as shifts, where Lark reduces a nullable rule before accepting)
                assert (theirs is None and pt.end_states["start"] == match[s]) or (
                    prefer_shift and theirs[0] is not Shift), (s, theirs)
                continue
            if a == 0:
                assert theirs is None, (s, name, theirs)
                continue
            cells += 1
            kind, arg = theirs
            if a > 0:
                assert kind is Shift, (s, name)
                if a - 1 in match:
                    assert match[a - 1] == arg
                else:
                    match[a - 1] = arg
                    work.append(a - 1)
            else:
                assert kind is not Shift, (s, name)
                assert rule_key[-a - 1] == (arg.origin.name, tuple(x.name for x in arg.expansion))
        for j, name in enumerate(nts[:-1]):
            g = ours.goto(s, j)
            theirs = row.get(name)
            assert (g >= 0) == (theirs is not None), (s, name)
            if g >= 0:
                cells += 1
                if g in match:
                    assert match[g] == theirs[1]
                else:
                    match[g] = theirs[1]
                    work.append(g)
    assert len(set(match.values())) == len(match)  # one to one
    return len(match), cells


@pytest.mark.parametrize("path", GRAMMARS, ids=[p.stem for p in GRAMMARS])
def test_shipped_grammars_have_lark_s_automaton(path: Path) -> None:
    states, cells = same_automaton(path.read_text(encoding="utf-8"))
    assert states > 10 and cells > states


def random_grammar(rng: random.Random) -> str:
    """A small random CFG over the literals a..d (Lark syntax), every nonterminal reachable from start."""
    n = rng.randint(1, 4)
    nts = ["start"] + [f"n{i}" for i in range(1, n)]
    terms = ['"a"', '"b"', '"c"', '"d"'][:rng.randint(2, 4)]
    lines = []
    for i, a in enumerate(nts):
        alts = []
        for _ in range(rng.randint(1, 3)):
            body = [rng.choice(terms if rng.random() < 0.6 else nts) for _ in range(rng.randint(0, 4))]
            alts.append(" ".join(body))
        if i + 1 < len(nts):  # keep the next one reachable
            alts[0] = (alts[0] + " " + nts[i + 1]).strip()
        alts.append(rng.choice(terms))  # and productive
        lines.append(f"{a}: " + " | ".join(x if x else '""' for x in alts).replace('""', ""))
    return "\n".join(lines) + "\n"


def lark_conflicts(text: str) -> list[str] | None:
    """The shift/reduce conflicts Lark resolves silently (from its debug log); None on a collision."""
    logger = logging.getLogger("lark")
    seen: list[str] = []

    class Log(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Shift/Reduce" in record.getMessage():
                seen.append(record.getMessage())

    h = Log(logging.DEBUG)
    old = logger.level
    logger.addHandler(h)
    logger.setLevel(logging.DEBUG)
    try:
        if lark_table(text) is None:
            return None
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    return seen


def test_random_grammars_agree_with_lark() -> None:
    """300 random grammars: LALR ones give Lark's automaton; conflicts are refused exactly where Lark
    resolved one silently (and equal Lark's choice with prefer_shift=True) or reported a collision."""
    rng = random.Random(7)
    kinds = {"lalr": 0, "shift/reduce": 0, "reduce/reduce": 0, "skipped": 0}
    for _ in range(300):
        text = random_grammar(rng)
        try:
            ir = lark_to_ir(text)
        except GrammarError:  # unproductive: refused before any table is built
            kinds["skipped"] += 1
            continue
        _, unresolved, _ = LRBuilder(ir).tables()
        conflicts = lark_conflicts(text)
        if conflicts is None:  # Lark: reduce/reduce collision
            assert any(c.kind == "reduce/reduce" for c in unresolved), text
            kinds["reduce/reduce"] += 1
        elif conflicts:
            assert unresolved and all(c.kind == "shift/reduce" for c in unresolved), text
            same_automaton(text, prefer_shift=True)
            kinds["shift/reduce"] += 1
        elif unresolved:
            # Lark never shifts $END, so it cannot see a reduce competing with accepting at the end of
            # `start` (start -> start, or start -> start n with n nullable): ambiguous, refused by us
            assert all("$root: start . $END (shift)" in str(c) for c in unresolved), (text, unresolved)
            kinds["skipped"] += 1
        else:
            same_automaton(text)
            kinds["lalr"] += 1
    assert min(kinds["lalr"], kinds["shift/reduce"], kinds["reduce/reduce"]) >= 20, kinds


def test_digraph_unions_over_cycles() -> None:
    # 0 -> 1 -> 2 -> 0 is one SCC (all get the union); 3 -> 0 adds its own bit; 4 is alone
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 0, 0])
    ptr, rel = _csr(src, dst, 5)
    f = _digraph_bits(ptr, rel, np.array([[1], [2], [4], [8], [16]], dtype=np.uint64))
    assert f[:, 0].tolist() == [7, 7, 7, 15, 16]


def test_conflicts_name_state_terminal_and_rules() -> None:
    ir = lark_to_ir('start: a | b\na: "x"\nb: "x"')
    _, unresolved, _ = LRBuilder(ir).tables()
    (c,) = unresolved
    assert c.kind == "reduce/reduce" and c.terminal == "$END"
    assert "a: X ." in str(c) and "b: X ." in str(c)


def test_declared_priority_settles_reduce_reduce_as_lark_does() -> None:
    text = 'start: a | b\na.2: "x"\nb: "x"'
    ir = lark_to_ir(text)
    tables, unresolved, resolved = LRBuilder(ir).tables()
    assert not unresolved and resolved[0].resolution == "priority"
    same_automaton(text)


def test_set_shift_edits_a_conflict_cell_and_keeps_its_reductions() -> None:
    """ParserTables.set_shift (what automata/objects.py uses to drop or retarget a shift that a
    constraint state forbids or redirects): in a conflict cell it writes a new fork entry with the
    cell's reductions kept, and shift_of reads the shift back; in a plain cell it writes the action."""
    ir = lark_to_ir('start: a "x" | b\na: "x"\nb: "x" "x"')  # after one "x": shift the next, or reduce a
    tables, unresolved, _ = LRBuilder(ir).tables(glr=True)
    assert unresolved and tables.glr
    n_rules = len(tables.rule_len)
    row, t = next((r, c) for r in range(tables.num_states) for c in range(tables.action.shape[1])
                  if tables.action[r, c] < -n_rules)
    k = -int(tables.action[row, t]) - 1 - n_rules
    acts = tables.fork_acts[tables.fork_ptr[k]:tables.fork_ptr[k + 1]].tolist()
    shift = tables.shift_of(row, t)
    assert shift >= 0 and shift + 1 in acts
    reduces = [a for a in acts if a < 0]
    forks_before = len(tables.fork_ptr)
    tables.set_shift(row, t, 7)  # retarget: a new fork entry (entries are shared by copies of the row)
    assert tables.shift_of(row, t) == 7 and len(tables.fork_ptr) == forks_before + 1
    k2 = -int(tables.action[row, t]) - 1 - n_rules
    assert sorted(tables.fork_acts[tables.fork_ptr[k2]:tables.fork_ptr[k2 + 1]].tolist()) == sorted(reduces + [8])
    assert tables.fork_acts[tables.fork_ptr[k]:tables.fork_ptr[k + 1]].tolist() == acts  # the old entry is intact
    tables.set_shift(row, t, -1)  # drop the shift: the one reduction is left as a plain cell
    assert tables.shift_of(row, t) == -1
    assert (tables.action[row, t] == reduces[0]) if len(reduces) == 1 else tables.action[row, t] < -n_rules
    plain_row, plain_t = next((r, c) for r in range(tables.num_states) for c in range(tables.action.shape[1] - 1)
                              if tables.action[r, c] > 0)
    tables.set_shift(plain_row, plain_t, 3)
    assert tables.action[plain_row, plain_t] == 4 and tables.shift_of(plain_row, plain_t) == 3
    tables.set_shift(plain_row, plain_t, -1)
    assert tables.action[plain_row, plain_t] == 0
