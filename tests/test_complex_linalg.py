"""numpy.linalg of complex values (fasttape._complex_linalg), and the differential
operators with complex arguments or outputs.

Each function: values against NumPy; derivatives of the function written on the real
and imaginary parts (a real function of real arrays) against central differences along
random directions, first and second order, forward and reverse; gradients of real
losses against autograd and JAX where installed. Eigenvectors and singular vectors
enter through quantities that do not depend on their phases (|v|, u v^H), since their
phases are an arbitrary choice of LAPACK's.
"""
import pickle

import numpy as np
import pytest

import fasttape.numpy as fnp
from fasttape import (check_grads, grad, hessian, hvp, jacfwd, jacobian, jacrev,
                      make_jvp, make_vjp, trace)


def sample(rng, *shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def hermitian_positive(rng, n, batch=()):
    x = sample(rng, *batch, n, n)
    return x @ np.conj(np.swapaxes(x, -1, -2)) + n * np.eye(n)


def outputs_as_real(out):
    """A function's result (a value or a tuple of them, complex or real) as one real
    vector: each value's real part, and imaginary part if complex."""
    values = out if isinstance(out, tuple) else (out,)
    pieces = []
    for v in values:
        if np.iscomplexobj(getattr(v, "value", v)):
            pieces += [fnp.ravel(fnp.real(v)), fnp.ravel(fnp.imag(v))]
        else:
            pieces.append(fnp.ravel(v))
    return fnp.concatenate(pieces)


def on_parts(f):
    """f of a complex matrix as a real function of its real and imaginary parts."""
    return lambda re, im: outputs_as_real(f(re + 1j * im))


def abs_u_s_abs_vh(np_, full_matrices=False):
    def f(a):
        u, s, vh = np_.linalg.svd(a, full_matrices=full_matrices)
        return np_.abs(u), s, np_.abs(vh)
    return f


def u_times_vh(np_, full_matrices=False):
    """U Vh = sum_j u_j v_j^H (phase-free), and the singular values."""
    def f(a):
        u, s, vh = np_.linalg.svd(a, full_matrices=full_matrices)
        return u @ vh, s
    return f


def eigh_phase_free(np_, UPLO="L"):
    def f(a):
        w, v = np_.linalg.eigh(a, UPLO)
        return w, np_.abs(v)
    return f


def eig_phase_free(np_):
    def f(a):
        w, v = np_.linalg.eig(a)
        return w, np_.abs(v)
    return f


# (name, function of a NumPy-like module, shape of the complex input)
CASES = [
    ("det", lambda np_: np_.linalg.det, (3, 3)),
    ("det batched", lambda np_: np_.linalg.det, (2, 3, 3)),
    ("slogdet", lambda np_: lambda a: tuple(np_.linalg.slogdet(a)), (3, 3)),
    ("slogdet batched", lambda np_: lambda a: tuple(np_.linalg.slogdet(a)), (2, 3, 3)),
    ("inv", lambda np_: np_.linalg.inv, (3, 3)),
    ("inv batched", lambda np_: np_.linalg.inv, (2, 3, 3)),
    ("cholesky", lambda np_: lambda x: np_.linalg.cholesky(
        x @ np_.conj(np_.swapaxes(x, -1, -2)) + 3 * np.eye(3)), (3, 3)),
    ("cholesky batched", lambda np_: lambda x: np_.linalg.cholesky(
        x @ np_.conj(np_.swapaxes(x, -1, -2)) + 3 * np.eye(3)), (2, 3, 3)),
    ("eigh L", eigh_phase_free, (3, 3)),
    ("eigh U", lambda np_: eigh_phase_free(np_, "U"), (3, 3)),
    ("eigh batched", eigh_phase_free, (2, 3, 3)),
    ("eigvalsh", lambda np_: np_.linalg.eigvalsh, (3, 3)),
    ("eig", eig_phase_free, (3, 3)),
    ("eig batched", eig_phase_free, (2, 3, 3)),
    ("eigvals", lambda np_: np_.linalg.eigvals, (3, 3)),
    ("svd wide", abs_u_s_abs_vh, (2, 3)),
    ("svd tall", abs_u_s_abs_vh, (3, 2)),
    ("svd square batched", abs_u_s_abs_vh, (2, 3, 3)),
    ("svd u vh wide", u_times_vh, (2, 4)),
    ("svd u vh tall", u_times_vh, (4, 2)),
    ("svd full square", lambda np_: u_times_vh(np_, True), (3, 3)),
    ("svd values", lambda np_: lambda a: np_.linalg.svd(a, compute_uv=False),
     (2, 3, 2)),
    ("svd hermitian", lambda np_: lambda a: (lambda u, s, vh: (u @ vh, s))(
        *np_.linalg.svd(a, hermitian=True)), (3, 3)),
    ("svd values hermitian", lambda np_: lambda a: np_.linalg.svd(
        a, compute_uv=False, hermitian=True), (3, 3)),
    ("pinv tall", lambda np_: np_.linalg.pinv, (3, 2)),
    ("pinv wide batched", lambda np_: np_.linalg.pinv, (2, 2, 3)),
    ("matrix_power 3", lambda np_: lambda a: np_.linalg.matrix_power(a, 3), (3, 3)),
    ("matrix_power -2", lambda np_: lambda a: np_.linalg.matrix_power(a, -2), (3, 3)),
    ("trace", lambda np_: np_.trace, (3, 3)),
    ("cond", lambda np_: np_.linalg.cond, (3, 3)),
    ("cond fro batched", lambda np_: lambda a: np_.linalg.cond(a, "fro"), (2, 3, 3)),
    ("kron complex", lambda np_: lambda a: np_.kron(a, a[:2, 1:]), (3, 3)),
    ("kron real", lambda np_: lambda a: np_.kron(np.arange(4.0).reshape(2, 2), a),
     (2, 3)),
    ("solve", lambda np_: lambda a: np_.linalg.solve(a, a[..., :, :2] * 1j + 1.0),
     (3, 3)),
]
CASE_IDS = [c[0] for c in CASES]

NORMS = [
    ((5,), {}), ((5,), {"ord": 1}), ((5,), {"ord": 3}), ((5,), {"ord": np.inf}),
    ((5,), {"ord": -np.inf}), ((5,), {"ord": 0.5}), ((3, 2), {}),
    ((3, 2), {"ord": "fro"}), ((3, 2), {"ord": "nuc"}), ((3, 2), {"ord": 2}),
    ((3, 2), {"ord": -2}), ((3, 2), {"ord": 1}), ((3, 2), {"ord": -1}),
    ((3, 2), {"ord": np.inf}), ((4, 3, 2), {"axis": 1}),
    ((4, 3, 2), {"axis": (0, 2), "ord": "nuc"}),
    ((4, 3, 2), {"axis": (2, 0)}), ((4, 3, 2), {"axis": -1, "ord": 3,
                                                "keepdims": True}),
    ((3, 2), {"ord": 2, "axis": (0, 1), "keepdims": True}),
]
NORM_IDS = [f"{shape} {kwargs}" for shape, kwargs in NORMS]


@pytest.mark.parametrize("name, function, shape", CASES, ids=CASE_IDS)
def test_values_match_numpy(name, function, shape, rng):
    z = sample(rng, *shape)
    expected = function(np)(z)
    if name.startswith("cond"):
        # a condition number is real; NumPy < 2 gives cond(stack, "fro") of complex
        # matrices a complex dtype (zero imaginary parts), NumPy 2 a real one
        expected = np.real(expected)
    expected = outputs_as_real(expected)
    _, ours = make_vjp(lambda z: outputs_as_real(function(fnp)(z)))(z)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    # plain NumPy on ComplexArrays dispatches to the same functions
    _, dispatched = make_vjp(lambda z: outputs_as_real(function(np)(z * 1.0)))(z)
    np.testing.assert_allclose(dispatched, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, function, shape", CASES, ids=CASE_IDS)
def test_derivatives_to_second_order_in_both_modes(name, function, shape, rng):
    z = sample(rng, *shape)
    check_grads(on_parts(function(fnp)), modes=("fwd", "rev"), order=2)(z.real, z.imag)


@pytest.mark.parametrize("shape, kwargs", NORMS, ids=NORM_IDS)
def test_norms_values_and_derivatives(shape, kwargs, rng):
    z = sample(rng, *shape)
    _, ours = make_vjp(lambda z: fnp.linalg.norm(z, **kwargs))(z)
    np.testing.assert_allclose(ours, np.linalg.norm(z, **kwargs), rtol=1e-12)
    check_grads(on_parts(lambda a: fnp.linalg.norm(a, **kwargs)), modes=("fwd", "rev"),
                order=2)(z.real, z.imag)


def real_loss(np_, function, weights):
    """A real loss of every result: sum of weights * (Re, Im) of each."""
    def loss(z):
        values = function(np_)(z)
        values = values if isinstance(values, tuple) else (values,)
        total = 0.0
        for v, w in zip(values, weights):
            total = total + np_.sum(np_.real(v) * w[0]) + np_.sum(np_.imag(v) * w[1])
        return total
    return loss


# (autograd's rules are the reference where it has them: not for matrix_power, pinv of
# complex values, the gauge of a full svd, or cholesky, whose cotangent it does not
# symmetrize)
AUTOGRAD_CASES = [c for c in CASES if c[0] in {
    "det", "det batched", "slogdet", "inv", "inv batched", "eigh L", "eigh U",
    "eigh batched", "eig", "eig batched", "svd wide", "svd tall",
    "svd square batched", "svd u vh wide", "svd values", "trace", "kron complex",
    "solve"}]


def weights_for(rng, function, z):
    values = function(np)(z)
    values = values if isinstance(values, tuple) else (values,)
    return [(rng.normal(size=np.shape(v)), rng.normal(size=np.shape(v)))
            for v in values]


@pytest.mark.parametrize("name, function, shape", AUTOGRAD_CASES,
                         ids=[c[0] for c in AUTOGRAD_CASES])
def test_gradient_of_a_real_loss_matches_autograd(name, function, shape, rng):
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    z = sample(rng, *shape)
    weights = weights_for(rng, function, z)
    if name == "slogdet":       # (autograd differentiates log|det| only)
        weights[0] = (0.0 * weights[0][0], 0.0 * weights[0][1])
    ours = grad(real_loss(fnp, function, weights))(z)
    theirs = autograd.grad(real_loss(anp, function, weights))(z)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


# (not eigh and cholesky: JAX's rules take the input as Hermitian, where NumPy and
# autograd read one triangle, and fasttape's cholesky gives a Hermitian cotangent)
JAX_CASES = [c for c in CASES if c[0] in {
    "det", "slogdet", "inv", "svd wide", "svd tall",
    "pinv tall", "matrix_power -2", "kron complex", "solve"}]


@pytest.mark.parametrize("name, function, shape", JAX_CASES,
                         ids=[c[0] for c in JAX_CASES])
def test_gradient_of_a_real_loss_matches_jax(name, function, shape, rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    z = sample(rng, *shape)
    weights = weights_for(rng, function, z)
    ours = grad(real_loss(fnp, function, weights))(z)
    theirs = jax.grad(real_loss(jnp, function, weights))(z)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-8, atol=1e-10)


def solve_by_numpy2_rule(a, b):
    """The reference: NumPy 2's reading of b (one vector if 1-d, else matrices), made
    unambiguous for any NumPy by broadcasting both to the full batch first."""
    vector = b.ndim == 1
    if vector:
        b = b[:, None]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    x = np.linalg.solve(np.broadcast_to(a, batch + a.shape[-2:]),
                        np.broadcast_to(b, batch + b.shape[-2:]))
    return x[..., 0] if vector else x


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 3), (3,)), ((2, 3, 3), (3,)), ((2, 3, 3), (3, 2)), ((1, 3, 3), (4, 3, 3)),
    ((4, 1, 3, 3), (1, 2, 3, 2))])
@pytest.mark.parametrize("which", ["both complex", "a real", "b real"])
def test_solve_batches_and_broadcasts(a_shape, b_shape, which, rng):
    """NumPy 2's rule for b, the batch axes broadcast (size-1 ones too); values,
    derivatives to second order in both modes."""
    a = sample(rng, *a_shape) + 3 * np.eye(3)
    b = sample(rng, *b_shape)
    if which == "a real":
        a = a.real
    elif which == "b real":
        b = b.real
    _, value = make_vjp(lambda a: fnp.linalg.solve(a, b))(a)
    np.testing.assert_allclose(value, solve_by_numpy2_rule(a, b), rtol=1e-12)

    def parts_of(z):
        return (z.real, z.imag) if np.iscomplexobj(z) else (z,)

    def f(*parts):
        pa = parts[:len(parts_of(a))]
        pb = parts[len(parts_of(a)):]
        za = pa[0] + 1j * pa[1] if len(pa) == 2 else pa[0]
        zb = pb[0] + 1j * pb[1] if len(pb) == 2 else pb[0]
        return outputs_as_real(fnp.linalg.solve(za, zb))
    check_grads(f, modes=("fwd", "rev"), order=2)(*parts_of(a), *parts_of(b))


def test_eig_of_a_real_matrix_with_complex_eigenvalues(rng):
    """A real matrix, complex results: real gradients of real losses."""
    a = rng.normal(size=(4, 4))
    assert np.iscomplexobj(np.linalg.eigvals(a))
    loss = lambda a: fnp.sum(fnp.abs(fnp.linalg.eig(a)[0]) ** 2) + fnp.sum(  # noqa: E731
        fnp.abs(fnp.linalg.eig(a)[1]) * np.arange(16.0).reshape(4, 4))
    gradient = grad(loss)(a)
    assert gradient.dtype == np.float64
    check_grads(lambda a: outputs_as_real(eig_phase_free(fnp)(a)), modes=("fwd", "rev"),
                order=2)(a)
    check_grads(lambda a: fnp.real(fnp.sum(fnp.linalg.eigvals(a) ** 3)),
                modes=("fwd", "rev"), order=2)(a)
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    theirs = autograd.grad(lambda a: anp.sum(anp.abs(anp.linalg.eig(a)[0]) ** 2) + anp.sum(
        anp.abs(anp.linalg.eig(a)[1]) * np.arange(16.0).reshape(4, 4)))(a)
    np.testing.assert_allclose(gradient, theirs, rtol=1e-8, atol=1e-10)


def test_a_replay_of_a_real_spectrum_that_turns_complex_says_so(rng):
    a = np.diag([1.0, 2.0, 3.0])
    rotation = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    traced = trace(lambda a: fnp.sum(fnp.linalg.eigvals(a)), a)
    with pytest.raises(TypeError, match="trace it again"):
        traced.grad(rotation)


def test_complex_constants_with_real_variables(rng):
    a = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    b = sample(rng, 3, 2)
    c = sample(rng, 3, 3)
    check_grads(lambda a: outputs_as_real(fnp.linalg.solve(a, b)), modes=("fwd", "rev"),
                order=2)(a)
    check_grads(lambda b: outputs_as_real(fnp.linalg.solve(c + 3 * np.eye(3), b)),
                modes=("fwd", "rev"), order=2)(b.real)
    check_grads(lambda a: outputs_as_real(fnp.linalg.det(a + c)), modes=("fwd", "rev"),
                order=2)(a)
    check_grads(lambda a: outputs_as_real(fnp.linalg.svd(a * c, compute_uv=False)),
                modes=("fwd", "rev"), order=2)(a)


def test_svd_full_matrices_refuses_a_cotangent_on_the_extra_columns(rng):
    z = sample(rng, 4, 2)
    with pytest.raises(ValueError, match="full_matrices=False"):
        grad(lambda z: fnp.sum(fnp.abs(fnp.linalg.svd(z)[0])))(z)
    # the extra columns are not used: fine
    grad(lambda z: fnp.sum(fnp.abs(fnp.linalg.svd(z)[0][:, :2])))(z)


def test_a_decomposition_is_one_node(rng):
    """One node whatever the size, and a slice and a reshape for each of the five real
    parts of U, s and Vh."""
    import fasttape
    from fasttape import ComplexArray
    counts = []
    for n in (3, 6):
        z = sample(rng, n, n)
        tape = fasttape.Tape()
        with tape:
            parts = [fasttape._arrays.make_array_leaf(tape, p) for p in (z.real, z.imag)]
            before = tape.n_array_nodes
            fnp.linalg.svd(ComplexArray(*parts))
            counts.append(tape.n_array_nodes - before)
    assert counts[0] == counts[1] == 1 + 2 * 5


def test_a_traced_complex_determinant_replays_and_pickles(rng):
    x0, x1 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    rotation = np.exp(0.7j) * np.eye(3) + 0.2j

    def loss(x):
        z = x * rotation + 2j
        return fnp.abs(fnp.linalg.det(z)) + fnp.sum(fnp.linalg.svd(z, compute_uv=False))
    traced = trace(loss, x0)
    assert np.isclose(traced(x1), loss(x1))
    np.testing.assert_allclose(traced.grad(x1), grad(loss)(x1), rtol=1e-10)
    loaded = pickle.loads(pickle.dumps(traced))
    np.testing.assert_allclose(loaded.grad(x1), grad(loss)(x1), rtol=1e-10)


# -- the differential operators with complex arguments or outputs ----------------------

def test_jacobian_conventions(rng):
    z = sample(rng, 3)
    x = rng.normal(size=3)
    w = rng.normal(size=(2, 3))

    def real_of_complex(z):
        return fnp.abs(z * w) ** 2 + fnp.real(z)

    def complex_of_real(x):
        return fnp.exp(1j * (w @ x)) * (x[0] + 2j)

    # complex input, real output: each row is a gradient (grad's convention)
    expected = np.stack([grad(lambda z: real_of_complex(z)[i, j])(z)
                         for i in range(2) for j in range(3)]).reshape(2, 3, 3)
    for jac in (jacobian, jacfwd, jacrev):
        np.testing.assert_allclose(jac(real_of_complex)(z), expected, rtol=1e-12)
    # real input, complex output: each column is a tangent
    expected = np.stack([make_jvp(complex_of_real)(x)(e)[1] for e in np.eye(3)],
                        axis=-1)
    for jac in (jacobian, jacfwd, jacrev):
        np.testing.assert_allclose(jac(complex_of_real)(x), expected, rtol=1e-12)
    # holomorphic: f'(z)
    np.testing.assert_allclose(jacobian(fnp.sin, holomorphic=True)(z),
                               np.diag(np.cos(z)), rtol=1e-12)
    np.testing.assert_allclose(
        hessian(lambda z: fnp.sum(fnp.sin(z) * z), holomorphic=True)(z),
        np.diag(2 * np.cos(z) - z * np.sin(z)), rtol=1e-12)


def test_jacobians_match_jax(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    z = sample(rng, 3, 3)
    x = rng.normal(size=(3, 3))

    def real_of_complex(np_, z):
        return np_.abs(np_.linalg.det(z @ z)) * np_.real(np_.linalg.inv(z))

    def complex_of_real(np_, x):
        return np_.linalg.inv(x + 1j * np.eye(3))

    np.testing.assert_allclose(jacobian(lambda z: real_of_complex(fnp, z))(z),
                               jax.jacrev(lambda z: real_of_complex(jnp, z))(z),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(jacobian(lambda x: complex_of_real(fnp, x))(x),
                               jax.jacfwd(lambda x: complex_of_real(jnp, x))(x),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        jacobian(lambda z: fnp.linalg.inv(z), holomorphic=True)(z),
        jax.jacrev(lambda z: jnp.linalg.inv(z), holomorphic=True)(z), rtol=1e-9,
        atol=1e-12)
    # hvp of a real function of a complex argument along a complex direction: the
    # directional derivative of its gradient (jvp of grad)
    v = sample(rng, 3, 3)

    def loss(np_, z):
        return np_.abs(np_.linalg.det(z)) ** 2 + np_.sum(np_.abs(z) ** 3)
    ours = hvp(lambda z: loss(fnp, z))(z, v)
    theirs = jax.jvp(jax.grad(lambda z: loss(jnp, z)), (z,), (v,))[1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)


def test_complex_jacobians_that_do_not_exist_raise(rng):
    z = sample(rng, 3)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jacobian(fnp.sin)(z)
    with pytest.raises(TypeError, match="requires complex inputs"):
        jacobian(fnp.sin, holomorphic=True)(z.real)
    with pytest.raises(TypeError, match="hessian_vector_product"):
        hessian(lambda z: fnp.sum(fnp.abs(z) ** 2))(z)


def test_hvp_of_a_complex_argument_against_differences(rng):
    z = sample(rng, 3)
    v = sample(rng, 3)
    f = lambda z: fnp.sum(fnp.abs(z) ** 4) + fnp.real(fnp.prod(z))     # noqa: E731
    g = grad(f)
    h = 1e-6
    numeric = (g(z + h * v) - g(z - h * v)) / (2 * h)
    np.testing.assert_allclose(hvp(f)(z, v), numeric, rtol=1e-6, atol=1e-8)
