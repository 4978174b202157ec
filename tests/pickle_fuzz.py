"""The pickle fuzzer: damaged and crafted pickles of traced functions, each loaded and
used in a forked child, so that a crash ends one trial and is counted.

Three kinds of trial:

- ``flip``: one to three random bytes of the pickle changed;
- ``cut``: the pickle truncated at a random length;
- ``crafted``: one entry of a numeric field of the tape's or the traced function's
  state set to an awkward value (-1, 2**31, 2**62 + 2**40, ...), and the digest made
  again, as someone writing a hostile file would; only the reader's field checks stand
  between such a state and the sweeps.

The property: a damaged pickle (flip, cut) raises a clean Python exception or loads
as a function whose values and gradients equal a fresh recording's; a crafted one
raises a clean exception or loads as a function whose replay and sweeps run (it may
compute something else: it is another valid tape). Never a crash.

Run as a script (``PYTHONPATH=. python tests/pickle_fuzz.py [trials] [seed]`` from the
repository) it prints the counts per kind and outcome, for the fasttape on the path:
that is how the counts before and after a change to the reader are compared.
"""
import os
import pickle
import resource
import signal
import sys

import numpy as np

# outcomes, by the child's exit status
CLEAN_ERROR, SAME, RAN, WRONG = 0, 1, 2, 3
OUTCOME_NAMES = {CLEAN_ERROR: "clean error", SAME: "loaded, same values",
                 RAN: "loaded, ran", WRONG: "WRONG VALUE"}
CHILD_SECONDS = 20                  # a child running longer is killed (a hang)
AWKWARD = [-1, -2, 0, 1, 2, 7, 2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62 + 2**40,
           2**63 - 1, -2**63, -2**31]


def scalar_model(x):
    import fasttape as ft
    total = 0.0
    for k, v in enumerate(x):
        if v > 0.5:
            total = total + ft.sin(v) * v ** 2
        else:
            total = total - ft.exp(v) / (k + 1.0)
    return total + ft.where(x[0] - x[1], x[0] * x[2], x[1])


def array_model(x):
    import fasttape.numpy as fnp
    m = x > 0.25
    y = fnp.sum(fnp.max(x, axis=1)) + fnp.sum(x[m]) + fnp.sum(x[:, np.array([2, 0])])
    z = fnp.cumsum(fnp.tanh(x), axis=1) * x[::-1, ::-1]
    w = x @ fnp.transpose(x) + fnp.where(~m, x, 2.0 * x)[:, :2] @ np.ones((2, 2))
    return y + fnp.sum(z) + fnp.sum(w * w) + fnp.sum(fnp.exp(x[0]) * x)


MODELS = {
    "scalar": (scalar_model, [0.9, 0.3, 1.7, 0.6], [0.95, 0.25, 1.6, 0.7]),
    "array": (array_model, np.array([[0.5, 0.1, 0.9], [0.3, 0.7, 0.2]]),
              np.array([[0.55, 0.12, 0.85], [0.31, 0.66, 0.22]])),
}


def _as_array(v):
    return np.asarray(v, dtype=float)


def use(traced, point):
    """(value, gradient) of a traced function at point."""
    value = traced(point)
    grad = traced.grad(point)
    return _as_array(value), _as_array(grad)


def expected(name):
    """A fresh recording's value and gradient at the model's second point."""
    import fasttape as ft
    fun, _, point = MODELS[name]
    value, grad = ft.value_and_grad(fun)(point)
    return _as_array(value), _as_array(grad)


def same(a, b):
    return all(x.shape == y.shape and np.allclose(x, y, rtol=1e-12, atol=1e-14)
               for x, y in zip(a, b))


def crafted_state(traced, rng):
    """The traced function's and its tape's states with one numeric entry changed
    and both digests made again: (tape state, max size, traced state, what)."""
    tape_reduce = traced.tape.__reduce__()[1]
    tape_state, max_size = dict(tape_reduce[0]), tape_reduce[1]
    state = dict(traced.__getstate__())
    fields = [("tape", k) for k, v in tape_state.items()
              if isinstance(v, np.ndarray) and v.size and v.dtype.kind in "iu"]
    fields += [("traced", k) for k in ("leaf_slots", "out_slots", "argnum",
                                       "leaf_anodes", "out_anodes") if k in state]
    where, key = fields[rng.integers(len(fields))]
    value = int(rng.choice(AWKWARD)) if rng.random() < 0.7 else None
    if where == "tape":
        a = tape_state[key].copy()
        k = int(rng.integers(a.size))
        old = int(a.flat[k])
        new = value if value is not None else old + int(rng.choice([-1, 1]))
        info = np.iinfo(a.dtype)
        a = a.astype(np.int64) if not info.min <= new <= info.max else a
        if not np.iinfo(a.dtype).min <= new <= np.iinfo(a.dtype).max:
            new = int(np.clip(new, np.iinfo(a.dtype).min, np.iinfo(a.dtype).max))
        a.flat[k] = new
        tape_state[key] = a
        what = f"tape {key}[{k}] {old} -> {new}"
    else:
        nested = state[key]
        new = value if value is not None else 1
        if type(nested) is int:
            state[key] = new
        else:
            flat = [(i, j) for i, v in enumerate(nested)
                    for j in range(len(v) if isinstance(v, list) else 1)]
            if not flat:
                return None
            i, j = flat[rng.integers(len(flat))]
            nested = [list(v) if isinstance(v, list) else v for v in nested]
            if isinstance(nested[i], list):
                nested[i][j] = new
            else:
                nested[i] = new
            state[key] = nested
        what = f"traced {key} -> {new}"
    if "digest" in tape_state:
        from fasttape._tape_state import digest
        tape_state["digest"] = digest(tape_state, max_size)
    return tape_state, max_size, state, what


def run_child(trial):
    """Run trial() in a forked child; returns its outcome, or ("signal", name)."""
    pid = os.fork()
    if pid == 0:                                      # the child
        code = CLEAN_ERROR
        try:
            signal.alarm(CHILD_SECONDS)
            limit = 4 * 2**30                         # a huge allocation fails cleanly
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            code = trial()
        except BaseException:
            code = CLEAN_ERROR
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ("signal", signal.Signals(os.WTERMSIG(status)).name)
    return os.WEXITSTATUS(status)


def fuzz(name, kind, n_trials, seed):
    """Counts of outcomes of n_trials trials of one kind on one model, and a few
    examples of each bad outcome: ({outcome: count}, [(outcome, what)])."""
    import fasttape as ft
    from fasttape.trace import Traced
    fun, example, point = MODELS[name]
    traced = ft.trace(fun, example)
    blob = pickle.dumps(traced)
    want = expected(name)
    assert same(use(pickle.loads(blob), point), want), "the intact pickle differs"
    rng = np.random.default_rng(seed)
    counts, bad = {}, []
    for _ in range(n_trials):
        if kind == "flip":
            data = bytearray(blob)
            spots = rng.integers(len(data), size=int(rng.integers(1, 4)))
            for spot in spots:
                data[spot] ^= int(rng.integers(1, 256))
            what = f"bytes {sorted(spots.tolist())} changed"
        elif kind == "cut":
            cut = int(rng.integers(len(blob)))
            data = blob[:cut]
            what = f"cut at {cut} of {len(blob)}"
        if kind in ("flip", "cut"):
            def trial(data=bytes(data)):
                loaded = pickle.loads(data)
                return SAME if same(use(loaded, point), want) else WRONG
        else:
            crafted = crafted_state(traced, rng)
            if crafted is None:
                continue
            tape_state, max_size, state, what = crafted

            def trial(crafted=crafted):
                from fasttape._tape_state import restore_tape
                tape_state, max_size, state, _ = crafted
                state = dict(state, tape=restore_tape(tape_state, max_size))
                try:
                    from fasttape._tape_state import digest
                    state["digest"] = digest(state)
                except ImportError:
                    pass
                loaded = Traced.__new__(Traced)
                loaded.__setstate__(state)
                use(loaded, point)
                loaded.grad_many(np.array([np.ravel(point)] * 3).reshape(
                    (3,) + np.shape(point)), n_threads=2)
                return RAN
        outcome = run_child(trial)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome not in (CLEAN_ERROR, SAME, RAN):
            bad.append((outcome, what))
    return counts, bad


def describe(counts):
    return ", ".join(f"{OUTCOME_NAMES.get(k, k)}: {v}" for k, v in sorted(
        counts.items(), key=lambda kv: str(kv[0])))


if __name__ == "__main__":
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for name in MODELS:
        for kind in ("flip", "cut", "crafted"):
            counts, bad = fuzz(name, kind, trials, seed)
            print(f"{name:6s} {kind:7s} {describe(counts)}")
            for outcome, what in bad[:5]:
                print(f"    {outcome}: {what}")
