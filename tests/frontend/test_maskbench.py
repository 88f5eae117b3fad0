"""MaskBench ratchet: structgen (strict) on the fixed 1,000-schema sample of maskbench_runner.py
(all rows, files sorted, `random.Random(0)` shuffle, first 1,000), each schema an isolated task with a
10 s CPU-time limit for compile + matching, Llama-3 tokens + stop token per instance.

(a) no invalid instance is accepted;
(b) no regression against tests/frontend/ratchets/maskbench.json: a schema passing there still passes,
    no crash appears that the ratchet does not record for that schema, and no schema times out that
    the ratchet records neither as a timeout nor as `near_limit` (over half the limit there: those
    are printed as SLOW, since whether they finish in time is noise on a shared machine);
(c) at least as many schemas pass as in the ratchet (passing ratchet schemas that are SLOW now count
    as passing).

~1,000 schemas take ~400 s of CPU (2 worker processes).

Improvements (a schema that now passes or now compiles) are printed; regenerate the ratchet after one:
`python tests/frontend/maskbench_runner.py --engine both --write`.
"""

from __future__ import annotations

import pytest

from datasets import MASKBENCH
from frontend.maskbench_runner import DEFAULT_N, RATCHET, compare, load_ratchet, run_engine, sample, totals

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not any(MASKBENCH.glob("*.jsonl.gz")), reason=f"MaskBench data not found at {MASKBENCH}"),
]


@pytest.fixture(scope="module")
def ratchet() -> dict:
    data = load_ratchet(RATCHET)
    assert data["sample"]["n"] == DEFAULT_N, "ratchet is for another sample size; rerun maskbench_runner.py --write"
    return data


@pytest.fixture(scope="module")
def results(ratchet) -> dict[str, dict]:
    res = run_engine("structgen", sample(DEFAULT_N), time_limit_s=ratchet["sample"]["time_limit_s"])
    now, then = totals(res), ratchet["totals"]
    print(f"\nMaskBench n={DEFAULT_N}: structgen now {now}\n  ratchet structgen {then['structgen']}"
          f"\n  ratchet llguidance {then.get('llguidance')}")
    return res


def test_no_invalid_instance_accepted(results) -> None:
    bad = [f"{k}: tests {r['invalid_accepted']}" for k, r in sorted(results.items()) if r["invalid_accepted"]]
    assert not bad, "invalid instances accepted (strict mode):\n" + "\n".join(bad)


def test_no_regressions(ratchet, results) -> None:
    assert set(results) == set(ratchet["schemas"]), "sample differs from the ratchet; rerun maskbench_runner.py --write"
    cmp = compare(ratchet, results)
    if cmp.slow:
        print("\nslow schemas that timed out (tolerated):\n" + "\n".join(cmp.slow))
    if cmp.improvements:
        print(f"\n{len(cmp.improvements)} improvements (regenerate the ratchet with maskbench_runner.py --write):\n"
              + "\n".join(cmp.improvements))
    assert not cmp.regressions, "regressions against ratchets/maskbench.json:\n" + "\n".join(cmp.regressions)


def test_pass_count_does_not_drop(ratchet, results) -> None:
    now, then = totals(results)["pass"], ratchet["totals"]["structgen"]["pass"]
    slow = compare(ratchet, results).slow_passing
    assert now + slow >= then, f"{now} schemas pass (+{slow} slow ones that timed out), ratchet has {then}"
