"""Variable: the PyTorch-style interface (backward, .grad), the number protocol with
every kind of real number on either side, comparisons remembered as guards, the
conversions that must refuse to drop a derivative, and the default tape."""
import contextlib
import fractions
import math
import operator
import pickle
import sys

import numpy as np
import pytest

import fasttape as ft
from fasttape import StaleVariableError, Tape, TapeMismatchError, Variable
from fasttape._tape import OP_TABLE


def op_names(tape):
    return [OP_TABLE[c][0] for c in tape.arrays()["ops"]]


@contextlib.contextmanager
def shallow_recursion(limit=300):
    """Keep runaway recursion (which goes through C frames of NumPy's dispatch) far
    from the C stack's limit, so that it ends in RecursionError, not a crash."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# -- the textbook example --------------------------------------------------------------

def test_textbook_example_exactly():
    x, y = Variable(2.0), Variable(3.0)
    f = x * y + ft.sin(x)
    f.backward()
    assert f.value == 6.0 + math.sin(2.0)
    assert x.grad == 2.5838531634528574
    assert x.grad == 3.0 + math.cos(2.0)
    assert y.grad == 2.0
    assert type(x.grad) is float and type(f.value) is float


def test_textbook_example_on_an_explicit_tape():
    tape = Tape()
    x, y = Variable(2.0, tape=tape), Variable(3.0, tape=tape)
    f = x * y + ft.sin(x)
    f.backward()
    assert (x.grad, y.grad) == (3.0 + math.cos(2.0), 2.0)
    assert op_names(tape) == ["LEAF", "LEAF", "MUL_VV", "SIN", "ADD_VV"]
    assert f.grad == 1.0


# -- construction ----------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (2.5, 2.5), (3, 3.0), (True, 1.0), (np.float64(0.25), 0.25),
    (np.float32(0.5), 0.5), (np.int64(-7), -7.0), (np.bool_(True), 1.0),
    (fractions.Fraction(3, 4), 0.75), (math.inf, math.inf), (2 ** 60, 2.0 ** 60)])
def test_variable_from_real_numbers(value, expected):
    v = Variable(value, tape=Tape())
    assert type(v.value) is float
    assert v.value == expected


def test_variable_of_nan():
    assert math.isnan(Variable(math.nan, tape=Tape()).value)


@pytest.mark.parametrize("value", ["1.0", None, 1j, [1.0], np.array([1.0, 2.0]),
                                  object()])
def test_variable_refuses_non_real_values(value):
    with pytest.raises(TypeError):
        Variable(value, tape=Tape())


def test_variable_of_a_variable_is_refused():
    v = Variable(1.0, tape=Tape())
    with pytest.raises(TypeError, match="already a Variable"):
        Variable(v)


def test_variable_handle_attributes():
    tape = Tape()
    a = Variable(1.0, tape=tape)
    b = Variable(2.0, tape=tape)
    c = a * b
    assert (a.tape, b.tape, c.tape) == (tape, tape, tape)
    assert (a.node, b.node, c.node) == (0, 1, 2)
    assert (a.slot, b.slot, c.slot) == (0, 1, 2)
    assert tape.arrays()["values"].tolist() == [1.0, 2.0, 2.0]


# -- the number protocol ---------------------------------------------------------------

NUMBER_KINDS = [
    pytest.param(lambda x: float(x), id="float"),
    pytest.param(lambda x: int(x), id="int"),
    pytest.param(lambda x: bool(x), id="bool"),
    pytest.param(lambda x: np.float64(x), id="np.float64"),
    pytest.param(lambda x: np.float32(x), id="np.float32"),
    pytest.param(lambda x: np.int64(x), id="np.int64"),
]

# (operator, d/dv of v op c, d/dv of c op v)
OPERATORS = [
    pytest.param(operator.add, lambda v, c: 1.0, lambda c, v: 1.0, id="+"),
    pytest.param(operator.sub, lambda v, c: 1.0, lambda c, v: -1.0, id="-"),
    pytest.param(operator.mul, lambda v, c: c, lambda c, v: c, id="*"),
    pytest.param(operator.truediv, lambda v, c: 1.0 / c, lambda c, v: -c / v ** 2,
                 id="/"),
    pytest.param(operator.pow, lambda v, c: c * v ** (c - 1),
                 lambda c, v: math.log(c) * c ** v, id="**"),
]


@pytest.mark.parametrize("op, d_left, d_right", OPERATORS)
@pytest.mark.parametrize("kind", NUMBER_KINDS)
def test_variable_on_the_left_of_a_number(op, d_left, d_right, kind):
    c = kind(2)
    tape = Tape()
    v = Variable(1.5, tape=tape)
    with shallow_recursion():
        out = op(v, c)
    assert type(out) is Variable
    assert out.value == pytest.approx(op(1.5, float(c)), rel=1e-15)
    out.backward()
    assert v.grad == pytest.approx(d_left(1.5, float(c)), rel=1e-15)


@pytest.mark.parametrize("op, d_left, d_right", OPERATORS)
@pytest.mark.parametrize("kind", NUMBER_KINDS)
def test_variable_on_the_right_of_a_number(op, d_left, d_right, kind):
    c = kind(2)
    tape = Tape()
    v = Variable(1.5, tape=tape)
    with shallow_recursion():
        out = op(c, v)
    assert type(out) is Variable
    assert out.value == pytest.approx(op(float(c), 1.5), rel=1e-15)
    out.backward()
    assert v.grad == pytest.approx(d_right(float(c), 1.5), rel=1e-15)


def test_unary_operators():
    tape = Tape()
    v = Variable(-1.25, tape=tape)
    assert (-v).value == 1.25
    assert +v is v
    assert abs(v).value == 1.25
    assert ft.grad(lambda x: -x)(3.0) == -1.0
    assert ft.grad(lambda x: abs(x))(-3.0) == -1.0
    assert ft.grad(lambda x: +x)(3.0) == 1.0


def test_integer_and_float_powers():
    tape = Tape()
    v = Variable(3.0, tape=tape)
    for p in (2, 2.0, np.float64(2.0), np.int64(2)):
        n = tape.n_nodes
        with shallow_recursion():
            sq = v ** p
        assert sq.value == 9.0
        assert op_names(tape)[n:] == ["SQUARE"]      # x ** 2 is specialised
    cube = v ** 3
    assert cube.value == 27.0 and op_names(tape)[-1] == "POW_VC"
    assert ft.grad(lambda x: x ** 3)(2.0) == 12.0
    assert ft.grad(lambda x: x ** -2)(2.0) == -0.25


def test_pow_with_a_modulus_is_refused():
    v = Variable(3.0, tape=Tape())
    with pytest.raises(TypeError):
        pow(v, 2, 5)


@pytest.mark.parametrize("other", ["a", [1.0], (1.0,), None, 1j, {}])
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul,
                                operator.truediv, operator.pow])
def test_arithmetic_with_non_numbers_raises_type_error(op, other):
    v = Variable(3.0, tape=Tape())
    with pytest.raises(TypeError):
        op(v, other)
    with pytest.raises(TypeError):
        op(other, v)


def test_int_too_large_for_a_float_raises_like_float_arithmetic():
    v = Variable(3.0, tape=Tape())
    with pytest.raises(OverflowError):
        1.0 + 10 ** 400
    with pytest.raises(OverflowError):
        v + 10 ** 400


def test_numpy_ufuncs_on_a_variable():
    tape = Tape()
    v = Variable(0.5, tape=tape)
    out = np.sin(v) * np.exp(v)
    assert type(out) is Variable
    out.backward()
    assert v.grad == pytest.approx(math.exp(0.5) * (math.sin(0.5) + math.cos(0.5)),
                                   rel=1e-15)


def test_numpy_scalar_times_variable_inside_grad():
    with shallow_recursion():
        got = ft.grad(lambda x: np.float64(3.0) * x + x * np.float32(0.5))(2.0)
    assert got == 3.5


# -- comparisons -----------------------------------------------------------------------

COMPARISONS = [("<", operator.lt), ("<=", operator.le), (">", operator.gt),
               (">=", operator.ge), ("==", operator.eq), ("!=", operator.ne)]


@pytest.mark.parametrize("symbol, op", COMPARISONS, ids=[c[0] for c in COMPARISONS])
@pytest.mark.parametrize("a, b", [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0),
                                  (math.nan, 2.0), (-math.inf, math.inf)])
def test_comparisons_return_bools_and_are_remembered(symbol, op, a, b):
    tape = Tape()
    x = Variable(a, tape=tape)
    y = Variable(b, tape=tape)
    expected = op(a, b)
    assert op(x, y) is expected
    assert op(x, b) is expected
    assert tape.n_guards == 2
    guards = tape.guards()
    assert guards[0] == (f"v{x.slot}", symbol, f"v{y.slot}", expected)
    left, sym, right, outcome = guards[1]
    assert (left, sym, outcome) == (f"v{x.slot}", symbol, expected)
    assert right == b or (math.isnan(right) and math.isnan(b))
    assert tape.n_nodes == 2          # comparisons record no node


@pytest.mark.parametrize("symbol, op, mirrored", [
    ("<", operator.lt, ">"), ("<=", operator.le, ">="), (">", operator.gt, "<"),
    (">=", operator.ge, "<="), ("==", operator.eq, "=="), ("!=", operator.ne, "!=")])
@pytest.mark.parametrize("c", [1.0, 1.5, 2, np.float64(2.0), np.float32(1.0)],
                         ids=["1.0", "1.5", "int 2", "np.float64", "np.float32"])
def test_comparison_with_the_number_on_the_left(symbol, op, mirrored, c):
    tape = Tape()
    x = Variable(1.5, tape=tape)
    with shallow_recursion():
        got = op(c, x)
    assert got is op(float(c), 1.5)
    assert tape.guards()[-1] == (f"v{x.slot}", mirrored, float(c), got)


def test_truth_value_is_a_remembered_comparison_with_zero():
    tape = Tape()
    assert bool(Variable(2.0, tape=tape)) is True
    assert bool(Variable(0.0, tape=tape)) is False
    assert bool(Variable(math.nan, tape=tape)) is True     # as bool(float("nan"))
    assert [g[1:] for g in tape.guards()] == [("!=", 0.0, True), ("!=", 0.0, False),
                                              ("!=", 0.0, True)]


def test_branching_code_differentiates_along_the_taken_branch():
    def relu_ish(x):
        if x > 0:
            return x * x
        return -x

    assert ft.grad(relu_ish)(3.0) == 6.0
    assert ft.grad(relu_ish)(-3.0) == -1.0


def test_comparison_with_non_numbers():
    x = Variable(1.0, tape=Tape())
    assert (x == "a") is False
    assert (x != "a") is True
    with pytest.raises(TypeError):
        x < "a"
    assert x.tape.n_guards == 0


def test_variables_hash_by_identity():
    tape = Tape()
    a, b = Variable(1.0, tape=tape), Variable(1.0, tape=tape)
    assert a == b                     # value comparison (remembered) ...
    assert len({a, b}) == 2           # ... but identity hashing
    assert {a: 1}[a] == 1


# -- conversions that would drop the derivative ----------------------------------------

@pytest.mark.parametrize("convert", [float, int, complex, math.sin, math.exp,
                                     math.sqrt, math.floor, operator.index,
                                     lambda v: [1, 2, 3][v], lambda v: range(v)],
                         ids=["float", "int", "complex", "math.sin", "math.exp",
                              "math.sqrt", "math.floor", "index", "subscript", "range"])
def test_lossy_conversions_raise_type_error_naming_fasttape(convert):
    v = Variable(1.0, tape=Tape())
    with pytest.raises(TypeError, match="fasttape"):
        convert(v)


def test_variables_cannot_be_pickled():
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(Variable(1.0, tape=Tape()))


# -- backward and .grad ----------------------------------------------------------------

def test_grad_is_none_before_backward():
    tape = Tape()
    x = Variable(1.0, tape=tape)
    y = x * 2.0
    assert x.grad is None and y.grad is None
    y.backward()
    assert x.grad == 2.0


def test_backward_twice_overwrites_rather_than_accumulates():
    tape = Tape()
    x = Variable(2.0, tape=tape)
    y = x * x
    y.backward()
    y.backward()
    assert x.grad == 4.0
    y.backward(seed=3.0)
    assert x.grad == 12.0 and y.grad == 3.0


def test_backward_from_different_outputs_of_one_tape():
    tape = Tape()
    x = Variable(2.0, tape=tape)
    y = Variable(5.0, tape=tape)
    u = x * y
    v = ft.sin(x) + y
    u.backward()
    assert (x.grad, y.grad) == (5.0, 2.0)
    assert v.grad is None              # recorded after u: not reached by the sweep
    v.backward()
    assert (x.grad, y.grad) == (math.cos(2.0), 1.0)
    assert u.grad == 0.0               # before v, but v does not depend on u


def test_gradients_of_intermediate_variables():
    tape = Tape()
    x = Variable(0.5, tape=tape)
    u = ft.exp(x)
    w = u * u
    f = ft.log(w) + u
    f.backward()
    # f = log(u^2) + u: df/dw = 1/w, df/du = 2/u + 1 (through w and directly)
    assert w.grad == pytest.approx(1.0 / w.value, rel=1e-15)
    assert u.grad == pytest.approx(2.0 / u.value + 1.0, rel=1e-15)
    assert x.grad == pytest.approx(2.0 + math.exp(0.5), rel=1e-15)
    assert f.grad == 1.0


def test_backward_with_a_seed_scales_every_gradient():
    tape = Tape()
    x = Variable(1.3, tape=tape)
    y = ft.tanh(x) * x
    y.backward(seed=-2.5)
    expected = -2.5 * ((1 - math.tanh(1.3) ** 2) * 1.3 + math.tanh(1.3))
    assert x.grad == pytest.approx(expected, rel=1e-15)


def test_backward_from_a_leaf():
    tape = Tape()
    x = Variable(1.0, tape=tape)
    x.backward()
    assert x.grad == 1.0


def test_unused_inputs_get_zero_gradient():
    tape = Tape()
    x = Variable(1.0, tape=tape)
    unused = Variable(7.0, tape=tape)
    y = x * 3.0
    y.backward()
    assert unused.grad == 0.0 and x.grad == 3.0


# -- the default tape ------------------------------------------------------------------

def test_variables_share_the_default_tape_until_backward():
    a = Variable(1.0)
    b = Variable(2.0)
    assert a.tape is b.tape
    (a * b).backward()
    c = Variable(3.0)
    assert c.tape is not a.tape                        # a fresh default tape
    assert c.tape.n_nodes == 1
    assert a.grad == 2.0 and b.grad == 1.0             # the old one still answers
    d = Variable(4.0)
    assert d.tape is c.tape


def test_mixing_variables_across_a_backward_raises_tape_mismatch():
    a = Variable(1.0)
    (a * 2.0).backward()
    b = Variable(2.0)
    with pytest.raises(TapeMismatchError, match="different tapes"):
        a * b
    with pytest.raises(TapeMismatchError):
        ft.hypot(a, b)


def test_old_default_tapes_keep_recording_for_their_variables():
    a = Variable(3.0)
    y = a * a
    y.backward()
    z = a * 10.0                    # a's tape is no longer the default, but z joins a
    assert z.tape is a.tape
    z.backward()
    assert a.grad == 10.0


# -- repr ------------------------------------------------------------------------------

def test_repr():
    tape = Tape()
    v = Variable(2.0, tape=tape)
    assert repr(v) == "Variable(2.0)"
    assert repr(Variable(0.1, tape=tape)) == "Variable(0.1)"
    assert repr(v * math.inf) == "Variable(inf)"
    assert repr(Variable(math.nan, tape=tape)) == "Variable(nan)"
    tape.reset()
    assert "stale" in repr(v)


def test_stale_variable_refuses_everything_but_repr():
    tape = Tape()
    v = Variable(2.0, tape=tape)
    tape.reset()
    for use in (lambda: v.value, lambda: v.grad, lambda: v.backward(), lambda: v + 1.0,
                lambda: 1.0 - v, lambda: v * v, lambda: ft.sin(v), lambda: -v,
                lambda: v < 1.0, lambda: +v, lambda: ft.maximum(v, 1.0)):
        with pytest.raises(StaleVariableError):
            use()
