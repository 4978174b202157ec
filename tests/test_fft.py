"""fasttape.numpy.fft: values against NumPy; derivatives against central differences
along random directions (real and imaginary parts), first and second order, forward
and reverse; gradients against autograd and JAX; one node per transform; replay.
"""
import pickle

import numpy as np
import pytest

import fasttape.numpy as fnp
from fasttape import check_grads, grad, make_jvp, make_vjp, trace
from fasttape.numpy import fft as ffft

# (name, function of fasttape.numpy.fft's module or NumPy's, keyword arguments, input
# shape, complex input)
CASES = [
    ("fft", "fft", {}, (6,), True),
    ("fft n smaller", "fft", {"n": 4}, (3, 6), True),
    ("fft n bigger", "fft", {"n": 9}, (6,), True),
    ("fft axis 0 ortho", "fft", {"axis": 0, "norm": "ortho"}, (5, 3), True),
    ("fft forward", "fft", {"norm": "forward"}, (5,), False),
    ("ifft", "ifft", {}, (6,), True),
    ("ifft n", "ifft", {"n": 4, "norm": "ortho"}, (2, 5), True),
    ("fft2", "fft2", {}, (4, 3), True),
    ("fft2 s", "fft2", {"s": (3, 5)}, (4, 4), False),
    ("ifft2", "ifft2", {"norm": "forward"}, (3, 4), True),
    ("fftn", "fftn", {}, (2, 3, 4), True),
    ("fftn axes s", "fftn", {"s": (5, 2), "axes": (0, 2)}, (3, 2, 4), True),
    ("ifftn", "ifftn", {"axes": (1,)}, (3, 4), True),
    ("rfft even", "rfft", {}, (6,), False),
    ("rfft odd", "rfft", {}, (7,), False),
    ("rfft n axis", "rfft", {"n": 5, "axis": 0, "norm": "ortho"}, (6, 2), False),
    ("rfft n bigger", "rfft", {"n": 8, "norm": "forward"}, (5,), False),
    ("irfft", "irfft", {}, (5,), True),
    ("irfft odd n", "irfft", {"n": 7}, (4,), True),
    ("irfft n smaller", "irfft", {"n": 4, "norm": "ortho"}, (2, 6), True),
    ("rfft2", "rfft2", {}, (4, 6), False),
    ("rfft2 s odd", "rfft2", {"s": (3, 5)}, (4, 4), False),
    ("irfft2", "irfft2", {}, (4, 3), True),
    ("irfft2 s", "irfft2", {"s": (5, 5), "norm": "forward"}, (4, 3), True),
    ("rfftn", "rfftn", {}, (2, 3, 4), False),
    ("rfftn odd axes", "rfftn", {"axes": (0, 1)}, (3, 5, 2), False),
    ("irfftn", "irfftn", {}, (2, 3, 3), True),
    ("irfftn s axes", "irfftn", {"s": (4, 6), "axes": (0, 2)}, (3, 2, 4), True),
    ("fftshift", "fftshift", {}, (5, 4), True),
    ("fftshift real axis", "fftshift", {"axes": 0}, (5, 4), False),
    ("ifftshift", "ifftshift", {"axes": (1,)}, (3, 5), True),
]
IDS = [c[0] for c in CASES]


def sample(rng, shape, is_complex):
    x = rng.normal(size=shape)
    return x + 1j * rng.normal(size=shape) if is_complex else x


def on_parts(function, kwargs, is_complex):
    """The transform as a real function of real arrays: the input's parts in, the
    output's parts out (stacked)."""
    def real_function(*parts):
        x = parts[0] + 1j * parts[1] if is_complex else parts[0]
        y = function(x, **kwargs)
        return fnp.stack([fnp.real(y), fnp.imag(y)])
    return real_function


def parts_of(x, is_complex):
    return (x.real, x.imag) if is_complex else (x,)


@pytest.mark.parametrize("name, function, kwargs, shape, is_complex", CASES, ids=IDS)
def test_values_match_numpy(name, function, kwargs, shape, is_complex, rng):
    x = sample(rng, shape, is_complex)
    expected = getattr(np.fft, function)(x, **kwargs)
    _, ours = make_vjp(lambda x: getattr(ffft, function)(x, **kwargs))(x)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    # plain NumPy on Variables dispatches to the same functions
    _, dispatched = make_vjp(lambda x: getattr(np.fft, function)(x * 1.0, **kwargs))(x)
    np.testing.assert_allclose(dispatched, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, function, kwargs, shape, is_complex", CASES, ids=IDS)
def test_derivatives_to_second_order_in_both_modes(name, function, kwargs, shape,
                                                   is_complex, rng):
    x = sample(rng, shape, is_complex)
    check_grads(on_parts(getattr(ffft, function), kwargs, is_complex),
                modes=("fwd", "rev"), order=2)(*parts_of(x, is_complex))


@pytest.mark.parametrize("name, function, kwargs, shape, is_complex", CASES, ids=IDS)
def test_vjp_against_autograd(name, function, kwargs, shape, is_complex, rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    if function.startswith("irfft"):
        pytest.skip("autograd's irfft rule assumes a Hermitian-consistent input")
    x = sample(rng, shape, is_complex)
    ours_vjp, y = make_vjp(lambda x: getattr(ffft, function)(x, **kwargs))(x)
    g = sample(rng, np.shape(y), np.iscomplexobj(y))
    try:
        theirs = autograd.make_vjp(lambda x: getattr(anp.fft, function)(x, **kwargs))(
            x)[0](g)
    except NotImplementedError:
        pytest.skip("autograd does not differentiate this case (an odd last axis)")
    np.testing.assert_allclose(ours_vjp(g), theirs, rtol=1e-10, atol=1e-12)


def test_gradient_of_a_real_loss_of_a_spectrum_matches_jax(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = rng.normal(size=(4, 6))
    weights = rng.uniform(size=(4, 4))

    def loss(np_, x):
        spectrum = np_.fft.rfft2(x) * 1.0
        back = np_.fft.irfft(spectrum, n=6, axis=-1)
        return np_.sum(np_.abs(np_.fft.fft(x, n=4)) ** 2 * weights) + \
            np_.sum(back ** 3) + np_.sum(np_.angle(spectrum))
    ours = grad(lambda x: loss(fnp, x))(x)
    theirs = jax.grad(lambda x: loss(jnp, x))(x)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-10, atol=1e-10)


def test_a_transform_is_one_node_and_the_gradient_one_more_fft(rng):
    import fasttape
    x = rng.normal(size=64)
    tape = fasttape.Tape()
    with tape:
        leaf = fasttape._arrays.make_array_leaf(tape, x)
        before = tape.n_array_nodes
        y = ffft.fft(leaf)
        # the node, and the two views that split its real and imaginary parts
        assert tape.n_array_nodes - before == 3
        assert type(y) is fasttape.ComplexArray


def test_jvp_of_a_complex_input_is_the_transform_of_the_tangent(rng):
    x = sample(rng, (8,), True)
    t = sample(rng, (8,), True)
    value, tangent = make_jvp(ffft.fft)(x)(t)
    np.testing.assert_allclose(value, np.fft.fft(x), rtol=1e-12)
    np.testing.assert_allclose(tangent, np.fft.fft(t), rtol=1e-12)


def test_a_traced_spectral_loss_replays(rng):
    x0, x1 = rng.normal(size=16), rng.normal(size=16)

    def loss(x):
        return fnp.sum(fnp.abs(ffft.rfft(x)) ** 2) + fnp.sum(ffft.irfft(ffft.fft(x)) ** 2)
    traced = trace(loss, x0)
    assert np.isclose(traced(x1), loss(x1))
    np.testing.assert_allclose(traced.grad(x1), grad(loss)(x1), rtol=1e-12)


def test_a_traced_spectral_loss_pickles(rng):
    x0, x1 = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))

    def loss(x):
        z = ffft.fft2(x * (1.0 + 0.5j), s=(4, 8)) * np.exp(0.3j)
        return fnp.sum(fnp.abs(ffft.ifftn(z, axes=(1,))) ** 3) + fnp.sum(
            ffft.irfft2(ffft.rfft2(x)) ** 2)
    loaded = pickle.loads(pickle.dumps(trace(loss, x0)))
    np.testing.assert_allclose(loaded.grad(x1), grad(loss)(x1), rtol=1e-12)


def test_rfft_of_a_complex_value_and_a_bad_norm_raise():
    with pytest.raises(TypeError, match="rfft"):
        grad(lambda z: fnp.sum(fnp.abs(ffft.rfft(z))))(np.ones(4) * (1 + 1j))
    with pytest.raises(ValueError, match="norm"):
        grad(lambda x: fnp.sum(fnp.abs(ffft.fft(x, norm="sideways"))))(np.ones(4))


def test_plain_arrays_and_helpers_are_numpys():
    x = np.arange(6.0)
    np.testing.assert_allclose(ffft.fft(x), np.fft.fft(x))
    np.testing.assert_allclose(ffft.fftshift(x), np.fft.fftshift(x))
    assert ffft.fftfreq is np.fft.fftfreq
    assert fnp.fft is ffft


@pytest.mark.parametrize("through", ["complex arithmetic", "fft"])
def test_hessian_of_a_real_loss_through_complex_values(through, rng):
    from fasttape import hessian, hvp
    x = rng.normal(size=5)
    if through == "fft":
        f = lambda x: fnp.sum(fnp.abs(ffft.fft(x ** 2)) ** 3)         # noqa: E731
    else:
        f = lambda x: fnp.sum(fnp.abs(fnp.exp(1j * x) * (x + 2j)) ** 3)  # noqa: E731
    g = grad(f)
    eps = 1e-5
    numeric = np.stack([(g(x + eps * e) - g(x - eps * e)) / (2 * eps)
                        for e in np.eye(5)], axis=-1)
    np.testing.assert_allclose(hessian(f)(x), numeric, rtol=1e-5, atol=1e-6)
    v = rng.normal(size=5)
    np.testing.assert_allclose(hvp(f)(x, v), numeric @ v, rtol=1e-5, atol=1e-6)
