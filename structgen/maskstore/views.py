"""Named numba views of the mask store's tables (as automata/views.py: named tuples of arrays, read
by field name inside the kernels). The trie's view is automata.views.TrieView."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class DFAView(NamedTuple):
    """A DFA as the trie walks read it: its moves over byte classes (-1: none), the column of each
    byte (bmap[byte]; walk.BYTE_COLUMNS for a table over all 256 bytes), and accept[s] >= 0 where
    s accepts."""

    trans: np.ndarray
    bmap: np.ndarray
    accept: np.ndarray


class WalkScratch(NamedTuple):
    """One thread's work arrays for walks of a trie (a row per node): `mark` (all False between
    walks), a walk's ranges of token positions, its nodes and their lexer states, and the same
    by group for levels.component_walk."""

    mark: np.ndarray
    ranges: np.ndarray
    nodes: np.ndarray
    states: np.ndarray
    seg_ranges: np.ndarray
    seg_nodes: np.ndarray


class MemoView(NamedTuple):
    """The WalkMemo's tables (memo.py): keys (hk rows: h1, h2, node or group; hv: the entry, -1
    empty), entries (ent rows: their ranges [0, 1) of `ranges` and [2, 3) of `nodes`), and `used`
    (entries, ranges, nodes)."""

    hk: np.ndarray
    hv: np.ndarray
    ent: np.ndarray
    ranges: np.ndarray
    nodes: np.ndarray
    used: np.ndarray


class DigestView(NamedTuple):
    """The memo keys of one terminal's DFA states (memo.state_digest, levels.level_digest): the
    columns of its byte classes and the class of each byte, the cells hashed at most per digest,
    the per-state digests and whether each is known, this store's tag for states past the bound;
    digests per level and state and their flags (no rows for a DFA too big), a seed for the
    classes."""

    rep: np.ndarray
    cls: np.ndarray
    max_cells: np.int64
    keys: np.ndarray
    known: np.ndarray
    tag: np.uint64
    level_keys: np.ndarray
    level_known: np.ndarray
    seed: np.ndarray


class WalkPlan(NamedTuple):
    """The trie cut into units (levels.walk_plan): per item its node, the item past it, its group,
    whether it is a split node, the groups in its subtree (bitmask); the group of each node, the
    runs of token positions by group (starts, with a sentinel; groups), each group's offset into
    scratch rows by node; and the levels (longest token of each group)."""

    node: np.ndarray
    next: np.ndarray
    group: np.ndarray
    split: np.ndarray
    gmask: np.ndarray
    node_group: np.ndarray
    run_start: np.ndarray
    run_group: np.ndarray
    seg_off: np.ndarray
    levels: np.ndarray


class Segments(NamedTuple):
    """Walk results kept by group (levels._group_walk): ranges and nodes, group g's from its
    plan offset to nr[g] / nf[g]."""

    ranges: np.ndarray
    nodes: np.ndarray
    nr: np.ndarray
    nf: np.ndarray


class IdLists(NamedTuple):
    """Results of several walks (walk.walks_from): walk q's token ids ids[ids_off[q]:ids_off[q + 1]],
    its nodes nodes[nodes_off[q]:nodes_off[q + 1]]."""

    ids: np.ndarray
    ids_off: np.ndarray
    nodes: np.ndarray
    nodes_off: np.ndarray


class ConfigMemo(NamedTuple):
    """Parser configurations of a boundary walk (configs.py): each one's top node in the pool and
    the lexer state that starts a lexeme after it, its child per terminal (-1 unknown, -2 reject,
    <= -3 a fork) and per lexer tie set (walk.TIE_MEMO columns after the terminals': forks only),
    and the index by top states (slot -> latest, next)."""

    top: np.ndarray
    start: np.ndarray
    child: np.ndarray
    head: np.ndarray
    next: np.ndarray


class ForkTasks(NamedTuple):
    """A boundary walk's GLR work (configs.fork): tasks (node, lexer state, stack top, next task at
    that node; column 4 is apart: the queue of tasks left, by row), the latest task at each trie node,
    fork results (lexer state, stack top), and the results of each memoized fork (first, end row)."""

    table: np.ndarray
    head: np.ndarray
    results: np.ndarray
    memo: np.ndarray


class RunsView(NamedTuple):
    """Plain-text runs (runs.py): safe_below per trie node, free_depth per lexer state, the plain
    bytes, the depth cap."""

    below: np.ndarray
    free: np.ndarray
    safe: np.ndarray
    kmax: np.int64


class BoundaryWalk(NamedTuple):
    """One boundary walk (walk.boundary_walk): its entries (trie nodes, lexer states before them),
    the mask bits it sets, its progress counters, and the store's tables it works in."""

    bnodes: np.ndarray
    bstates: np.ndarray
    bits: np.ndarray
    progress: np.ndarray
    configs: ConfigMemo
    tasks: ForkTasks
    runs: RunsView
