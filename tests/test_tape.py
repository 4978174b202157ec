"""The tape: growth past capacity, reset and reuse, repeated and nested sweeps, index
overflow, use-after-reset and mixed-tape errors, the zero-adjoint rule, nan
propagation, the op table, and the inspection helpers (arrays, dump)."""
import io
import math

import numpy as np
import pytest

import fasttape as ft
from fasttape import StaleVariableError, Tape, TapeMismatchError, Variable, grad
from fasttape import _optable
from fasttape._tape import N_OP_CODES, OP_TABLE, op_arity

from support import TAPE_BLOCK_PROBE, assert_runs_cleanly

BINARY_FUNCTIONS = {op.name for op in _optable.OPS if op.kind == "binary"}


def op_names(tape):
    return [OP_TABLE[c][0] for c in tape.arrays()["ops"]]


# -- the op table ----------------------------------------------------------------------

def test_op_codes_are_contiguous_and_in_table_order():
    codes = [code for _, code, _ in OP_TABLE]
    assert codes == list(range(len(OP_TABLE)))
    assert N_OP_CODES == len(OP_TABLE)


def test_op_names_are_unique():
    names = [name for name, _, _ in OP_TABLE]
    assert len(set(names)) == len(names)
    assert names[:2] == ["LEAF", "CONST"]


@pytest.mark.parametrize("name, code, arity", OP_TABLE, ids=[r[0] for r in OP_TABLE])
def test_python_and_c_arity_tables_agree(name, code, arity):
    assert op_arity(code) == arity
    # arity counts Variable operands, which the naming convention also says; an ARRAY
    # node keeps its operands in its ArrayNode instead
    if name in ("LEAF", "CONST", "ARRAY"):
        expected = 0
    elif name == "SELECT":                  # condition, and the two choices
        expected = 3
    elif name.endswith("_VV") or name in BINARY_FUNCTIONS:
        expected = 2
    else:                                   # *_VC, *_CV and the unary functions
        expected = 1
    assert arity == expected


@pytest.mark.parametrize("code", [-1, N_OP_CODES, 255, 10 ** 6])
def test_op_arity_rejects_unknown_codes(code):
    with pytest.raises((ValueError, OverflowError)):
        op_arity(code)


# -- growth ----------------------------------------------------------------------------

def damped_chain(y, steps, rate):
    """y_{k+1} = y_k + rate * sin(y_k): three nodes per step."""
    for _ in range(steps):
        y = y + rate * ft.sin(y)
    return y


def damped_chain_derivative(y, steps, rate):
    """d y_N / d y_0 = prod (1 + rate cos y_k), in plain floats."""
    d = 1.0
    for _ in range(steps):
        d *= 1.0 + rate * math.cos(y)
        y = y + rate * math.sin(y)
    return y, d


def test_the_tape_modules_keep_their_public_names():
    """The split of the tape by concern kept fasttape._tape's names (the op table's
    re-exported from _tape_storage), and Tape is the storage with the sweeps."""
    import fasttape._tape as tape_module
    import fasttape._tape_pools as pools
    from fasttape._tape_storage import TapeStorage
    for name in ("Tape", "OP_TABLE", "ARRAY_OP_TABLE", "MASK_OPS", "N_OP_CODES",
                 "N_ARRAY_OP_CODES", "COMPARISON_NAMES", "COMPILED_OP_CODES",
                 "op_arity", "op_formulas", "push_active", "pop_active",
                 "register_tape_pickler"):
        assert hasattr(tape_module, name), name
    for name in ("current_tape", "active_tape", "acquire_tape", "release_tape"):
        assert hasattr(pools, name), name
    assert issubclass(Tape, TapeStorage)
    tape = pools.acquire_tape()
    assert pools.active_tape() is tape and type(tape) is Tape
    pools.release_tape(tape)
    assert pools.active_tape() is None


def test_growth_past_the_initial_capacity_gives_correct_gradients():
    steps = 40_000                                     # 120 001 nodes
    value, g = ft.value_and_grad(damped_chain)(0.3, steps, 1e-4)
    expected_value, expected_grad = damped_chain_derivative(0.3, steps, 1e-4)
    assert value == pytest.approx(expected_value, rel=1e-13)
    assert g == pytest.approx(expected_grad, rel=1e-11)


def test_growth_on_an_explicit_tape():
    tape = Tape()
    x = Variable(0.3, tape=tape)
    y = damped_chain(x, 40_000, 1e-4)
    assert tape.n_nodes == tape.n_slots == 1 + 3 * 40_000
    # the loop's constants are the same few numbers: the pool keeps one entry each
    assert tape.n_constants < 10
    assert tape.nbytes >= tape.n_nodes * (1 + 2 * 4 + 8)
    y.backward()
    assert x.grad == pytest.approx(damped_chain_derivative(0.3, 40_000, 1e-4)[1],
                                   rel=1e-11)


def test_many_leaves_and_a_wide_sum(rng):
    n = 100_000
    values = rng.uniform(-1, 1, n)
    tape = Tape()
    xs = [Variable(float(v), tape=tape) for v in values]
    total = xs[0] * xs[0]
    for x in xs[1:]:
        total = total + x * x
    total.backward()
    grads = np.array([x.grad for x in xs])
    np.testing.assert_array_equal(grads, 2.0 * values)
    assert total.value == pytest.approx(float(np.sum(values ** 2)), rel=1e-12)


@pytest.mark.slow
def test_growth_to_millions_of_nodes():
    steps = 1_000_000                                  # 3 000 001 nodes
    g = grad(damped_chain)(0.3, steps, 1e-6)
    assert g == pytest.approx(damped_chain_derivative(0.3, steps, 1e-6)[1], rel=1e-9)


def test_buffer_sizes():
    tape = Tape()
    assert tape.nbytes == 0 and tape.n_nodes == 0
    # op code, two operands, value, adjoint
    assert tape.bytes_per_node == 1 + 2 * 4 + 2 * 8
    Variable(1.0, tape=tape)
    small = tape.nbytes
    assert small > 0
    x = Variable(1.0, tape=tape)
    for _ in range(5000):
        x = x * 1.0001
    assert tape.nbytes > small


# -- reset and reuse -------------------------------------------------------------------

def test_reset_forgets_nodes_and_keeps_memory():
    tape = Tape()
    x = Variable(2.0, tape=tape)
    y = x * 3.0
    for _ in range(1000):
        y = y + x
    y < 1.0
    nbytes = tape.nbytes
    epoch = tape.epoch
    tape.reset()
    assert (tape.n_nodes, tape.n_slots, tape.n_constants, tape.n_guards) == (0, 0, 0, 0)
    assert tape.epoch == epoch + 1
    assert tape.nbytes == nbytes
    assert all(len(a) == 0 for a in tape.arrays().values())


def test_reuse_after_reset_gives_correct_gradients():
    tape = Tape()
    for round_ in range(20):
        tape.reset()
        x = Variable(0.1 * round_, tape=tape)
        y = Variable(1.0 + round_, tape=tape)
        f = ft.exp(x) * y + ft.cos(y) if round_ % 2 else x * x * y
        f.backward()
        if round_ % 2:
            expected = (math.exp(0.1 * round_) * (1.0 + round_),
                        math.exp(0.1 * round_) - math.sin(1.0 + round_))
        else:
            expected = (2 * 0.1 * round_ * (1.0 + round_), (0.1 * round_) ** 2)
        assert (x.grad, y.grad) == pytest.approx(expected, rel=1e-14)
        assert x.node == 0 and y.node == 1


def test_grad_after_reset_of_a_longer_recording_ignores_old_adjoints():
    tape = Tape()
    x = Variable(1.0, tape=tape)
    y = x
    for _ in range(100):
        y = y * 2.0
    y.backward()
    tape.reset()
    a = Variable(5.0, tape=tape)
    b = a + 1.0
    b.backward()
    assert a.grad == 1.0 and b.grad == 1.0


def test_repeated_gradients_on_one_tape():
    tape = Tape()
    x = Variable(0.7, tape=tape)
    outputs = [ft.sin(x), ft.exp(x), x * x, ft.log(x)]
    expected = [math.cos(0.7), math.exp(0.7), 1.4, 1 / 0.7]
    for _ in range(3):
        for out, d in zip(outputs, expected):
            out.backward()
            assert x.grad == pytest.approx(d, rel=1e-15)


def test_repeated_grad_calls_reuse_pooled_tapes_correctly(rng):
    functions = [(lambda x: x * x, lambda x: 2 * x),
                 (lambda x: ft.sin(x) * x, lambda x: math.cos(x) * x + math.sin(x)),
                 (lambda x: damped_chain(x, 300, 0.01),
                  lambda x: damped_chain_derivative(x, 300, 0.01)[1])]
    for _ in range(200):
        f, df = functions[int(rng.integers(len(functions)))]
        x = float(rng.uniform(-2, 2))
        assert grad(f)(x) == pytest.approx(df(x), rel=1e-12)


# -- nested sweeps ---------------------------------------------------------------------

def test_backward_inside_a_differentiated_function():
    inner = []

    def f(x):
        u = x * x
        u.backward()                       # a sweep on grad's own tape, mid-recording
        inner.append(x.grad)
        return u * 3.0 + x

    assert grad(f)(2.0) == 13.0            # d/dx (3 x^2 + x)
    assert inner == [4.0]


def test_interleaved_recording_and_sweeps_on_two_tapes():
    t1, t2 = Tape(), Tape()
    a = Variable(1.5, tape=t1)
    b = Variable(-0.5, tape=t2)
    fa = a * a
    fb = ft.exp(b)
    fa.backward()
    ga = ft.sin(fa)                        # keeps recording on t1 after its sweep
    fb.backward()
    ga.backward()
    assert a.grad == pytest.approx(math.cos(2.25) * 3.0, rel=1e-15)
    assert b.grad == pytest.approx(math.exp(-0.5), rel=1e-15)


def test_tape_blocks_work_in_a_fresh_interpreter():
    """The probe behind the ``tape_blocks`` fixture, as a test of its own: run in a
    subprocess, so that a crash is reported here instead of ending the session."""
    assert_runs_cleanly(TAPE_BLOCK_PROBE, expected_stdout="2.0")


def test_with_blocks_nest_and_record_on_the_innermost_tape(tape_blocks):
    with Tape() as outer:
        x = Variable(2.0)
        with Tape() as inner:
            y = Variable(3.0)
            z = y * y
        w = x * x
    assert x.tape is outer and w.tape is outer
    assert y.tape is inner and z.tape is inner
    z.backward()
    w.backward()
    assert (x.grad, y.grad) == (4.0, 6.0)
    assert Variable(1.0).tape not in (inner, outer)     # back to the default tape


def test_grad_inside_a_with_block_records_on_the_block_tape(tape_blocks):
    """Inside a `with Tape()` block (as inside another differentiation), grad records
    on the block's tape, so its result is a recorded Variable that can be combined
    with the block's other Variables and differentiated again."""
    with Tape() as t:
        x = Variable(1.0)
        g = grad(lambda v: v * v * v)(2.0)
        y = x * g
    assert g.value == 12.0 and g.tape is t and y.tape is t
    y.backward()
    assert x.grad == 12.0


def test_an_exception_inside_a_with_block_deactivates_the_tape(tape_blocks):
    with pytest.raises(ZeroDivisionError):
        with Tape() as t:
            Variable(1.0)
            1 / 0
    assert t.n_nodes == 1
    assert Variable(1.0).tape is not t


def test_tape_blocks_exited_out_of_order_raise(tape_blocks):
    t1, t2 = Tape(), Tape()
    t1.__enter__()
    t2.__enter__()
    try:
        with pytest.raises(RuntimeError, match="order"):
            t1.__exit__(None, None, None)
    finally:
        t2.__exit__(None, None, None)
        t1.__exit__(None, None, None)
    assert Variable(1.0).tape not in (t1, t2)


# -- stale and mismatched Variables ----------------------------------------------------

def test_variables_escaping_grad_become_stale():
    leaked = []

    def f(x):
        y = x * 2.0
        leaked.extend([x, y])
        return y

    assert grad(f)(1.0) == 2.0
    for v in leaked:
        with pytest.raises(StaleVariableError, match="reset"):
            v.value
        with pytest.raises(StaleVariableError):
            v * 2.0
        with pytest.raises(StaleVariableError):
            ft.exp(v)


def test_variables_become_stale_after_reset():
    tape = Tape()
    x = Variable(1.0, tape=tape)
    tape.reset()
    y = Variable(2.0, tape=tape)           # a new Variable on the same slot
    assert y.slot == x.slot
    with pytest.raises(StaleVariableError):
        x + y
    with pytest.raises(StaleVariableError):
        y * x
    with pytest.raises(StaleVariableError):
        ft.hypot(y, x)
    with pytest.raises(StaleVariableError):
        x.grad
    assert y.value == 2.0


def test_stale_output_of_grad_function_is_refused():
    keep = []

    def first(x):
        keep.append(x * x)
        return keep[-1]

    grad(first)(1.0)
    with pytest.raises((StaleVariableError, TapeMismatchError)):
        grad(lambda x: keep[0])(1.0)


def test_mixing_tapes_raises_tape_mismatch_error():
    t1, t2 = Tape(), Tape()
    a = Variable(1.0, tape=t1)
    b = Variable(2.0, tape=t2)
    for combine in (lambda: a + b, lambda: a - b, lambda: a * b, lambda: a / b,
                    lambda: a ** b, lambda: ft.maximum(a, b), lambda: ft.arctan2(a, b),
                    lambda: a < b, lambda: a == b):
        with pytest.raises(TapeMismatchError, match="different tapes"):
            combine()
    assert t1.n_nodes == 1 and t2.n_nodes == 1 and t1.n_guards == 0


def test_a_variable_from_outside_used_inside_grad_raises_tape_mismatch_error():
    outside = Variable(2.0, tape=Tape())
    with pytest.raises(TapeMismatchError, match="different tapes"):
        grad(lambda x: x * outside)(1.0)
    assert grad(lambda x: x * outside.value)(1.0) == 2.0     # .value: a constant


def test_returning_a_variable_from_another_tape_raises_tape_mismatch_error():
    other = Variable(3.0, tape=Tape())
    with pytest.raises(TapeMismatchError, match="another tape"):
        grad(lambda x: other * 2.0)(1.0)
    assert grad(lambda x: x * 2.0)(1.0) == 2.0


# -- overflow of the index range -------------------------------------------------------

@pytest.mark.parametrize("max_size", [0, -1, 2 ** 31])
def test_max_size_is_validated(max_size):
    with pytest.raises((ValueError, OverflowError)):
        Tape(max_size=max_size)


def test_recording_past_max_size_raises_overflow_error_and_keeps_the_tape():
    tape = Tape(max_size=10)
    x = Variable(1.5, tape=tape)
    y = x
    for _ in range(9):
        y = y * x                          # nodes 1..9: y = x^10
    assert tape.n_nodes == 10
    with pytest.raises(OverflowError, match="at most 10"):
        y * x
    with pytest.raises(OverflowError):
        y + 1.0
    with pytest.raises(OverflowError):
        ft.sin(y)
    with pytest.raises(OverflowError):
        Variable(2.0, tape=tape)
    assert tape.n_nodes == tape.n_slots == 10
    assert len(tape.arrays()["ops"]) == 10
    y.backward()                           # what was recorded is intact
    assert y.value == pytest.approx(1.5 ** 10, rel=1e-15)
    assert x.grad == pytest.approx(10 * 1.5 ** 9, rel=1e-14)
    tape.reset()                           # and the tape is reusable
    z = Variable(4.0, tape=tape)
    w = ft.sqrt(z)
    w.backward()
    assert z.grad == 0.25


def test_overflow_while_promoting_a_constant():
    tape = Tape(max_size=2)
    x = Variable(1.0, tape=tape)
    x * 2.0
    with pytest.raises(OverflowError):
        ft.maximum(x, 3.0)                 # needs a CONST node and a MAXIMUM node
    assert tape.n_nodes == tape.n_slots == 2


# -- the zero-adjoint rule and nan propagation -----------------------------------------

def test_zero_adjoint_rule_skips_nodes_that_receive_exactly_zero():
    # d/dx 0 * log(x) at 0: log'(0) = inf would give 0 * inf = nan without the rule
    assert grad(lambda x: 0.0 * ft.log(x))(0.0) == 0.0
    assert grad(lambda x: ft.log(x) * 0.0 + x)(0.0) == 1.0
    assert grad(lambda x: 0.0 * ft.sqrt(x))(0.0) == 0.0
    assert grad(lambda x: 0.0 * (1.0 / x))(0.0) == 0.0
    assert grad(lambda x, y: ft.log(x) * y, argnum=(0, 1))(0.0, 0.0) == (0.0, -math.inf)
    # the adjoint of the branch not taken by maximum is exactly 0 as well
    assert grad(lambda x: ft.maximum(ft.log(x), 1.0))(0.0) == 0.0


def test_nan_adjoints_still_propagate():
    nan = math.nan
    assert math.isnan(grad(lambda x: x * nan)(1.0))
    assert math.isnan(grad(lambda x: ft.sin(x * nan))(1.0))
    assert math.isnan(grad(lambda x: ft.log(x) * nan)(0.0))
    dx, dy = grad(lambda x, y: x * 2.0 + y * nan, argnum=(0, 1))(1.0, 1.0)
    assert dx == 2.0 and math.isnan(dy)    # nan stays on its own path
    tape = Tape()
    x = Variable(1.0, tape=tape)
    y = x * 3.0
    y.backward(seed=nan)
    assert math.isnan(x.grad)


# -- inspection ------------------------------------------------------------------------

def recorded_example():
    tape = Tape()
    x = Variable(2.0, tape=tape)
    y = Variable(-1.0, tape=tape)
    u = x * y                     # node 2: MUL_VV v0 v1
    v = u + 0.5                   # node 3: ADD_VC v2 const[0]
    w = 3.0 - v                   # node 4: SUB_CV const[1] v3
    m = ft.maximum(w, 1.25)       # nodes 5, 6: CONST 1.25, MAXIMUM v4 v5
    x > y
    m <= 7.0
    return tape, (x, y, u, v, w, m)


def test_arrays_contents():
    tape, (x, y, u, v, w, m) = recorded_example()
    arrays = tape.arrays()
    assert set(arrays) == {"ops", "arg0s", "arg1s", "values", "constants", "guard_ops",
                           "guard_arg0s", "guard_arg1s", "guard_nodes",
                           "guard_outcomes", "extras"}
    assert op_names(tape) == ["LEAF", "LEAF", "MUL_VV", "ADD_VC", "SUB_CV", "CONST",
                              "MAXIMUM"]
    assert arrays["ops"].dtype == np.uint8
    assert arrays["arg0s"].dtype == arrays["arg1s"].dtype == np.int32
    assert arrays["values"].dtype == arrays["constants"].dtype == np.float64
    assert arrays["arg0s"][2:].tolist() == [0, 2, 1, 0, 4]   # SUB_CV: const index 1
    assert arrays["arg1s"][2:5].tolist() == [1, 0, 3]
    assert arrays["arg1s"][6] == 5
    assert arrays["values"].tolist() == [2.0, -1.0, -2.0, -1.5, 4.5, 1.25, 4.5]
    assert arrays["values"].tolist() == [t.value for t in (x, y, u, v, w)] + [1.25,
                                                                             m.value]
    assert arrays["constants"][:2].tolist() == [0.5, 3.0]
    assert 7.0 in arrays["constants"].tolist()               # the guard's constant
    assert len(arrays["guard_ops"]) == tape.n_guards == 2
    assert arrays["guard_outcomes"].tolist() == [1, 1]
    assert arrays["guard_arg0s"].tolist() == [x.slot, m.slot]
    assert arrays["guard_nodes"].tolist() == [7, 7]           # recorded after 7 nodes
    assert len(arrays["values"]) == tape.n_slots and len(arrays["ops"]) == tape.n_nodes
    assert len(arrays["constants"]) == tape.n_constants


def test_arrays_are_copies():
    tape, (x, *_) = recorded_example()
    arrays = tape.arrays()
    arrays["values"][0] = 99.0
    assert x.value == 2.0 and tape.arrays()["values"][0] == 2.0


def test_guards_listing():
    tape, (x, y, *_, m) = recorded_example()
    assert tape.guards() == [(f"v{x.slot}", ">", f"v{y.slot}", True),
                             (f"v{m.slot}", "<=", 7.0, True)]


def test_dump_prints_one_line_per_node():
    tape, (*_, m) = recorded_example()
    out = io.StringIO()
    tape.dump(file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == tape.n_nodes
    for line, name in zip(lines, op_names(tape)):
        assert name in line
    assert "0.5" in lines[3] and "3.0" in lines[4]           # constants shown by value
    assert "1.25" in lines[5]
    assert not any("adjoint" in line for line in lines)
    m.backward()
    out = io.StringIO()
    tape.dump(file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == tape.n_nodes
    assert all("adjoint" in line for line in lines)


def test_dump_to_stdout(capsys):
    tape, _ = recorded_example()
    tape.dump()
    assert len(capsys.readouterr().out.splitlines()) == tape.n_nodes


def test_tape_repr():
    tape, _ = recorded_example()
    text = repr(tape)
    assert "7 nodes" in text and "2 comparisons" in text and "epoch 0" in text


# -- array-node geometry: the writers, the Python reader and the recorded nodes agree --

def _recorded_array_node(fun, *shapes):
    """The tape and array node of fun applied to array arguments of these shapes
    (recorded inside a gradient, whose tape lives while the caught node is read)."""
    caught = []

    def f(*xs):
        y = fun(*xs)
        caught.append((y.tape, y.anode, y.tape.geometry_of(y.anode), y.tape.array_node(y.anode)))
        return ft.numpy.sum(y)

    ft.grad(f, argnum=tuple(range(len(shapes))))(
        *[np.arange(1.0, 1.0 + np.prod(s)).reshape(s) for s in shapes])
    return caught[0]


@pytest.mark.parametrize("fun, shapes, expected", [
    # broadcast (3, 1) with (4,): each operand's element strides along (3, 4)
    (lambda a, b: a * b, [(3, 1), (4,)],
     ("BinaryGeometry", {"shape": (3, 4), "a_strides": (1, 0), "b_strides": (0, 1)})),
    # the sum over axis 1 of a (2, 3, 4) array: output strides 4, 0, 1
    (lambda a: ft.numpy.sum(a, axis=1), [(2, 3, 4)],
     ("ReduceGeometry", {"shape": (2, 3, 4), "out_strides": (4, 0, 1)})),
    (lambda a: ft.numpy.cumsum(a, axis=1), [(2, 3, 4)],
     ("CumsumGeometry", {"outer": 2, "n": 3, "inner": 4})),
    (lambda a, b: a @ b, [(5, 2, 3), (3, 4)],
     ("MatmulGeometry", {"batch": 5, "m": 2, "k": 3, "n": 4, "a_stride": 6,
                         "b_stride": 0})),
    # every other column from the second of the transposed (3, 4) array, a view of
    # the transpose's own (4, 3) node: shape (4, 1), strides 3 and 2, offset 1
    (lambda a: a.T[:, 1::2], [(3, 4)],
     ("StridedGeometry", {"shape": (4, 1), "strides": (3, 2), "offset": 1})),
])
def test_recorded_geometry_reads_back_as_numpy_describes_it(fun, shapes, expected):
    from fasttape._tape_storage import decode_geometry, encode_geometry
    _, _, layout, info = _recorded_array_node(fun, *shapes)
    kind, fields = expected
    assert type(layout).__name__ == kind
    assert layout._asdict() == fields
    aop = info.aop
    assert decode_geometry(aop, encode_geometry(aop, layout), 0) == layout


def test_array_node_info_reads_operands_and_values():
    seen = []

    def f(a, b):
        y = a * b + 1.0
        info = y.tape.array_node(y.anode)
        first = y.tape.array_node(info.operands[0].ref)
        seen.append((info.value.shape, [o.size for o in info.operands],
                     info.operands[1].data, first.layout.shape, first.value.shape))
        with pytest.raises(IndexError):
            y.tape.array_node(y.tape.n_array_nodes)
        return ft.numpy.sum(y)

    ft.grad(f, argnum=(0, 1))(np.ones((3, 1)), np.ones(4))
    assert seen == [((3, 4), [12, 1], 1.0, (3, 4), (3, 4))]
