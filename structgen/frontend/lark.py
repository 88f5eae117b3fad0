"""Lark grammar text → grammar IR. Lark parses the syntax (EBNF, imports, templates); the parser is ours.

Lark's grammar loader expands the EBNF into plain rules and gives each terminal a pattern; the
terminal patterns become byte DFAs here, and Lark's parser generator is never run.
"""

from __future__ import annotations

from ..automata.dfa import DEFAULT_MAX_STATES, ByteDFA, literal_dfa
from ..automata.regex_dfa import literal_dfa_ignorecase
from ..automata.regex_dfa import regex_dfa
from ..budget import check as check_budget
from ..errors import GrammarError, LimitExceeded, RegexError
from .ir import Grammar, GrammarBuilder


def lark_to_ir(text: str, start: str = "start", terminal_dfas: dict[str, ByteDFA] | None = None, *,
               max_dfa_states: int = DEFAULT_MAX_STATES) -> Grammar:
    """Read Lark text into a Grammar; `terminal_dfas` gives ready DFAs for the named terminals."""
    import lark
    from lark.lexer import PatternStr
    from lark.load_grammar import load_grammar

    if not isinstance(text, str) or not text.strip():
        raise GrammarError("grammar text is empty")
    try:
        grammar, _ = load_grammar(text, "<string>", None, False)
        terminals, rules, ignore = grammar.compile([start], set())
    except (lark.exceptions.LarkError, SyntaxError, ValueError, KeyError, AssertionError) as e:
        raise GrammarError(f"invalid Lark grammar: {e}") from e
    except RecursionError:
        raise LimitExceeded("the Lark grammar's expressions are nested too deeply for Lark's loader",
                            limit="recursion depth") from None
    check_budget("reading the Lark text")
    overrides = terminal_dfas or {}
    ignore_set = set(ignore)
    b = GrammarBuilder()
    index: dict[str, int] = {}
    for td in terminals:
        name = str(td.name)  # str(): Lark's Token names are GC-tracked objects
        pat = td.pattern
        try:
            if name in overrides:
                dfa = overrides[name]
            elif isinstance(pat, PatternStr) and not pat.flags:
                dfa = literal_dfa(pat.value.encode("utf-8"))
            elif isinstance(pat, PatternStr) and set(pat.flags) == {"i"}:
                dfa = literal_dfa_ignorecase(pat.value)
            else:
                dfa = regex_dfa(pat.to_regexp(), max_dfa_states)
        except RegexError as e:
            raise GrammarError(f"terminal {name}: {e}") from e
        except LimitExceeded as e:
            raise e.locate(f"terminal {name}")
        check_budget(f"terminal {name}")
        index[name] = b.terminal(name, dfa, key=("name", name), priority=int(td.priority),
                                 is_literal=isinstance(pat, PatternStr), ignore=name in ignore_set)
    for r in rules:
        lhs = b.named(str(r.origin.name))
        rhs = []
        for s in r.expansion:
            if s.is_term:
                t = index.get(s.name)
                if t is None:
                    raise GrammarError(f"rule {r.origin.name} uses terminal {s.name}, which has no definition")
                rhs.append(t)
            else:
                rhs.append(b.named(str(s.name)))
        b.rule(lhs, rhs, priority=int(r.options.priority or 0))
    if start not in b._nt_names:
        raise GrammarError(f"start symbol {start!r} has no rules")
    return b.build(b.named(start), source=text)
