"""One oracle call's search: the GLR parse of the template NFA's language over a graph-structured
stack (`_Search`; the algorithm is described in the package docstring), with witness ropes."""

from __future__ import annotations

import heapq
from collections import deque

from ...errors import LimitExceeded
from .nfa import _TGAP, _TemplateNFA


def _cat(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (a, b)


class _Found(Exception):
    def __init__(self, rope) -> None:
        self.rope = rope


class _Search:
    """One oracle call: the GSS over the template NFA (see the package docstring)."""

    def __init__(self, oracle, nfa: _TemplateNFA) -> None:
        self.o = oracle
        self.nfa = nfa
        self.lr = oracle.lr
        self.end = self.lr.end
        self.budget = self.limit = oracle.max_facts
        # GSS nodes
        self.node_id: dict[tuple, int] = {}
        self.node_p: list[int] = []
        self.node_c0: list[tuple[int, int] | None] = []  # shift nodes: (NFA state, lexer state) after the push
        self.first_edge: list[tuple[int, object] | None] = []
        self.edges: list[dict[int, object]] = []
        self.waiting: list[list[tuple]] = []
        self.walk_seen: set[tuple] = set()
        self.act_seen: set[tuple] = set()
        self.closures: dict[tuple[int, int], list[tuple]] = {}
        self.work: list = []  # a heap: work further along the template first (finds "yes" early)
        self.tick = 0
        self.n_closure = 0

    def stats(self) -> dict[str, int]:
        return {"nodes": len(self.node_p), "edges": sum(len(e) for e in self.edges),
                "walkers": len(self.walk_seen), "closure_states": self.n_closure}

    def _fin(self, v: int, rope, r: int) -> None:
        """The input may end at NFA state r on the stack of node v: a word was found."""
        raise _Found(_cat(self._path(v), rope))

    def _skip(self, r: int) -> bool:
        """Whether queued work at NFA state r is no longer needed (never, for a plain call)."""
        return False

    def _push(self, r: int, item: tuple) -> None:
        """Queue work at NFA state r; larger r (later in the template) first, FIFO among equals."""
        self.tick += 1
        heapq.heappush(self.work, (-r, self.tick, item))

    def _spend(self, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise LimitExceeded(f"infilling oracle needs more than {self.limit} facts")

    def _node(self, key: tuple, p: int, c0) -> tuple[int, bool]:
        got = self.node_id.get(key)
        if got is not None:
            return got, False
        self._spend()
        i = len(self.node_p)
        self.node_id[key] = i
        self.node_p.append(p)
        self.node_c0.append(c0)
        self.first_edge.append(None)
        self.edges.append({})
        self.waiting.append([])
        return i, True

    def _path(self, v: int):
        """Rope of the bytes that build the stack of node v along first edges (root first)."""
        ropes = []
        while True:
            fe = self.first_edge[v]
            if fe is None:
                break
            v, rope = fe
            ropes.append(rope)
        out = None
        for r in reversed(ropes):
            out = _cat(out, r)
        return out

    def run(self) -> None:
        lr = self.lr
        p0 = lr.start_state
        root, _ = self._node(("root",), p0, (0, self.o.start_lexer_state(p0)))
        self._push(0, ("node", root))
        work = self.work
        skip = self._skip
        while work:
            neg_r, _, item = heapq.heappop(work)
            if skip(-neg_r):
                continue
            kind = item[0]
            if kind == "node":
                self._expand(item[1])
            elif kind == "act":
                self._act(item[1], item[2], item[3])
            else:
                self._walk(item[1], item[2], item[3], item[4], item[5])

    # --- between shifts: the lexer alone ------------------------------------------------

    def _closure(self, c0: tuple) -> list[tuple]:
        """Events reachable from a push control without touching the stack, each with its rope.

        A push control is (NFA state, lexer state), or ("P", r, ls_old, ls_start) right after a
        shift: the NFA is at r, the next byte must be one that ends the old lexeme (no move from
        ls_old) and starts the new one (a move from ls_start). Events:
        ("feed", t, r, ls): a lexeme in state ls ends as terminal t with the NFA at r (before the
        byte that ends it, or at the end); ("fin",): the input may end here with nothing pending
        for the parser (the stack must accept $END).
        """
        got = self.closures.get(c0)
        if got is not None:
            return got
        o, nfa = self.o, self.nfa
        ignore = o._is_ignore
        seen: dict[tuple[int, int], object] = {}
        queue: deque = deque()
        events: list[tuple] = []
        ev_seen: set[tuple] = set()
        if c0[0] == "P":
            self._after_shift(c0, seen, queue, events)
        else:
            seen[c0] = None
            queue.append(c0)
        while queue:
            c = queue.popleft()
            rope = seen[c]
            r, ls = c
            self._spend()
            self.n_closure += 1
            seg = nfa.seg_of(r)
            if seg >= 0 and nfa.segs[seg][0] == _TGAP:
                self._closure_tokens(seg, r, ls, rope, seen, queue, events, ev_seen)
                continue
            row, term, is_start, reset = o._row(ls)
            re = nfa.eps(r)
            if re >= 0 and (re, ls) not in seen:
                seen[(re, ls)] = rope
                queue.append((re, ls))
            feeds = term >= 0 and not ignore[term]
            ends_here = False
            if nfa.is_final(r):
                if is_start or (term >= 0 and ignore[term]):
                    if ("fin", r) not in ev_seen:
                        ev_seen.add(("fin", r))
                        events.append(("fin", rope, r))
                ends_here = feeds
            for b, r2 in nfa.edges_from(r, ls):
                ns = row[b]
                if ns < 0 and term >= 0 and ignore[term]:  # an %ignore lexeme ends: the byte starts the next
                    ns = o._row(reset)[0][b]
                elif ns < 0:
                    ends_here = ends_here or term >= 0
                    continue
                if ns >= 0 and (r2, ns) not in seen:
                    seen[(r2, ns)] = _cat(rope, (r, b, r2))
                    queue.append((r2, ns))
            if ends_here:
                ev = ("feed", term, r, ls)
                if ev not in ev_seen:
                    ev_seen.add(ev)
                    events.append(ev + (rope,))
        self.closures[c0] = events
        return events

    def _after_shift(self, c0: tuple, seen: dict, queue: deque, events: list) -> None:
        """Seed a closure from a post-shift control: the first byte of the new lexeme."""
        _, r, ls_old, st = c0
        o, nfa = self.o, self.nfa
        old, new = o._row(ls_old)[0], o._row(st)[0]
        if nfa.is_final(r):
            events.append(("fin", None, r))  # nothing pending: the new lexeme is empty
        seg = nfa.seg_of(r)
        if seg >= 0 and nfa.segs[seg][0] == _TGAP:
            n_nodes = o._trie_nodes()
            base = nfa.bases[seg]
            pos, node = divmod(r - base, n_nodes)
            pb = base + pos * n_nodes
            succ = []
            for b, child, inner, is_end in o._children(node):
                if inner:
                    succ.append((b, pb + child))
                if is_end:
                    succ.append((b, pb + n_nodes))
        else:
            succ = nfa.edges_from(r, ls_old)
        for b, r2 in succ:
            if old[b] < 0:
                ns = new[b]
                if ns >= 0 and (r2, ns) not in seen:
                    seen[(r2, ns)] = (r, b, r2)
                    queue.append((r2, ns))

    def _closure_tokens(self, seg: int, r: int, ls: int, rope, seen, queue, events, ev_seen) -> None:
        """The closure step for a state inside a TokenGap: one memoized trie walk."""
        nfa = self.nfa
        n_nodes = self.o._trie_nodes()
        base = nfa.bases[seg]
        pos, node = divmod(r - base, n_nodes)
        pb = base + pos * n_nodes
        after = pb + n_nodes  # (pos + 1, root), or the gap's exit
        lx = self.o.cg.lexer
        ends, feeds = self.o._walker().walk(node, ls, lx, lx.is_ignore)
        self._spend(1 + len(ends) + len(feeds))
        for ls_end, c in ends:
            nc = (after, ls_end)
            if nc not in seen:
                seen[nc] = _cat(rope, ("T", pb, node, c, after))
                queue.append(nc)
        for t, n, ls_n in feeds:
            ev = ("feed", t, pb + n, ls_n)
            if ev not in ev_seen:
                ev_seen.add(ev)
                events.append(ev + (_cat(rope, ("T", pb, node, n, pb + n)) if n != node else rope,))

    def _expand(self, v: int) -> None:
        """A new shift node: run every lexer event of its push control against the stack."""
        end = self.end
        for ev in self._closure(self.node_c0[v]):
            if ev[0] == "fin":
                if end in self.lr.action[self.node_p[v]]:
                    self._fin(v, ev[1], ev[2])
            else:
                _, t, r, ls, rope = ev
                self._push(r, ("act", v, (t, r, ls), rope))

    # --- feeding a terminal: reductions over the GSS, then the shift ----------------------

    def _act(self, top: int, feed: tuple[int, int, int], rope) -> None:
        """Run the parser on terminal feed[0] from node `top` (`rope`: bytes since top's push).
        `feed` = (terminal, NFA state, lexer state where the lexeme ended)."""
        key = (top, feed)
        if key in self.act_seen:
            return
        self.act_seen.add(key)
        self._spend()
        lr = self.lr
        t, r, ls_old = feed
        a = lr.action[self.node_p[top]].get(t)
        if a is None:
            return
        if a >= 0:
            v, new = self._node(("s", a, r, ls_old), a, ("P", r, ls_old, self.o.start_lexer_state(a)))
            self._add_edge(v, top, rope)
            if new:
                self._push(r, ("node", v))
            return
        rule = -a - 1
        self._walk(top, lr.rule_len[rule], lr.rule_lhs[rule], feed, rope)

    def _walk(self, x: int, m: int, lhs: int, feed: tuple, rope) -> None:
        """Pop m more states starting with node x (rope: bytes since x's push), then goto on lhs."""
        if m == 0:
            g = self.lr.goto[self.node_p[x]][lhs]
            gnode, new = self._node(("g", g, feed), g, None)
            self._add_edge(gnode, x, rope)
            if new:
                self._push(feed[1], ("act", gnode, feed, None))
            return
        key = (x, m, lhs, feed)
        if key in self.walk_seen:
            return
        self.walk_seen.add(key)
        self._spend()
        self.waiting[x].append((m, lhs, feed, rope))
        for y, e in list(self.edges[x].items()):
            self._push(feed[1], ("walk", y, m - 1, lhs, feed, _cat(e, rope)))

    def _add_edge(self, x: int, y: int, rope) -> None:
        """Edge x -> y (x was pushed directly on y; rope: bytes from y's push to x's)."""
        ex = self.edges[x]
        if y in ex:
            return
        self._spend()
        ex[y] = rope
        if self.first_edge[x] is None:
            self.first_edge[x] = (y, rope)
        for m, lhs, feed, ra in list(self.waiting[x]):
            self._push(feed[1], ("walk", y, m - 1, lhs, feed, _cat(rope, ra)))
