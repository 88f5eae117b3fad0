"""CompiledGrammar: one grammar compiled for one tokenizer, as data (the IR, its terminals, LR and lexer
tables, options) with its runtime (runtime.py) and mask store; and lalr_tables, the LR step of a compile.
GrammarCompiler (compiler.py) makes them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .automata.dfa import ByteDFA
from .automata.lexer import LexerTables, Terminal
from .automata.lr import LRBuilder
from .automata.objects import ObjectStates
from .automata.parser import ParserTables, sparse_table
from .errors import GrammarError
from .frontend.ir import Grammar, object_from_json
from .maskstore.store import MaskStore
from .options import DEFAULT_OPTIONS, CompileOptions, options_from_json
from .runtime import GrammarRuntime
from .tokenizer import TokenizerInfo


class CompiledGrammar:
    """Everything a GrammarMatcher needs for one grammar and one tokenizer.

    Immutable in meaning: the grammar (IR, terminals, tables, options) and its tokenizer. Running it
    (product DFAs and LR states built on first reach, under one lock) is its `runtime`
    (runtime.GrammarRuntime), which its matchers and its mask store share.
    """

    def __init__(self, ir: Grammar, tokenizer_info: TokenizerInfo, parser: ParserTables, *,
                 options: CompileOptions = DEFAULT_OPTIONS, lexer_snapshot: dict[str, np.ndarray] | None = None,
                 builder: LRBuilder | None = None) -> None:
        self.ir = ir
        self.options = options
        self.start = ir.nonterminals[ir.start]
        self.allow_trailing_ignore = allow_trailing_ignore = options.allow_trailing_ignore
        self.relaxations: list = []  # set by frontends that relax unsupported input (lenient mode)
        self.tokenizer_info = tokenizer_info
        self.terminals = ir.terminals
        self.parser = parser
        self.objects = None  # object member constraints as parser state (automata/objects.py)
        if ir.objects:  # the LR(0) states tell which rows the constraints govern
            builder = builder or LRBuilder(ir, max_states=options.limits.max_lr_states)
            self.objects = ObjectStates(ir, builder, builder.automaton or builder.lr0(), parser,
                                        options.limits.max_lr_states)
        self.lexer = LexerTables(self.terminals, trailing_ignore=allow_trailing_ignore,
                                 max_states=options.limits.max_lexer_states, fork_ties=ir.lexer_forks)
        self.runtime = rt = GrammarRuntime(parser, self.lexer, self.objects)
        if lexer_snapshot is None:
            rt.initial_lexer_state = rt.start_state(rt.initial_stack)
        else:  # from the disk cache: the product DFAs (the initial one included) are ready
            self.lexer.restore(lexer_snapshot)
            rt.initial_lexer_state = int(lexer_snapshot["initial_lexer_state"])
        self.initial_stack = rt.initial_stack
        self.initial_lexer_state = rt.initial_lexer_state
        self.mask_store = MaskStore(rt, tokenizer_info)

    @property
    def grammar(self) -> str:
        """The grammar's text: what it was read from (Lark), else a rendering of its rules."""
        return self.ir.source if self.ir.source is not None else self.ir.text

    @classmethod
    def build(cls, ir: Grammar, tokenizer_info: TokenizerInfo,
              options: CompileOptions = DEFAULT_OPTIONS, *, glr_ok: bool = True) -> "CompiledGrammar":
        """Compile grammar IR: our LALR(1) tables (automata/lr.py). A grammar with conflicts runs on
        the GLR path (its ε-free form, every conflict kept) when `glr_ok`, else GrammarError names them.
        With `options.reasoning`, a reasoning block comes first (frontend/structural_tag.py)."""
        if options.reasoning is not None:
            from .frontend.structural_tag import with_reasoning

            ir = with_reasoning(ir, *options.reasoning)
        try:
            tables, builder = lalr_tables(ir, options)
        except GrammarError as e:
            if not (glr_ok and getattr(e, "conflicts", None)):
                raise
            if ir.objects:  # constraints as parser state: their rules must stay as written (no ε-free form)
                builder = LRBuilder(ir, max_states=options.limits.max_lr_states)
                tables, _, _ = builder.tables(prefer_shift=options.prefer_shift,
                                              max_cells=options.limits.max_table_cells, glr=True)
                try:
                    return cls(ir, tokenizer_info, tables, options=options, builder=builder)
                except GrammarError:  # an LR state mixes two objects' member lists: no parser state for it
                    raise e from None
            from .frontend.epsilon_free import epsilon_free

            ir = epsilon_free(ir)
            builder = LRBuilder(ir, max_states=options.limits.max_lr_states)
            tables, _, _ = builder.tables(prefer_shift=options.prefer_shift,
                                          max_cells=options.limits.max_table_cells, glr=True)
        return cls(ir, tokenizer_info, tables, options=options, builder=builder)

    # --- the disk form (compile_cache.py): JSON metadata + plain arrays ------------------

    _PARSER_ARRAYS = ("action", "rule_len", "rule_lhs", "row_ptr", "row_terms", "fork_ptr", "fork_acts")

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything but the tokenizer as (JSON-able metadata, numpy arrays); inverse of from_arrays."""
        p = self.parser
        ir = self.ir
        meta = {
            "grammar": self.grammar, "options": json.loads(self.options.key()),
            "terminals": [[t.name, t.priority, t.is_literal, t.ignore] for t in self.terminals],
            "ir_nonterminals": ir.nonterminals, "ir_start": ir.start, "ir_source": ir.source is not None,
            "ir_objects": [o.to_json() for o in ir.objects], "ir_lexer_forks": ir.lexer_forks,
            "ir_member": [[r, k, j] for r, (k, j) in ir.member.items()],
            "nonterminals": p.nonterminal_names, "start_state": p.start_state, "end_state": p.end_state,
            "conflicts": p.conflicts,
            "relaxations": [[r.keyword, r.pointer, r.direction, r.detail] for r in self.relaxations],
        }
        n = self.objects.n_base if self.objects is not None else p.num_states  # built on demand again
        arrays = {name: getattr(p, name) for name in self._PARSER_ARRAYS}
        arrays["action"], arrays["row_ptr"] = p.action[:n], p.row_ptr[:n + 1]
        arrays["row_terms"] = p.row_terms[:p.row_ptr[n]]
        live = (p.goto_keys >= 0) & (p.goto_keys // p.K < n)
        arrays["goto_keys"], arrays["goto_vals"] = p.goto_keys[live], p.goto_vals[live]
        arrays["ir_lhs"] = np.array(ir.lhs, dtype=np.int32)
        arrays["ir_rhs_len"] = np.array([len(x) for x in ir.rhs], dtype=np.int32)
        arrays["ir_rhs"] = np.array([s for x in ir.rhs for s in x], dtype=np.int32)
        arrays["ir_priority"] = np.array(ir.priority, dtype=np.int32)
        arrays["dfa_sizes"] = np.array([t.dfa.num_states for t in self.terminals], dtype=np.int64)
        arrays["dfa_trans"] = np.concatenate([t.dfa.trans for t in self.terminals] or [np.zeros((0, 256), np.int32)])
        arrays["dfa_accept"] = np.concatenate([t.dfa.accept for t in self.terminals] or [np.zeros(0, bool)])
        with self.runtime.lock:
            arrays.update(self.lexer.snapshot())
        arrays["initial_lexer_state"] = np.array(self.initial_lexer_state, dtype=np.int64)
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                    tokenizer_info: TokenizerInfo) -> "CompiledGrammar":
        """Rebuild a CompiledGrammar from to_arrays() output without running Lark or the frontends."""
        bounds = np.concatenate([[0], np.cumsum(arrays["dfa_sizes"])])
        terminals = [
            Terminal(name, ByteDFA(arrays["dfa_trans"][bounds[i]:bounds[i + 1]].astype(np.int32),
                                   arrays["dfa_accept"][bounds[i]:bounds[i + 1]].astype(np.bool_)),
                     int(priority), bool(is_literal), bool(ignore))
            for i, (name, priority, is_literal, ignore) in enumerate(meta["terminals"])
        ]
        goto_keys, goto_vals = sparse_table(arrays["goto_keys"], arrays["goto_vals"])
        parser = ParserTables(terminal_names=[t.name for t in terminals], nonterminal_names=list(meta["nonterminals"]),
                              start_state=int(meta["start_state"]), end_state=int(meta["end_state"]),
                              conflicts=list(meta["conflicts"]), goto_keys=goto_keys, goto_vals=goto_vals,
                              **{name: arrays[name].astype(np.int32) for name in cls._PARSER_ARRAYS})
        ends = np.cumsum(arrays["ir_rhs_len"]).tolist()
        flat = arrays["ir_rhs"].tolist()
        rhs = [tuple(flat[e - n:e]) for e, n in zip(ends, arrays["ir_rhs_len"].tolist())]
        ir = Grammar(terminals, list(meta["ir_nonterminals"]), arrays["ir_lhs"].tolist(), rhs, int(meta["ir_start"]),
                     arrays["ir_priority"].tolist(), meta["grammar"] if meta["ir_source"] else None,
                     [object_from_json(o) for o in meta["ir_objects"]], {r: (k, j) for r, k, j in meta["ir_member"]},
                     bool(meta["ir_lexer_forks"]))
        cg = cls(ir, tokenizer_info, parser, options=options_from_json(meta["options"]), lexer_snapshot=arrays)
        if meta["relaxations"]:
            from .frontend.json_schema import Relaxation

            cg.relaxations = [Relaxation(*r) for r in meta["relaxations"]]
        return cg

    def __repr__(self) -> str:
        return (f"CompiledGrammar(terminals={len(self.terminals)}, lr_states={self.parser.num_states}, "
                f"lexer_states={self.lexer.num_states}, vocab={self.tokenizer_info.vocab_size})")


def lalr_tables(ir: Grammar, options: CompileOptions = DEFAULT_OPTIONS) -> tuple[ParserTables, LRBuilder]:
    """LALR(1) tables of a grammar (and the builder, which holds the LR(0) states); GrammarError
    naming the conflicts its language would lose to a silent choice."""
    builder = LRBuilder(ir, max_states=options.limits.max_lr_states)
    tables, unresolved, _ = builder.tables(prefer_shift=options.prefer_shift, max_cells=options.limits.max_table_cells)
    if unresolved:
        more = f" (and {len(unresolved) - 1} more)" if len(unresolved) > 1 else ""
        hint = ("pass prefer_shift=True to resolve shift/reduce conflicts as shifts, which rejects the words that "
                "need the reduction" if any(c.kind == "shift/reduce" for c in unresolved) else
                "give one rule a higher priority (rule.2) to choose it")
        err = GrammarError(f"grammar is not LALR(1): {unresolved[0]}{more}. Rewrite the rules to remove the "
                           f"conflict, or {hint}")
        err.conflicts = unresolved  # type: ignore[attr-defined]
        raise err
    return tables, builder
