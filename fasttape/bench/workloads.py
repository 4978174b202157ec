"""The workloads: the functions being differentiated and the points they are taken at.

Each factory ``make_*(ops, ...)`` returns the function, written once for every library:
``ops`` is the library's namespace of elementary functions (``ops.sin``, ``ops.exp``,
``ops.log1p``, ``ops.logaddexp``; see ``libraries``) and, for array code, its array
namespace ``ops.arrays`` (``A`` below). The points come from seeded generators; the
large ones are cached, so every variant of a workload sees the same objects.

It uses no library but NumPy: the rest of fasttape.bench and the asv suite
(``asv_bench/benchmarks/common.py``) build on it.
"""
import functools
import math
import random

import numpy as np

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# -- scalar Python code ----------------------------------------------------------------

def make_textbook(ops):
    """f(x, y) = x * y + sin(x), the example of the README."""
    sin = ops.sin

    def textbook(x, y):
        return x * y + sin(x)
    return textbook


def make_rosenbrock(ops):
    """The Rosenbrock function as a Python loop over a sequence of n numbers."""
    def rosenbrock(x):
        s = 0.0
        for i in range(len(x) - 1):
            s += 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
        return s
    return rosenbrock


def make_chain(ops, n, a=1.0001):
    """x <- sin(x) * a + x * 0.5, n times: a deep chain of 4 n scalar ops.

    With a = 1.0001, x settles at 1.9 where each step multiplies the adjoint by
    0.18: it underflows to 0.0 after ~430 steps, so for n >~ 500 the gradient is
    exactly 0 and fasttape's sweep skips all but the last ~1700 nodes (zero-adjoint
    rule). With a = 0.5, x creeps to 0 where the factor is ~1: every adjoint stays
    nonzero (the gradient decays like n^-1.5) and every node is swept.
    """
    sin = ops.sin

    def chain(x):
        for _ in range(n):
            x = sin(x) * a + x * 0.5
        return x
    return chain


def make_fan(ops, m):
    """Fan-out/fan-in: m products of pairs of the few inputs, summed. Every input is
    used ~2 m / len(xs) times, so the sweep accumulates into few adjoints."""
    def fan(xs):
        k = len(xs)
        s = 0.0
        for i in range(m):
            s = s + xs[i % k] * xs[(i + 1) % k]
        return s
    return fan


def make_gmm(ops, data):
    """Log-likelihood of ``data`` under a 1-D mixture of two Gaussians.

    Parameters p = (mu1, mu2, log_sigma1, log_sigma2, a), mixture weights
    sigmoid(a) and sigmoid(-a). About 10 scalar ops per data point.
    """
    exp, log1p, logaddexp = ops.exp, ops.log1p, ops.logaddexp

    def gmm(p):
        mu1, mu2, log_s1, log_s2, a = p[0], p[1], p[2], p[3], p[4]
        c1 = -log1p(exp(-a)) - log_s1 - HALF_LOG_2PI      # log w1 - log sigma1 - ...
        c2 = -log1p(exp(a)) - log_s2 - HALF_LOG_2PI
        h1 = 0.5 * exp(-2.0 * log_s1)                       # 1 / (2 sigma1^2)
        h2 = 0.5 * exp(-2.0 * log_s2)
        total = 0.0
        for xi in data:
            d1 = xi - mu1
            d2 = xi - mu2
            total = total + logaddexp(c1 - h1 * d1 * d1, c2 - h2 * d2 * d2)
        return total
    return gmm


def uniform_point(n):
    """n floats drawn uniformly from [-1.5, 1.5], seeded by n."""
    rng = random.Random(n)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


def gmm_data(n):
    """n points drawn from the mixture 0.4 N(-1, 0.7^2) + 0.6 N(1.5, 1.2^2)."""
    rng = random.Random(12345)
    return [rng.gauss(-1.0, 0.7) if rng.random() < 0.4 else rng.gauss(1.5, 1.2)
            for _ in range(n)]


# the parameters p of make_gmm at which its gradient is taken
GMM_POINT = (-1.0, 1.5, math.log(0.7), math.log(1.2), 0.3)


# -- array code ------------------------------------------------------------------------
# Written against a library's array namespace A = ops.arrays: A.sin, A.exp, A.log,
# A.tanh, A.logaddexp, A.sum(x, axis), A.logsumexp(x, axis), and A.const(ndarray)
# turning fixed data into the library's array type (done once, when the function is
# made, not per call).

def make_rosenbrock_vec(ops):
    """Rosenbrock written with array slices: 9 array ops for any n."""
    A = ops.arrays

    def rosenbrock_vec(x):
        return A.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return rosenbrock_vec


def make_logreg(ops):
    """Logistic regression: sum(logaddexp(0, X w) - y X w), gradient w.r.t. w."""
    A = ops.arrays
    data_x, data_y, _ = logreg_data()
    X, y = A.const(data_x), A.const(data_y)

    def logreg(w):
        z = X @ w
        return A.sum(A.logaddexp(0.0, z) - y * z)
    return logreg


MLP_SIZES = (784, 256, 10)
MLP_BATCH = 256


def make_mlp(ops):
    """784-256-10 tanh MLP, mean softmax cross-entropy over a batch of 256, gradient
    w.r.t. [W1, b1, W2, b2]; the log-sum-exp is each library's (max-shifted)."""
    A = ops.arrays
    data_x, data_onehot, _ = mlp_data()
    X, Y = A.const(data_x), A.const(data_onehot)

    def mlp(params):
        W1, b1, W2, b2 = params
        h = A.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        return A.sum(A.logsumexp(logits, 1) - A.sum(Y * logits, 1)) * (1.0 / MLP_BATCH)
    return mlp


SMALL_CHAIN_STEPS = 33          # 3 array ops per step, plus the final sum: 100 ops
SMALL_CHAIN_OPS = 3 * SMALL_CHAIN_STEPS + 1


def make_small_chain(ops):
    """x = sin(x) * 1.01 + x on an array of 10, 33 times, then sum: 100 array ops,
    so the time is the per-op overhead of each library."""
    A = ops.arrays

    def small_chain(x):
        for _ in range(SMALL_CHAIN_STEPS):
            x = A.sin(x) * 1.01 + x
        return A.sum(x)
    return small_chain


GMM_K, GMM_D, GMM_N = 5, 10, 1000


def make_gmm_arrays(ops):
    """ADBench's GMM objective with diagonal precisions, vectorised (n x K x d).

    params = [alphas (K,), means (K, d), icf (K, d)]: unnormalised log-weights, means
    and log-diagonal precisions Q = exp(icf). The objective is ADBench's
    -n d/2 log(2 pi) + sum_i logsumexp_k(alpha_k + sum(icf_k)
    - |Q_k (x_i - mu_k)|^2 / 2) - n logsumexp(alpha) + Wishart prior (gamma = 1,
    m = 0: sum(Q^2) / 2).
    """
    A = ops.arrays
    data = gmm_arrays_data()[0]
    x = A.const(data[:, None, :])                    # (n, 1, d)
    n, d = data.shape
    constant = -n * d * HALF_LOG_2PI

    def gmm_objective(params):
        alphas, means, icf = params
        q = A.exp(icf)                                                   # (K, d)
        xc = x - means                                                   # (n, K, d)
        main = alphas + A.sum(icf, 1) - 0.5 * A.sum((q * xc) ** 2, 2)    # (n, K)
        return (constant + A.sum(A.logsumexp(main, 1))
                - n * A.logsumexp(alphas, 0) + 0.5 * A.sum(q * q))
    return gmm_objective


@functools.cache
def rosenbrock_vec_point(n):
    return np.random.default_rng(n).uniform(-1.5, 1.5, n)


@functools.cache
def logreg_data(n=10_000, d=100):
    """(X, y, w0): features, labels in {0, 1} drawn from a logistic model, and the
    point at which the gradient is taken."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) / math.sqrt(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y, 0.1 * rng.standard_normal(d)


@functools.cache
def mlp_data():
    """(X, one-hot labels, [W1, b1, W2, b2]) for the MLP workload."""
    rng = np.random.default_rng(2)
    n_in, n_hidden, n_out = MLP_SIZES
    X = rng.standard_normal((MLP_BATCH, n_in))
    onehot = np.eye(n_out)[rng.integers(0, n_out, MLP_BATCH)]
    params = [rng.standard_normal((n_in, n_hidden)) / math.sqrt(n_in),
              0.1 * rng.standard_normal(n_hidden),
              rng.standard_normal((n_hidden, n_out)) / math.sqrt(n_hidden),
              0.1 * rng.standard_normal(n_out)]
    return X, onehot, params


@functools.cache
def gmm_arrays_data():
    """(points (n, d), [alphas, means, icf]) for the vectorised GMM workload."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((GMM_K, GMM_D)) * 3.0
    labels = rng.integers(0, GMM_K, GMM_N)
    points = centres[labels] + rng.standard_normal((GMM_N, GMM_D))
    params = [rng.standard_normal(GMM_K), rng.standard_normal((GMM_K, GMM_D)),
              0.1 * rng.standard_normal((GMM_K, GMM_D))]
    return points, params


# -- second order ----------------------------------------------------------------------

def make_rosenbrock_pairs(ops):
    """Extended Rosenbrock as a Python loop: sum over the pairs (x[2i], x[2i+1]) of
    100 (x[2i+1] - x[2i]^2)^2 + (1 - x[2i])^2; its Hessian is block-diagonal."""
    def rosenbrock_pairs(x):
        s = 0.0
        for i in range(len(x) // 2):
            a, b = x[2 * i], x[2 * i + 1]
            s = s + 100 * (b - a ** 2) ** 2 + (1 - a) ** 2
        return s
    return rosenbrock_pairs


@functools.cache
def second_order_point(n=100):
    """(x, v): the point and the direction of the Hessian-vector product."""
    rng = random.Random(7)
    return ([rng.uniform(-1.5, 1.5) for _ in range(n)],
            [rng.uniform(-1.0, 1.0) for _ in range(n)])


# -- replay: one function traced once, its gradient at many points ---------------------

REPLAY_N, REPLAY_POINTS = 1000, 100


@functools.cache
def replay_points(n=REPLAY_N, m=REPLAY_POINTS):
    """m points of n floats (lists) at which the traced gradient is evaluated."""
    rng = random.Random(11)
    return tuple([rng.uniform(-1.5, 1.5) for _ in range(n)] for _ in range(m))


REPLAY_VEC_N, REPLAY_VEC_POINTS = 10_000, 32


@functools.cache
def replay_vec_points(n=REPLAY_VEC_N, m=REPLAY_VEC_POINTS):
    """m points (arrays of n) for the replay of array code."""
    rng = np.random.default_rng(12)
    return tuple(rng.uniform(-1.5, 1.5, n) for _ in range(m))


# -- small calls: functions of a few numbers, called many times ------------------------

def make_ba_residual(ops):
    """One observation's residual in bundle adjustment, 17 numbers to 3: rotate a
    3-D point by an angle-axis rotation (Rodrigues), translate, project with a focal
    length, a principal point and two radial distortion terms; the residuals are the
    projection minus the observed 2-D point, and the depth minus an observed depth."""
    sin, cos, sqrt = ops.sin, ops.cos, ops.sqrt

    def ba_residual(z):
        r0, r1, r2, t0, t1, t2, f, k1, k2, cx, cy, x0, x1, x2, u, v, d = z
        theta = sqrt(r0 * r0 + r1 * r1 + r2 * r2)
        c, s = cos(theta), sin(theta)
        w0, w1, w2 = r0 / theta, r1 / theta, r2 / theta
        k = (1.0 - c) * (w0 * x0 + w1 * x1 + w2 * x2)
        p0 = x0 * c + (w1 * x2 - w2 * x1) * s + w0 * k + t0
        p1 = x1 * c + (w2 * x0 - w0 * x2) * s + w1 * k + t1
        p2 = x2 * c + (w0 * x1 - w1 * x0) * s + w2 * k + t2
        xn, yn = p0 / p2, p1 / p2
        rr = xn * xn + yn * yn
        distortion = 1.0 + rr * (k1 + k2 * rr)
        return [f * distortion * xn + cx - u, f * distortion * yn + cy - v, p2 - d]
    return ba_residual


def make_ba_cost(ops):
    """Half the squared norm of the bundle-adjustment residual (one number)."""
    residual = make_ba_residual(ops)

    def ba_cost(z):
        a, b, c = residual(z)
        return 0.5 * (a * a + b * b + c * c)
    return ba_cost


def ba_points(m=1000, seed=11):
    """m observations' 17 numbers (camera, point, observation), near a plausible
    configuration (the point in front of the camera)."""
    rng = np.random.default_rng(seed)
    base = np.array([0.1, -0.2, 0.05, 0.3, -0.1, 4.0, 500.0, 0.01, -0.002, 320.0,
                     240.0, 0.5, -0.4, 1.0, 360.0, 200.0, 5.0])
    scale = np.array([0.05] * 3 + [0.1] * 3 + [10.0, 0.001, 0.0005, 1.0, 1.0]
                     + [0.2] * 3 + [5.0, 5.0, 0.1])
    return [list(map(float, base + scale * rng.standard_normal(17))) for _ in range(m)]


LORENZ96_N = 12


def make_lorenz96(ops, n=LORENZ96_N):
    """The right-hand side of the Lorenz-96 system with n states (forcing 8), a list
    of n numbers to n: dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + 8."""
    def lorenz96(x):
        return [(x[(i + 1) % n] - x[i - 2]) * x[i - 1] - x[i] + 8.0 for i in range(n)]
    return lorenz96


def lorenz96_points(m=1000, n=LORENZ96_N, seed=12):
    rng = np.random.default_rng(seed)
    return [list(map(float, 8.0 + rng.standard_normal(n))) for _ in range(m)]


# -- a derivative inside a derivative ----------------------------------------------------

NESTED_PARTICLES = 50


def make_nested_forces(ops, by_hand=False):
    """The sum over neighbouring particles (on a line) of the squared force between
    them, the force the derivative of a Lennard-Jones pair potential: taken by the
    library's own ``grad`` (a derivative inside the derivative), or, by_hand (and for
    libraries without ``grad``: plain floats), written out as one expression."""
    def potential(r):
        return 4.0 * (r ** -12 - r ** -6)

    def force_by_hand(r):
        return 4.0 * (6.0 * r ** -7 - 12.0 * r ** -13)
    grad = getattr(ops.module, "grad", None)
    force = force_by_hand if by_hand or grad is None else grad(potential)

    def squared_forces(xs):
        s = 0.0
        for i in range(len(xs) - 1):
            f = force(xs[i + 1] - xs[i])
            s = s + f * f
        return s
    return squared_forces


def nested_point(n=NESTED_PARTICLES):
    return [1.1 * i + 0.01 * math.sin(i) for i in range(n)]
