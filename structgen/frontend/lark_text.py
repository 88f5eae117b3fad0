"""Grammar IR as standalone Lark text (`structgen compile --emit-lark`): the rules, literal terminals as
strings and the others as regular expressions recovered from their DFAs (automata/to_regex.py, exact).
Compiled again with `GrammarCompiler.compile_grammar`, it has the IR's language, except where noted
in its header: objects whose member constraints are parser state (print those with the rule-based
encoding, `schema_to_grammar(..., parametric=False)`) and DFAs no regex of bounded size expresses."""

from __future__ import annotations

import json


from ..automata.to_regex import dfa_to_regex
from .ir import Grammar, literal_of


def grammar_as_lark(ir: Grammar, max_regex_chars: int = 100_000) -> str:
    """Lark text for `ir` (see the module docstring); rule priorities keep Lark's `rule.N` form."""
    by_lhs: dict[int, list[int]] = {}
    for r, a in enumerate(ir.lhs):
        by_lhs.setdefault(a, []).append(r)
    head, lines, tail = [], [], []
    if ir.objects:
        head.append(f"// {len(ir.objects)} object(s) keep their member constraints (required, counts, any order) "
                    "as parser state: the rules below allow more")
    for a in sorted(by_lhs, key=lambda j: (j != ir.start, j)):
        prio = max(ir.priority[r] for r in by_lhs[a])
        alts = [" ".join(_symbol(ir, s) for s in ir.rhs[r]) for r in by_lhs[a]]
        name = ir.nonterminals[a] + (f".{prio}" if prio else "")
        lines.append(f"{name}: " + " | ".join(x or "()" for x in alts))
    for i, t in enumerate(ir.terminals):
        if _literal(t) is not None:
            if t.ignore:
                tail.append(f"%ignore {_symbol(ir, i)}")
            continue
        regex = dfa_to_regex(t.dfa, max_regex_chars)
        if regex is None:
            head.append(f"// {t.name}: a {t.dfa.num_states}-state DFA with no regex under {max_regex_chars:,} "
                        "characters (or not whole characters): declared only")
            tail.append(f"%declare {t.name}")
        else:
            lines.append(f"{t.name}: /{regex}/")
        if t.ignore:
            tail.append(f"%ignore {t.name}")
    return "\n".join(head + lines + tail) + "\n"


def _literal(t) -> str | None:
    lit = literal_of(t.dfa) if t.is_literal else None
    if lit is None:
        return None
    try:
        return lit.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _symbol(ir: Grammar, s: int) -> str:
    if s < 0:
        return ir.nonterminals[~s]
    lit = _literal(ir.terminals[s])
    return json.dumps(lit) if lit is not None else ir.terminals[s].name
