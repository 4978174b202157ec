"""No Python call takes the interpreter down: the bad-input catalog.

Each risky case runs in a forked child (``in_child``), so that a segmentation fault
fails that one test instead of ending the run, and must end in the exception it names.
The classes: out-of-range indices and short buffers given to the public ``Tape``
methods, crafted pickled tapes (every field the reader checks), matmul dimensions past
BLAS's ``int``, and threads calling a traced function whose retrace swaps recordings.
Then the pickle fuzzer (tests/pickle_fuzz.py): a short run here, a long one marked slow.
"""
import os
import pickle
import signal

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape._tape import ARRAY_OP_TABLE, MASK_OPS, Tape
from fasttape._tape_state import ANODE_COLUMNS, OPERAND_COLUMNS, digest, restore_tape
from fasttape.trace import TraceRecording
from support import assert_runs_cleanly

import pickle_fuzz

AOP = dict(ARRAY_OP_TABLE)


def in_child(fun):
    """Run fun() in a forked child: ("returned", repr) or ("raised", type name,
    message), or ("killed", signal name) when the child died."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.alarm(120)                     # a hang fails the test too
        try:
            result = ("returned", repr(fun()))
        except BaseException as e:            # the exception is the result
            result = ("raised", type(e).__name__, str(e)[:500])
        with os.fdopen(write, "wb") as f:
            pickle.dump(result, f)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return ("killed", signal.Signals(os.WTERMSIG(status)).name)
    return pickle.loads(data)


def assert_raises_in_child(fun, exception, match=""):
    result = in_child(fun)
    assert result[0] == "raised" and result[1] == exception.__name__ and \
        match in result[2], f"expected {exception.__name__} ({match!r}), got {result}"


# -- 1. the public Tape methods check their indices ------------------------------------

def scalar_tape():
    """A tape with leaves, a constant, a product and a sum (no select)."""
    t = Tape()
    with t:
        x, y = ft.Variable(1.5), ft.Variable(-2.0)
        z = x * y + 3.0
    return t, x, y, z


BIG = 10 ** 9

TAPE_CASES = {
    "value_at": (lambda t: t.value_at(BIG), IndexError),
    "value_at negative": (lambda t: t.value_at(-1), IndexError),
    "constant": (lambda t: t.constant(BIG), IndexError),
    "scalar_adjoint": (lambda t: t.scalar_adjoint(BIG), IndexError),
    "array_adjoint": (lambda t: t.array_adjoint(BIG), IndexError),
    "write_array_input": (lambda t: t.write_array_input(BIG, [1.0]), IndexError),
    "seed_tangent before clear_tangents": (lambda t: t.seed_tangent(0, -1, 1.0),
                                           RuntimeError),
    "seed_tangent": (lambda t: (t.clear_tangents(), t.seed_tangent(BIG, -1, 1.0)),
                     IndexError),
    "seed_tangent array": (lambda t: (t.clear_tangents(), t.seed_tangent(0, BIG, [1.0])),
                           IndexError),
    "tangent_of": (lambda t: (t.clear_tangents(), t.tangent_of(BIG, -1)), IndexError),
    "tangent_of before clear_tangents": (lambda t: t.tangent_of(0, -1), RuntimeError),
    "forward_sweep before clear_tangents": (lambda t: t.forward_sweep(), RuntimeError),
    "select_operands": (lambda t: t.select_operands(BIG), IndexError),
    "select_operands of another op": (lambda t: t.select_operands(2), ValueError),
    "selected": (lambda t: t.selected(BIG), IndexError),
    "select": (lambda t: t.select(0, 10 ** 8, 10 ** 8, 1.0), IndexError),
    "replay": (lambda t: t.replay([BIG], [1.0]), IndexError),
    "replay negative": (lambda t: t.replay([-5], [1.0]), IndexError),
    "hessian_vector_c node": (lambda t: t.hessian_vector_c(BIG, [0], [1.0]), IndexError),
    "hessian_vector_c leaf": (lambda t: t.hessian_vector_c(3, [BIG], [1.0]), IndexError),
    "hessian_vector_c direction": (lambda t: t.hessian_vector_c(3, [0, 1], [1.0]),
                                   ValueError),
    "hessian_vector_arrays": (lambda t: t.hessian_vector_arrays(3, [(True, BIG)], [1.0]),
                              ValueError),
    "replay_gradients output": (lambda t: t.replay_gradients(BIG, [0], [[1.0]]),
                                IndexError),
    "replay_gradients leaf": (lambda t: t.replay_gradients(3, [BIG], [[1.0]]),
                              IndexError),
    "replay_gradient_of_list scratch": (
        lambda t: t.replay_gradient_of_list(3, np.array([0, 1]), [1.0, 2.0], 0, 2,
                                            np.zeros(1), np.zeros(1)), ValueError),
    "replay_gradient_of_list slot": (
        lambda t: t.replay_gradient_of_list(3, np.array([0, BIG]), [1.0, 2.0], 0, 2,
                                            *t.scratch_buffers()), IndexError),
    "replay_gradient_of_list leaves": (
        lambda t: t.replay_gradient_of_list(3, np.array([0, 1]), [1.0, 2.0], 1, 5,
                                            *t.scratch_buffers()), IndexError),
    "seed_and_sweep": (lambda t: t.seed_and_sweep([BIG], [-1], [1.0]), IndexError),
    "seed_and_sweep array": (lambda t: t.seed_and_sweep([3], [BIG], [1.0]), IndexError),
    "node": (lambda t: t.node(BIG), IndexError),
    "array_node": (lambda t: t.array_node(BIG), IndexError),
    "geometry_of": (lambda t: t.geometry_of(BIG), IndexError),
    "_describe_array_node": (lambda t: t._describe_array_node(BIG), IndexError),
}


@pytest.mark.parametrize("case", list(TAPE_CASES))
def test_a_tape_method_refuses_an_index_off_the_tape(case):
    call, exception = TAPE_CASES[case]

    def run():
        t, *_ = scalar_tape()
        return call(t)

    assert_raises_in_child(run, exception)


def test_a_select_of_slots_off_the_tape_is_not_recorded():
    """Tape.select used to record the node; backward() then read far off the tape."""
    def run():
        t, x, y, z = scalar_tape()
        try:
            t.select(0, 10 ** 8, 10 ** 8, 1.0)
        except IndexError:
            pass
        z.backward()
        return t.n_nodes, x.grad, y.grad

    assert in_child(run) == ("returned", repr((4, -2.0, 1.5)))


def test_the_checked_methods_still_answer_on_the_tape():
    t, x, y, z = scalar_tape()
    assert t.value_at(z.slot) == z.value == 1.5 * -2.0 + 3.0
    assert t.scalar_adjoint(0) == 0.0                 # not swept yet
    z.backward()
    assert (t.scalar_adjoint(x.slot), t.scalar_adjoint(y.slot)) == (-2.0, 1.5)
    t.clear_tangents()
    t.seed_tangent(x.slot, -1, 1.0)
    t.forward_sweep()
    assert t.tangent_of(z.slot, -1) == -2.0
    values, adjoints = t.scratch_buffers()
    assert t.replay_gradient_of_list(z.slot, np.array([0, 1]), [2.0, 4.0], 0, 2,
                                     values, adjoints) == (11.0, [4.0, 2.0])


# -- 2. matmul dimensions BLAS takes as int --------------------------------------------

def test_a_matmul_past_int_dimensions_raises_at_recording():
    huge = np.broadcast_to(np.ones((1, 1)), (2 ** 31, 1))      # (no memory)

    def run():
        return ft.grad(lambda x: fnp.sum(huge @ x))(np.ones((1, 1)))

    assert_raises_in_child(run, ValueError, "below 2**31")


# -- 3. empty inputs -----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_hessian_and_jacfwd_of_an_empty_input_are_empty(shape):
    x = np.zeros(shape)
    assert ft.hessian(lambda v: fnp.sum(v ** 2))(x).shape == shape + shape
    assert ft.jacfwd(lambda v: 2.0 * v)(x).shape == shape + shape
    assert ft.jacobian(lambda v: fnp.sin(v))(x).shape == shape + shape
    assert ft.hessian(lambda v: 0.0 + sum(u * u for u in v))([]).shape == (0, 0)


# -- 4. pickled tapes: every field checked ---------------------------------------------

def sealed(state, max_size):
    state["digest"] = digest(state, max_size)
    return state


def array_state(fun, x):
    """(state, max_size, the array node table's column index) of fun traced at x."""
    g = ft.trace(fun, x)
    _, (state, max_size) = g.tape.__reduce__()
    return dict(state), max_size, {name: k for k, name in enumerate(ANODE_COLUMNS)}


def first_node(state, col, aop, condition=None):
    nodes = state["array_nodes"]
    for r in range(nodes.shape[0]):
        if nodes[r, col["aop"]] == aop and (condition is None or condition(nodes[r])):
            return r
    raise AssertionError(f"no node of op {aop}")


def with_geometry(state, r, col, k, value):
    geometry = state["geometry"].copy()
    geometry[state["array_nodes"][r, col["geom"]] + k] = value
    state["geometry"] = geometry
    return state


def crafted_binary_stride(state, col):
    r = first_node(state, col, AOP["BINARY"], lambda n: n[col["geom"]] >= 0)
    ndim = state["geometry"][state["array_nodes"][r, col["geom"]]]
    return with_geometry(state, r, col, 1 + ndim, 2 ** 62 + 2 ** 40)   # a's stride


def crafted_cumsum_extent(state, col):
    r = first_node(state, col, AOP["CUMSUM"])
    state = with_geometry(state, r, col, 0, 2 ** 62)        # outer * n * inner wraps
    return with_geometry(state, r, col, 2, 2 ** 2)


def crafted_matmul_stride(state, col):
    r = first_node(state, col, AOP["MATMUL"])
    return with_geometry(state, r, col, 4, 10 ** 6)         # a batch stride


def crafted_mask_not(state, col):
    r = first_node(state, col, AOP["MASK"], lambda n: n[col["sop"]] == MASK_OPS["not"])
    first = state["array_nodes"][r, col["operand0"]]
    operands = state["operands"].copy()
    operands[first, OPERAND_COLUMNS.index("size")] = 1     # it reads size values
    state["operands"] = operands
    return state


def crafted_scalar_output_adjoint(state, col):
    r = first_node(state, col, AOP["SUM"], lambda n: n[col["out_slot"]] >= 0)
    nodes = state["array_nodes"].copy()
    nodes[r, col["adj"]] = 10 ** 9
    state["array_nodes"] = nodes
    return state


def crafted_guard(state, col):
    state["guard_arg0s"] = np.full_like(state["guard_arg0s"], 10 ** 8)
    return state


def crafted_extras(state, col):
    state["extras"] = np.append(state["extras"], np.int32(0))   # an odd count
    return state


def model(x):
    m = x > 0.5
    y = fnp.sum(fnp.cumsum(x, axis=1)) + fnp.sum(fnp.where(~m, x, 2.0 * x))
    z = fnp.sum((np.ones((4, 2, 3)) @ fnp.transpose(x)) * x[0, 0])    # a batched matmul
    w = fnp.sum(x * fnp.reshape(x[:, 0], (2, 1)))           # broadcast with geometry
    b = x[0, 0] * ft.where(x[0, 1] - 0.5, x[0, 2], x[1, 1])
    if x[1, 2] > 0.1:
        b = b + 1.0
    return y + z + w + b


CRAFTED = {"binary stride past int64": crafted_binary_stride,
           "cumsum extent that wraps": crafted_cumsum_extent,
           "matmul batch stride": crafted_matmul_stride,
           "mask not of a short operand": crafted_mask_not,
           "scalar output with an adjoint offset": crafted_scalar_output_adjoint,
           "guard slot": crafted_guard,
           "extras": crafted_extras}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_tape_state_raises_value_error(case):
    x = np.array([[0.2, 0.7, 0.9], [0.4, 0.6, 0.3]])
    state, max_size, col = array_state(model, x)
    restore_tape(dict(state), max_size)                      # (intact: loads)
    bad = sealed(CRAFTED[case](dict(state), col), max_size)
    assert_raises_in_child(lambda: restore_tape(bad, max_size), ValueError, "corrupt")


def test_a_damaged_tape_state_fails_its_digest():
    state, max_size, _ = array_state(model, np.array([[0.2, 0.7, 0.9], [0.4, 0.6, 0.3]]))
    values = state["values"].copy()
    values[3] += 1e-9                  # a valid tape, computing something else
    state["values"] = values
    with pytest.raises(ValueError, match="digest"):
        restore_tape(state, max_size)


def test_a_tape_state_of_another_format_is_refused():
    state, max_size, _ = array_state(model, np.array([[0.2, 0.7, 0.9], [0.4, 0.6, 0.3]]))
    state["format"] = 1
    with pytest.raises(ValueError, match="format"):
        restore_tape(sealed(state, max_size), max_size)


def test_read_only_arrays_of_a_pickle_are_copied_before_a_replay_writes():
    """Protocol 5 with out-of-band buffers: the arrays come back over the caller's
    read-only memory, which a replay must not write into."""
    x = np.array([[0.2, 0.7, 0.9], [0.4, 0.6, 0.3]])
    g = ft.trace(model, x)
    buffers = []
    blob = pickle.dumps(g, protocol=5, buffer_callback=buffers.append)
    frozen = [bytes(b.raw()) for b in buffers]
    loaded = pickle.loads(blob, buffers=frozen)
    before = [bytes(b) for b in frozen]
    x2 = x + 0.01
    assert np.allclose(loaded(x2), model(x2), rtol=1e-12)
    assert [bytes(b) for b in frozen] == before
    assert np.allclose(loaded.grad(x2), ft.grad(model)(x2), rtol=1e-12)


# -- 5. threads and retrace ------------------------------------------------------------

RETRACE_STRESS = """
import sys, threading
import numpy as np
import fasttape as ft

def f(xs):                             # the branch decides how long the tape is
    if xs[0] > 0:
        total = 0.0
        for k in range(60):
            for x in xs:
                total = total + x * x * x * (1.0 / 60)
        return total
    return xs[0] * 2.0 + xs[1]

sys.setswitchinterval(1e-6)            # switch threads as often as possible
g = ft.trace(f, [1.0, 2.0, 3.0], retrace=True)
wrong = []

def worker(w):
    rng = np.random.default_rng(w)
    for i in range(400):
        p = [float(v) for v in rng.normal(size=3)]
        want = [3 * x * x for x in p] if p[0] > 0 else [2.0, 1.0, 0.0]
        if i % 4 == 3:
            got = g.grad_many(np.array([p, p]), n_threads=2)[1]
        elif i % 4 == 2:
            got = g.grad(tuple(p)) if False else g.value_and_grad(p)[1]
        else:
            got = g.grad(p)
        if not np.allclose(got, want, rtol=1e-12, atol=1e-12):
            wrong.append((p, got))

threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(wrong))
"""


def test_threads_retracing_one_traced_function_get_right_gradients():
    """A retrace used to rewrite the recording one attribute at a time while other
    threads' fast paths read them (slots of one tape, buffers of another): crashes
    and wrong gradients."""
    assert_runs_cleanly(RETRACE_STRESS, expected_stdout="0")


def test_a_recording_does_not_change():
    g = ft.trace(lambda x: x[0] * x[1], [1.0, 2.0])
    rec = g._current
    assert type(rec) is TraceRecording
    with pytest.raises(AttributeError):
        rec.tape = None
    assert not rec.all_slots.flags.writeable


# -- 6. the pickle fuzzer --------------------------------------------------------------

def check_fuzz(n_trials, seed):
    for name in pickle_fuzz.MODELS:
        for kind in ("flip", "cut", "crafted"):
            counts, bad = pickle_fuzz.fuzz(name, kind, n_trials, seed)
            assert not bad, (f"{name} {kind}: {pickle_fuzz.describe(counts)}; "
                             f"first: {bad[:5]}")


def test_pickle_fuzzing_short():
    check_fuzz(40, seed=7)


@pytest.mark.slow
def test_pickle_fuzzing_long():
    check_fuzz(1000, seed=11)


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda x: np.asarray(x, float)])
def test_an_array_variable_refuses_to_become_a_plain_numpy_array(convert):
    # (it would become an object array of element Variables, the first step of a
    # plain-NumPy or plain-SciPy function that fasttape cannot see)
    def f(x):
        convert(x)
        return fnp.sum(x)
    with pytest.raises(TypeError, match="ArrayVariable to a NumPy array"):
        ft.grad(f)(np.array([0.4, 1.0]))
