"""The one recording under every operator (fasttape._recording): the kinds of tape it
records on, when it nests, and its sweeps against each other."""
import math

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import StaleVariableError, Variable
from fasttape._recording import (OWN, POOLED, REPLAYABLE, SCRATCH, hessian_vectors,
                                 record)
from fasttape._tape_pools import active_tape


def f(x, y):
    return x * y + ft.sin(x)


def test_a_pooled_recording_gives_its_tape_back_and_its_variables_go_stale():
    rec = record(f, (2.0, 3.0), (0, 1), None, POOLED)
    assert rec.pooled and not rec.nested
    assert rec.value_and_grad() == (6.0 + math.sin(2.0), (3.0 + math.cos(2.0), 2.0))
    leaf = rec.leaves[0]
    rec.release()
    rec.release()                       # (twice is harmless)
    with pytest.raises(StaleVariableError):
        leaf + 1.0


def test_the_tape_is_active_only_while_fun_runs():
    seen = []

    def g(x):
        seen.append(active_tape())
        return x * x

    for kind in (POOLED, SCRATCH, OWN, REPLAYABLE):
        rec = record(g, (2.0,), 0, None, kind)
        assert seen[-1] is rec.tape
        assert active_tape() is None
        rec.release()


def test_a_recording_inside_another_differentiation_nests_on_its_tape():
    inner = []

    def outer(x):
        rec = record(lambda y: x * y * y, (3.0,), 0, None, POOLED)
        inner.append(rec.nested and rec.tape is x.tape)
        return rec.value_and_grad()[1]          # 2 x y, recorded: d/dx = 2 y

    assert ft.grad(outer)(2.0) == pytest.approx(6.0)
    assert inner == [True]


def test_scratch_recordings_do_not_nest_in_the_active_tape():
    with ft.Tape():
        rec = record(f, (2.0, 3.0), (0, 1), None, SCRATCH)
        assert not rec.nested and rec.pooled
        rec.release()


def test_a_replayable_recording_copies_its_arrays_and_never_nests():
    x = np.array([1.0, 2.0])
    with ft.Tape():
        rec = record(lambda a: fnp.sum(a * a), (x,), 0, None, REPLAYABLE)
    assert not rec.nested and rec.tape.replayable
    assert not np.shares_memory(rec.leaves[0].value, x)
    own = record(lambda a: fnp.sum(a * a), (x,), 0, None, POOLED)
    assert np.shares_memory(own.leaves[0].value, x)      # (grad's path: no copy)
    own.release()


def test_vjp_jvp_jacobian_and_hvp_of_one_recording_agree():
    def g(p):
        return [p[0] * p[1], ft.exp(p[2]) * p[0], p[1] ** 2]

    p = [0.3, -1.2, 0.7]
    rec = record(g, (p,), 0)
    jac = np.asarray(rec.jacobian("rev"), dtype=float)   # (a list of lists of blocks)
    assert np.allclose(np.asarray(rec.jacobian("fwd"), dtype=float), jac)
    for i in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[i] = 1.0
        assert np.allclose(rec.vjp(unit), jac[i])
        assert np.allclose(rec.jvp(unit), jac[:, i])
    assert rec.value() == [p[0] * p[1], math.exp(p[2]) * p[0], p[1] ** 2]

    def s(q):
        return q[0] * q[0] * q[1] + ft.sin(q[2])

    [hv] = hessian_vectors(s, 0, (p,), [[1.0, 0.0, 0.0]])
    assert hv == pytest.approx([2 * p[1], 2 * p[0], 0.0])


def test_leaf_slots_per_argument():
    rec = record(lambda a, b, c: a[0] * b + c[1], ([1.0, 2.0], 3.0, (4.0, 5.0)),
                 (0, 1, 2))
    slots = rec.leaf_slots()
    assert [len(s) for s in slots] == [2, 1, 2]
    assert sum(slots, []) == [leaf.slot for leaf in rec.leaves]
    assert all(type(leaf) is Variable for leaf in rec.leaves)
