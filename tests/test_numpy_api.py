"""fasttape.numpy and fasttape.scipy.special beyond the elementwise core: products,
joining and splitting, where and clip, arrays built from scalar Variables,
logsumexp and friends (each from a table of specs checked four ways, see
tests/support.py); the plain-NumPy spelling and the functions without a derivative
rule; the differential operators on arrays and containers of arrays."""
import warnings

import numpy as np
import pytest

import fasttape as ft
import fasttape.numpy as fnp
import fasttape.scipy.special as fsp
from fasttape import (ArrayVariable, Variable, elementwise_grad, grad, jacobian,
                      value_and_grad)

from support import (ArraySpec, array_spec, assert_argument_gradients_match_differences,
                     assert_runs_cleanly, autograd_spelling, directional_derivative,
                     spec_tests)


def nonzero(lo, hi):
    """|x| in [lo, hi), either sign."""
    def draw(rng, shape):
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(lo, hi, shape)
    return draw


def away_from(points, gap=0.05, lo=-2.0, hi=2.0):
    """Uniform on [lo, hi) but at least `gap` from each of `points` (kinks)."""
    def draw(rng, shape):
        x = rng.uniform(lo, hi, shape)
        for p in points:
            near = np.abs(x - p) < gap
            x = np.where(near, x + np.sign(x - p + 1e-300) * 2 * gap, x)
        return x
    return draw


# -- products --------------------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
                 ((1, 2, 3), (5, 3, 4)), ((5, 2, 3), (1, 3, 4)), ((1, 3), (3, 1))]

FIXED = np.random.default_rng(21)


def matmul_specs():
    specs = []
    for sa, sb in MATMUL_SHAPES:
        const_a = FIXED.standard_normal(sa)
        const_b = FIXED.standard_normal(sb)
        specs += [
            array_spec("matmul", lambda np, a, b: np.matmul(a, b), sa, sb),
            array_spec("a @ b", lambda np, a, b: a @ b, sa, sb),
            array_spec(f"a @ ndarray{sb}", lambda np, a, c=const_b: a @ c, sa),
            array_spec(f"ndarray{sa} @ b", lambda np, b, c=const_a: c @ b, sb),
            array_spec(f"matmul(ndarray{sa}, b)",
                       lambda np, b, c=const_a: np.matmul(c, b), sb),
        ]
    return specs


DOT_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
              ((2, 5, 3), (3,)), ((2, 5, 3), (3, 4)), ((2, 5, 3), (4, 3, 2)),
              ((3,), (4, 3, 2)), ((), (3, 4)), ((2, 3), ())]
INNER_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (4, 3)), ((2, 3), (4, 3)),
                ((2, 5, 3), (4, 3)), ((), (3, 4)), ((2, 3), ())]
TENSORDOT = [((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (4, 5), 1), ((2, 3), (2, 3), 0),
             ((2, 3, 4), (4, 2, 5), ([0, 2], [1, 0])),
             ((2, 3), (3, 2), ([1, 0], [0, 1])),
             ((2, 3, 4), (3,), ([1], [0])), ((3, 4), (4, 3), ([-1], [0])),
             ((3, 4), (3, 4), 2), ((3, 4), (4, 3), (1, 0))]
EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]),
    ("ij,jk,k->i", [(2, 3), (3, 4), (4,)]), ("ij->ji", [(2, 3)]),
    ("ijk->", [(2, 3, 4)]),
    ("ij,k->ijk", [(2, 3), (4,)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ijk->ki", [(2, 3, 4)]), ("i,i", [(4,), (4,)]), ("ij, jk -> ik", [(2, 3), (3, 4)]),
    ("ij,ij->i", [(3, 4), (3, 4)]), ("i,j->ij", [(3,), (4,)]),
]


def product_specs():
    specs = matmul_specs()
    for sa, sb in DOT_SHAPES:
        specs.append(array_spec("dot", lambda np, a, b: np.dot(a, b), sa, sb))
    specs.append(array_spec("x.dot", lambda np, a, b: a.dot(b), (2, 3), (3, 4),
                            autograd=False))
    for sa, sb in INNER_SHAPES:
        specs.append(array_spec("inner", lambda np, a, b: np.inner(a, b), sa, sb))
    specs += [
        array_spec("outer", lambda np, a, b: np.outer(a, b), (3,), (4,)),
        array_spec("outer of a matrix (flattened)", lambda np, a, b: np.outer(a, b),
                   (2, 3), (4,), autograd=False),   # autograd's outer does not ravel
        array_spec("outer with a constant", lambda np, a: np.outer(a, np.arange(3.0)),
                   (4,)),
        array_spec("vdot", lambda np, a, b: np.vdot(a, b), (5,), (5,), autograd=False),
        array_spec("vdot of matrices", lambda np, a, b: np.vdot(a, b), (2, 3), (2, 3),
                   autograd=False),
        array_spec("vdot with a constant", lambda np, a: np.vdot(a, np.arange(6.0)),
                   (2, 3), autograd=False),
    ]
    for sa, sb, axes in TENSORDOT:
        specs.append(array_spec(f"tensordot(axes={axes})",
                                lambda np, a, b, axes=axes: np.tensordot(a, b, axes),
                                sa, sb))
    specs.append(array_spec("tensordot with a constant",
                            lambda np, a: np.tensordot(a, np.ones((4, 5)), 1),
                            (2, 3, 4)))
    for subscripts, shapes in EINSUM:
        specs.append(array_spec(f"einsum('{subscripts}')",
                                lambda np, *xs, s=subscripts: np.einsum(s, *xs),
                                *shapes))
    specs.append(array_spec("einsum with a constant operand",
                            lambda np, a: np.einsum("ij,jk->ik", a, np.ones((3, 2))),
                            (4, 3)))
    specs.append(array_spec("einsum with a scalar Variable operand",
                            lambda np, a, s: np.einsum("ij,->ij", a, s), (2, 3), (),
                            autograd=False))
    return specs


PRODUCT_SPECS = product_specs()

# -- joining and splitting -------------------------------------------------------------

JOIN_SPECS = [
    array_spec("concatenate", lambda np, a, b: np.concatenate([a, b]), (2, 3), (4, 3)),
    array_spec("concatenate(axis=1)", lambda np, a, b: np.concatenate([a, b], axis=1),
               (2, 3), (2, 1)),
    array_spec("concatenate(axis=-1) of three", lambda np, a, b, c:
               np.concatenate((a, b, c), axis=-1), (2, 2, 1), (2, 2, 3), (2, 2, 2)),
    array_spec("concatenate(axis=None)", lambda np, a, b:
               np.concatenate([a, b], axis=None), (2, 3), (4,), autograd=False),
    array_spec("concatenate with a constant", lambda np, a:
               np.concatenate([np.ones((1, 3)), a, np.zeros((1, 3))]), (2, 3)),
    array_spec("concatenate the same array twice", lambda np, a: np.concatenate([a, a]),
               (2, 3)),
    array_spec("stack", lambda np, a, b: np.stack([a, b]), (2, 3), (2, 3)),
    array_spec("stack(axis=1)", lambda np, a, b: np.stack([a, b], axis=1), (2, 3),
               (2, 3)),
    array_spec("stack(axis=-1) with a constant", lambda np, a:
               np.stack([a, np.ones((2, 3)), a * a], axis=-1), (2, 3)),
    array_spec("hstack of vectors", lambda np, a, b: np.hstack([a, b]), (3,), (2,)),
    array_spec("hstack of matrices", lambda np, a, b: np.hstack([a, b]), (2, 3),
               (2, 1)),
    array_spec("hstack of matrices (same shape)", lambda np, a, b: np.hstack([a, b]),
               (2, 2), (2, 2)),
    array_spec("vstack of vectors", lambda np, a, b: np.vstack([a, b]), (3,), (3,)),
    array_spec("vstack of matrices", lambda np, a, b: np.vstack([a, b]), (1, 3),
               (2, 3)),
    array_spec("vstack of a vector and a matrix", lambda np, a, b: np.vstack([a, b]),
               (3,), (2, 3)),
    array_spec("column_stack of vectors", lambda np, a, b: np.column_stack([a, b]),
               (3,), (3,)),
    array_spec("column_stack of a vector and a matrix",
               lambda np, a, b: np.column_stack([a, b]), (3,), (3, 2)),
]
for k in range(3):
    JOIN_SPECS += [
        array_spec(f"split(3)[{k}]", lambda np, x, k=k: np.split(x, 3)[k], (6, 2)),
        array_spec(f"split(3, axis=1)[{k}]", lambda np, x, k=k:
                   np.split(x, 3, axis=1)[k], (2, 6)),
        array_spec(f"split([1, 4])[{k}]", lambda np, x, k=k: np.split(x, [1, 4])[k],
                   (6,)),
        array_spec(f"array_split(3)[{k}]", lambda np, x, k=k: np.array_split(x, 3)[k],
                   (7, 2)),
        array_spec(f"array_split(3, axis=-1)[{k}]", lambda np, x, k=k:
                   np.array_split(x, 3, axis=-1)[k], (2, 2, 5)),
    ]
JOIN_SPECS += [
    array_spec("hsplit[1]", lambda np, x: np.hsplit(x, 2)[1], (3, 4), autograd=False),
    array_spec("vsplit[0]", lambda np, x: np.vsplit(x, 3)[0], (3, 4), autograd=False),
    array_spec("split pieces recombined", lambda np, x:
               np.split(x, 2)[0] * np.split(x, 2)[1], (4, 3)),
]

# -- where and clip --------------------------------------------------------------------

def apart(rng, shape):
    """(x, y) with |x - y| >= 0.1 everywhere (the comparison is stable nearby)."""
    x = rng.uniform(-2, 2, shape)
    return x, x + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 1.0, shape)


def scaled_pair(rng, shape):
    """(x, y) with |y| = |x| / 2 or 2 |x|, either sign."""
    x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2, shape)
    return x, x * rng.choice([-2.0, -0.5, 0.5, 2.0], shape)


WHERE_SPECS = [
    array_spec("where(x > 0, sin(x), x**2)", lambda np, x:
               np.where(x > 0, np.sin(x), x ** 2), (3, 4), domain=nonzero(0.1, 2)),
    array_spec("where(x > 0, x**2, sin(y)) (y broadcast)", lambda np, x, y:
               np.where(x > 0, x ** 2, np.sin(y)), (3, 4), (4,),
               domain=[nonzero(0.1, 2), (-2, 2)],
               autograd=False),                 # (autograd's where: no unbroadcast)
    ArraySpec("where(y > x, x, y)", lambda np, x, y: np.where(y > x, x, y) ** 2,
              lambda rng: apart(rng, (3, 4))),
    array_spec("where(cond, x, y) (cond broadcast)", lambda np, x, y:
               np.where(np.array([True, False, True, False]), x, y), (3, 4), (3, 4)),
    array_spec("where(x > 0, x, scalar Variable)", lambda np, x, s:
               np.where(x > 0, x, s * s), (3, 4), (), domain=nonzero(0.1, 2),
               autograd=False),
    array_spec("where(x > 0, scalar Variable, exp(x))", lambda np, x, s:
               np.where(x > 0, 2.0 * s, np.exp(x)), (3, 4), (), domain=nonzero(0.1, 2),
               autograd=False),
    array_spec("where(x < 0, 0.0, x)", lambda np, x: np.where(x < 0, 0.0, x), (3, 4),
               domain=nonzero(0.1, 2)),
    array_spec("where(x < 0, 3x, 1.0)", lambda np, x: np.where(x < 0, x * 3.0, 1.0),
               (3, 4), domain=nonzero(0.1, 2)),
    array_spec("where(True, x, y)", lambda np, x, y: np.where(True, x, y), (3, 4),
               (3, 4), autograd=False),
    array_spec("where of a one-element slice", lambda np, x, y:
               np.where(x > 0, x[0:1, 0], y), (3, 4), (3, 4), domain=nonzero(0.1, 2),
               autograd=False),
    array_spec("where(list condition, x, y)", lambda np, x, y:
               np.where([True, False, True], x, y), (3,), (3,)),
    ArraySpec("where on both sides of a comparison of two arrays", lambda np, x, y:
              np.where(np.abs(x) > np.abs(y), x * y, x - y),
              lambda rng: scaled_pair(rng, (6,))),
]

CLIP_SPECS = [
    array_spec("clip", lambda np, x: np.clip(x, -0.5, 0.5), (3, 4),
               domain=away_from([-0.5, 0.5])),
    array_spec("clip(lower only)", lambda np, x: np.clip(x, -0.3, None), (3, 4),
               domain=away_from([-0.3]), autograd=False),
    array_spec("clip(upper only)", lambda np, x: np.clip(x, None, 0.2), (3, 4),
               domain=away_from([0.2]), autograd=False),
    array_spec("clip(array bounds)", lambda np, x:
               np.clip(x, np.array([-1.0, -0.5, 0.0, 0.5]), 1.5), (3, 4),
               domain=away_from([-1.0, -0.5, 0.0, 0.5, 1.5]), autograd=False),
    array_spec("x.clip", lambda np, x: x.clip(-0.3, 0.2), (6,),
               domain=away_from([-0.3, 0.2]), autograd=False),
    array_spec("clip of a scalar Variable", lambda np, s, x: np.clip(s, -1.0, 1.0) * x,
               (), (3,), domain=[(-0.9, 0.9), (-2, 2)], autograd=False),
]

# -- arrays from scalar Variables ------------------------------------------------------

ARRAY_SPECS = [
    array_spec("array([a*b, sin(c), 2.0, a])", lambda np, a, b, c:
               np.array([a * b, np.sin(c), 2.0, a]), (), (), (), spellings=False),
    array_spec("array([[a, b], [b*a, 1.0]])", lambda np, a, b:
               np.array([[a, b], [b * a, 1.0]]), (), (), spellings=False),
    array_spec("array of rows (arrays)", lambda np, x, y: np.array([x, 2.0 * y, x * y]),
               (3,), (3,), spellings=False),
    array_spec("array of an array and a list of scalar Variables", lambda np, x, s:
               np.array([x, [s, 1.0, s * s]]), (3,), (), spellings=False),
    array_spec("array of elements of an array", lambda np, x:
               np.array([x[2], x[0] * x[1], x[1]]), (3,), spellings=False),
    array_spec("asarray of scalar Variables", lambda np, a, b:
               np.asarray([a, b, a * b]), (), (), spellings=False),
    array_spec("stack of scalar Variables", lambda np, a, b: np.stack([a, b * a, b]),
               (), (), spellings=False),
    array_spec("array of scalar Variables in arithmetic", lambda np, a, b, x:
               np.sum(np.array([a, b]) * x, axis=-1), (), (), (3, 2), spellings=False),
]

# -- scipy.special ---------------------------------------------------------------------

B_WEIGHTS = np.abs(np.random.default_rng(22).standard_normal((2, 3, 4))) + 0.1


def logsumexp_specs():
    specs = []
    for axis in [None, 0, -1, (0, 2)]:
        for keepdims in (False, True):
            specs.append(array_spec(
                f"logsumexp(axis={axis}, keepdims={keepdims})",
                lambda np, x, axis=axis, keepdims=keepdims:
                np.special.logsumexp(x, axis=axis, keepdims=keepdims), (2, 3, 4),
                domain=(-4, 4)))
        specs.append(array_spec(
            f"logsumexp(axis={axis}, b=)", lambda np, x, axis=axis:
            np.special.logsumexp(x, axis=axis, b=B_WEIGHTS), (2, 3, 4), domain=(-4, 4)))
    specs += [
        array_spec("logsumexp", lambda np, x: np.special.logsumexp(x), (5,)),
        array_spec("logsumexp of large numbers", lambda np, x: np.special.logsumexp(x),
                   (5,), domain=(700, 800), rel_step=1e-6),
        array_spec("logsumexp differentiated in b", lambda np, x, b:
                   np.special.logsumexp(x, b=b), (4,), (4,),
                   domain=[(-2, 2), (0.1, 2)], autograd=False),
        ArraySpec("logsumexp with -inf entries (axis=1)", lambda np, x:
                  np.special.logsumexp(x, axis=1), lambda rng: (with_minus_inf(rng),),
                  autograd=False),
        ArraySpec("logsumexp with -inf entries", lambda np, x: np.special.logsumexp(x),
                  lambda rng: (with_minus_inf(rng),), autograd=False),
        # (gammaln is documented as first order only: digamma is not differentiated)
        array_spec("special.gammaln", lambda np, x: np.special.gammaln(x), (3, 4),
                   domain=(0.2, 6), second_order=False),
        array_spec("special.gammaln of negative non-integers", lambda np, x:
                   np.special.gammaln(x), (4,),
                   domain=lambda rng, shape: -rng.integers(0, 4, shape)
                   - rng.uniform(0.2, 0.8, shape), second_order=False),
        array_spec("special.gammaln of a scalar Variable",
                   lambda np, x: np.special.gammaln(x), (), domain=(0.5, 4),
                   autograd=False, second_order=False),
        array_spec("special.expit (large arguments)", lambda np, x: np.special.expit(x),
                   (3, 4), domain=(-40, 40), grad_atol=1e-12, rel_step=1e-4),
        array_spec("special.erf", lambda np, x: np.special.erf(x), (3, 4)),
    ]
    return specs


def with_minus_inf(rng):
    """Rows with one, two and no -inf entries (never a whole row)."""
    x = rng.uniform(-2, 2, (3, 4))
    x[0, 1] = -np.inf
    x[1, 0] = x[1, 3] = -np.inf
    return x


SPECIAL_SPECS = logsumexp_specs()

SPECS = (PRODUCT_SPECS + JOIN_SPECS + WHERE_SPECS + CLIP_SPECS + ARRAY_SPECS
         + SPECIAL_SPECS)
assert len({s.name for s in SPECS}) == len(SPECS), "spec names must be unique"


# the checks every spec gets (support.spec_tests)
globals().update(spec_tests(SPECS))


# -- products, joins, where, clip: closed forms and corner cases -----------------------

def test_matmul_gradients_closed_form(rng):
    a = rng.standard_normal((4, 2, 3))
    b = rng.standard_normal((4, 3, 5))
    u = rng.standard_normal((4, 2, 5))
    ga, gb = grad(lambda a, b: fnp.sum((a @ b) * u), argnum=(0, 1))(a, b)
    np.testing.assert_allclose(ga, u @ np.swapaxes(b, -1, -2), rtol=1e-13)
    np.testing.assert_allclose(gb, np.swapaxes(a, -1, -2) @ u, rtol=1e-13)


@pytest.mark.parametrize("shape_a, shape_b", [((2, 1, 2, 3), (5, 3, 4)),
                                              ((5, 2, 3), (1, 3, 4)),
                                              ((3, 1, 2, 2), (1, 4, 2, 2))])
def test_matmul_with_a_constant_operand_broadcast_over_batches(shape_a, shape_b, rng):
    """The constant's batch dimensions broadcast against the Variable's: the
    gradient sums the Variable's share over the broadcast batches."""
    a = rng.standard_normal(shape_a)
    b = rng.standard_normal(shape_b)
    u = rng.standard_normal(np.matmul(a, b).shape)
    ga = grad(lambda a: fnp.sum((a @ b) * u))(a)
    gb = grad(lambda b: fnp.sum((a @ b) * u))(b)
    full_ga = u @ np.swapaxes(b, -1, -2)
    full_gb = np.swapaxes(a, -1, -2) @ u
    np.testing.assert_allclose(ga, unbroadcast(full_ga, shape_a), rtol=1e-12)
    np.testing.assert_allclose(gb, unbroadcast(full_gb, shape_b), rtol=1e-12)


def unbroadcast(g, shape):
    """Sum g over the axes along which an array of `shape` was broadcast."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for d, n in enumerate(shape):
        if n == 1 and g.shape[d] != 1:
            g = g.sum(axis=d, keepdims=True)
    return g


def test_matmul_and_dot_of_scalars(rng):
    with pytest.raises(ValueError, match="matmul"):
        grad(lambda s, x: s @ x, argnum=(0, 1))(2.0, np.ones(3))
    with pytest.raises(ValueError, match="matmul"):
        grad(lambda x: fnp.sum(fnp.matmul(x, 2.0)))(np.ones(3))
    gs, gx = grad(lambda s, x: fnp.sum(fnp.dot(s, x)), argnum=(0, 1))(2.0,
                                                                      np.arange(3.0))
    assert gs == 3.0
    np.testing.assert_array_equal(gx, [2.0, 2.0, 2.0])


def test_einsum_refuses_what_it_cannot_differentiate():
    with pytest.raises(TypeError, match="keyword"):
        grad(lambda x: fnp.sum(fnp.einsum("ij->ji", x, optimize=True)))(np.ones((2, 3)))


def test_hstack_of_matrices_joins_columns(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 2))

    def f(a, b):
        h = fnp.hstack([a, b])
        assert h.shape == (2, 5)
        return fnp.sum(h * np.arange(10.0).reshape(2, 5))

    ga, gb = grad(f, argnum=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, [[0, 1, 2], [5, 6, 7]])
    np.testing.assert_array_equal(gb, [[3, 4], [8, 9]])


def test_where_with_a_constant_array_broadcast_against_the_variable(rng):
    x = rng.uniform(-2, 2, (3, 4))
    c = np.arange(4.0) * 10.0
    pos = x > 0
    value, g = value_and_grad(lambda x: fnp.sum(fnp.where(x > 0, x, c) * x))(x)
    assert value == pytest.approx(np.sum(np.where(pos, x, c) * x), rel=1e-14)
    np.testing.assert_allclose(g, np.where(pos, 2 * x, c[None, :] * np.ones((3, 1))),
                               rtol=1e-14)
    g = grad(lambda x: fnp.sum(fnp.where(x > 0, c, x)))(x)
    np.testing.assert_array_equal(g, np.where(pos, 0.0, 1.0))
    g = grad(lambda x: fnp.sum(fnp.where(x[0] > 0, x[:1], np.ones((3, 1)))))(x)
    np.testing.assert_array_equal(g, np.vstack([3.0 * (x[0] > 0), np.zeros((2, 4))]))


def test_where_replays_both_sides(rng):
    """The gradient of each side arrives where its branch was taken, and only there."""
    x = rng.uniform(-2, 2, 8)
    y = rng.uniform(-2, 2, 8)
    def f(x, y):
        return fnp.sum(fnp.where(x > y, fnp.sin(x) * y, fnp.exp(y) - x))

    gx, gy = grad(f, argnum=(0, 1))(x, y)
    take = x > y
    np.testing.assert_allclose(gx, np.where(take, np.cos(x) * y, -1.0), rtol=1e-14)
    np.testing.assert_allclose(gy, np.where(take, np.sin(x), np.exp(y)), rtol=1e-14)


def test_clip_gradient_is_zero_at_and_beyond_the_bounds():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    for spelling in (fnp, np):
        g = grad(lambda x: spelling.sum(spelling.clip(x, -1.0, 1.0) * 3.0))(x)
        np.testing.assert_array_equal(g, [0, 0, 3, 3, 3, 0, 0])
    assert grad(lambda s: fnp.clip(s, -1.0, 1.0))(0.5) == 1.0
    assert grad(lambda s: fnp.clip(s, -1.0, 1.0))(1.0) == 0.0


def test_clip_with_bounds_broadcast_beyond_the_array():
    x = np.array([-2.0, 0.5, 3.0])
    lo = np.array([[0.0], [1.0]])
    value, g = value_and_grad(lambda x: fnp.sum(fnp.clip(x, lo, 2.5)))(x)
    assert value == np.sum(np.clip(x, lo, 2.5))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0])


def test_clip_with_variable_bounds_differentiates_them_or_refuses():
    """d/dx sum(clip(x, x[0], 2.5)): x[0] is the lower bound of every element; a
    Variable bound is either differentiated or refused, never a silent constant."""
    x = np.array([-2.0, 0.5, 3.0])
    try:
        g = grad(lambda x: fnp.sum(fnp.clip(x, x[0], 2.5)))(x)
    except TypeError:
        return
    # clip(x0, x0, .) = x0 whichever way the tie goes; x1 is inside; x2 above 2.5
    np.testing.assert_allclose(g, [1.0, 1.0, 0.0])


def test_array_of_scalar_variables_closed_form():
    def f(a, b):
        v = fnp.array([a * b, fnp.sin(b), 2.0, a])
        assert type(v) is ArrayVariable and v.shape == (4,)
        return fnp.sum(v * v)

    ga, gb = grad(f, argnum=(0, 1))(1.5, -0.5)
    assert ga == pytest.approx(2 * 1.5 * 0.25 + 2 * 1.5, rel=1e-15)
    assert gb == pytest.approx(2 * 2.25 * -0.5 + 2 * np.sin(-0.5) * np.cos(-0.5),
                               rel=1e-15)


def test_grad_of_a_function_building_an_array_from_a_list_argument():
    """A list argument arrives as a list of scalar Variables."""
    def f(params):
        assert type(params) is list and type(params[0]) is Variable
        return fnp.sum(fnp.array(params) ** 2) + fnp.sum(fnp.stack(params) * 3.0)

    assert grad(f)([1.0, 2.0, -3.0]) == [5.0, 7.0, -3.0]


def test_plain_numpy_stack_of_scalar_variables_has_the_right_gradient():
    """np.stack does not dispatch on scalar Variables (object array), but the
    arithmetic on its elements is recorded, so the gradient is right."""
    ga, gb = grad(lambda a, b: np.sum(np.stack([a, b * a]) ** 2),
                  argnum=(0, 1))(2.0, 3.0)
    assert (ga, gb) == (2 * 2.0 + 2 * 6.0 * 3.0, 2 * 6.0 * 2.0)


def test_array_of_variables_refuses_a_non_float_dtype():
    with pytest.raises(TypeError, match="float64"):
        grad(lambda a: fnp.sum(fnp.array([a, a], dtype=int)))(1.0)
    g = grad(lambda a: fnp.sum(fnp.array([a, a], dtype=float)))(1.0)
    assert g == 2.0


# -- shape errors of products and joins ------------------------------------------------

MISMATCHES = [
    ("matmul", lambda np, a, b: a @ b),
    ("np.matmul", lambda np, a, b: np.matmul(a, b)),
    ("matmul with a float", lambda np, a, b: np.matmul(a, 2.0)),
    ("matmul of vectors", lambda np, a, b: a[0] @ b[0]),
    ("dot", lambda np, a, b: np.dot(a, b)),
    ("dot of vectors", lambda np, a, b: np.dot(a[0], b[0])),
    ("inner", lambda np, a, b: np.inner(a, b)),
    ("vdot", lambda np, a, b: np.vdot(a, b)),
    ("outer plus", lambda np, a, b: np.outer(a, b) + a),
    ("tensordot", lambda np, a, b: np.tensordot(a, b, axes=1)),
    ("einsum", lambda np, a, b: np.einsum("ij,jk->ik", a, b)),
    ("concatenate", lambda np, a, b: np.concatenate([a, b])),
    ("stack", lambda np, a, b: np.stack([a, b])),
    ("hstack", lambda np, a, b: np.hstack([a, b])),
    ("vstack", lambda np, a, b: np.vstack([a, b])),
    ("column_stack", lambda np, a, b: np.column_stack([a, b])),
    ("split", lambda np, a, b: np.split(a, 3, axis=1)[0]),
    ("clip", lambda np, a, b: np.clip(a, b, 1.0)),
]


@pytest.mark.parametrize("name, f", MISMATCHES, ids=[m[0] for m in MISMATCHES])
@pytest.mark.parametrize("spelling", [fnp, np], ids=["fasttape.numpy", "numpy"])
def test_shape_errors_are_numpy_s_own(name, f, spelling):
    """The error (type and message) NumPy gives for the same plain arrays."""
    a, b = np.ones((3, 4)), np.ones((2, 5))
    try:
        f(np, a, b)
    except Exception as e:          # noqa: BLE001 - compared with fasttape's below
        expected = e
    else:
        raise AssertionError("NumPy raised nothing")
    with pytest.raises(type(expected)) as info:
        grad(lambda a, b: fnp.sum(f(spelling, a, b)), argnum=(0, 1))(a, b)
    assert str(info.value) == str(expected)


# -- fasttape.numpy on plain data (no Variables) ---------------------------------------

PLAIN_CALLS = [
    ("array of a list", "fnp.array([1.5, 2.0])", "np.array([1.5, 2.0])"),
    ("array of int lists", "fnp.array([[1, 2], [3, 4]])", "np.array([[1, 2], [3, 4]])"),
    ("array of ints with dtype=int", "fnp.array([1, 2], dtype=int)",
     "np.array([1, 2], dtype=int)"),
    ("sum of a list", "fnp.sum([1.0, 2.0])", "np.sum([1.0, 2.0])"),
    ("sin of a list", "fnp.sin([1.0, 2.0])", "np.sin([1.0, 2.0])"),
    ("multiply by a list", "fnp.multiply(2.0, [1.0, 3.0])",
     "np.multiply(2.0, [1.0, 3.0])"),
    ("concatenate lists", "fnp.concatenate([[1.0], [2.0, 3.0]])",
     "np.concatenate([[1.0], [2.0, 3.0]])"),
    ("stack arrays", "fnp.stack([np.ones(2), np.zeros(2)])",
     "np.stack([np.ones(2), np.zeros(2)])"),
    ("hstack matrices", "fnp.hstack([np.ones((2, 2)), np.zeros((2, 1))])",
     "np.hstack([np.ones((2, 2)), np.zeros((2, 1))])"),
    ("constant list inside grad",
     "ft.grad(lambda x: fnp.sum(x * fnp.array([1.0, 2.0])))(np.ones(2))",
     "np.array([1.0, 2.0])"),
    ("dot with a list inside grad",
     "ft.grad(lambda x: fnp.dot(x, [1.0, 2.0]))(np.ones(2))", "np.array([1.0, 2.0])"),
]


@pytest.mark.parametrize("label, call, expected", PLAIN_CALLS,
                         ids=[c[0] for c in PLAIN_CALLS])
def test_fasttape_numpy_on_plain_lists_is_numpy(label, call, expected):
    """Code written for NumPy keeps working on plain data. Run in a subprocess: a
    crash here must not end the test session."""
    code = f"""
        import numpy as np
        import fasttape as ft
        import fasttape.numpy as fnp
        got, expected = {call}, {expected}
        assert type(got) is type(expected), (type(got), type(expected))
        assert np.shape(got) == np.shape(expected), (np.shape(got), np.shape(expected))
        assert np.asarray(got).dtype == np.asarray(expected).dtype
        assert np.array_equal(got, expected), (got, expected)
        print("ok")
    """
    assert_runs_cleanly(code, "ok")


# -- the two spellings, and functions without a derivative rule ------------------------

def mlp_loss(np_, special, params, x, y):
    """A small network and loss, written once for any NumPy-like namespace."""
    h = np_.tanh(x @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    log_probs = logits - special.logsumexp(logits, axis=1, keepdims=True)
    penalty = sum(np_.sum(w ** 2) for w in (params["w1"], params["w2"]))
    return -np_.mean(np_.sum(log_probs * y, axis=1)) + 1e-3 * penalty \
        + np_.linalg.norm(params["b1"]) * 0.1


def test_a_network_written_with_either_spelling_has_identical_gradients(rng):
    params = {"w1": rng.standard_normal((4, 5)), "b1": rng.standard_normal(5),
              "w2": rng.standard_normal((5, 3)), "b2": rng.standard_normal(3)}
    x = rng.standard_normal((6, 4))
    y = np.eye(3)[rng.integers(0, 3, 6)]
    v1, g1 = value_and_grad(lambda p: mlp_loss(fnp, fsp, p, x, y))(params)
    v2, g2 = value_and_grad(lambda p: mlp_loss(np, fsp, p, x, y))(params)
    assert v1 == v2
    assert list(g1) == list(params)
    for k in params:
        np.testing.assert_array_equal(g1[k], g2[k])
        assert g1[k].shape == params[k].shape and g1[k].dtype == np.float64
    import scipy.special
    assert v1 == pytest.approx(mlp_loss(np, scipy.special, params, x, y), rel=1e-13)
    autograd, anp = autograd_spelling()
    import autograd.scipy.special as asp
    g3 = autograd.grad(lambda p: mlp_loss(anp, asp, p, x, y))(params)
    for k in params:
        np.testing.assert_allclose(g1[k], g3[k], rtol=1e-10, atol=1e-13)


UNSUPPORTED = [
    ("unique", lambda x: np.unique(x)), ("spacing", lambda x: np.spacing(x)),
    ("nextafter", lambda x: np.nextafter(x, 2.0)), ("round", lambda x: np.round(x)),
    ("cumprod", lambda x: np.cumprod(x)), ("median", lambda x: np.median(x)),
    ("nancumsum", lambda x: np.nancumsum(x)), ("ptp", lambda x: np.ptp(x)),
    ("floor_divide", lambda x: np.floor_divide(x, 2.0)),
    ("interp", lambda x: np.interp(x, [0.0, 1.0], [0.0, 2.0])),
    ("convolve", lambda x: np.convolve(x, x)),
    ("lstsq", lambda x: np.linalg.lstsq(np.outer(x, x), x)),
    ("matrix_rank", lambda x: np.linalg.matrix_rank(np.outer(x, x))),
    ("copysign", lambda x: np.copysign(x, 1.0)),
    ("add.reduce", lambda x: np.add.reduce(x)),
    ("add.accumulate", lambda x: np.add.accumulate(x)),
    ("multiply.outer", lambda x: np.multiply.outer(x, x)),
    ("spacing", lambda x: fnp.spacing(x)),
]


@pytest.mark.parametrize("name, f", UNSUPPORTED,
                         ids=[f"{i}-{u[0]}" for i, u in enumerate(UNSUPPORTED)])
def test_numpy_functions_without_a_rule_raise_type_error_naming_them(name, f):
    def fun(x):
        f(x)
        return fnp.sum(x)

    with pytest.raises(TypeError) as info:
        grad(fun)(np.array([0.2, 1.3, 0.7]))
    assert name in str(info.value)


@pytest.mark.parametrize("f, word", [
    (lambda x: np.sin(x, out=np.empty(3)), "out"),
    (lambda x: np.sum(x, dtype=np.float32), "sum"),
    (lambda x: np.mean(x, dtype=np.float32), "mean"),
    (lambda x: np.matmul(x, x, out=np.empty(())), "out"),
])
def test_numpy_keywords_fasttape_cannot_honour_raise_type_error(f, word):
    with pytest.raises(TypeError, match=word):
        grad(lambda x: (f(x), fnp.sum(x))[1])(np.array([0.2, 1.3, 0.7]))


def test_comparisons_and_predicates_give_plain_arrays(rng):
    def f(x):
        for result in (x > 0, np.greater(x, 0.5), fnp.less_equal(x, x), np.isnan(x),
                       fnp.isfinite(x), x == x, np.equal(x, 0.0)):
            assert type(result) is np.ndarray and result.dtype == bool
        assert np.shape(x) == (4,) and np.ndim(x) == 1 and np.size(x) == 4
        z = np.zeros_like(x)
        assert type(z) is np.ndarray and z.shape == (4,)
        return fnp.sum(x)

    grad(f)(rng.standard_normal(4))


# -- differential operators on arrays and containers -----------------------------------

def f_tree(p):
    """A scalar of a nested container of arrays and floats."""
    a = p["a"]
    b0, b1 = p["b"]
    c = p["c"]
    return (fnp.sum(fnp.sin(a) * b0) + b1 * fnp.sum(a ** 2) + c[0] * fnp.sum(c[1])
            + fnp.sum(c[2][0] * b0))


def make_tree(rng):
    return {"a": rng.standard_normal((2, 3)),
            "b": (rng.standard_normal(3), 0.7),
            "c": [1.5, np.arange(4), [rng.standard_normal((2, 1)).astype(np.float32)]]}


def assert_like(gradient, value):
    """gradient has value's structure, float64 arrays of its shapes, floats for
    numbers."""
    if isinstance(value, dict):
        assert type(gradient) is dict and list(gradient) == list(value)
        for k in value:
            assert_like(gradient[k], value[k])
    elif isinstance(value, (list, tuple)):
        assert type(gradient) is type(value) and len(gradient) == len(value)
        for g, v in zip(gradient, value):
            assert_like(g, v)
    elif isinstance(value, np.ndarray):
        assert type(gradient) is np.ndarray, type(gradient)
        assert gradient.shape == value.shape and gradient.dtype == np.float64
    else:
        assert type(gradient) is float, type(gradient)


def tree_leaves(tree):
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for v in tree for leaf in tree_leaves(v)]
    return [tree]


def test_grad_of_a_nested_container_of_arrays_and_floats(rng):
    tree = make_tree(rng)
    value, g = value_and_grad(f_tree)(tree)
    assert_like(g, tree)
    # against central differences through the leaves
    leaves = tree_leaves(tree)

    def rebuild(ls):
        a, b0, b1, c0, c1, c2 = ls
        return {"a": a, "b": (b0, b1), "c": [c0, c1, [c2]]}

    def f_plain(*ls):
        p = rebuild(ls)
        return (np.sum(np.sin(p["a"]) * p["b"][0]) + p["b"][1] * np.sum(p["a"] ** 2)
                + p["c"][0] * np.sum(p["c"][1]) + np.sum(p["c"][2][0] * p["b"][0]))

    args = [np.asarray(v, dtype=float) if isinstance(v, np.ndarray) else float(v)
            for v in leaves]
    assert value == pytest.approx(f_plain(*args), rel=1e-14)
    assert_argument_gradients_match_differences(f_plain, args, tree_leaves(g), rng)


def test_container_gradients_match_autograd(rng):
    autograd, anp = autograd_spelling()
    tree = {"w": rng.standard_normal((3, 2)), "v": [rng.standard_normal(2), 0.3]}

    def f(np_, p):
        return np_.sum(np_.tanh(p["w"] @ p["v"][0]) * p["v"][1]) + np_.sum(p["w"] ** 3)

    ours = grad(lambda p: f(fnp, p))(tree)
    theirs = autograd.grad(lambda p: f(anp, p))(tree)
    np.testing.assert_allclose(ours["w"], theirs["w"], rtol=1e-12)
    np.testing.assert_allclose(ours["v"][0], theirs["v"][0], rtol=1e-12)
    assert ours["v"][1] == pytest.approx(theirs["v"][1], rel=1e-12)


def test_several_argnums_mixing_arrays_containers_and_floats(rng):
    x = rng.standard_normal(3)
    pair = (rng.standard_normal((2, 3)), 2.0)

    def f(s, x, pair, label):
        assert label == "constant"
        return s * fnp.sum(x * pair[0]) + pair[1] * fnp.sum(x)

    gs, gx, gp = grad(f, argnum=(0, 1, 2))(0.5, x, pair, "constant")
    assert type(gs) is float and gs == pytest.approx(np.sum(x * pair[0]), rel=1e-14)
    np.testing.assert_allclose(gx, 0.5 * pair[0].sum(axis=0) + 2.0, rtol=1e-14)
    assert_like(gp, pair)
    np.testing.assert_allclose(gp[0], 0.5 * np.broadcast_to(x, (2, 3)), rtol=1e-15)
    assert gp[1] == pytest.approx(np.sum(x), rel=1e-14)


@pytest.mark.parametrize("make", [
    lambda: np.arange(6).reshape(2, 3), lambda: np.arange(6, dtype=np.int32),
    lambda: np.array([True, False, True]), lambda: np.arange(4, dtype=np.float32),
    lambda: np.arange(4, dtype=np.uint8)],
    ids=["int64", "int32", "bool", "float32", "uint8"])
def test_non_float64_arrays_are_differentiated_as_float64(make):
    x = make()
    seen = []

    def f(x):
        seen.append(x.dtype)
        return fnp.sum(x * x) + fnp.sum(x / 2)       # true division, not integer

    value, g = value_and_grad(f)(x)
    xf = x.astype(np.float64)
    assert seen == [np.float64]
    assert value == pytest.approx(np.sum(xf * xf) + np.sum(xf / 2), rel=1e-15)
    # computed in float64; returned in a float argument's own dtype (autograd's)
    assert g.dtype == (x.dtype if x.dtype.kind == "f" else np.float64)
    assert g.shape == x.shape
    np.testing.assert_array_equal(g, (2 * xf + 0.5).astype(g.dtype))


@pytest.mark.parametrize("operator_name", ["grad", "value_and_grad", "elementwise_grad",
                                           "jacobian"])
def test_zero_dimensional_array_inputs_keep_their_shape(operator_name):
    """A 0-d ndarray is an array of shape (): the function sees shape (), and the
    gradient (Jacobian) has shape ()."""
    x = np.array(0.5)
    seen = []

    def f(x):
        seen.append(np.shape(x))
        return fnp.sin(x) * 3.0

    op = getattr(ft, operator_name)
    result = op(f)(x)
    g = result[1] if operator_name == "value_and_grad" else result
    assert seen == [()]
    assert np.shape(g) == ()
    assert float(g) == pytest.approx(3.0 * np.cos(0.5), rel=1e-15)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_one_element_array_output_counts_as_a_scalar(shape, rng):
    x = rng.standard_normal(shape)
    value, g = value_and_grad(lambda x: fnp.sin(x) * 2.0)(x)
    assert type(value) is float and value == pytest.approx(2.0 * np.sin(x.item()))
    assert g.shape == shape
    np.testing.assert_allclose(g, 2.0 * np.cos(x), rtol=1e-15)
    g2 = grad(lambda x: fnp.sum(x ** 2) * x[:1])(rng.standard_normal((3,) + shape[1:]))
    assert g2.shape == (3,) + shape[1:]


@pytest.mark.parametrize("out", [lambda x: x * 2.0, lambda x: x[:2], lambda x: x.T @ x,
                                 lambda x: fnp.stack([fnp.sum(x), fnp.sum(x * x)])])
def test_non_scalar_output_raises_type_error_naming_the_alternatives(out):
    with pytest.raises(TypeError) as info:
        grad(lambda x: out(x))(np.ones((3, 2)))
    message = str(info.value)
    assert "elementwise_grad" in message and "jacobian" in message
    with pytest.raises(TypeError):
        value_and_grad(lambda x: out(x))(np.ones((3, 2)))


def test_elementwise_grad_against_autograd(rng):
    autograd, anp = autograd_spelling()
    x = rng.uniform(0.2, 2.0, (3, 4))
    for f in (lambda np_, x: np_.sin(x) * np_.log(x),
              lambda np_, x: x.T @ x,
              lambda np_, x: np_.sum(x, axis=0) ** 2,
              lambda np_, x: np_.tanh(x[:, 1:] - x[:, :-1])):
        ours = elementwise_grad(lambda x: f(fnp, x))(x)
        theirs = autograd.elementwise_grad(lambda x: f(anp, x))(x)
        assert ours.shape == x.shape and ours.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_elementwise_grad_and_value_and_grad_of_containers(rng):
    p = {"x": rng.uniform(-1, 1, (2, 3)), "pair": (rng.uniform(-1, 1, 3), 0.5)}

    def f(p):
        return fnp.sin(p["x"]) * p["pair"][0] * p["pair"][1]

    g = elementwise_grad(f)(p)
    assert_like(g, p)
    x, (y, s) = p["x"], p["pair"]
    np.testing.assert_allclose(g["x"], np.cos(x) * y * s, rtol=1e-14)
    np.testing.assert_allclose(g["pair"][0], np.sum(np.sin(x), axis=0) * s, rtol=1e-14)
    assert g["pair"][1] == pytest.approx(np.sum(np.sin(x) * y), rel=1e-14)
    value, g2 = value_and_grad(lambda p: fnp.sum(f(p)))(p)
    assert value == pytest.approx(np.sum(np.sin(x) * y * s), rel=1e-14)
    for a, b in zip(tree_leaves(g2), tree_leaves(g)):
        np.testing.assert_array_equal(a, b)


def test_elementwise_grad_of_an_elementwise_function_is_the_derivative(rng):
    x = rng.uniform(-2, 2, (2, 3, 2))
    np.testing.assert_allclose(elementwise_grad(fnp.tanh)(x), 1 - np.tanh(x) ** 2,
                               rtol=1e-14)
    np.testing.assert_allclose(elementwise_grad(lambda x: x ** 3)(x), 3 * x ** 2,
                               rtol=1e-14)


JACOBIAN_CASES = [
    ("sin", lambda np_, x: np_.sin(x), (4,)),
    ("matrix-vector", lambda np_, x: np_.tanh(np_.arange(12.0).reshape(3, 4) @ x),
     (4,)),
    ("vector to matrix", lambda np_, x: np_.outer(x, x), (3,)),
    ("matrix to vector", lambda np_, x: np_.sum(x ** 2, axis=1), (3, 2)),
    ("matrix to matrix", lambda np_, x: x.T @ x, (3, 2)),
    ("3-d to 2-d", lambda np_, x: np_.sum(np_.exp(x), axis=0), (2, 3, 2)),
    ("scalar output", lambda np_, x: np_.sum(x ** 3), (2, 3)),
    ("one-element output", lambda np_, x: np_.sum(x, keepdims=True), (3,)),
]


@pytest.mark.parametrize("name, f, shape", JACOBIAN_CASES,
                         ids=[c[0] for c in JACOBIAN_CASES])
def test_jacobian_shape_and_values(name, f, shape, rng):
    x = rng.uniform(-1, 1, shape)
    out_shape = np.shape(f(np, x))
    jac = jacobian(lambda x: f(fnp, x))(x)
    assert jac.shape == out_shape + shape and jac.dtype == np.float64
    # J v against the directional derivative of each output component
    v = rng.standard_normal(shape)
    jv = np.tensordot(jac, v, axes=len(shape))
    numeric = directional_derivative(lambda t: np.asarray(f(np, t)), x, v)
    np.testing.assert_allclose(jv, numeric, rtol=1e-7, atol=1e-9)
    autograd, anp = autograd_spelling()
    theirs = autograd.jacobian(lambda x: f(anp, x))(x)
    np.testing.assert_allclose(jac, np.reshape(theirs, jac.shape), rtol=1e-12,
                               atol=1e-14)


def test_jacobian_of_scalar_input_and_of_a_constant_function():
    j = jacobian(lambda s: fnp.array([s, s * s, fnp.sin(s)]))(2.0)
    np.testing.assert_allclose(j, [1.0, 4.0, np.cos(2.0)], rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        j = jacobian(lambda x: np.ones((2, 2)))(np.arange(3.0))
    assert j.shape == (2, 2, 3) and not j.any()


def test_jacobian_of_integer_input_and_other_argnum():
    j = jacobian(lambda x: x * x)(np.arange(3))
    np.testing.assert_array_equal(j, np.diag([0.0, 2.0, 4.0]))
    j = jacobian(lambda x, y: x * y, argnum=1)(np.arange(3.0), np.ones(3))
    np.testing.assert_array_equal(j, np.diag([0.0, 1.0, 2.0]))


def test_jacobian_keeps_the_structure_of_containers_and_takes_several_argnums():
    # a tuple argnum: a tuple of Jacobians, one per argument
    (jx,) = jacobian(lambda x: x, argnum=(0,))(np.ones(2))
    np.testing.assert_array_equal(jx, np.eye(2))
    # a container argument: its structure, with blocks of shape out.shape + leaf.shape
    j = jacobian(lambda p: p["a"] * p["b"])({"a": np.array([1.0, 2.0]), "b": 3.0})
    assert set(j) == {"a", "b"}
    np.testing.assert_array_equal(j["a"], [[3.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(j["b"], [1.0, 2.0])


def test_grad_of_an_empty_array(rng):
    g = grad(lambda x: fnp.sum(fnp.exp(x)) + 1.0)(np.zeros((2, 0, 3)))
    assert g.shape == (2, 0, 3) and g.dtype == np.float64
    assert jacobian(lambda x: fnp.exp(x))(np.zeros((2, 0))).shape == (2, 0, 2, 0)


@pytest.mark.parametrize("name", ["argmax", "argmin", "argsort", "nonzero", "allclose",
                                  "isclose", "array_equal", "count_nonzero", "any"])
def test_functions_without_a_derivative_run_on_the_values(name):
    numpy_function = getattr(np, name)
    x0 = np.array([0.5, -2.0, 3.0, 0.0])
    results = []

    def f(x):
        for spelling in (numpy_function, getattr(fnp, name)):
            args = (x, x * 1.0) if name in ("allclose", "isclose", "array_equal") else (x,)
            results.append(spelling(*args))
        return fnp.sum(x * x)

    np.testing.assert_array_equal(grad(f)(x0), 2 * x0)     # the derivative is untouched
    expected_args = (x0, x0) if name in ("allclose", "isclose", "array_equal") else (x0,)
    for got in results:
        np.testing.assert_array_equal(got, numpy_function(*expected_args))
    with pytest.raises(TypeError, match="cannot be replayed by trace"):
        ft.trace(f, x0)


def test_elementwise_grad_of_an_object_array_of_variables_is_not_zero():
    # plain np.array of scalar Variables is an object array: converted, not a zero
    def f(x):
        return np.array([x[0] * 2.0, x[1] * x[0], fnp.sin(x[1])])

    x0 = np.array([1.0, 3.0])
    expected = np.array([2.0 + x0[1], x0[0] + np.cos(x0[1])])
    np.testing.assert_allclose(elementwise_grad(f)(x0), expected, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_derivatives_keep_the_float_dtype_of_their_argument(dtype):
    # as autograd's: a float32 argument gets a float32 gradient (computed in float64)
    x0 = np.array([[0.5, -1.25], [2.0, 0.75]], dtype=dtype)
    for derivative in (grad(lambda x: fnp.sum(fnp.sin(x) * x)),
                       elementwise_grad(lambda x: fnp.sin(x) * x),
                       lambda x: ft.make_vjp(lambda y: fnp.sin(y) * y)(x)[0](np.ones((2, 2)))):
        g = derivative(x0)
        assert g.dtype == dtype
        x = x0.astype(np.float64)
        np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x),
                                   rtol=1e-6 if dtype == np.float32 else 1e-3)


def test_a_boolean_output_has_no_gradient():
    with pytest.raises(TypeError, match="returned a boolean"):
        grad(lambda x: np.allclose(x, x * 3.0 / 3.0))(np.array([1.0, 2.0]))


def test_functions_without_a_derivative_of_complex_values():
    def f(z):
        assert np.iscomplex(z) and not np.isreal(z)
        return np.abs(z) ** 2

    assert grad(f)(1.0 + 2.0j) == pytest.approx(2.0 - 4.0j, rel=1e-14)
