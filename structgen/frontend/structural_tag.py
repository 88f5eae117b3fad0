"""Free text around constrained parts: tool calls in free text (structural tags, XGrammar's
format) and a reasoning block before the output (`<think>…</think>`).

Free text is lexed by DFAs over what it must not contain, so lexing stays greedy and exact:
- a reasoning block is one terminal: its opening marker, bytes in which the closing marker does
  not occur, the closing marker, optional whitespace (the closing marker's KMP automaton);
- between tags, a terminal per trigger reads text with no trigger or excluded string in it up to
  and including that trigger (the Aho-Corasick automaton of triggers and excludes, ending at the
  first one), and the text after the last tag is one more terminal. A tag's begin starts with its
  trigger; the rest of the begin, the content (a JSON schema's values) and the end follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..automata.dfa import ByteDFA
from ..automata.lexer import Terminal
from ..errors import GrammarError, SchemaError, UnsupportedFeature
from ..options import CompileOptions
from .ir import Grammar, GrammarBuilder

WHITESPACE = b" \t\n\r"


def until_marker_dfa(open_marker: bytes, close_marker: bytes, trailing: bytes = WHITESPACE) -> ByteDFA:
    """DFA of `open_marker`, then bytes not containing `close_marker`, then `close_marker`, then
    any run of `trailing` bytes."""
    if not open_marker or not close_marker:
        raise GrammarError("reasoning markers must not be empty")
    a, m = len(open_marker), len(close_marker)
    # states: 0..a-1 the opening marker; a + k (k < m) the body with k bytes of the closing marker
    # matched; a + m after it (accepting, trailing bytes loop there)
    n = a + m + 1
    trans = np.full((n, 256), -1, dtype=np.int32)
    for i, b in enumerate(open_marker):
        trans[i, b] = i + 1
    fail = [0] * (m + 1)  # KMP: the longest proper border of close_marker[:k]
    for k in range(1, m):
        j = fail[k]
        while j and close_marker[k] != close_marker[j]:
            j = fail[j]
        fail[k + 1] = j + 1 if close_marker[k] == close_marker[j] else 0
    for k in range(m):
        for b in range(256):
            j = k
            while j and close_marker[j] != b:
                j = fail[j]
            trans[a + k, b] = a + (j + 1 if close_marker[j] == b else 0)
    for b in trailing:
        trans[a + m, b] = a + m
    accept = np.zeros(n, dtype=bool)
    accept[a + m] = True
    trans.flags.writeable = False
    accept.flags.writeable = False
    return ByteDFA(trans, accept)


def with_reasoning(ir: Grammar, open_marker: str = "<think>", close_marker: str = "</think>") -> Grammar:
    """`ir` with a reasoning block in front: `reasoning_start: REASONING start`."""
    dfa = until_marker_dfa(open_marker.encode("utf-8"), close_marker.encode("utf-8"))
    term = len(ir.terminals)
    nt = len(ir.nonterminals)
    return Grammar(ir.terminals + [Terminal("REASONING", dfa, 0, False, False)], ir.nonterminals + ["reasoning_start"],
                   ir.lhs + [nt], ir.rhs + [(term, ~ir.start)], nt, ir.priority + [0], ir.source,
                   ir.objects, ir.member, ir.lexer_forks)


# --- structural tags -------------------------------------------------------------------------

@dataclass(frozen=True)
class Tag:
    """`begin`, then a value of the JSON `schema`, then `end`."""

    begin: str
    schema: Any
    end: str


@dataclass(frozen=True)
class TriggeredTags:
    """Free text with tags in it: a tag starts where a trigger occurs in the text (its begin starts
    with the trigger), and the free text contains no trigger otherwise, nor any of `excludes`.
    `at_least_one`: some tag must occur; `stop_after_first`: the output ends after the first tag.
    `separator` not None (XGrammar's "tags_with_separator"): no free text at all, the tags follow
    one another with `separator` between them (tool_choice="required": only calls)."""

    tags: tuple[Tag, ...]
    triggers: tuple[str, ...]
    at_least_one: bool = False
    stop_after_first: bool = False
    excludes: tuple[str, ...] = ()
    separator: str | None = None

    def key(self) -> str:
        """Canonical JSON text (the compile-cache key part)."""
        return json.dumps({"tags": [[t.begin, t.schema, t.end] for t in self.tags], "triggers": list(self.triggers),
                           "at_least_one": self.at_least_one, "stop_after_first": self.stop_after_first,
                           "excludes": list(self.excludes), "separator": self.separator}, sort_keys=True)


def _schema_of(x: Any, where: str) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError as e:
            raise SchemaError(f"{where}: the schema is not JSON ({e})") from None
    return x


def legacy_tags(tags: Any, triggers: Any) -> TriggeredTags:
    """XGrammar's deprecated (tags, triggers) pair: items with begin / schema / end (objects or dicts)."""
    items = []
    for k, t in enumerate(tags):
        get = t.get if isinstance(t, dict) else lambda name, t=t: getattr(t, name)
        items.append(Tag(str(get("begin")), _schema_of(get("schema"), f"tag {k}"), str(get("end"))))
    return TriggeredTags(tuple(items), tuple(str(x) for x in triggers))


def parse_structural_tag(spec: Any) -> TriggeredTags:
    """XGrammar's structural tag (dict or JSON text; a pydantic StructuralTag is dumped first):
    {"type": "structural_tag", "format": {"type": "triggered_tags", "triggers": [...], "tags": [{"begin",
    "content": {"type": "json_schema", "json_schema": ...}, "end"}], "at_least_one", "stop_after_first",
    "excludes"}}. Other format and content types raise UnsupportedFeature naming them."""
    if hasattr(spec, "model_dump"):
        spec = spec.model_dump()
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError as e:
            raise SchemaError(f"the structural tag is not JSON ({e})") from None
    if not isinstance(spec, dict):
        raise SchemaError("a structural tag is a JSON object")
    fmt = spec.get("format", spec) if spec.get("type") == "structural_tag" else spec
    if not isinstance(fmt, dict) or fmt.get("type") not in ("triggered_tags", "tags_with_separator"):
        kind = fmt.get("type") if isinstance(fmt, dict) else type(fmt).__name__
        raise UnsupportedFeature("format", "#/format", f"structural tag format {kind!r} (supported: triggered_tags, "
                                 "tags_with_separator)")
    tags = []
    for k, t in enumerate(fmt.get("tags", [])):
        content = t.get("content", {})
        if content.get("type") != "json_schema" or content.get("style", "json") != "json":
            kind = content.get("type") if content.get("type") != "json_schema" else f"json_schema style {content.get('style')!r}"
            raise UnsupportedFeature("content", f"#/format/tags/{k}/content", f"tag content {kind!r} (supported: json_schema)")
        tags.append(Tag(str(t["begin"]), _schema_of(content.get("json_schema", True), f"tag {k}"), str(t["end"])))
    separator = str(fmt.get("separator", "")) if fmt["type"] == "tags_with_separator" else None
    return TriggeredTags(tuple(tags), tuple(str(x) for x in fmt.get("triggers", [])),
                         bool(fmt.get("at_least_one", False)), bool(fmt.get("stop_after_first", False)),
                         tuple(str(x) for x in fmt.get("excludes", []) or []), separator)


def _aho_corasick(patterns: list[bytes]) -> tuple[np.ndarray, list[frozenset[int]]]:
    """The Aho-Corasick automaton of `patterns`: a full goto table over bytes (state 0 the root)
    and, per state, the patterns that end there (through its suffix links)."""
    kids: list[dict[int, int]] = [{}]
    out: list[set[int]] = [set()]
    for k, p in enumerate(patterns):
        s = 0
        for b in p:
            if b not in kids[s]:
                kids.append({})
                out.append(set())
                kids[s][b] = len(kids) - 1
            s = kids[s][b]
        out[s].add(k)
    n = len(kids)
    goto = np.zeros((n, 256), dtype=np.int32)
    fail = [0] * n
    order = list(kids[0].values())
    for b, c in kids[0].items():
        goto[0, b] = c
    i = 0
    while i < len(order):  # breadth first: a state's suffix link is done before its children's
        s = order[i]
        i += 1
        out[s] |= out[fail[s]]
        goto[s] = goto[fail[s]]
        for b, c in kids[s].items():
            fail[c] = int(goto[fail[s], b]) if s else 0
            goto[s, b] = c
            order.append(c)
    return goto, [frozenset(x) for x in out]


def free_text_dfas(patterns: list[bytes], n_triggers: int) -> tuple[ByteDFA, list[ByteDFA]]:
    """(non-empty text containing no pattern; for each of the first n_triggers patterns, text with
    no pattern up to that one, which ends it)."""
    goto, out = _aho_corasick(patterns)
    live = [s for s in range(len(out)) if not out[s]]
    index = {s: i for i, s in enumerate(live)}
    n = len(live)
    body = np.full((n, 256), -1, dtype=np.int32)
    hit = np.full((n, 256), -1, dtype=np.int64)  # the state hit (some pattern ends), where the text stops
    for i, s in enumerate(live):
        for b in range(256):
            t = int(goto[s, b])
            if t in index:
                body[i, b] = index[t]
            else:
                hit[i, b] = t
    text_trans = np.vstack([body[:1], body]) + np.where(np.vstack([body[:1], body]) >= 0, 1, 0)
    text_accept = np.ones(n + 1, dtype=bool)
    text_accept[0] = False  # a fresh start state: the text is not empty
    text = ByteDFA(text_trans.astype(np.int32), text_accept)
    until = []
    for k in range(n_triggers):
        trans = np.vstack([body, np.full((1, 256), -1, dtype=np.int32)])
        ends = np.zeros_like(hit, dtype=bool)
        for i in range(n):
            for b in np.flatnonzero(hit[i] >= 0):
                ends[i, b] = k in out[int(hit[i, b])]
        trans[:n][ends] = n
        accept = np.zeros(n + 1, dtype=bool)
        accept[n] = True
        until.append(ByteDFA(trans, accept))
    return text, until


def structural_tag_grammar(spec: TriggeredTags, options: CompileOptions) -> tuple[Grammar, list]:
    """The grammar IR of `spec`, and the relaxations its schemas needed (lenient mode). With free
    text, a tag starts with the terminal that reads text up to its trigger, then the rest of its
    begin; without (a separator), with its whole begin."""
    from .json_schema.emit import Emitter
    from .json_schema.expr import EMPTY, cat, opt, union
    from .json_schema.normalize import load_schema

    if not spec.tags:
        raise GrammarError("a structural tag needs at least one tag")
    b = GrammarBuilder(max_rules=options.limits.max_rules)
    b.lexer_forks = True  # as a schema's own grammar: a lexer tie forks (automata/lexer.py)
    helper = Emitter({}, options, builder=b)
    free_text = spec.separator is None
    if free_text:
        triggers = [t.encode("utf-8") for t in spec.triggers]
        if not triggers or any(not t for t in triggers) or len(set(triggers)) < len(triggers):
            raise GrammarError("structural tag triggers must be distinct non-empty strings")
        patterns = triggers + [e.encode("utf-8") for e in spec.excludes if e]
        for i, x in enumerate(patterns):
            for j, y in enumerate(patterns):
                if i != j and x in y:
                    raise GrammarError(f"trigger or excluded string {x!r} occurs inside {y!r}: free text could not "
                                       "tell where a tag starts")
        text_dfa, until = free_text_dfas(patterns, len(triggers))
        text = [(b.terminal("FREE_TEXT", text_dfa, key=("free_text",)),)]
    relaxations: list = []
    alts = []
    for k, tag in enumerate(spec.tags):
        head, rest = EMPTY, tag.begin
        if free_text:
            begin = tag.begin.encode("utf-8")
            i = max((j for j, t in enumerate(triggers) if begin.startswith(t)), key=lambda j: len(triggers[j]),
                    default=None)
            if i is None:
                raise GrammarError(f"tag {k}: its begin {tag.begin!r} does not start with a trigger")
            head = [(b.terminal(f"TEXT_THEN_{i}", until[i], key=("text_then", i)),)]
            rest = begin[len(triggers[i]):].decode("utf-8")
        em = Emitter(load_schema(tag.schema), options, builder=b)
        value = em.value()
        relaxations += em.relaxations
        alts.append(cat(head, helper.lit(rest) if rest else EMPTY, value, helper.lit(tag.end) if tag.end else EMPTY))
    tag_expr = helper.new_rule("tag", union(*alts))
    if free_text:
        if spec.stop_after_first:
            body = tag_expr if spec.at_least_one else union(tag_expr, opt(text))
        else:
            body = cat(cat(tag_expr, helper.star(tag_expr)) if spec.at_least_one else helper.star(tag_expr), opt(text))
    else:
        sep = helper.lit(spec.separator) if spec.separator else EMPTY
        body = tag_expr if spec.stop_after_first else cat(tag_expr, helper.star(cat(sep, tag_expr)))
        body = body if spec.at_least_one else opt(body)
    start = b.nonterminal("start")
    helper.define(start, body)
    return b.build(start, prune=True), relaxations


# --- tool-call presets -------------------------------------------------------------------------

# (trigger, begin with {name}, end) of the common tool-call formats; one call per tag
PRESETS: dict[str, tuple[str, str, str]] = {
    "llama3": ('{"name": ', '{{"name": "{name}", "parameters": ', "}"),  # Llama-3.x JSON tool calls
    "hermes": ("<tool_call>", '<tool_call>\n{{"name": "{name}", "arguments": ', "}\n</tool_call>"),  # Hermes, Qwen2.5/3
    "qwen": ("<tool_call>", '<tool_call>\n{{"name": "{name}", "arguments": ', "}\n</tool_call>"),
    "mistral": ("[TOOL_CALLS]", '[TOOL_CALLS][{{"name": "{name}", "arguments": ', "}]"),
    "deepseek": ("<｜tool▁calls▁begin｜>",
                 "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n",
                 "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
}


def tool_calls(preset: str, tools: list[dict], tool_choice: Any = "auto",
               excludes: tuple[str, ...] = ("<think>", "</think>")) -> dict:
    """A structural tag (XGrammar's format) for tool calls in free text, in one of PRESETS' formats.
    `tools`: OpenAI function tools ({"type": "function", "function": {"name", "parameters"}}) or
    bare {"name", "parameters"}. `tool_choice`: "auto" (free text with any number of calls in it),
    "required" (calls only, at least one, newline-separated: as OpenAI-style servers mean it), or
    {"type": "function", "function": {"name": ...}} (calls of that tool only)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown tool-call preset {preset!r}; choose from {sorted(PRESETS)}")
    trigger, begin, end = PRESETS[preset]
    funcs = [t.get("function", t) for t in tools]
    required = tool_choice == "required"
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", tool_choice).get("name")
        funcs = [f for f in funcs if f.get("name") == name]
        if not funcs:
            raise ValueError(f"tool_choice names {name!r}, which is not among the tools")
        required = True
    elif tool_choice not in ("auto", "required"):
        raise ValueError(f"tool_choice must be 'auto', 'required' or a named function, not {tool_choice!r}")
    if not funcs:
        raise ValueError("no tools to call")
    tags = [{"type": "tag", "begin": begin.format(name=f["name"]),
             "content": {"type": "json_schema", "json_schema": f.get("parameters", {"type": "object"})},
             "end": end} for f in funcs]
    if required:
        return {"type": "structural_tag", "format": {"type": "tags_with_separator", "tags": tags, "separator": "\n",
                                                     "at_least_one": True, "stop_after_first": False}}
    return {"type": "structural_tag", "format": {"type": "triggered_tags", "triggers": [trigger], "tags": tags,
                                                 "at_least_one": False, "stop_after_first": False,
                                                 "excludes": [x for x in excludes if x not in trigger]}}
