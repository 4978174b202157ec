"""ArrayVariable: every elementwise function and operator, the reductions, the shape
and selection operations and indexing, each from a table of specs checked four ways
(value against NumPy; gradient against central differences of NumPy along random
directions; gradient against autograd; fasttape.numpy against plain NumPy on
ArrayVariables). Then the conventions at non-differentiable points, code mixing
scalars and arrays, bad input, the zero-adjoint rule, NaN and inf, and memory."""
import gc
import operator
import tracemalloc
import warnings

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
from fasttape import Tape, _optable
from fasttape import (ArrayVariable, StaleVariableError, TapeMismatchError, Variable,
                      grad, value_and_grad)

from support import (ArraySpec, array_spec, assert_argument_gradients_match_differences,
                     autograd_spelling, spec_tests)


def nonzero(lo, hi):
    """|x| in [lo, hi), either sign."""
    def draw(rng, shape):
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)
    return draw


def off_grid(lo, hi):
    """k + f with integer k in [lo, hi) and f in [0, 0.3]; on_grid's numbers are at
    least 0.2 away from these, so maximum/minimum stay smooth nearby."""
    return lambda rng, shape: rng.integers(lo, hi, shape) + rng.uniform(0.0, 0.3, shape)


def on_grid(lo, hi):
    return lambda rng, shape: rng.integers(lo, hi, shape) + rng.uniform(0.5, 0.8, shape)


SHAPES_1 = [(), (7,), (2, 1, 3)]
CONST = np.random.default_rng(11).uniform(0.5, 1.5, size=(3,))     # a constant operand

# -- elementwise functions -------------------------------------------------------------

def table_domain(op):
    """An op table row's test domain (fasttape/_optable.py) as an array sampler: the
    same domains as the scalar specs (tests/opspecs.py)."""
    return lambda rng, shape: _optable.sample(op, rng, shape)[0]


# (name, domain, autograd has the same rule): every NumPy name of the op table's unary
# ops (autograd has no rule for cbrt), and np.positive
UNARY = [(name, table_domain(op), op.function != "cbrt")
         for op in _optable.OPS if op.kind == "unary" for name in op.numpy] + [
    ("positive", (-3, 3), False)]


def unary_fun(name):
    return lambda np, x: getattr(np, name)(x)


# (np.sinc is not a ufunc: plain NumPy's sinc of a scalar Variable would need
# Variable.__array_function__, which scalar Variables do not have yet)
UNARY_SPECS = [array_spec(name, unary_fun(name), shape, domain=domain, autograd=ag)
               for name, domain, ag in UNARY for shape in SHAPES_1
               if shape != () or isinstance(getattr(np, name), np.ufunc)]
UNARY_SPECS += [
    array_spec(f"special.{op.scipy}", lambda np, x, name=op.scipy: getattr(np.special, name)(x),
               shape, domain=table_domain(op))
    for op in _optable.OPS if op.scipy for shape in SHAPES_1]

BROADCAST_PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((), (2, 3)),
                   ((2, 3), ()), ((2, 1, 3), (4, 1)), ((1,), (5,))]

# (name, domains of the two arguments)
BINARY = [
    ("add", [(-2, 2), (-2, 2)]), ("subtract", [(-2, 2), (-2, 2)]),
    ("multiply", [(-2, 2), (-2, 2)]), ("divide", [(-2, 2), nonzero(0.3, 2)]),
    ("true_divide", [(-2, 2), nonzero(0.3, 2)]), ("power", [(0.5, 2.5), (-2, 2)]),
    ("arctan2", [(-2, 2), (0.3, 2)]), ("hypot", [nonzero(0.2, 2), (-2, 2)]),
    ("maximum", [off_grid(-2, 2), on_grid(-2, 2)]),
    ("minimum", [off_grid(-2, 2), on_grid(-2, 2)]),
    ("logaddexp", [(-3, 3), (-3, 3)]),
]


def binary_fun(name):
    return lambda np, a, b: getattr(np, name)(a, b)


BINARY_SPECS = [array_spec(name, binary_fun(name), sa, sb, domain=domains)
                for name, domains in BINARY for sa, sb in BROADCAST_PAIRS]

# -- operators: arrays, constants and scalar Variables on either side ------------------

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul,
             "/": operator.truediv, "**": operator.pow}
LEFT_DOMAIN = {"**": (0.5, 2.5)}
RIGHT_DOMAIN = {"/": nonzero(0.3, 2)}


def operator_specs():
    specs = []
    for symbol, op in OPERATORS.items():
        left = LEFT_DOMAIN.get(symbol, (-2, 2))
        right = RIGHT_DOMAIN.get(symbol, (-2, 2))
        const_left = 1.7
        const_right = -1.3 if symbol != "**" else 1.3
        const_array = CONST if symbol != "-" else -CONST

        def f(np, a, b, op=op):
            return op(a, b)

        specs += [
            array_spec(f"array {symbol} array", f, (2, 3), (2, 3),
                       domain=[left, right]),
            array_spec(f"array {symbol} array (broadcast)", f, (2, 1, 3), (4, 1),
                       domain=[left, right]),
            array_spec(f"array {symbol} scalar Variable", f, (2, 3), (),
                       domain=[left, right]),
            array_spec(f"scalar Variable {symbol} array", f, (), (2, 3),
                       domain=[left, right]),
            array_spec(f"array {symbol} float", lambda np, a, op=op, c=const_right:
                       op(a, c), (2, 3), domain=left),
            array_spec(f"float {symbol} array", lambda np, b, op=op, c=const_left:
                       op(c, b), (2, 3), domain=right),
            array_spec(f"array {symbol} np.float64", lambda np, a, op=op, c=const_right:
                       op(a, np.float64(c)), (2, 3), domain=left),
            array_spec(f"np.float64 {symbol} array", lambda np, b, op=op, c=const_left:
                       op(np.float64(c), b), (2, 3), domain=right),
            array_spec(f"array {symbol} ndarray", lambda np, a, op=op, c=const_array:
                       op(a, c), (2, 3), domain=left),
            array_spec(f"ndarray {symbol} array", lambda np, b, op=op, c=const_array:
                       op(c, b), (4, 3), domain=right),
            array_spec(f"array {symbol} list", lambda np, a, op=op, c=const_array:
                       op(a, list(c)), (2, 3), domain=left, autograd=False),
            array_spec(f"array {symbol} the same array", lambda np, a, op=op: op(a, a),
                       (2, 3), domain=LEFT_DOMAIN.get(symbol, nonzero(0.3, 2))),
        ]
    # a % b, with a / b kept inside (2, 3), away from the jumps at integer ratios
    left, right = (2.2, 2.8), (1.0, 1.05)
    specs += [
        array_spec("array % array", lambda np, a, b: a % b, (2, 3), (2, 3),
                   domain=[left, right]),
        array_spec("array % array (broadcast)", lambda np, a, b: a % b, (2, 1, 3), (4, 1),
                   domain=[left, right]),
        array_spec("array % scalar Variable", lambda np, a, b: a % b, (2, 3), (),
                   domain=[left, right]),
        array_spec("scalar Variable % array", lambda np, a, b: a % b, (), (2, 3),
                   domain=[left, right]),
        array_spec("array % float", lambda np, a: a % 1.02, (2, 3), domain=left),
        array_spec("float % array", lambda np, b: 2.5 % b, (2, 3), domain=right),
        array_spec("np.remainder(-array, array)", lambda np, a, b: np.remainder(-a, b),
                   (2, 3), (2, 3), domain=[left, right]),
    ]
    specs += [
        array_spec("array ** 2", lambda np, a: a ** 2, (2, 3)),
        array_spec("array ** 2.0", lambda np, a: a ** 2.0, (2, 3)),
        array_spec("array ** 3 (either sign)", lambda np, a: a ** 3, (2, 3)),
        array_spec("array ** -1", lambda np, a: a ** -1, (2, 3),
                   domain=nonzero(0.3, 2)),
        array_spec("array ** 0.5", lambda np, a: a ** 0.5, (2, 3), domain=(0.2, 3)),
        array_spec("-array", lambda np, a: -a, (2, 3)),
        array_spec("+array", lambda np, a: +a, (2, 3), autograd=False),
        array_spec("abs(array)", lambda np, a: abs(a), (2, 3), domain=nonzero(0.1, 2)),
        array_spec("chained arithmetic", lambda np, a, b, s:
                   (a * b - s) / (1.0 + a * a) + 2.0 ** b - s ** 2 * b,
                   (3, 4), (4,), ()),
    ]
    return specs


OPERATOR_SPECS = operator_specs()

# -- reductions ------------------------------------------------------------------------

REDUCTION_DOMAINS = {"prod": nonzero(0.5, 1.5)}
AXES = [None, 0, -1, (0, 2)]


def reduction_fun(name, **kw):
    return lambda np, x: getattr(np, name)(x, **kw)


def reduction_specs():
    specs = []
    for name in ["sum", "mean", "prod", "max", "min", "var", "std"]:
        domain = REDUCTION_DOMAINS.get(name, (-2, 2))
        for axis in AXES:
            for keepdims in (False, True):
                specs.append(array_spec(
                    f"{name}(axis={axis}, keepdims={keepdims})",
                    reduction_fun(name, axis=axis, keepdims=keepdims), (2, 3, 4),
                    domain=domain))
        specs.append(array_spec(name, reduction_fun(name), (5,), domain=domain))
        if name != "std":       # (std of one element: sqrt at 0, a cusp)
            specs.append(array_spec(f"{name} of a one-element array",
                                    reduction_fun(name), (1,), domain=domain))
        specs.append(array_spec(f"x.{name}(axis=1)", lambda np, x, name=name:
                                getattr(x, name)(axis=1), (3, 4), domain=domain,
                                autograd=name not in ("var", "std")))
    for name in ["var", "std"]:
        for axis in [None, 1, (0, 2)]:
            specs.append(array_spec(f"{name}(axis={axis}, ddof=1)",
                                    reduction_fun(name, axis=axis, ddof=1), (2, 3, 4)))
        specs.append(array_spec(f"{name}(axis=0, ddof=1, keepdims=True)",
                                reduction_fun(name, axis=0, ddof=1, keepdims=True),
                                (3, 4)))
        specs.append(array_spec(f"x.{name}(ddof=1)", lambda np, x, name=name:
                                getattr(x, name)(ddof=1), (6,), autograd=False))
    for axis in [None, 0, 1, -1]:
        specs.append(array_spec(f"cumsum(axis={axis})",
                                reduction_fun("cumsum", axis=axis), (2, 3, 4)))
    specs += [
        array_spec("cumsum", reduction_fun("cumsum"), (6,)),
        array_spec("x.cumsum(axis=1)", lambda np, x: x.cumsum(axis=1), (3, 4),
                   autograd=False),
        array_spec("amax(axis=1)", reduction_fun("amax", axis=1), (3, 4)),
        array_spec("amin(axis=0)", reduction_fun("amin", axis=0), (3, 4)),
        ArraySpec("prod with zeros (axis=1)", reduction_fun("prod", axis=1),
                  lambda rng: (with_zeros(rng),), autograd=False),  # autograd: nan
        ArraySpec("prod with zeros", reduction_fun("prod"),
                  lambda rng: (with_zeros(rng)[:1],), autograd=False),
        ArraySpec("prod with zeros (axis=0, keepdims)",
                  reduction_fun("prod", axis=0, keepdims=True),
                  lambda rng: (with_zeros(rng).T,), autograd=False),
    ]
    return specs


def with_zeros(rng):
    """Rows with one zero, two zeros and none."""
    x = rng.uniform(0.5, 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    x[0, 1] = 0.0
    x[1, 0] = x[1, 2] = 0.0
    return x


REDUCTION_SPECS = reduction_specs()

# -- shape and selection ---------------------------------------------------------------

SHAPE_SPECS = [
    array_spec("reshape", lambda np, x: np.reshape(x, (2, 6)), (3, 4)),
    array_spec("reshape with -1", lambda np, x: np.reshape(x, (4, -1, 1)), (2, 3, 4)),
    array_spec("x.reshape(2, 6)", lambda np, x: x.reshape(2, 6), (3, 4)),
    array_spec("x.reshape((-1,))", lambda np, x: x.reshape((-1,)), (3, 4)),
    array_spec("reshape to a 0-d array", lambda np, x: np.reshape(x, ()), (1, 1)),
    array_spec("ravel", lambda np, x: np.ravel(x), (2, 3, 4)),
    array_spec("x.ravel()", lambda np, x: x.ravel(), (2, 3, 4)),
    array_spec("x.flatten()", lambda np, x: x.flatten(), (3, 4), autograd=False),
    array_spec("transpose", lambda np, x: np.transpose(x), (2, 3, 4)),
    array_spec("transpose(axes)", lambda np, x: np.transpose(x, (1, 0, 2)), (2, 3, 4)),
    array_spec("x.T", lambda np, x: x.T, (3, 4)),
    array_spec("x.T (3-d)", lambda np, x: x.T, (2, 3, 4)),
    array_spec("x.transpose(2, 0, 1)", lambda np, x: x.transpose(2, 0, 1), (2, 3, 4),
               autograd=False),                 # (autograd: axes as a tuple only)
    array_spec("swapaxes", lambda np, x: np.swapaxes(x, 0, 2), (2, 3, 4)),
    array_spec("x.swapaxes", lambda np, x: x.swapaxes(-1, 1), (2, 3, 4)),
    array_spec("moveaxis", lambda np, x: np.moveaxis(x, 0, -1), (2, 3, 4)),
    array_spec("moveaxis (lists)", lambda np, x: np.moveaxis(x, [0, 1], [2, 0]),
               (2, 3, 4)),
    array_spec("expand_dims", lambda np, x: np.expand_dims(x, 1), (3, 4)),
    array_spec("expand_dims(-1)", lambda np, x: np.expand_dims(x, -1), (3, 4)),
    array_spec("expand_dims((0, 2))", lambda np, x: np.expand_dims(x, (0, 2)), (3, 4),
               autograd=False),
    array_spec("squeeze", lambda np, x: np.squeeze(x), (1, 3, 1, 2)),
    array_spec("squeeze(axis=2)", lambda np, x: np.squeeze(x, axis=2), (1, 3, 1, 2)),
    array_spec("x.squeeze()", lambda np, x: x.squeeze(), (3, 1)),
    array_spec("broadcast_to", lambda np, x: np.broadcast_to(x, (3, 4)), (3, 1)),
    # (autograd: "Can't handle extra leading dims")
    array_spec("broadcast_to (new axes)", lambda np, x: np.broadcast_to(x, (2, 4, 3)),
               (3,), autograd=False),
    array_spec("flip", lambda np, x: np.flip(x), (2, 3, 4), autograd=False),
    array_spec("flip(axis=1)", lambda np, x: np.flip(x, axis=1), (2, 3, 4),
               autograd=False),
    array_spec("flip(axis=(0, 2))", lambda np, x: np.flip(x, axis=(0, 2)), (2, 3, 4),
               autograd=False),
    array_spec("fliplr", lambda np, x: np.fliplr(x), (3, 4)),
    array_spec("flipud", lambda np, x: np.flipud(x), (3, 4)),
    array_spec("rot90", lambda np, x: np.rot90(x), (3, 4)),
    array_spec("roll", lambda np, x: np.roll(x, 2), (3, 4)),
    array_spec("roll(axis=1)", lambda np, x: np.roll(x, -1, axis=1), (3, 4)),
    array_spec("roll(tuples)", lambda np, x: np.roll(x, (1, 2), axis=(0, 1)), (3, 4),
               autograd=False),
    array_spec("take", lambda np, x: np.take(x, [0, 5, 5, -1]), (3, 4), autograd=False),
    array_spec("take(axis=1)", lambda np, x: np.take(x, [2, 0, 2], axis=1), (3, 4),
               autograd=False),
    array_spec("take(2-d indices)", lambda np, x: np.take(x, [[0, 1], [1, 1]], axis=0),
               (3, 4), autograd=False),
    # (autograd's diagonal rule takes square matrices in the last two axes only)
    array_spec("diagonal", lambda np, x: np.diagonal(x), (3, 4), autograd=False),
    array_spec("diagonal (square, last two axes)",
               lambda np, x: np.diagonal(x, 0, -1, -2), (2, 3, 3)),
    array_spec("diagonal(1)", lambda np, x: np.diagonal(x, 1), (3, 4), autograd=False),
    array_spec("diagonal(-1)", lambda np, x: np.diagonal(x, -1), (3, 4),
               autograd=False),
    array_spec("diagonal(0, 1, 2) (3-d)", lambda np, x: np.diagonal(x, 0, 1, 2),
               (2, 3, 4), autograd=False),
    array_spec("diag of a vector", lambda np, x: np.diag(x), (4,)),
    array_spec("diag of a vector, k=1", lambda np, x: np.diag(x, 1), (3,)),
    array_spec("diag of a vector, k=-2", lambda np, x: np.diag(x, -2), (3,)),
    array_spec("diag of a matrix", lambda np, x: np.diag(x), (3, 4), autograd=False),
    array_spec("diag of a square matrix", lambda np, x: np.diag(x), (3, 3)),
    array_spec("diag of a matrix, k=1", lambda np, x: np.diag(x, 1), (3, 4),
               autograd=False),
    array_spec("trace", lambda np, x: np.trace(x), (3, 4)),
    array_spec("trace(offset=1)", lambda np, x: np.trace(x, 1), (3, 4)),
    array_spec("trace (3-d, axes 1, 2)", lambda np, x: np.trace(x, 0, 1, 2), (2, 3, 3),
               autograd=False),
    array_spec("tril", lambda np, x: np.tril(x), (3, 4)),
    array_spec("tril(k=-1)", lambda np, x: np.tril(x, -1), (4, 4)),
    array_spec("triu", lambda np, x: np.triu(x), (4, 3)),
    array_spec("triu(k=1) (3-d)", lambda np, x: np.triu(x, 1), (2, 3, 3)),
    array_spec("repeat", lambda np, x: np.repeat(x, 2), (2, 3)),
    array_spec("repeat(axis=0)", lambda np, x: np.repeat(x, 2, axis=0), (2, 3)),
    array_spec("repeat(counts, axis=1)", lambda np, x: np.repeat(x, [1, 0, 2], axis=1),
               (2, 3), autograd=False),
    array_spec("tile", lambda np, x: np.tile(x, 2), (2, 3), autograd=False),
    # (autograd's tile rule is wrong for fewer reps than dimensions)
    array_spec("tile((2, 1))", lambda np, x: np.tile(x, (2, 1)), (2, 3)),
    array_spec("tile((2, 1, 2))", lambda np, x: np.tile(x, (2, 1, 2)), (2, 3)),
]

# -- indexing --------------------------------------------------------------------------

MASK_3D = np.random.default_rng(12).standard_normal((3, 4, 5)) > 0

INDEX_KEYS = [
    ("int", np.s_[1]), ("negative int", np.s_[-1]), ("slice", np.s_[1:3]),
    ("reversed", np.s_[::-1]), ("negative step and int", np.s_[::-2, 1]),
    ("negative steps", np.s_[:, ::-1, 4:0:-2]), ("None", np.s_[None]),
    ("None in the middle", np.s_[:, None, 1]), ("Ellipsis", np.s_[..., 2]),
    ("int, Ellipsis, None", np.s_[1, ..., None]),
    ("Ellipsis, slice", np.s_[..., ::-1, :]),
    ("integer list", np.s_[[0, 2, 2]]), ("integer arrays", np.s_[[0, -1], :, [1, 2]]),
    ("repeated integers", np.s_[:, [0, 0, 3]]),
    ("2-d integer array", np.s_[[[0, 1], [2, 1]]]),
    ("boolean mask", np.s_[MASK_3D]), ("2-d boolean mask", np.s_[MASK_3D[:, :, 0]]),
    ("int and mask", np.s_[1, MASK_3D[1, :, 0]]),
    ("1-d mask", np.s_[np.array([True, False, True])]),
    ("all ints", np.s_[1, 2, 3]), ("all negative ints", np.s_[-1, -2, -3]),
    ("int, list, slice", np.s_[1, [1, 2], ::2]), ("0-d array", np.s_[np.array(1)]),
    ("empty tuple", np.s_[()]), ("np.int64", np.s_[np.int64(2)]),
    ("list after None", np.s_[[0, 1], None, [1, 2]]),
    ("lists apart", np.s_[:, [1, 2], None, [0, 4]]),
]


def index_fun(key):
    return lambda np, x: x[key]


INDEX_SPECS = [array_spec(f"x[{label}]", index_fun(key), (3, 4, 5))
               for label, key in INDEX_KEYS]
INDEX_SPECS += [
    array_spec("x[i] of a vector", lambda np, x: x[3], (5,)),
    array_spec("x[-2:] of a vector", lambda np, x: x[-2:], (5,)),
    array_spec("x[::-1] of a vector", lambda np, x: x[::-1], (5,)),
    array_spec("x[[3, 3, 0]] of a vector", lambda np, x: x[[3, 3, 0]], (5,)),
    array_spec("x[x > 0] (mask from a comparison)", lambda np, x: x[x > 0], (4, 5)),
    array_spec("x[i, j] of a matrix", lambda np, x: x[2, 1], (3, 4)),
    array_spec("x[:, 1:2] of a matrix", lambda np, x: x[:, 1:2], (3, 4)),
    array_spec("indexing twice", lambda np, x: x[1:][::-1, 2][1:], (4, 5)),
]

SPECS = UNARY_SPECS + BINARY_SPECS + OPERATOR_SPECS + REDUCTION_SPECS + SHAPE_SPECS \
    + INDEX_SPECS
assert len({s.name for s in SPECS}) == len(SPECS), "spec names must be unique"


# the checks every spec gets (support.spec_tests)
globals().update(spec_tests(SPECS))


# -- closed forms and conventions ------------------------------------------------------

def test_sigmoid_is_expit(rng):
    x = rng.uniform(-30, 30, (3, 4))
    value, g = value_and_grad(lambda x: fnp.sum(fnp.sigmoid(x)))(x)
    import scipy.special
    s = scipy.special.expit(x)
    assert value == pytest.approx(np.sum(s), rel=1e-14)
    np.testing.assert_allclose(g, s * (1 - s), rtol=1e-12)
    np.testing.assert_array_equal(grad(lambda x: fnp.sum(fnp.expit(x)))(x), g)



@pytest.mark.parametrize("label, key", INDEX_KEYS, ids=[k for k, _ in INDEX_KEYS])
def test_indexing_gradient_scatters_the_output_weights(label, key, rng):
    """d/dx sum(u * x[key]) adds u into the selected positions (np.add.at)."""
    x = rng.standard_normal((3, 4, 5))
    u = rng.standard_normal(np.shape(x[key]))
    expected = np.zeros_like(x)
    np.add.at(expected, key, u)
    got = grad(lambda x: fnp.sum(x[key] * u))(x)
    np.testing.assert_array_equal(got, expected)


def test_indexing_with_a_variable_is_refused():
    with pytest.raises(TypeError, match="index"):
        grad(lambda x: fnp.sum(x[x[0]]))(np.arange(3.0))


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_split_ties_evenly(name):
    x = np.array([[1.0, 3.0, 3.0, 0.0],
                  [2.0, 2.0, 2.0, 2.0],
                  [-1.0, 5.0, -1.0, -1.0]])
    sign = 1.0 if name == "max" else -1.0
    x = sign * x
    f = getattr(fnp, name)
    g = grad(lambda x: fnp.sum(f(x, axis=1) * np.array([1.0, 2.0, 3.0])))(x)
    expected = np.array([[0.0, 0.5, 0.5, 0.0],      # two ties, weight 1
                         [0.5, 0.5, 0.5, 0.5],      # four ties, weight 2
                         [0.0, 3.0, 0.0, 0.0]])     # no tie, weight 3
    np.testing.assert_array_equal(g, expected)
    # over the whole array: three ties
    g_all = grad(lambda x: f(x))(np.array([[2.0, 1.0], [2.0, 2.0]]) * sign)
    np.testing.assert_array_equal(g_all, [[1 / 3, 0.0], [1 / 3, 1 / 3]])


def test_max_with_keepdims_splits_ties_along_the_axis_only():
    x = np.array([[4.0, 4.0], [4.0, 1.0]])
    weights = np.array([[1.0, 10.0]])
    g = grad(lambda x: fnp.sum(fnp.max(x, axis=0, keepdims=True) * weights))(x)
    np.testing.assert_array_equal(g, [[0.5, 10.0], [0.5, 0.0]])


def test_prod_gradient_with_zeros_is_the_product_of_the_others():
    x = with_zeros(np.random.default_rng(0))
    g = grad(lambda x: fnp.sum(fnp.prod(x, axis=1)))(x)
    expected = np.empty_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            expected[i, j] = np.prod(np.delete(x[i], j))
    np.testing.assert_allclose(g, expected, rtol=1e-15)
    assert np.all(np.isfinite(g))


def test_prod_of_all_elements_with_one_zero():
    x = np.array([2.0, 0.0, -3.0, 0.5])
    np.testing.assert_allclose(grad(fnp.prod)(x), [0.0, -3.0, 0.0, 0.0], rtol=1e-15)


def test_mean_and_sum_closed_forms(rng):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(grad(lambda x: fnp.sum(x))(x), np.ones_like(x))
    np.testing.assert_allclose(grad(lambda x: fnp.mean(x))(x), np.full_like(x, 1 / 24))
    np.testing.assert_allclose(grad(lambda x: fnp.sum(fnp.mean(x, axis=(0, 2))))(x),
                               np.full_like(x, 1 / 8))


def test_var_and_std_closed_forms(rng):
    x = rng.standard_normal(6)
    n = x.size
    for ddof in (0, 1):
        expected_var = 2.0 * (x - x.mean()) / (n - ddof)
        np.testing.assert_allclose(grad(lambda x: fnp.var(x, ddof=ddof))(x),
                                   expected_var, rtol=1e-12)
        std = np.std(x, ddof=ddof)
        np.testing.assert_allclose(grad(lambda x: fnp.std(x, ddof=ddof))(x),
                                   expected_var / (2.0 * std), rtol=1e-12)


def test_cumsum_gradient_is_a_reversed_cumulative_sum(rng):
    x = rng.standard_normal((3, 5))
    u = rng.standard_normal((3, 5))
    g = grad(lambda x: fnp.sum(fnp.cumsum(x, axis=1) * u))(x)
    np.testing.assert_allclose(g, np.cumsum(u[:, ::-1], axis=1)[:, ::-1], rtol=1e-14)


def test_reductions_refuse_unsupported_keywords_rather_than_ignoring_them():
    """np.sum(x, where=...) or initial=... must give NumPy's value or raise, never a
    silently different number."""
    x = np.array([0.2, 1.3, 0.7])
    mask = np.array([True, False, True])
    cases = [
        (lambda np_, x: np_.sum(x, where=mask), np.sum(x, where=mask)),
        (lambda np_, x: np_.sum(x, initial=5.0), np.sum(x, initial=5.0)),
        (lambda np_, x: np_.max(x, initial=5.0), np.max(x, initial=5.0)),
        (lambda np_, x: np_.mean(x, where=mask), np.mean(x, where=mask)),
        (lambda np_, x: np_.prod(x, initial=2.0), np.prod(x, initial=2.0)),
    ]
    wrong = []
    for i, (f, expected) in enumerate(cases):
        for np_ in (np, fnp):
            try:
                value = value_and_grad(lambda x: f(np_, x))(x)[0]
            except TypeError:
                continue
            if not np.isclose(value, expected, rtol=1e-14):
                wrong.append(f"case {i} ({np_.__name__}): {value} instead of "
                             f"{expected}")
    assert not wrong, "keyword arguments silently ignored:\n" + "\n".join(wrong)


def test_hessian_of_prod_closed_form():
    """prod's partials are products of the other elements; differentiating them
    again must not treat them as constants."""
    x = np.array([1.0, 2.0, 3.0])
    expected = np.array([[0.0, 3.0, 2.0], [3.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    np.testing.assert_allclose(ft.hessian(lambda x: x[0] * x[1] * x[2])(x), expected)
    np.testing.assert_allclose(ft.hessian(fnp.prod)(x), expected)
    g2 = grad(lambda x: fnp.sum(grad(fnp.prod)(x) * np.array([1.0, 0.0, 0.0])))(x)
    np.testing.assert_allclose(g2, expected[0])


@pytest.mark.parametrize("select", [lambda x: x.T, lambda x: x[::-1], lambda x: x[:, 1],
                                    lambda x: np.broadcast_to(x, (2, 3, 4)),
                                    lambda x: fnp.take(x, [0, 2], axis=1)],
                         ids=["transpose", "reversed", "column", "broadcast_to",
                              "take"])
def test_second_derivative_of_a_linear_function_of_a_selection_is_zero(select, rng):
    """The gradient of sum(u * select(x)) is a constant; differentiating it again
    (grad of grad, hessian) gives zeros of the right shapes."""
    x = rng.standard_normal((3, 4))
    u = rng.standard_normal(np.shape(select(x)))
    v = rng.standard_normal((3, 4))

    def f(x):
        return fnp.sum(select(x) * u)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # (a constant gradient)
        g2 = grad(lambda x: fnp.sum(grad(f)(x) * v))(x)
        h = ft.hessian(f)(x)
    np.testing.assert_array_equal(g2, np.zeros((3, 4)))
    np.testing.assert_array_equal(h, np.zeros((3, 4, 3, 4)))


# -- code mixing scalars and arrays ----------------------------------------------------

def test_scalar_code_on_elements_of_an_array(rng):
    x = rng.uniform(-1, 1, 3)

    def f(x):
        return x[0] * x[1] + ft.sin(x[2])

    g = grad(f)(x)
    np.testing.assert_allclose(g, [x[1], x[0], np.cos(x[2])], rtol=1e-15)
    for spelling in (fnp, np):      # x[2] is a scalar Variable: any sin will do
        g2 = grad(lambda x: x[0] * x[1] + spelling.sin(x[2]))(x)
        np.testing.assert_array_equal(g2, g)


def test_python_loop_over_an_array(rng):
    x = rng.uniform(-1, 1, (4, 2))

    def f(x):
        total = 0.0
        for row in x:                       # iterating gives ArrayVariables of the rows
            total = total + row[0] * ft.exp(row[1])
        return total

    g = grad(f)(x)
    expected = np.stack([np.exp(x[:, 1]), x[:, 0] * np.exp(x[:, 1])], axis=1)
    np.testing.assert_allclose(g, expected, rtol=1e-14)
    assert_argument_gradients_match_differences(
        lambda x: np.sum(x[:, 0] * np.exp(x[:, 1])), (x,), (g,), rng)


def test_sums_feed_scalar_code(rng):
    x = rng.uniform(-1, 1, (3, 4))

    def f(x):
        s = fnp.sum(x * x)
        assert type(s) is Variable          # full reductions are scalar Variables
        m = x.mean()
        return s * ft.sin(m) + ft.sqrt(s) / (1.0 + m ** 2)

    g = grad(f)(x)
    assert_argument_gradients_match_differences(
        lambda x: (np.sum(x * x) * np.sin(x.mean())
                   + np.sqrt(np.sum(x * x)) / (1.0 + x.mean() ** 2)), (x,), (g,), rng)


def test_scalar_variables_broadcast_into_arrays(rng):
    x = rng.uniform(-1, 1, (3, 4))

    def f(s, t, x):
        y = s * x + t                       # scalar Variables on both sides
        z = fnp.exp(y) / (1.0 + s * s)
        return fnp.sum(z * x) + fnp.sum(np.ones(4) * t)

    args = (0.7, -0.3, x)
    gs = grad(f, argnum=(0, 1, 2))(*args)
    assert type(gs[0]) is float and type(gs[1]) is float and gs[2].shape == x.shape
    assert_argument_gradients_match_differences(
        lambda s, t, x: np.sum(np.exp(s * x + t) / (1.0 + s * s) * x) + 4 * t,
        args, gs, rng)


def test_scalar_variable_in_where_and_in_an_array_expression(rng):
    x = rng.uniform(-1, 1, 6)

    def f(s, x):
        return fnp.sum(fnp.where(x > 0, s * s, x) * x)

    gs = grad(f, argnum=(0, 1))(0.5, x)
    pos = x > 0
    assert gs[0] == pytest.approx(np.sum(2 * 0.5 * x[pos]), rel=1e-14)
    np.testing.assert_allclose(gs[1], np.where(pos, 0.25, 2 * x), rtol=1e-14)


# -- bad input -------------------------------------------------------------------------

def numpy_error(f, *args):
    try:
        f(np, *args)
    except Exception as e:          # noqa: BLE001 - we compare whatever NumPy raises
        return e
    raise AssertionError("NumPy raised nothing")


MISMATCHES = [
    ("+", lambda np, a, b: a + b),
    ("*", lambda np, a, b: a * b),
    ("-", lambda np, a, b: np.subtract(a, b)),
    ("/", lambda np, a, b: a / b),
    ("**", lambda np, a, b: a ** np.abs(b)),
    ("maximum", lambda np, a, b: np.maximum(a, b)),
    ("arctan2", lambda np, a, b: np.arctan2(a, b)),
    ("broadcast with a constant", lambda np, a, b: a + np.ones(5)),
    ("reshape", lambda np, a, b: np.reshape(a, (5, 3))),
    ("x.reshape", lambda np, a, b: a.reshape(7, -1)),
    ("broadcast_to", lambda np, a, b: np.broadcast_to(a, (2, 4))),
    ("sum over a missing axis", lambda np, a, b: np.sum(a, axis=2)),
    ("max over a missing axis", lambda np, a, b: np.max(a, axis=-3)),
    ("mean over a missing axis", lambda np, a, b: np.mean(a, axis=5)),
    ("cumsum over a missing axis", lambda np, a, b: np.cumsum(a, axis=2)),
    ("transpose", lambda np, a, b: np.transpose(a, (0, 2))),
    ("swapaxes", lambda np, a, b: np.swapaxes(a, 0, 3)),
    ("squeeze", lambda np, a, b: np.squeeze(a, axis=0)),
    ("expand_dims", lambda np, a, b: np.expand_dims(a, 4)),
    ("index out of range", lambda np, a, b: a[5]),
    ("column out of range", lambda np, a, b: a[:, 7]),
    ("mask of the wrong length", lambda np, a, b: a[np.ones(5, bool)]),
    ("take out of range", lambda np, a, b: np.take(a, 20)),
    ("where", lambda np, a, b: np.where(np.ones((3, 4), bool), a, b)),
]


@pytest.mark.parametrize("name, f", MISMATCHES, ids=[m[0] for m in MISMATCHES])
@pytest.mark.parametrize("spelling", [fnp, np], ids=["fasttape.numpy", "numpy"])
def test_shape_errors_are_numpy_s_own(name, f, spelling):
    a, b = np.ones((3, 4)), np.ones((2, 5))
    expected = numpy_error(f, a, b)
    with pytest.raises(type(expected)) as info:
        grad(lambda a, b: fnp.sum(f(spelling, a, b)), argnum=(0, 1))(a, b)
    assert str(info.value) == str(expected)


def test_a_shape_error_leaves_grad_usable(rng):
    with pytest.raises(ValueError):
        grad(lambda x: fnp.sum(x + np.ones(5)))(np.ones(3))
    x = rng.standard_normal(3)
    np.testing.assert_allclose(grad(lambda x: fnp.sum(x * x))(x), 2 * x)


COMBINATIONS = [
    ("+", lambda x, y: x + y), ("*", lambda x, y: fnp.multiply(x, y)),
    ("np.multiply", lambda x, y: np.multiply(x, y)), ("@", lambda x, y: x @ y.T),
    ("**", lambda x, y: x ** y), ("maximum", lambda x, y: fnp.maximum(x, y)),
    ("where", lambda x, y: fnp.where(getattr(x, "value", x) > 0, x, y)),
    ("concatenate", lambda x, y: fnp.concatenate([x, y])),
    ("stack", lambda x, y: fnp.stack([x, y])),
    ("array of scalars", lambda x, y: fnp.array([x[0, 0], y[0, 0]])),
    ("scalar * array", lambda x, y: y[0, 0] * x),
    ("array * scalar", lambda x, y: x * y[0, 0]),
    ("einsum", lambda x, y: fnp.einsum("ij,ij->", x, y)),
    ("tensordot", lambda x, y: fnp.tensordot(x, y, 2)),
    ("solve", lambda x, y: fnp.linalg.solve(x[:, :2] + 3 * np.eye(2), y[:, :2])),
]


@pytest.mark.parametrize("name, combine", COMBINATIONS,
                         ids=[c[0] for c in COMBINATIONS])
def test_array_variables_of_two_tapes_raise_tape_mismatch_error(name, combine):
    from fasttape._arrays import make_array_leaf
    x = make_array_leaf(Tape(), np.full((2, 3), 0.25))
    y = make_array_leaf(Tape(), np.full((2, 3), 0.5))
    with pytest.raises(TapeMismatchError):
        combine(x, y)


@pytest.mark.parametrize("name, combine", COMBINATIONS,
                         ids=[c[0] for c in COMBINATIONS])
def test_an_inner_grad_closing_over_an_outer_array_variable_is_differentiable(
        name, combine):
    """Inside another differentiation, an inner grad whose function uses the outer
    Variables records on the outer tape: the inner gradient is a recorded function
    of them (as in autograd and JAX)."""
    def inner_gradient_sum(x):
        def inner(y):
            out = combine(x, y)
            return fnp.sum(out) if type(out) is ArrayVariable else out
        return fnp.sum(grad(inner)(np.full((2, 3), 0.5)))

    x0 = np.full((2, 3), 0.75)
    ours = grad(inner_gradient_sum)(x0)
    numeric = np.zeros_like(x0)
    for k in range(x0.size):
        e = np.zeros(x0.size)
        e[k] = 1e-6
        up = inner_gradient_sum(x0 + e.reshape(x0.shape))
        down = inner_gradient_sum(x0 - e.reshape(x0.shape))
        numeric.flat[k] = (up - down) / 2e-6
    np.testing.assert_allclose(ours, numeric, rtol=1e-5, atol=1e-6)


def test_returning_an_array_variable_of_another_tape_raises_tape_mismatch_error():
    from fasttape._arrays import make_array_leaf
    z = make_array_leaf(Tape(), np.ones(2))
    with pytest.raises(TapeMismatchError):
        grad(lambda y: fnp.sum(z))(np.ones(2))


STALE_USES = [
    ("x + 1", lambda x, y: x + 1.0), ("1 + x", lambda x, y: 1.0 + x),
    ("ndarray * x", lambda x, y: np.ones(3) * x), ("fnp.sin", lambda x, y: fnp.sin(x)),
    ("np.sin", lambda x, y: np.sin(x)), ("x[0]", lambda x, y: x[0]),
    ("x.sum()", lambda x, y: x.sum()), ("np.sum", lambda x, y: np.sum(x)),
    ("x @ ndarray", lambda x, y: x @ np.ones(3)),
    ("ndarray @ x", lambda x, y: np.ones(2) @ x),
    ("x.T", lambda x, y: x.T), ("reshape", lambda x, y: x.reshape(-1)),
    ("where", lambda x, y: fnp.where(x.value > 0, x, 0.0)),
    ("concatenate", lambda x, y: fnp.concatenate([x, x])),
    ("x ** 2", lambda x, y: x ** 2), ("2 ** x", lambda x, y: 2.0 ** x),
    ("x.max()", lambda x, y: x.max()), ("cumsum", lambda x, y: x.cumsum()),
    ("einsum", lambda x, y: fnp.einsum("ij->j", x)), ("list(x)", lambda x, y: list(x)),
    ("x.grad", lambda x, y: x.grad),
    ("y.backward", lambda x, y: y.backward(np.ones((2, 3)))),
    ("in a new grad", lambda x, y: grad(lambda z: fnp.sum(z * x))(np.ones((2, 3)))),
]


@pytest.mark.parametrize("name, use", STALE_USES, ids=[s[0] for s in STALE_USES])
def test_array_variables_used_after_grad_returned_are_stale(name, use):
    kept = []

    def f(x):
        y = fnp.sin(x)
        kept.extend([x, y])
        return fnp.sum(y)

    grad(f)(np.ones((2, 3)))
    x, y = kept
    with pytest.raises(StaleVariableError):
        use(x, y)
    assert "stale" in repr(x)


@pytest.mark.parametrize("make", [
    lambda: np.ones(3, dtype=complex), lambda: np.array([1 + 2j, 0.5]),
    lambda: np.ones((2, 2), dtype=np.complex64)], ids=["complex128", "complex values",
                                                        "complex64"])
def test_complex_arrays_as_inputs_raise_type_error(make):
    with pytest.raises(TypeError, match="complex"):
        grad(lambda x: fnp.sum(x * x))(make())
    with pytest.raises(TypeError, match="complex"):
        grad(lambda x: fnp.sum(x * make()))(np.ones(make().shape))


def test_object_arrays_as_inputs_raise_type_error():
    with pytest.raises(TypeError):
        grad(lambda x: fnp.sum(x))(np.array([1.0, "a"], dtype=object))


def test_array_variables_cannot_be_created_or_converted_directly():
    with pytest.raises(TypeError):
        ArrayVariable()

    def f(x):
        with pytest.raises(TypeError):
            float(x)
        with pytest.raises(TypeError):
            int(x[0:1])
        with pytest.raises(TypeError, match="float64"):
            x.astype(np.float32)
        assert x.astype(np.float64) is x
        return fnp.sum(x)

    grad(f)(np.ones(3))


def test_input_arrays_are_neither_modified_nor_made_read_only(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad(lambda x: fnp.sum(fnp.sin(x) * x))(x)
    np.testing.assert_array_equal(x, before)
    assert x.flags.writeable
    x[0, 0] = 1.0                                   # still writeable


def test_non_contiguous_and_fortran_inputs(rng):
    base = rng.standard_normal((4, 6))
    for x in (base[:, ::2], np.asfortranarray(base), base.T, base[::-1]):
        u = rng.standard_normal(x.shape)
        g = grad(lambda x: fnp.sum(x * x * u))(x)
        assert g.shape == x.shape
        np.testing.assert_allclose(g, 2 * x * u, rtol=1e-15)


def test_repeated_grad_calls_of_an_array_function_keep_memory_flat(rng):
    a = rng.standard_normal((100, 100))
    w = rng.standard_normal((100, 100))
    g = grad(lambda x: fnp.sum(fnp.tanh(x @ w) ** 2))
    for _ in range(20):
        g(a)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            g(a)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # one call's arrays alone are 4 x 80 kB: nothing of 200 calls may stay behind
    assert growth < 64 * 1024, f"{growth} bytes still allocated after 200 grad calls"


def test_a_function_that_raises_releases_its_tape(rng):
    def bad(x):
        fnp.sin(x) @ x.T
        raise RuntimeError("boom")

    for _ in range(5):
        with pytest.raises(RuntimeError):
            grad(bad)(np.ones((50, 50)))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            with pytest.raises(RuntimeError):
                grad(bad)(np.ones((50, 50)))
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024, f"{growth} bytes kept after 50 failed grad calls"


# -- the zero-adjoint rule, NaN and inf ------------------------------------------------

def test_masked_log_has_a_finite_gradient_at_zeros_and_negatives():
    """sum(where(x > 0, log(x), 0)): log's derivative is inf or nan where x <= 0, but
    its output adjoint is exactly 0 there, so nothing passes back (README rule)."""
    x = np.array([-1.0, 0.0, 2.0, -0.0, 0.5, np.inf])
    for spelling in (fnp, np):
        with np.errstate(all="ignore"):
            g = grad(lambda x: spelling.sum(
                spelling.where(x > 0, spelling.log(x), 0.0)))(x)
        np.testing.assert_array_equal(g, [0.0, 0.0, 0.5, 0.0, 2.0, 0.0])


def test_zero_weights_keep_infinite_partials_out():
    x = np.array([0.0, 1.0, 4.0])
    with np.errstate(all="ignore"):
        g1 = grad(lambda x: fnp.sum(fnp.log(x) * np.array([0.0, 1.0, 1.0])))(x)
        g2 = grad(lambda x: fnp.sum(fnp.sqrt(x)[1:]))(x)
        g3 = grad(lambda x: fnp.sum(fnp.clip(fnp.log(x), -1.0, 1.0)))(x)
    np.testing.assert_array_equal(g1, [0.0, 1.0, 0.25])
    np.testing.assert_array_equal(g2, [0.0, 0.5, 0.25])
    np.testing.assert_array_equal(g3, [0.0, 1.0, 0.0])


def test_nan_and_inf_values_follow_numpy():
    x = np.array([-1.0, 0.0, 2.0, np.inf, -np.inf, np.nan])
    seen = {}

    def f(x):
        for name in ("log", "sqrt", "arcsin", "exp", "reciprocal", "arctanh"):
            seen[name] = getattr(fnp, name)(x).value
        seen["x / 0"] = (x / 0.0).value
        seen["0 * x"] = (0.0 * x).value
        seen["max"] = fnp.max(x).value
        seen["sum"] = fnp.sum(x).value
        return fnp.sum(x[2:3])

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grad(f)(x)
        expected = {name: getattr(np, name)(x) for name in
                    ("log", "sqrt", "arcsin", "exp", "reciprocal", "arctanh")}
        expected.update({"x / 0": x / 0.0, "0 * x": 0.0 * x, "max": np.max(x),
                         "sum": np.sum(x)})
    for name, value in expected.items():
        np.testing.assert_array_equal(seen[name], value, err_msg=name)


def test_nan_and_inf_propagate_to_gradients():
    with np.errstate(all="ignore"):
        g = grad(lambda x: fnp.sum(fnp.sqrt(x)))(np.array([0.0, 4.0]))
        np.testing.assert_array_equal(g, [np.inf, 0.25])
        value, g = value_and_grad(lambda x: fnp.sum(fnp.log(x)))(np.array([-1.0, 1.0]))
        assert np.isnan(value)
        np.testing.assert_array_equal(g, [-1.0, 1.0])
        g = grad(lambda x: fnp.sum(x ** 2))(np.array([np.inf, np.nan, 1.0]))
        np.testing.assert_array_equal(g, [np.inf, np.nan, 2.0])
        g = grad(lambda x: fnp.sum(fnp.exp(x)))(np.array([1000.0, -np.inf]))
        np.testing.assert_array_equal(g, [np.inf, 0.0])
        g = grad(lambda x: fnp.sum(x * np.inf))(np.array([0.0, 1.0]))
        np.testing.assert_array_equal(g, [np.inf, np.inf])
        g = grad(lambda x: fnp.sum(fnp.sin(x)))(np.array([np.nan, 0.0]))
        np.testing.assert_array_equal(g, [np.nan, 1.0])
        g = grad(lambda x: fnp.sum(fnp.abs(x) / x))(np.array([0.0, 2.0]))
        assert np.isnan(g[0]) and g[1] == 0.0


def test_nan_gradients_agree_with_autograd():
    autograd, anp = autograd_spelling()
    x = np.array([0.0, 1.0, np.nan, -2.0])
    for f in (lambda np_, x: np_.sum(np_.sqrt(np_.abs(x))),
              lambda np_, x: np_.sum(x * np_.exp(-x)),
              lambda np_, x: np_.sum(np_.tanh(x) ** 2),
              lambda np_, x: np_.sum(np_.log1p(x * x))):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = grad(lambda x: f(fnp, x))(x)
            theirs = autograd.grad(lambda x: f(anp, x))(x)
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, equal_nan=True)


@pytest.mark.parametrize("form", ["array, array", "0.0, array", "array, 1.5",
                                  "row, array (broadcast)"])
def test_logaddexp_on_large_arrays_matches_its_closed_form(form, rng):
    """Arrays of 64 values or more store logaddexp's partials when recorded (and a
    replay refreshes them): gradients, also after a replay at another point, agree
    with d/dx logaddexp(x, y) = expit(x - y)."""
    from scipy.special import expit

    def f(x, y):
        if form == "array, array":
            return fnp.sum(fnp.logaddexp(x, y) * np.arange(200.0))
        if form == "0.0, array":
            return fnp.sum(fnp.logaddexp(0.0, x) - 0.3 * x)
        if form == "array, 1.5":
            return fnp.sum(fnp.logaddexp(x, 1.5) ** 2)
        return fnp.sum(fnp.logaddexp(x.reshape(10, 20)[:1], y.reshape(10, 20)))

    def expected(x, y):
        if form == "array, array":
            return np.arange(200.0) * expit(x - y)
        if form == "0.0, array":
            return expit(x) - 0.3
        if form == "array, 1.5":
            return 2 * np.logaddexp(x, 1.5) * expit(x - 1.5)
        out = np.zeros(200)
        out[:20] = expit(x[:20] - y.reshape(10, 20)).sum(axis=0)
        return out

    x = rng.normal(size=200) * 3
    y = rng.normal(size=200)
    x[5] = y[5]                                   # a tie: the partials split evenly
    np.testing.assert_allclose(grad(f)(x, y), expected(x, y), rtol=1e-12, atol=1e-14)
    traced = ft.trace(f, x, y)
    x2 = rng.normal(size=200)
    np.testing.assert_allclose(traced.grad(x2, y), expected(x2, y), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(traced(x2, y), f(x2, y), rtol=1e-12)


@pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2,
                    reason="NumPy 1 itself allows at most 32 dimensions")
def test_arrays_of_more_than_32_dimensions_are_refused():
    """The C walkers keep a multi-index of at most 32 axes (NumPy 2 allows 64)."""
    x = np.ones((1,) * 39 + (2,))
    with pytest.raises(ValueError, match="32 dimensions"):
        ft.grad(lambda x: fnp.sum(x * x))(x)
    np.testing.assert_array_equal(ft.grad(lambda x: fnp.sum(x * x))(np.ones((1,) * 31 + (2,))),
                                  np.full((1,) * 31 + (2,), 2.0))


@pytest.mark.parametrize("lo, hi", [(np.nan, 2.0), (-1.0, np.nan),
                                    (np.array([np.nan, -1.0, -1.0, -1.0]), 1.0)])
def test_clip_with_nan_bounds_gives_numpy_values(lo, hi):
    """A nan bound makes the value nan, as np.clip's minimum(maximum(x, lo), hi)."""
    x = np.array([-2.0, 0.5, 3.0, 0.25])
    f = lambda x: fnp.sum(fnp.clip(x, lo, hi) * np.arange(1.0, 5.0))
    np.testing.assert_array_equal(ft.value_and_grad(f)(x)[0],
                                  np.sum(np.clip(x, lo, hi) * np.arange(1.0, 5.0)))
    g = ft.trace(lambda x: fnp.clip(x, lo, hi), np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_array_equal(g(x), np.clip(x, lo, hi))
