"""Helpers shared by the test modules: subprocess isolation, numerical derivatives."""
import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- running code that may crash the interpreter ---------------------------------------

# A minimal use of the thread's stack of active tapes (``with Tape()`` blocks, nested,
# and Variables created inside a grad() call); see the tape_blocks fixture.
TAPE_BLOCK_PROBE = """
from fasttape import Tape, Variable, grad
with Tape() as t:
    v = Variable(1.5)
    w = v * v
assert v.tape is t and w.tape is t, "Variable not recorded on the active tape"
with Tape() as outer:
    with Tape() as inner:
        a = Variable(1.0)
    b = Variable(2.0)
assert a.tape is inner and b.tape is outer, "nested tape blocks"
print(grad(lambda x: x * Variable(2.0))(3.0))
"""


def run_isolated(code, timeout=120):
    """Run ``code`` in a fresh interpreter that imports fasttape from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT, env=env)


def describe_failure(proc, code):
    """A readable report of a subprocess run: how it ended, its code and output."""
    rc = proc.returncode
    if rc < 0:
        try:
            how = f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"killed by signal {-rc}"
    else:
        how = f"exit status {rc}"
    return (f"subprocess {how}\n--- code ---\n{textwrap.dedent(code).strip()}\n"
            f"--- stdout ---\n{proc.stdout.strip()}\n"
            f"--- stderr (last 2000 chars) ---\n{proc.stderr.strip()[-2000:]}")


def assert_runs_cleanly(code, expected_stdout=None):
    """Run code in a subprocess; fail with its report unless it exits 0 (and prints
    ``expected_stdout``, if given)."""
    proc = run_isolated(code)
    ok = proc.returncode == 0 and (expected_stdout is None
                                   or proc.stdout.strip() == expected_stdout.strip())
    assert ok, describe_failure(proc, code)
    return proc.stdout


# -- numerical derivatives -------------------------------------------------------------

def directional_derivative(f, x, v, rel_step=1e-3):
    """d/dt f(x + t v) at t = 0 by central differences with one Richardson step
    (error O(h^4)); ``f`` maps a float64 array to a float."""
    x = np.asarray(x, dtype=float)
    v = np.asarray(v, dtype=float)
    h = rel_step * max(1.0, float(np.max(np.abs(x))))

    def central(step):
        return (f(x + step * v) - f(x - step * v)) / (2.0 * step)

    return (4.0 * central(h / 2.0) - central(h)) / 3.0


def assert_gradient_matches_differences(f, x, gradient, rng, n_directions=3,
                                        rtol=1e-6, atol=1e-9, rel_step=1e-3):
    """Check <gradient, v> against central differences of f along random unit v."""
    x = np.asarray(x, dtype=float)
    gradient = np.asarray(gradient, dtype=float)
    assert gradient.shape == x.shape
    directions = [np.eye(x.size)[i] for i in range(x.size)]      # the partials ...
    for _ in range(n_directions):                               # ... and mixtures
        v = rng.standard_normal(x.size)
        directions.append(v / np.linalg.norm(v))
    for v in directions:
        numeric = directional_derivative(f, x, v, rel_step)
        ad = float(gradient @ v)
        scale = max(abs(numeric), float(np.abs(gradient) @ np.abs(v)))
        assert abs(ad - numeric) <= atol + rtol * scale, (
            f"at x={x.tolist()} along v={v.tolist()}: <grad, v> = {ad!r}, "
            f"central differences {numeric!r}, gradient {gradient.tolist()}")


def same_float(a, b, rtol=1e-14, atol=0.0):
    """Equal up to rtol, with nan == nan and infinities compared exactly."""
    a = float(a)
    b = float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)
