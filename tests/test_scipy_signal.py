"""fasttape.scipy.signal.convolve: values against scipy.signal.convolve (one pair of
1-d slices at a time, summed over the contracted axes), derivatives in both operands
against central differences (fasttape.check_grads, forward and reverse mode, second
order), against autograd's where it is installed, and its errors."""
import itertools

import numpy as np
import pytest
import scipy.signal

import fasttape
from fasttape.check import check_grads
from fasttape.scipy.signal import convolve

MODES = ("full", "valid", "same")


def reference(a, b, conv, dot, mode):
    """The generalized convolution from scipy.signal.convolve alone: for each index
    of A's and B's carried axes, the sum over the contracted axes of SciPy's
    convolution of the two slices along the convolved axes."""
    carried_a = [i for i in range(a.ndim) if i not in conv[0] and i not in dot[0]]
    carried_b = [i for i in range(b.ndim) if i not in conv[1] and i not in dot[1]]
    a = np.transpose(a, carried_a + list(dot[0]) + list(conv[0]))
    b = np.transpose(b, carried_b + list(dot[1]) + list(conv[1]))
    na, nb, nd = len(carried_a), len(carried_b), len(dot[0])
    rows = []
    for ia in np.ndindex(*a.shape[:na]):
        for ib in np.ndindex(*b.shape[:nb]):
            total = 0.0
            for d in np.ndindex(*a.shape[na:na + nd]):
                x, y = a[ia + d], b[ib + d]
                total = total + (scipy.signal.convolve(x, y, mode) if x.ndim else x * y)
            rows.append(total)
    return np.reshape(np.array(rows), a.shape[:na] + b.shape[:nb] + np.shape(rows[0]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shapes", [((4,), (2,)), ((3,), (6,)), ((1,), (5,)),
                                    ((5, 4), (3, 2)), ((6, 7), (4, 1)), ((4, 3), (2, 2))])
def test_plain_convolution_matches_scipy_and_differences(rng, mode, shapes):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    if mode == "valid" and any(m < n for m, n in zip(*shapes)) and \
            any(m > n for m, n in zip(*shapes)):
        pytest.skip("SciPy's valid mode needs one operand larger in every axis")
    np.testing.assert_allclose(convolve(a, b, mode=mode),
                               scipy.signal.convolve(a, b, mode), rtol=1e-12, atol=1e-12)
    check_grads(lambda a, b: convolve(a, b, mode=mode), modes=("fwd", "rev"),
                order=2)(a, b)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("conv, dot, shapes", [
    (([1], [0]), ([], []), ((3, 5), (3, 4))),
    (([], []), ([0], [0]), ((3, 5), (3, 4))),
    (([1], [2]), ([0], [0]), ((3, 5), (3, 4, 2))),
    (([1, 2], [2, 4]), ([0, 3], [0, 3]), ((2, 5, 4, 3), (2, 4, 2, 3, 2))),
    (([0], [1]), ([], []), ((4, 3), (3, 2))),
    (([1, 0], [1, 0]), ([], []), ((4, 3), (3, 2))),
    (([1], [1]), ([0], [2]), ((3, 3, 2), (3, 2, 3))),
    (([1], [1]), ([2, 0], [0, 2]), ((3, 4, 2), (2, 3, 3))),
])
def test_axes_and_dot_axes(rng, mode, conv, dot, shapes):
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    got = convolve(a, b, axes=conv, dot_axes=dot, mode=mode)
    np.testing.assert_allclose(got, reference(a, b, conv, dot, mode), rtol=1e-12,
                               atol=1e-12)
    check_grads(lambda a, b: convolve(a, b, axes=conv, dot_axes=dot, mode=mode),
                modes=("fwd", "rev"), order=2)(a, b)


def test_one_operand_constant(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((2, 2))
    for mode in MODES:
        check_grads(lambda a: convolve(a, b, mode=mode), modes=("fwd", "rev"),
                    order=2)(a)
        check_grads(lambda b: convolve(a, b, mode=mode), modes=("fwd", "rev"),
                    order=2)(b)


def test_gradient_matches_autograd(rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    import autograd.scipy.signal as asignal
    a, b = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 2, 4))
    for mode in MODES:
        options = dict(axes=([1], [1]), dot_axes=([0], [0]), mode=mode)
        u = rng.standard_normal(np.shape(convolve(a, b, **options)))
        ours = fasttape.grad(lambda a, b: fasttape.numpy.sum(u * convolve(a, b, **options)),
                             (0, 1))(a, b)
        theirs = autograd.grad(lambda a, b: anp.sum(u * asignal.convolve(a, b, **options)),
                               (0, 1))(a, b)
        for x, y in zip(ours, theirs):
            np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)


def test_plain_arrays_give_plain_arrays(rng):
    out = convolve(rng.standard_normal(4), rng.standard_normal(3))
    assert type(out) is np.ndarray


@pytest.mark.parametrize("call, message", [
    (lambda a, b: convolve(a, b, mode="circular"), "mode"),
    (lambda a, b: convolve(a, b[0]), "as many dimensions"),
    (lambda a, b: convolve(a, b, axes=([0], [5])), "axis 5"),
    (lambda a, b: convolve(a, b, axes=([0], [0, 1])), "as many axes"),
    (lambda a, b: convolve(a, b, axes=([0], [0]), dot_axes=([0], [1])), "twice"),
    (lambda a, b: convolve(a, b, axes=([0], [0]), dot_axes=([1], [1])), "differ in size"),
    (lambda a, b: convolve(a, b, axes=[0]), "pair"),
])
def test_errors_name_the_problem(rng, call, message):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 2))
    with pytest.raises(ValueError, match=message):
        call(a, b)
    with pytest.raises(ValueError, match=message):
        fasttape.grad(lambda a: fasttape.numpy.sum(call(a, b)))(a)


def test_all_index_pairs_of_a_small_case(rng):
    # every (A index, B index) pair's contribution, by perturbing one entry of each
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    jac_a = fasttape.jacobian(lambda a: convolve(a, b))(a)
    jac_b = fasttape.jacobian(lambda b: convolve(a, b))(b)
    for k, j in itertools.product(range(3), range(2)):
        assert jac_a[k + j, k] == b[j]
        assert jac_b[k + j, j] == a[k]
