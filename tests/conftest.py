"""Shared fixtures: a seeded RNG and a guard for ``with Tape()`` blocks.

The guard exists because a crash (segfault) inside one test would end the whole
session and hide every other result. Tests that record inside ``with Tape():`` blocks
or create Variables inside a differentiated function (both go through the thread's
stack of active tapes) ask for the ``tape_blocks`` fixture; it first runs a minimal
use of that machinery in a subprocess, and fails the test with the subprocess's
report instead of crashing the session if the interpreter dies there.
"""
import os

import numpy as np
import pytest
from hypothesis import Phase, settings

from support import TAPE_BLOCK_PROBE, describe_failure, run_isolated

SEED = 20240611

# Hypothesis: reproducible by default (the same examples on every run, no example
# database); FASTTAPE_HYPOTHESIS_PROFILE=explore draws new random examples each run.
# The "explain" phase is left out: it only annotates failures, slowly.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile("fasttape", derandomize=True, database=None, deadline=None,
                          phases=PHASES)
settings.register_profile("explore", deadline=None, phases=PHASES)
settings.load_profile(os.environ.get("FASTTAPE_HYPOTHESIS_PROFILE", "fasttape"))


@pytest.fixture
def rng():
    """A NumPy Generator with a fixed seed, fresh for each test."""
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def tape_block_probe():
    """None if TAPE_BLOCK_PROBE runs cleanly in a subprocess, else a report."""
    proc = run_isolated(TAPE_BLOCK_PROBE)
    if proc.returncode != 0 or proc.stdout.strip() != "2.0":
        return describe_failure(proc, TAPE_BLOCK_PROBE)
    return None


@pytest.fixture
def tape_blocks(tape_block_probe):
    """Fail (instead of crashing the session) when ``with Tape()`` is unusable."""
    if tape_block_probe is not None:
        pytest.fail("`with Tape()` blocks / Variables created inside grad() fail in "
                    "a subprocess, so this test is not run in-process:\n"
                    + tape_block_probe, pytrace=False)
