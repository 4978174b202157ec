"""The cost of odeint's gradient against its forward solve, and its memory.

    python tools/odeint_bench.py [--python-stepper] [span ...]

Times scipy's odeint (the forward solve) and the gradient of a sum of odeint's
output with respect to y0, the time points and the arguments (W, c), for a 10-state
recurrent network over 100 time points, interleaved (median of the per-round
ratios); then the peak memory (tracemalloc) of the gradient over time spans that take
about 10^3 and 10^5 solver steps (an oscillating system, the step count from SciPy's
full_output). --python-stepper: also the gradient with the adjoint's stages in Python
(the C sweep of fasttape._ode_adjoint turned off), in the same rounds, and the memory
runs on that path.
"""
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's fasttape

import numpy as np
import scipy.integrate

import fasttape
import fasttape.numpy as fnp
import fasttape.scipy.integrate as integrate
from fasttape.scipy.integrate import odeint


def network(y, t, W, c):
    return fnp.tanh(W @ y + c) - 0.5 * y


def problem(n_states=10, n_times=100, span=10.0, seed=0, scale=0.8):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((n_states, n_states)) / np.sqrt(n_states)
    return (rng.standard_normal(n_states), np.linspace(0.0, span, n_times), W,
            rng.standard_normal(n_states))


def timers(y0, t, W, c, **kw):
    forward = lambda: scipy.integrate.odeint(network, y0, t, args=(W, c), **kw)
    gradient = fasttape.grad(lambda y0, t, W, c: fnp.sum(
        odeint(network, y0, t, args=(W, c), **kw)), (0, 1, 2, 3))
    return forward, lambda: gradient(y0, t, W, c)


def interleaved(num, den, rounds=7):
    ratios, times_num, times_den = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        num()
        a = time.perf_counter() - started
        started = time.perf_counter()
        den()
        b = time.perf_counter() - started
        ratios.append(a / b)
        times_num.append(a)
        times_den.append(b)
    return np.median(times_den), np.median(times_num), np.median(ratios)


def oscillator(n_states, frequency, seed=1):
    """A 10-state system that oscillates at about `frequency` (rotation blocks plus
    a weak nonlinear coupling): the solver's step count grows with the span."""
    rng = np.random.default_rng(seed)
    W = 0.05 * rng.standard_normal((n_states, n_states))
    for k in range(0, n_states - 1, 2):
        W[k, k + 1], W[k + 1, k] = frequency, -frequency
    return W, 0.01 * rng.standard_normal(n_states)


def rotating(y, t, W, c):
    return W @ y + 0.01 * fnp.tanh(y) + c


def memory(span, frequency=10.0, n_states=10, mxstep=10 ** 6, **kw):
    kw = dict(kw, mxstep=mxstep)
    W, c = oscillator(n_states, frequency)
    y0 = np.ones(n_states)
    t = np.linspace(0.0, span, 100)
    steps = scipy.integrate.odeint(rotating, y0, t, args=(W, c), full_output=True,
                                   **kw)[1]["nst"][-1]
    gradient = fasttape.grad(lambda y0, W, c: fnp.sum(
        odeint(rotating, y0, t, args=(W, c), **kw)), (0, 1, 2))
    tracemalloc.start()
    start = time.perf_counter()
    gradient(y0, W, c)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return steps, peak, seconds


def python_stepper(gradient):
    """gradient with the adjoint's C sweep turned off (the Python stepper's path)."""
    def run():
        compiled = integrate._Problem.compiled_adjoint
        integrate._Problem.compiled_adjoint = lambda self, rhs: None
        try:
            return gradient()
        finally:
            integrate._Problem.compiled_adjoint = compiled
    return run


def main():
    args = sys.argv[1:]
    compare = "--python-stepper" in args
    spans = [float(a) for a in args if a != "--python-stepper"] or [15.0, 1500.0]
    forward, gradient = timers(*problem())
    gradient()
    if compare:
        stepped = python_stepper(gradient)
        rounds = [[], [], []]
        for _ in range(7):
            f, g, ratio = interleaved(gradient, forward, rounds=1)
            _, g_python, ratio_python = interleaved(stepped, forward, rounds=1)
            for kept, x in zip(rounds, (ratio, ratio_python, g_python / g)):
                kept.append(x)
        print(f"odeint, 10 states, 100 time points, 7 interleaved rounds (medians): "
              f"gradient / forward {np.median(rounds[0]):.2f} (C sweep), "
              f"{np.median(rounds[1]):.2f} (Python stepper); Python stepper / C sweep "
              f"{np.median(rounds[2]):.2f}")
    else:
        f, g, ratio = interleaved(gradient, forward)
        print(f"odeint, 10 states, 100 time points: forward {f * 1e3:.2f} ms, "
              f"gradient (y0, t, W, c) {g * 1e3:.2f} ms, ratio {ratio:.2f}")
    for span in spans:
        if compare:
            compiled = integrate._Problem.compiled_adjoint
            integrate._Problem.compiled_adjoint = lambda self, rhs: None
        try:
            steps, peak, seconds = memory(span)
        finally:
            if compare:
                integrate._Problem.compiled_adjoint = compiled
        print(f"span {span:g}: {steps} forward solver steps, gradient peak memory "
              f"{peak / 1e6:.2f} MB (tracemalloc), {seconds:.2f} s"
              + (" (Python stepper)" if compare else ""))


if __name__ == "__main__":
    main()
