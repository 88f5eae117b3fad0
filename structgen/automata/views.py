"""Named numba views of the tables the kernels read: named tuples of numpy arrays (numba types
them as heterogeneous tuples and compiles a field access to a plain member load, so a view costs
nothing inside a kernel). A kernel takes a few views instead of a long list of arrays, and reads
every table by name.

Views are built where their tables live and kept there, rebuilt only when an array is replaced
(grown): ParserTables.view(), LexerTables.view(), StackPool.view(); the trie's in the mask store.

On the per-token path (runtime.run, runtime.can_end, the store's boundary walk) Python passes views
as plain tuples, `tuple(view)`, and the kernel names them again on entry (`LexerView(*L_)`, free in
compiled code). numba types a plain tuple of arrays in C, but a named tuple through its Python
fallback, ~0.1 us per array field: with some 50 array fields per boundary walk that cost 18% of the
90th-percentile mask time on MaskBench (bench/mask_digest.py's sample, measured with views passed
as named tuples).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ParserView(NamedTuple):
    """The LR tables (automata/parser.ParserTables). A goto that is missing where the rule decides
    is written to `need` (state, rule) and reported as NEED_STATE."""

    action: np.ndarray
    goto_keys: np.ndarray
    goto_vals: np.ndarray
    K: np.int64
    n_nonterminals: np.int32
    rule_len: np.ndarray
    rule_lhs: np.ndarray
    end_state: np.int32
    row_ptr: np.ndarray
    row_terms: np.ndarray
    need: np.ndarray
    fork_ptr: np.ndarray
    fork_acts: np.ndarray


class LexerView(NamedTuple):
    """The product DFAs of terminal sets (automata/lexer.LexerTables), global state ids: the moves
    over all 256 bytes (-1: none), the terminal each state accepts (-1: none), whether a state is
    its DFA's initial one, accepting with no move (final), its DFA; each DFA's initial state; the
    ignored terminals; the set -> DFA hash table (uint64 set words -> DFA id, see lexer_index.lookup_set);
    lexer forks: per state 0, or k + 1 where several terminals accept its lexeme alike (tie set k,
    whose terminals are tie_terms[tie_ptr[k]:tie_ptr[k + 1]]; see LexerTables, `fork_ties`)."""

    trans: np.ndarray
    accept_term: np.ndarray
    is_start: np.ndarray
    is_final: np.ndarray
    state_dfa: np.ndarray
    dfa_start: np.ndarray
    is_ignore: np.ndarray
    ht_keys: np.ndarray
    ht_vals: np.ndarray
    tie: np.ndarray
    tie_ptr: np.ndarray
    tie_terms: np.ndarray


class PoolView(NamedTuple):
    """A stack pool (automata/parser.StackPool): parser stacks as parent-linked nodes, and the
    scratch its kernels write: `overlay` (states a simulated reduce chain pushes) and `touched`
    (touched[0]: the deepest node a kernel read)."""

    state: np.ndarray
    parent: np.ndarray
    overlay: np.ndarray
    touched: np.ndarray


class TrieView(NamedTuple):
    """The token trie in preorder (tokenizer/trie.TokenTrie): each node's byte, depth, the node past
    its subtree, its tokens tok_ids[tok_start[i]:tok_end[i]] (tok_start has a sentinel entry for
    num_nodes), the deepest node's depth; each node's parent (-1: the root), the root's children."""

    node_byte: np.ndarray
    node_depth: np.ndarray
    node_skip: np.ndarray
    node_tok_start: np.ndarray
    node_tok_end: np.ndarray
    tok_ids: np.ndarray
    max_depth: np.int64
    parent: np.ndarray
    root_kids: np.ndarray


class NFAView(NamedTuple):
    """A byte NFA (automata/regex_dfa): node u's edges are edge_lo/hi/to[edge_ptr[u]:edge_ptr[u + 1]]
    (a byte range and the node it leads to), its epsilon moves eps_to[eps_ptr[u]:eps_ptr[u + 1]]."""

    edge_ptr: np.ndarray
    edge_lo: np.ndarray
    edge_hi: np.ndarray
    edge_to: np.ndarray
    eps_ptr: np.ndarray
    eps_to: np.ndarray


class ProductParts(NamedTuple):
    """The components of a product DFA (lexer.product_tables): their terminals, the first global
    state and the size of each one's single copy, and where product states with only it alive
    jump (its copy's first state, or -1)."""

    terms: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    single: np.ndarray


class RulesView(NamedTuple):
    """A grammar's rules as the LR construction reads them (automata/lr.py): items `base[r] + dot`
    with the symbol after the dot (-1 at the end) and their rule, rule lengths, each nonterminal's
    rules (CSR), and the first nonterminal symbol (terminals and $END below it)."""

    item_sym: np.ndarray
    item_rule: np.ndarray
    base: np.ndarray
    rule_len: np.ndarray
    rof_ptr: np.ndarray
    rof_rules: np.ndarray
    nt0: np.int64


class LR0View(NamedTuple):
    """LR(0) states as CSR (automata/lr.py's Automaton): transitions sorted by symbol, reduce rules."""

    trans_ptr: np.ndarray
    trans_sym: np.ndarray
    trans_target: np.ndarray
    reduce_ptr: np.ndarray
    reduce_rule: np.ndarray
