"""fasttape.numpy's joining, splitting, rearranging and difference functions (append,
select, the splits, r_ and c_, make_diagonal, diagonal, sort, partition, pad, kron,
diff, gradient, cross, ...), einsum's full syntax, the complex parts of real
Variables, full and the *_like functions: each from a table of specs checked against
NumPy's value, central differences (reverse mode, forward mode, and reverse over
reverse), autograd where installed, and plain NumPy on Variables."""
import numpy as np
import pytest

import fasttape.numpy as fnp
from fasttape import grad, hessian_vector_product, jacobian, jvp, trace

from support import (args_directional_derivative, array_spec, fasttape_spelling,
                     spec_tests)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def distinct(rng, shape):
    """Well separated values (no ties for sort and partition to break)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) + rng.uniform(0.1, 0.4, n)).reshape(shape) / n


MASK = np.random.default_rng(3).uniform(size=(3, 4)) > 0.5
MASK2 = np.random.default_rng(4).uniform(size=(3, 4)) > 0.5
C34 = np.random.default_rng(5).standard_normal((3, 4))


def reference_make_diagonal(np_, D, offset=0, axis1=0, axis2=1):
    """make_diagonal under NumPy's spelling (NumPy has none): zeros with D on the
    diagonal, written with plain NumPy."""
    if np_.module is not np:
        return np_.make_diagonal(D, offset=offset, axis1=axis1, axis2=axis2)
    D = np.asarray(D)
    n = D.shape[-1] + abs(offset)
    ndim = D.ndim + 1
    a1, a2 = sorted((axis1 % ndim, axis2 % ndim))
    shape = list(D.shape[:-1])
    shape.insert(a1, n)
    shape.insert(a2, n)
    out = np.zeros(shape)
    flat = np.diagonal(np.arange(out.size).reshape(shape), offset, axis1, axis2)
    out.reshape(-1)[flat] = D
    return out


SPECS = [
    # joining and splitting
    array_spec("append", lambda np, a, b: np.append(a, b), (2, 3), (4,)),
    array_spec("append(axis=0)", lambda np, a, b: np.append(a, b, axis=0), (2, 3),
               (1, 3)),
    array_spec("append(axis=1) a constant", lambda np, a: np.append(a, C34, axis=1),
               (3, 2)),
    array_spec("append a scalar", lambda np, a, s: np.append(a, s), (3,), ()),
    array_spec("append to a constant", lambda np, a: np.append([1.0, 2.0], a), (2, 2)),
    array_spec("select", lambda np, a, b: np.select([MASK, MASK2], [a, b], 0.5),
               (3, 4), (3, 4)),
    array_spec("select with a Variable default",
               lambda np, a, b, d: np.select([MASK, MASK2], [a, C34], d) + b,
               (3, 4), (3, 4), ()),
    array_spec("select broadcasting", lambda np, a, b: np.select([MASK], [a], b),
               (4,), (3, 1)),
    array_spec("dsplit", lambda np, a: np.dsplit(a, 2)[1] * np.dsplit(a, 2)[0],
               (2, 3, 4)),
    array_spec("dsplit at indices", lambda np, a: np.dsplit(a, [1, 3])[2], (2, 3, 4)),
    array_spec("hsplit", lambda np, a: np.hsplit(a, 2)[0] - 2 * np.hsplit(a, 2)[1],
               (3, 4)),
    array_spec("hsplit 1-d", lambda np, a: np.hsplit(a, [1])[1], (5,),
               autograd=False),        # (autograd joins the cotangents on axis 1)
    array_spec("vsplit", lambda np, a: np.vsplit(a, [1])[1], (3, 4)),
    array_spec("split(axis=1)", lambda np, a: np.split(a, 2, axis=1)[1], (3, 4)),
    array_spec("array_split", lambda np, a: np.array_split(a, 3)[1], (7,)),
    array_spec("column_stack 1-d", lambda np, a, b: np.column_stack([a, b]), (3,), (3,)),
    array_spec("column_stack of an array's rows", lambda np, a: np.column_stack(a),
               (2,)),
    array_spec("dstack", lambda np, a, b: np.dstack([a, b]), (2, 3), (2, 3)),
    array_spec("atleast_3d 0-d", lambda np, a: np.atleast_3d(a), ()),
    array_spec("atleast_3d 1-d", lambda np, a: np.atleast_3d(a), (4,)),
    array_spec("atleast_3d 2-d", lambda np, a: np.atleast_3d(a), (2, 4)),
    array_spec("atleast_3d 4-d", lambda np, a: np.atleast_3d(a), (2, 1, 3, 2)),
    array_spec("r_", lambda np, a, b: np.r_[a, b, a], (3,), (2,), spellings=False),
    array_spec("r_ of matrices and a constant", lambda np, a: np.r_[a, C34, a], (2, 4),
               spellings=False),
    array_spec("r_ with a slice and a scalar", lambda np, a, s: np.r_[a, 0:3, s],
               (2,), (), spellings=False),
    array_spec("r_ along axis 1", lambda np, a: np.r_["1", a, C34], (3, 2),
               spellings=False),
    array_spec("r_ with ndmin", lambda np, a, b: np.r_["0,2", a, b], (4,), (2, 4),
               spellings=False),
    array_spec("c_ of 1-d", lambda np, a, b: np.c_[a, b, a], (3,), (3,),
               spellings=False),
    array_spec("c_ of matrices", lambda np, a: np.c_[a, C34, a], (3, 2),
               spellings=False),
    # rearranging
    array_spec("make_diagonal", lambda np, d: reference_make_diagonal(np, d), (4,),
               spellings=False, autograd=False),   # (autograd's takes -1, -2 only)
    array_spec("make_diagonal(axis1=-1, axis2=-2) batched",
               lambda np, d: reference_make_diagonal(np, d, 0, -1, -2), (3, 4),
               spellings=False),
    array_spec("make_diagonal(offset=1, axis1=0, axis2=2)",
               lambda np, d: reference_make_diagonal(np, d, 1, 0, 2), (2, 3),
               spellings=False, autograd=False),
    array_spec("make_diagonal(offset=-2)",
               lambda np, d: reference_make_diagonal(np, d, -2, 1, 0), (3,),
               spellings=False, autograd=False),
    # (autograd's diagonal rule takes the last two axes of square matrices only)
    array_spec("diagonal", lambda np, a: np.diagonal(a), (3, 3), autograd=False),
    array_spec("diagonal of square matrices(axis1=-1, axis2=-2)",
               lambda np, a: np.diagonal(a, 0, -1, -2), (2, 3, 3)),
    array_spec("diagonal(offset=1)", lambda np, a: np.diagonal(a, 1), (3, 4),
               autograd=False),
    array_spec("diagonal(offset=-1, axis1=1, axis2=2)",
               lambda np, a: np.diagonal(a, -1, 1, 2), (2, 3, 3), autograd=False),
    array_spec("diagonal(axis1=-1, axis2=-2)", lambda np, a: np.diagonal(a, 0, -1, -2),
               (2, 4, 3), autograd=False),
    # (autograd sorts and partitions 1-d arrays only)
    array_spec("sort 1-d", lambda np, a: np.sort(a), (6,), domain=distinct),
    array_spec("sort", lambda np, a: np.sort(a), (3, 4), domain=distinct,
               autograd=False),
    array_spec("sort(axis=0)", lambda np, a: np.sort(a, axis=0), (3, 4),
               domain=distinct, autograd=False),
    array_spec("sort(axis=None)", lambda np, a: np.sort(a, axis=None), (3, 4),
               domain=distinct, autograd=False),
    array_spec("partition 1-d", lambda np, a: np.partition(a, 2), (6,),
               domain=distinct),
    array_spec("partition", lambda np, a: np.partition(a, 2), (2, 5),
               domain=distinct, autograd=False),
    array_spec("partition(axis=0)", lambda np, a: np.partition(a, 1, axis=0), (4, 3),
               domain=distinct, autograd=False),
    # (autograd's pad needs the mode spelled out)
    array_spec("pad constant", lambda np, a: np.pad(a, 2), (2, 3), autograd=False),
    array_spec("pad constant values", lambda np, a: np.pad(
        a, ((1, 2), (0, 1)), "constant", constant_values=7.0), (2, 3)),
    array_spec("pad edge", lambda np, a: np.pad(a, 2, "edge"), (2, 3), autograd=False),
    array_spec("pad reflect", lambda np, a: np.pad(a, ((1, 1), (2, 0)), "reflect"),
               (3, 4), autograd=False),
    array_spec("pad wrap", lambda np, a: np.pad(a, 1, "wrap"), (3,), autograd=False),
    array_spec("pad symmetric", lambda np, a: np.pad(a, 2, "symmetric"), (3, 2),
               autograd=False),
    # products and differences
    array_spec("kron", lambda np, a, b: np.kron(a, b), (2, 3), (3, 2)),
    array_spec("kron of 1-d and 2-d", lambda np, a, b: np.kron(a, b), (2,), (3, 2)),
    array_spec("kron with a constant", lambda np, a: np.kron(C34, a), (2,)),
    array_spec("diff", lambda np, a: np.diff(a), (5,)),
    array_spec("diff(n=2, axis=0)", lambda np, a: np.diff(a, 2, axis=0), (5, 3)),
    array_spec("diff(n=0)", lambda np, a: np.diff(a, 0) * 1.0, (4,)),
    array_spec("diff with prepend and append", lambda np, a, b: np.diff(
        a, axis=1, prepend=0.5, append=b), (3, 4), (3, 1), autograd=False),
    array_spec("gradient", lambda np, a: np.gradient(a), (6,)),
    array_spec("gradient of a matrix", lambda np, a: np.stack(np.gradient(a)), (4, 5)),
    array_spec("gradient(axis=-1)", lambda np, a: np.gradient(a, axis=-1), (3, 4, 5)),
    array_spec("gradient(axis=(0, 2))", lambda np, a: np.stack(np.gradient(
        a, axis=(0, 2))), (3, 4, 5), autograd=False),   # (autograd's: shape error)
    array_spec("gradient with spacing and edge_order=2",
               lambda np, a: np.gradient(a, 0.3, edge_order=2), (6,), autograd=False),
    array_spec("gradient with coordinates",
               lambda np, a: np.gradient(a, np.array([0.0, 0.5, 1.5, 1.7, 3.0])), (5,),
               autograd=False),
    array_spec("cross", lambda np, a, b: np.cross(a, b), (3,), (3,)),
    array_spec("cross batched", lambda np, a, b: np.cross(a, b), (4, 3), (4, 3)),
    array_spec("cross broadcast", lambda np, a, b: np.cross(a, b), (4, 3), (3,),
               autograd=False),                         # (autograd's: shape error)
    array_spec("cross(axisa=0, axisb=0, axisc=0)",
               lambda np, a, b: np.cross(a, b, 0, 0, 0), (3, 4), (3, 4)),
    array_spec("cross(axis=0)", lambda np, a, b: np.cross(a, b, axis=0), (3, 2),
               (3, 2), autograd=False),
    array_spec("cross with a constant", lambda np, a: np.cross(a, C34[:, :3]), (3, 3)),
    array_spec("nan_to_num", lambda np, a: np.nan_to_num(a), (3, 4)),
    array_spec("nan_to_num of inf and nan", lambda np, a: np.nan_to_num(
        a * np.array([1.0, np.inf, np.nan, -np.inf]), posinf=5.0, neginf=-3.0) +
        a * 0.0 if np.module is not fnp else np.nan_to_num(
            a * np.array([1.0, np.inf, np.nan, -np.inf]), posinf=5.0, neginf=-3.0),
        (4,), domain=positive, autograd=False, spellings=False, second_order=False),
    array_spec("linspace", lambda np, a, b: np.linspace(a, b, 5), (), ()),
    array_spec("linspace without endpoint", lambda np, a, b: np.linspace(
        a, b, 4, endpoint=False), (), (), autograd=False),
    array_spec("linspace of arrays", lambda np, a, b: np.linspace(a, b, 3, axis=1),
               (2,), (2,), autograd=False),
    array_spec("linspace num=1", lambda np, a, b: np.linspace(a, b, 1), (), ()),
    # einsum's full syntax
    array_spec("einsum ellipsis", lambda np, a, b: np.einsum("...ij,jk->...ik", a, b),
               (2, 3, 4), (4, 2)),
    array_spec("einsum ellipsis broadcast", lambda np, a, b: np.einsum(
        "...ij,...jk->...ik", a, b), (2, 1, 3, 4), (5, 4, 2)),
    array_spec("einsum ellipsis of length 0", lambda np, a, b: np.einsum(
        "...ij,...jk->...ik", a, b), (0, 2, 3), (0, 3, 4)),
    array_spec("einsum ellipsis implicit", lambda np, a: np.einsum("i...->...", a),
               (3, 2, 2)),
    array_spec("einsum ellipsis in the middle", lambda np, a: np.einsum(
        "i...j->j...i", a), (2, 3, 4, 5)),
    # (autograd's einsum rules refuse repeated indices and implicit sublists)
    array_spec("einsum trace", lambda np, a: np.einsum("ii", a), (4, 4),
               autograd=False),
    array_spec("einsum diagonal", lambda np, a: np.einsum("ii->i", a), (4, 4),
               autograd=False),
    array_spec("einsum batched diagonal", lambda np, a, b: np.einsum(
        "bii,bi->b", a, b), (2, 3, 3), (2, 3), autograd=False),
    array_spec("einsum repeated thrice", lambda np, a: np.einsum("iij,iji->ij", a, a),
               (3, 3, 3), autograd=False),
    array_spec("einsum sublists", lambda np, a, b: np.einsum(a, [0, 1], b, [1, 2],
                                                             [0, 2]), (2, 3), (3, 4)),
    array_spec("einsum sublists implicit", lambda np, a: np.einsum(a, [1, 0]), (2, 3),
               autograd=False),
    array_spec("einsum sublists with ellipsis", lambda np, a, b: np.einsum(
        a, [Ellipsis, 0], b, [Ellipsis, 0], [Ellipsis]), (2, 3), (2, 3)),
    array_spec("einsum three operands with a constant", lambda np, a, b: np.einsum(
        "ij,jk,ki->", a, C34, b), (2, 3), (4, 2)),
    # complex parts, full and the *_like functions
    array_spec("real", lambda np, a: np.real(a), (3,)),
    array_spec("real_if_close", lambda np, a: np.real_if_close(a), (3,)),
    array_spec("conj", lambda np, a: np.conj(a) * a, (3,)),
    array_spec("conjugate of a scalar", lambda np, a: np.conjugate(a) * a, ()),
    array_spec("imag", lambda np, a: np.imag(a) + a, (3,)),
    array_spec("angle", lambda np, a: np.angle(a) + a, (4,)),
    array_spec("angle of a scalar", lambda np, a: np.angle(a, deg=True) * a, (),
               autograd=False),                         # (autograd's: no deg)
    # (plain np.full does not dispatch: it makes an object array, whose derivative
    # fasttape keeps, see test_numpy_surface.py)
    array_spec("full", lambda np, s: np.full((2, 3), s), (), autograd=False,
               spellings=False),
    array_spec("full of an array", lambda np, a: np.full((2, 3), a), (3,),
               autograd=False, spellings=False),
    array_spec("full_like", lambda np, a, s: np.full_like(a, s) * a, (2, 3), (),
               autograd=False),
    array_spec("zeros_like", lambda np, a: np.zeros_like(a) + a, (2, 3)),
    array_spec("ones_like", lambda np, s: np.ones_like(s) * s, ()),
    array_spec("empty_like (shape only)", lambda np, a: np.empty_like(a).shape[0] * a,
               (2, 3), autograd=False),
]
assert len({s.name for s in SPECS}) == len(SPECS), "spec names must be unique"


# the checks every spec gets (support.spec_tests)
globals().update(spec_tests(SPECS))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_forward_mode_matches_central_differences(spec, rng):
    args, ref, _ = spec.draw(rng)
    spelling = fasttape_spelling()
    tangents = tuple(rng.standard_normal(np.shape(a)) if isinstance(a, np.ndarray)
                     else float(rng.standard_normal()) for a in args)
    out, t_out = jvp(lambda *a: spec.fun(spelling, *a), args, tangents)
    numeric = args_directional_derivative(lambda *a: spec.fun(
        __import__("support").numpy_spelling(), *a), args, tangents)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=0, equal_nan=True)
    np.testing.assert_allclose(t_out, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.second_order], ids=str)
def test_hessian_vector_product_matches_central_differences_of_the_gradient(spec, rng):
    """Forward over reverse (the C sweep where the nodes allow it) for the first
    argument, h = sum(u * out + out**2 / 2) as in check_second_order."""
    args, _, u = spec.draw(rng)
    spelling = fasttape_spelling()

    def h(x, *rest):
        out = spec.fun(spelling, x, *rest)
        return fnp.sum(out * u) + 0.5 * fnp.sum(out * out)

    v = rng.standard_normal(np.shape(args[0])) if isinstance(args[0], np.ndarray) \
        else float(rng.standard_normal())
    got = hessian_vector_product(h)(*args, v)
    numeric = args_directional_derivative(lambda x: grad(h)(x, *args[1:]), args[:1],
                                          [v])
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7)


# -- conventions and refusals ------------------------------------------------------------

def test_sort_sends_each_gradient_to_the_element_s_place():
    x = np.array([0.3, -1.0, 2.0, 0.1])
    g = grad(lambda x: fnp.sum(fnp.sort(x) * np.arange(4.0)))(x)
    np.testing.assert_array_equal(g, np.argsort(np.argsort(x)).astype(float))


def test_sort_refuses_to_be_traced():
    with pytest.raises(TypeError, match="sort of Variables cannot be replayed"):
        trace(lambda x: fnp.sum(fnp.sort(x)), np.array([1.0, 0.0]))


def test_pad_refuses_modes_that_compute_statistics():
    with pytest.raises(TypeError, match="mean"):
        grad(lambda x: fnp.sum(fnp.pad(x, 1, "mean")))(np.ones(3))


def test_angle_and_imag_of_real_variables_have_zero_derivative():
    x = np.array([-2.0, 0.5])
    np.testing.assert_array_equal(
        jacobian(lambda x: np.angle(x) + np.imag(x))(x), np.zeros((2, 2)))
    np.testing.assert_array_equal(np.angle(-2.0), fnp.angle(np.float64(-2.0)))
    assert grad(lambda s: fnp.angle(s) * s)(-2.0) == np.pi


def test_nan_to_num_passes_the_derivative_of_finite_elements_only():
    inf = np.array([1.0, np.inf, np.nan, -np.inf])
    j = jacobian(lambda x: fnp.nan_to_num(x * inf))(np.ones(4))
    np.testing.assert_array_equal(j, np.diag([1.0, 0.0, 0.0, 0.0]))


def test_einsum_keeps_numpy_s_errors():
    a = np.ones((2, 3))
    for subscripts, operands in [("i...->", (a,)), ("ij,jk", (a, a)), ("ijk", (a,))]:
        with pytest.raises(ValueError) as expected:
            np.einsum(subscripts, *operands)
        with pytest.raises(ValueError) as got:
            grad(lambda x: fnp.sum(fnp.einsum(subscripts, x, *operands[1:])))(a)
        assert str(got.value) == str(expected.value)


def test_r_refuses_string_directives_it_does_not_know():
    with pytest.raises(TypeError, match="axis string"):
        grad(lambda x: fnp.sum(fnp.r_["r", x, x]))(np.ones(2))


def test_std_of_groups_of_one_element_has_derivative_zero():
    """std is the constant 0 there (central differences give 0), where sqrt's slope
    at 0 times a zero would give nan."""
    assert grad(lambda x: fnp.std(x))(3.5) == 0.0
    np.testing.assert_array_equal(
        jacobian(lambda x: fnp.std(x, axis=0))(np.array([[1.0, -2.0, 0.5]])),
        np.zeros((3, 1, 3)))
    x = np.array([[1.0, -2.0, 0.5], [2.0, 0.0, 0.5]])
    g = grad(lambda x: fnp.sum(fnp.std(x, axis=0)))(x)
    np.testing.assert_allclose(g, [[-0.5, -0.5, 0.0], [0.5, 0.5, 0.0]])
    replayed = trace(lambda x: fnp.sum(fnp.std(x, axis=0)), x)
    np.testing.assert_allclose(replayed.grad(x[::-1]), [[0.5, 0.5, 0.0],
                                                        [-0.5, -0.5, 0.0]])
