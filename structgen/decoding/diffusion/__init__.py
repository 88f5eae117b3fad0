"""Infilling constraints: can a template of fixed byte pieces and gaps still become a word?

Diffusion LMs and fill-in-the-middle models write out of order, so prefix masks do not apply;
the question is whether L(G) ∩ R is empty, where R is the regular language of all fillings of
a template (Mündler, Dekoninck, Vechev 2025). This package answers it exactly for the language
the GrammarMatcher defines (greedy contextual lexer + LR parser, `automata/step.py`).

The model. The matcher is a pushdown system: the finite control is the lexer state `ls` (its
product DFA is the one for the set S of terminals the parser can shift next), the stack holds
parser states. With canonical LR(1) tables (`automata/pushdown.py`) S is a function of the top
state alone, so pushing a state fixes the next lexeme's DFA without looking deeper. R is an NFA
over bytes (fixed pieces are byte chains, a ByteGap a bounded chain or a loop over its alphabet,
a TokenGap of k positions k copies of the vocabulary's byte trie).

The algorithm is a GLR parse of the NFA's language over a graph-structured stack (GSS) whose
nodes are keyed by (LR state, what determines the future once it is pushed):

* a node pushed by a shift is keyed by (LR state, NFA state, lexer state) right after the push;
  between two shifts the stack is untouched, so everything the lexer can do from there (bytes
  inside a lexeme, whole %ignore lexemes, where the next lexeme ends and with which terminal
  and next byte) is a "closure" memoized per (NFA state, lexer state);
* a node pushed by a goto while reducing on terminal t, triggered by byte b into NFA state r,
  is keyed by (LR state, t, b, r).

Since LR moves never look below the states they pop, every path in this finite graph is a
reachable stack, and every reachable stack is a path: the answer is exact (no false "yes",
no false "no"). Reductions pop along GSS paths and wait at nodes for edges added later.
Every derived fact keeps the first byte string (a rope of NFA steps) that justified it, so a
"yes" comes with a witness filling that the GrammarMatcher accepts.

Grammar-level work (LR(1) tables, lexer start state per LR state, lexer rows, trie children)
lives in a `CompletabilityOracle` and is reused across calls; the GSS is per call.

Modules (each imports only those listed above it):

* `template`: `ByteGap`, `TokenGap`, `Template` (the input).
* `nfa`: the byte NFA R of a template's fillings.
* `trie_walk`: the lexer run over the token trie (vectorized steps, memoized subtree walks).
* `search`: one call's GSS search (`_Search`), with witness ropes.
* `positions`: per-position masks (token classes per lexer state, one search per position).
* `oracle`: `CompletabilityOracle` and the functions `is_completable`, `example_completion`,
  `position_mask` (one shared oracle per CompiledGrammar).
* `constraint`: `DiffusionConstraint`, masked-diffusion ids <-> templates (the end-of-text rule).
* `sampler`: `diffusion_generate`, masked-diffusion unmasking under the oracle (`MaskedLM`,
  `TransformersMaskedLM`, `SampleResult`).
"""

from __future__ import annotations

from .oracle import CompletabilityOracle, example_completion, is_completable, position_mask
from .template import ByteGap, Template, TokenGap

__all__ = ["ByteGap", "TokenGap", "Template", "CompletabilityOracle", "is_completable", "example_completion",
           "position_mask"]
