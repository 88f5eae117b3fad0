"""Session fixtures shared across the test tree, and the two test tiers.

The default run (`python -m pytest -q`, the README's command) leaves out the tests marked `slow` (the
real model, full datasets, large differential samples) and runs the bounded ones. With `STRUCTGEN_SLOW=1`
in the environment, which `.ci/run` sets, the same command runs every tier.
"""

from __future__ import annotations

import os

import pytest

from datasets import SLOW, tokenizer_info

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of `-n auto`'s workers: one core each, so torch and
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # its subprocesses must not start a thread per core


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the slow tier unless STRUCTGEN_SLOW=1."""
    if SLOW:
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]


def pytest_report_header(config: pytest.Config) -> str:
    return ("test tier: all (STRUCTGEN_SLOW=1)" if SLOW
            else "test tier: default (tests marked slow are deselected; STRUCTGEN_SLOW=1 runs them)")


@pytest.fixture(scope="session")
def tokenizer_llama3():
    """The Llama-3 TokenizerInfo (128,256 tokens), loaded once per session."""
    return tokenizer_info("llama3")
