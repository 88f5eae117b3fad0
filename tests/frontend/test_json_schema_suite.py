"""The official JSON-Schema-Test-Suite (draft2020-12 and draft7: keyword files + optional/format)
through the strict compiler, each instance walked token by token (Llama-3 tokenizer) + stop token.

(a) no invalid instance is accepted, except the exact known issues in KNOWN_INVALID_ACCEPTED
    (each is a real bug; an entry that stops reproducing must be deleted);
(b) ratchet: per file, correct answers (valid_accepted + invalid_rejected) never drop below, and
    invalid_accepted never rises above, tests/frontend/ratchets/json_schema_test_suite.json;
(c) no crashes (exceptions other than StructgenError) and no compile timeouts;
(d) structgen answers more instances correctly (valid_accepted + invalid_rejected, both drafts) than
    llguidance run live through the same runner (llguidance takes ~1 s for the whole suite).

The whole suite (both drafts, ~2,600 instances) runs in ~15 s, so CI runs all of it, no subset.
After an improvement, regenerate the ratchet: `python tests/frontend/suite_runner.py --write`.
"""

from __future__ import annotations

import pytest

from datasets import TOKENIZERS
from frontend.suite_runner import (
    DRAFTS,
    KEYS,
    SUITE,
    load_ratchet,
    make_engine,
    run_suite,
    run_totals,
    suite_files,
    summary,
)

LLAMA3 = TOKENIZERS / "llama3" / "tokenizer.json"

pytestmark = pytest.mark.skipif(not SUITE.is_dir(), reason=f"JSON-Schema-Test-Suite not found at {SUITE}")

# (file, schema-group description, test description) -> why it is accepted although invalid.
KNOWN_INVALID_ACCEPTED: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def runs():
    engine = make_engine("structgen", LLAMA3)
    return {d: run_suite(d, engine, time_limit_s=10) for d in DRAFTS}


@pytest.mark.slow
def test_no_crashes_or_timeouts(runs) -> None:
    crashes = [c for d in DRAFTS for c in runs[d].crashes]
    timeouts = [t for d in DRAFTS for t in runs[d].timeouts]
    assert not crashes, "non-StructgenError exceptions (bugs):\n" + "\n".join(" | ".join(c) for c in crashes)
    assert not timeouts, "compiles over the time limit:\n" + "\n".join(" | ".join(t) for t in timeouts)


@pytest.mark.slow
def test_no_invalid_instance_accepted_in_strict_mode(runs) -> None:
    got = {case for d in DRAFTS for case in runs[d].invalid_accepted}
    unexpected = sorted(got - KNOWN_INVALID_ACCEPTED.keys())
    assert not unexpected, "invalid instances accepted (strict mode):\n" + "\n".join(" | ".join(c) for c in unexpected)
    stale = sorted(KNOWN_INVALID_ACCEPTED.keys() - got)
    assert not stale, ("fixed: delete these from KNOWN_INVALID_ACCEPTED (and rerun suite_runner.py --write):\n"
                       + "\n".join(" | ".join(c) for c in stale))


@pytest.mark.slow
def test_ratchet(runs) -> None:
    ratchet = load_ratchet()
    counts = {k: v for d in DRAFTS for k, v in runs[d].items()}
    expected_files = {f for d in DRAFTS for f in suite_files(d)}
    assert set(ratchet) == expected_files, "ratchet file list is out of date; rerun suite_runner.py --write"
    worse = []
    for f, want in sorted(ratchet.items()):
        c = counts[f]
        correct = c["valid_accepted"] + c["invalid_rejected"]
        if correct < want["correct"]:
            worse.append(f"{f}: correct {correct} < {want['correct']} ({c})")
        if c["invalid_accepted"] > want["invalid_accepted"]:
            worse.append(f"{f}: invalid_accepted {c['invalid_accepted']} > {want['invalid_accepted']}")
    assert not worse, "regressions against the ratchet:\n" + "\n".join(worse)


@pytest.mark.slow
def test_every_instance_is_counted(runs) -> None:
    for d in DRAFTS:
        tot = summary(runs[d])
        assert sum(tot[k] for k in KEYS) + tot.get("crash", 0) > 1000


@pytest.mark.slow
def test_structgen_beats_llguidance(runs) -> None:
    pytest.importorskip("llguidance")
    engine = make_engine("llguidance", LLAMA3)
    ll_runs = {d: run_suite(d, engine, time_limit_s=10) for d in DRAFTS}
    merged = {name: {k: v for d in DRAFTS for k, v in r[d].items()} for name, r in (("sg", runs), ("ll", ll_runs))}
    sg, ll = run_totals(merged["sg"]), run_totals(merged["ll"])
    print(f"\nJSON-Schema-Test-Suite (both drafts), correct: structgen {sg['correct']}, llguidance {ll['correct']}")
    print(f"  structgen  {sg}\n  llguidance {ll}")
    assert sg["correct"] > ll["correct"], f"structgen {sg} vs llguidance {ll}"
