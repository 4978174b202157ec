"""Side-by-side benchmarks: fasttape and the installed peers on the same workloads.

Run ``python -m fasttape.bench`` (``--help`` for the options). Four groups of
workloads, each with its own table:

- scalar Python code (textbook, Rosenbrock loop, chains, 1-D mixture): the plain-float
  function (the baseline), fasttape's whole ``grad`` call, its recording and its
  reverse sweep alone, autograd, PyTorch (eager, float64), JAX (eager and ``jit``)
  and micrograd;
- arrays (vectorised Rosenbrock, logistic regression, an MLP, 100 ops on arrays of
  10, ADBench's GMM objective): f on NumPy arrays (the baseline), fasttape.numpy
  (grad, record, sweep), autograd, PyTorch, mygrad, JAX eager and ``jax.jit``;
- second order (a Hessian and a Hessian-vector product of a scalar loop): fasttape
  on a list of floats, on an ndarray, and traced; autograd, PyTorch, JAX eager and
  ``jit``;
- replay (``fasttape.trace`` once, gradients at 100 points of a loop, at 32 points of
  vectorised code): the trace, replayed calls and gradients, ``grad_many`` on 1 and 2
  threads, ``jax.jit`` and CasADi.

Missing peers are skipped. Before timing, each peer's derivative is compared with
fasttape's (``np.allclose``, rtol 1e-6 unless the workload says otherwise); a
disagreement is marked MISMATCH in the table. It then prints the four Foundation
figures (grad/f ratio, textbook call latency, sweep time per node, tape bytes per
node) and the memory per recorded op of each library, measured in fresh subprocesses.

Timing is time-boxed: each cell runs one untimed call (whose result is checked),
then repeats of ``number`` calls (``number`` chosen so a repeat lasts >= 10 ms)
until ``--budget`` seconds have passed and at least three repeats are done. The
table gives the median and the minimum over repeats of the time per call (per point
for the replay workload, per op too for the small-array chain). One-off costs (JIT
compilation) are timed apart. The garbage collector stays on (it is part of the cost
of graph-building libraries) and is run before each cell. Ratios in the table come
from the same run. Every library runs on one thread (``SINGLE_THREAD_ENV``; the
module re-executes itself with them set when run as ``python -m fasttape.bench``).

Adding a workload: write a factory ``make(ops) -> f`` (``ops`` is the library's
namespace of elementary functions: sin, exp, ..., and ``ops.arrays`` for array code)
and add a ``Workload`` row to ``WORKLOADS`` with its arguments and its setups, a
mapping from variant name to a ``Variant`` whose ``setup(ops, f, args) -> Case``
prepares the timed call. Scalar Python code uses ``SCALAR_SETUPS``; array, second-
order and replay workloads use ``ARRAY_SETUPS``, ``HESSIAN_SETUPS``/``HVP_SETUPS`` and
``REPLAY_SETUPS``. asv (``asv_bench/``) times the same setups through
``common.bench_case``.
"""
import argparse
import datetime
import functools
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import textwrap
import time
import types
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np

import fasttape as ft

# --------------------------------------------------------------------------------------
# Workload functions. Each factory takes a library's elementary-function namespace
# (``ops``) and returns the function to differentiate, written once for all libraries.
# --------------------------------------------------------------------------------------

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


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


def rosenbrock_point(n):
    rng = random.Random(n)
    return [rng.uniform(-1.5, 1.5) for _ in range(n)]


def gmm_data(n):
    rng = random.Random(12345)
    return [rng.gauss(-1.0, 0.7) if rng.random() < 0.4 else rng.gauss(1.5, 1.2)
            for _ in range(n)]


# Array workloads, written once against a library's array namespace ``ops.arrays``
# (A): A.sin, A.exp, A.log, A.tanh, A.logaddexp, A.sum(x, axis), A.logsumexp(x, axis),
# and A.const(ndarray) turning fixed data into the library's array type (done once,
# when the function is made, not per call).

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


@functools.lru_cache(maxsize=None)
def rosenbrock_vec_point(n):
    return np.random.default_rng(n).uniform(-1.5, 1.5, n)


@functools.lru_cache(maxsize=None)
def logreg_data(n=10_000, d=100):
    """(X, y, w0): features, labels in {0, 1} drawn from a logistic model, and the
    point at which the gradient is taken."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) / math.sqrt(d)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y, 0.1 * rng.standard_normal(d)


@functools.lru_cache(maxsize=None)
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


@functools.lru_cache(maxsize=None)
def gmm_arrays_data():
    """(points (n, d), [alphas, means, icf]) for the vectorised GMM workload."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((GMM_K, GMM_D)) * 3.0
    labels = rng.integers(0, GMM_K, GMM_N)
    points = centres[labels] + rng.standard_normal((GMM_N, GMM_D))
    params = [rng.standard_normal(GMM_K), rng.standard_normal((GMM_K, GMM_D)),
              0.1 * rng.standard_normal((GMM_K, GMM_D))]
    return points, params


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


@functools.lru_cache(maxsize=None)
def second_order_point(n=100):
    """(x, v): the point and the direction of the Hessian-vector product."""
    rng = random.Random(7)
    return ([rng.uniform(-1.5, 1.5) for _ in range(n)],
            [rng.uniform(-1.0, 1.0) for _ in range(n)])


REPLAY_N, REPLAY_POINTS = 1000, 100


@functools.lru_cache(maxsize=None)
def replay_points(n=REPLAY_N, m=REPLAY_POINTS):
    """m points of n floats (lists) at which the traced gradient is evaluated."""
    rng = random.Random(11)
    return tuple([rng.uniform(-1.5, 1.5) for _ in range(n)] for _ in range(m))


REPLAY_VEC_N, REPLAY_VEC_POINTS = 10_000, 32


@functools.lru_cache(maxsize=None)
def replay_vec_points(n=REPLAY_VEC_N, m=REPLAY_VEC_POINTS):
    """m points (arrays of n) for the replay of array code."""
    rng = np.random.default_rng(12)
    return tuple(rng.uniform(-1.5, 1.5, n) for _ in range(m))


# --------------------------------------------------------------------------------------
# Libraries: each loader imports lazily and returns an ``ops`` namespace; a missing
# library raises ImportError and its variants are skipped.
# --------------------------------------------------------------------------------------

def _python_logaddexp(a, b):
    m = a if a > b else b
    return m + math.log1p(math.exp(-abs(a - b)))


def _arrays_namespace(module, **overrides):
    """An array namespace (see make_rosenbrock_vec) from a NumPy-like module."""
    names = dict(sin=module.sin, exp=module.exp, log=module.log, tanh=module.tanh,
                 logaddexp=module.logaddexp, sum=module.sum, const=np.asarray)
    names.update(overrides)
    return types.SimpleNamespace(**names)


def load_python():
    import scipy.special
    return types.SimpleNamespace(sin=math.sin, exp=math.exp, log1p=math.log1p,
                                 logaddexp=_python_logaddexp, module=math,
                                 arrays=_arrays_namespace(
                                     np, logsumexp=scipy.special.logsumexp))


def load_fasttape():
    import fasttape.numpy as fnp
    import fasttape.scipy.special
    return types.SimpleNamespace(sin=ft.sin, exp=ft.exp, log1p=ft.log1p,
                                 logaddexp=ft.logaddexp, module=ft,
                                 arrays=_arrays_namespace(
                                     fnp, logsumexp=fasttape.scipy.special.logsumexp))


def load_autograd():
    import autograd
    import autograd.numpy as anp
    import autograd.scipy.special
    return types.SimpleNamespace(sin=anp.sin, exp=anp.exp, log1p=anp.log1p,
                                 logaddexp=anp.logaddexp, module=autograd,
                                 arrays=_arrays_namespace(
                                     anp, logsumexp=autograd.scipy.special.logsumexp))


def load_torch():
    import torch
    torch.set_num_threads(1)
    f64 = torch.float64

    def logaddexp(a, b):
        return torch.logaddexp(torch.as_tensor(a, dtype=f64),
                               torch.as_tensor(b, dtype=f64))
    arrays = _arrays_namespace(
        torch, logaddexp=logaddexp,
        sum=lambda x, axis=None: x.sum() if axis is None else x.sum(dim=axis),
        logsumexp=lambda x, axis: torch.logsumexp(x, dim=axis),
        const=lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)))
    return types.SimpleNamespace(sin=torch.sin, exp=torch.exp, log1p=torch.log1p,
                                 logaddexp=torch.logaddexp, module=torch,
                                 arrays=arrays)


def load_jax():
    import jax
    jax.config.update("jax_enable_x64", True)    # float64, as every other column
    import jax.numpy as jnp
    import jax.scipy.special
    return types.SimpleNamespace(sin=jnp.sin, exp=jnp.exp, log1p=jnp.log1p,
                                 logaddexp=jnp.logaddexp, module=jax,
                                 arrays=_arrays_namespace(
                                     jnp, logsumexp=jax.scipy.special.logsumexp,
                                     const=jnp.asarray))


def load_mygrad():
    import mygrad as mg

    def logsumexp(x, axis):
        # mygrad has no logsumexp: shift by the maximum, held constant
        shift = np.max(mg.asarray(x), axis=axis, keepdims=True)
        return mg.log(mg.sum(mg.exp(x - shift), axis=axis)) + np.squeeze(shift, axis)
    return types.SimpleNamespace(module=mg, arrays=_arrays_namespace(
        mg, logsumexp=logsumexp))


def load_casadi():
    import casadi
    return types.SimpleNamespace(sin=casadi.sin, exp=casadi.exp, log1p=casadi.log1p,
                                 module=casadi)


def load_micrograd():
    from micrograd.engine import Value
    # micrograd's backward() sorts the graph with a recursive DFS: deep graphs (a
    # 1000-term loop is ~10^4 levels) need a higher limit. Python >= 3.11 runs
    # Python-to-Python recursion without growing the C stack.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1_000_000))
    return types.SimpleNamespace(sin=_mg_sin, exp=_mg_exp, log1p=_mg_log1p,
                                 logaddexp=_mg_logaddexp, module=Value)


# micrograd ships only +, *, ** and relu; the elementary functions the workloads need
# are added the way its own ops are written (a new Value and a _backward closure).

def _mg_sin(x):
    from micrograd.engine import Value
    out = Value(math.sin(x.data), (x,), "sin")

    def _backward():
        x.grad += math.cos(x.data) * out.grad
    out._backward = _backward
    return out


def _mg_exp(x):
    from micrograd.engine import Value
    out = Value(math.exp(x.data), (x,), "exp")

    def _backward():
        x.grad += out.data * out.grad
    out._backward = _backward
    return out


def _mg_log1p(x):
    from micrograd.engine import Value
    out = Value(math.log1p(x.data), (x,), "log1p")

    def _backward():
        x.grad += out.grad / (1.0 + x.data)
    out._backward = _backward
    return out


def _mg_logaddexp(a, b):
    from micrograd.engine import Value
    out = Value(_python_logaddexp(a.data, b.data), (a, b), "logaddexp")

    def _backward():
        a.grad += math.exp(a.data - out.data) * out.grad
        b.grad += math.exp(b.data - out.data) * out.grad
    out._backward = _backward
    return out


LIBRARIES = {
    "python": load_python,
    "fasttape": load_fasttape,
    "autograd": load_autograd,
    "torch": load_torch,
    "jax": load_jax,
    "micrograd": load_micrograd,
    "mygrad": load_mygrad,
    "casadi": load_casadi,
}

_loaded = {}


def load(library):
    """The ops namespace of ``library``; ImportError (remembered) if not installed."""
    if library not in _loaded:
        try:
            _loaded[library] = LIBRARIES[library]()
        except ImportError as e:
            _loaded[library] = e
    ops = _loaded[library]
    if isinstance(ops, ImportError):
        raise ops
    return ops


def library_version(library):
    try:
        ops = load(library)
    except ImportError:
        return None
    if library == "python":
        return platform.python_version()
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(library)
    except PackageNotFoundError:
        return getattr(ops.module, "__version__", "?")


# --------------------------------------------------------------------------------------
# Setups: how each variant differentiates a workload function f at args. A setup
# returns a Case whose ``call`` is what gets timed; ``gradient`` turns a call's result
# into a flat float64 array for the agreement check (None: nothing to check).
# --------------------------------------------------------------------------------------

class NotApplicable(Exception):
    """This variant does not apply to this workload (the row is left out)."""


@dataclass
class Case:
    call: Callable[[], object]
    gradient: Optional[Callable[[object], np.ndarray]] = None
    compile_s: Optional[float] = None      # one-off compilation, timed separately
    n_nodes: Optional[int] = None          # fasttape nodes recorded by one call
    note: str = ""
    per: int = 1                           # items (points) per call: times are per item


def flat_floats(tree):
    """Flatten nested tuples/lists of numbers into a float64 array."""
    out = []

    def walk(t):
        if isinstance(t, (list, tuple)):
            for u in t:
                walk(u)
        elif isinstance(t, np.ndarray):
            out.extend(t.astype(np.float64).ravel().tolist())
        else:
            out.append(float(t))
    walk(tree)
    return np.asarray(out, dtype=np.float64)


def map_leaves(args, leaf):
    """args with every number replaced by leaf(number), keeping list structure, and
    the new leaves in order."""
    leaves = []

    def convert(a):
        if isinstance(a, list):
            return [convert(v) for v in a]
        v = leaf(a)
        leaves.append(v)
        return v
    return tuple(convert(a) for a in args), leaves


def _argnum(args):
    return 0 if len(args) == 1 else tuple(range(len(args)))


def setup_python(ops, f, args):
    return Case(call=lambda: f(*args))


def setup_fasttape(ops, f, args):
    g = ft.grad(f, argnum=_argnum(args))
    return Case(call=lambda: g(*args), gradient=flat_floats)


def recorder(tape, f, args):
    """A function of no arguments that records f(*args) on ``tape`` from a clean
    state and returns (output, leaves), the way users record:
    ``with tape: xs = [Variable(v) for v in x]; y = f(xs)``.

    The common argument shapes get a closure without per-call bookkeeping, so that
    the time measured is fasttape's, not this helper's.
    """
    Variable = ft.Variable
    reset = tape.reset
    if len(args) == 1 and isinstance(args[0], list):
        x = args[0]

        def record():
            reset()
            with tape:
                xs = [Variable(v) for v in x]
                return f(xs), xs
    elif len(args) == 1:
        a = args[0]

        def record():
            reset()
            with tape:
                x = Variable(a)
                return f(x), [x]
    elif len(args) == 2 and not any(isinstance(a, list) for a in args):
        a, b = args

        def record():
            reset()
            with tape:
                x = Variable(a)
                y = Variable(b)
                return f(x, y), [x, y]
    else:
        def record():
            reset()
            with tape:
                vargs, leaves = map_leaves(args, Variable)
                return f(*vargs), leaves
    return record


def setup_fasttape_record(ops, f, args):
    tape = ft.Tape()
    record = recorder(tape, f, args)
    record()
    return Case(call=record, n_nodes=tape.n_nodes)


def setup_fasttape_sweep(ops, f, args):
    tape = ft.Tape()
    y, leaves = recorder(tape, f, args)()
    y.backward()

    def gradient(_):
        return np.array([v.grad for v in leaves])
    return Case(call=y.backward, gradient=gradient, n_nodes=tape.n_nodes)


def _has_list(args):
    return any(isinstance(a, list) for a in args)


def _autograd_setup(to_input):
    def setup(ops, f, args):
        autograd = ops.module
        if len(args) == 1:
            g = autograd.grad(f)
            x = args[0]
            return Case(call=lambda: g(to_input(x)), gradient=flat_floats)
        # several arguments: autograd.grad takes one argnum; differentiate a tuple
        g = autograd.grad(lambda t: f(*t))
        return Case(call=lambda: g(tuple(to_input(a) for a in args)),
                    gradient=flat_floats)
    return setup


def _as_ndarray(a):
    return np.array(a) if isinstance(a, list) else a


_setup_autograd_ndarray = _autograd_setup(_as_ndarray)
_setup_autograd_list_inner = _autograd_setup(lambda a: list(a) if isinstance(a, list)
                                             else a)


def setup_autograd_ndarray(ops, f, args):
    return _setup_autograd_ndarray(ops, f, args)


def setup_autograd_list(ops, f, args):
    if not _has_list(args):
        raise NotApplicable("no list argument")
    return _setup_autograd_list_inner(ops, f, args)


def setup_torch(ops, f, args):
    torch = ops.module
    f64 = torch.float64

    def call():
        targs, leaves = map_leaves(
            args, lambda v: torch.tensor(v, dtype=f64, requires_grad=True))
        f(*targs).backward()
        return [leaf.grad for leaf in leaves]
    return Case(call=call, gradient=lambda r: np.array([t.item() for t in r]))


def _jax_gradient(result):
    import jax
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64))
                           for v in jax.tree_util.tree_leaves(result)])


def setup_jax(ops, f, args):
    jax = ops.module
    g = jax.grad(f, argnums=_argnum(args))
    # Python lists of floats in, as for fasttape; indexing a jnp array inside an eager
    # Python loop is ~9x slower still (Rosenbrock n=1000: 44 s vs 5 s a call).
    return Case(call=lambda: jax.block_until_ready(g(*args)), gradient=_jax_gradient,
                note="jax.grad, no jit; list inputs")


def setup_jax_jit(ops, f, args):
    jax = ops.module
    import jax.numpy as jnp
    g = jax.jit(jax.grad(f, argnums=_argnum(args)))
    jargs = tuple(jnp.asarray(a) if isinstance(a, list) else a for a in args)
    t0 = time.perf_counter()
    compiled = g.lower(*jargs).compile()      # trace + lower + XLA compile
    compile_s = time.perf_counter() - t0
    return Case(call=lambda: jax.block_until_ready(compiled(*jargs)),
                gradient=_jax_gradient, compile_s=compile_s,
                note="jax.jit(jax.grad(f)) on jnp arrays; loop unrolled by tracing")


def setup_micrograd(ops, f, args):
    Value = ops.module

    def call():
        vargs, leaves = map_leaves(args, Value)
        f(*vargs).backward()
        return [leaf.grad for leaf in leaves]
    return Case(call=call, gradient=flat_floats)


# -- array workloads: one argument, an array or a list of arrays -------------------

def _tree_map(fn, tree):
    """fn applied to every array of nested lists/tuples of arrays."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_map(fn, t) for t in tree)
    return fn(tree)


def array_recorder(tape, f, args):
    """The array twin of ``recorder``: records f(*args) on ``tape``, each array argument
    a leaf, and returns (output, leaves)."""
    from fasttape._arrays import make_array_leaf
    reset = tape.reset

    def record():
        reset()
        with tape:
            leaves = []

            def leaf(a):
                v = make_array_leaf(tape, a)
                leaves.append(v)
                return v
            return f(*_tree_map(leaf, args)), leaves
    return record


def setup_fasttape_array_record(ops, f, args):
    tape = ft.Tape()
    record = array_recorder(tape, f, args)
    record()
    return Case(call=record, n_nodes=tape.n_nodes,
                note=f"{tape.n_array_nodes} array nodes")


def setup_fasttape_array_sweep(ops, f, args):
    tape = ft.Tape()
    y, leaves = array_recorder(tape, f, args)()
    y.backward()
    return Case(call=y.backward,
                gradient=lambda _: flat_floats([v.grad for v in leaves]),
                n_nodes=tape.n_nodes)


def setup_autograd_arrays(ops, f, args):
    g = ops.module.grad(f)
    return Case(call=lambda: g(*args), gradient=flat_floats)


def setup_torch_arrays(ops, f, args):
    torch = ops.module

    def call():
        leaves = []

        def leaf(a):
            t = torch.from_numpy(a).requires_grad_(True)
            leaves.append(t)
            return t
        f(*_tree_map(leaf, args)).backward()
        return [t.grad.numpy() for t in leaves]
    return Case(call=call, gradient=flat_floats)


def setup_mygrad(ops, f, args):
    mg = ops.module

    def call():
        leaves = []

        def leaf(a):
            t = mg.tensor(a)
            leaves.append(t)
            return t
        f(*_tree_map(leaf, args)).backward()
        return [t.grad for t in leaves]
    return Case(call=call, gradient=flat_floats)


def _jax_arrays(args):
    """args with every array, and every list of floats, a jnp array."""
    import jax.numpy as jnp
    if isinstance(args, list) and args and not isinstance(args[0], (list, np.ndarray)):
        return jnp.asarray(args)
    if isinstance(args, (list, tuple)):
        return type(args)(_jax_arrays(a) for a in args)
    return jnp.asarray(args)


def setup_jax_arrays(ops, f, args):
    jax = ops.module
    g = jax.grad(f)
    jargs = _jax_arrays(args)
    return Case(call=lambda: jax.block_until_ready(g(*jargs)), gradient=_jax_gradient)


def _jax_compile(jitted, jargs):
    """(compiled function, seconds spent tracing, lowering and compiling)."""
    t0 = time.perf_counter()
    compiled = jitted.lower(*jargs).compile()
    return compiled, time.perf_counter() - t0


def setup_jax_jit_arrays(ops, f, args):
    jax = ops.module
    jargs = _jax_arrays(args)
    compiled, compile_s = _jax_compile(jax.jit(jax.grad(f)), jargs)
    return Case(call=lambda: jax.block_until_ready(compiled(*jargs)),
                gradient=_jax_gradient, compile_s=compile_s)


# -- second order: f a Python loop over a list x of floats; args = (x,) or (x, v) ---

def _hessian_gradient(result):
    return np.asarray(result, dtype=np.float64).ravel()


def setup_python_second(ops, f, args):
    x = args[0]
    return Case(call=lambda: f(x))


def setup_fasttape_hessian(ops, f, args):
    h = ft.hessian(f)
    x = args[0]
    return Case(call=lambda: h(x), gradient=_hessian_gradient)


def setup_fasttape_hessian_ndarray(ops, f, args):
    h = ft.hessian(f)
    x = np.array(args[0])
    return Case(call=lambda: h(x), gradient=_hessian_gradient)


def setup_fasttape_hessian_traced(ops, f, args):
    x = args[0]
    g = ft.trace(f, x)
    return Case(call=lambda: g.hessian(x), gradient=_hessian_gradient,
                n_nodes=g.n_nodes)


def setup_autograd_hessian(ops, f, args):
    h = ops.module.hessian(f)
    x = np.array(args[0])
    return Case(call=lambda: h(x), gradient=_hessian_gradient)


def setup_torch_hessian(ops, f, args):
    torch = ops.module
    x = torch.tensor(args[0], dtype=torch.float64)
    hessian = torch.autograd.functional.hessian
    return Case(call=lambda: hessian(f, x).numpy(), gradient=_hessian_gradient)


def _jax_unstacked(f):
    """f taking a jnp array, unpacked into a list of scalars by one op (jnp.unstack).
    Indexing x[i] in the loop instead makes XLA compile for minutes: 223 s for the
    Hessian of the 100-variable loop (1.4 s unstacked), 22 s for the gradient of the
    1000-variable Rosenbrock (14 s unstacked, and 6x slower per call)."""
    import jax.numpy as jnp

    def f_unstacked(x):
        return f(list(jnp.unstack(x)))
    return f_unstacked


def setup_jax_hessian(ops, f, args):
    jax = ops.module
    h = jax.hessian(_jax_unstacked(f))
    x = _jax_arrays(args[0])
    return Case(call=lambda: jax.block_until_ready(h(x)), gradient=_jax_gradient)


def setup_jax_jit_hessian(ops, f, args):
    jax = ops.module
    x = _jax_arrays(args[0])
    compiled, compile_s = _jax_compile(jax.jit(jax.hessian(_jax_unstacked(f))), (x,))
    return Case(call=lambda: jax.block_until_ready(compiled(x)),
                gradient=_jax_gradient, compile_s=compile_s)


def setup_fasttape_hvp(ops, f, args):
    hvp = ft.hvp(f)
    x, v = args
    return Case(call=lambda: hvp(x, v), gradient=flat_floats)


def setup_fasttape_hvp_ndarray(ops, f, args):
    hvp = ft.hvp(f)
    x, v = (np.array(a) for a in args)
    return Case(call=lambda: hvp(x, v), gradient=flat_floats)


def setup_fasttape_hvp_traced(ops, f, args):
    x, v = args
    g = ft.trace(f, x)
    return Case(call=lambda: g.hvp((x,), v), gradient=flat_floats, n_nodes=g.n_nodes)


def setup_fasttape_hvp_sweep(ops, f, args):
    """The forward-over-reverse sweep alone, on a tape recorded once."""
    x, v = args
    tape = ft.Tape()
    y, leaves = recorder(tape, f, (x,))()
    slots = [leaf.slot for leaf in leaves]
    node = y.node
    sweep = tape.hessian_vector_c
    return Case(call=lambda: sweep(node, slots, v)[1], gradient=flat_floats,
                n_nodes=tape.n_nodes)


def setup_fasttape_hvp_record(ops, f, args):
    return setup_fasttape_record(ops, f, args[:1])


def setup_autograd_hvp(ops, f, args):
    autograd = ops.module
    import autograd.numpy as anp
    x, v = (np.array(a) for a in args)
    grad_f = autograd.grad(f)
    hvp = autograd.grad(lambda x: anp.dot(grad_f(x), v))
    return Case(call=lambda: hvp(x), gradient=flat_floats)


def setup_torch_hvp(ops, f, args):
    torch = ops.module
    x, v = (torch.tensor(a, dtype=torch.float64) for a in args)
    hvp = torch.autograd.functional.hvp
    return Case(call=lambda: hvp(f, x, v)[1].numpy(), gradient=flat_floats)


def _jax_hvp(jax, f):
    grad_f = jax.grad(f)

    def hvp(x, v):                      # forward over reverse
        return jax.jvp(grad_f, (x,), (v,))[1]
    return hvp


def setup_jax_hvp(ops, f, args):
    jax = ops.module
    x, v = _jax_arrays(args)
    hvp = _jax_hvp(jax, _jax_unstacked(f))
    return Case(call=lambda: jax.block_until_ready(hvp(x, v)), gradient=_jax_gradient)


def setup_jax_jit_hvp(ops, f, args):
    jax = ops.module
    x, v = _jax_arrays(args)
    compiled, compile_s = _jax_compile(jax.jit(_jax_hvp(jax, _jax_unstacked(f))),
                                       (x, v))
    return Case(call=lambda: jax.block_until_ready(compiled(x, v)),
                gradient=_jax_gradient, compile_s=compile_s)


# -- replay: args = (points,), a tuple of lists of floats; times are per point ------

def setup_python_points(ops, f, args):
    points = args[0]

    def call():
        for p in points:
            f(p)
    return Case(call=call, per=len(points))


def setup_fasttape_points(ops, f, args):
    points = args[0]
    g = ft.grad(f)
    return Case(call=lambda: [g(p) for p in points], gradient=flat_floats,
                per=len(points))


def setup_fasttape_trace(ops, f, args):
    p = args[0][0]
    g = ft.trace(f, p)
    return Case(call=lambda: ft.trace(f, p), n_nodes=g.n_nodes)


def setup_traced_call(ops, f, args):
    points = args[0]
    g = ft.trace(f, points[0])

    def call():
        for p in points:
            g(p)
    return Case(call=call, per=len(points))


def setup_traced_grad(ops, f, args):
    points = args[0]
    g = ft.trace(f, points[0])
    grad = g.grad
    return Case(call=lambda: [grad(p) for p in points], gradient=flat_floats,
                per=len(points))


def _setup_grad_many(n_threads):
    def setup(ops, f, args):
        points = args[0]
        g = ft.trace(f, points[0])
        matrix = np.array(points)
        return Case(call=lambda: g.grad_many(matrix, n_threads=n_threads),
                    gradient=flat_floats, per=len(points))
    return setup


def _setup_jax_jit_points(unstack):
    def setup(ops, f, args):
        jax = ops.module
        points = [_jax_arrays(p) for p in args[0]]
        fun = _jax_unstacked(f) if unstack else f
        compiled, compile_s = _jax_compile(jax.jit(jax.grad(fun)), (points[0],))

        def call():
            return [jax.block_until_ready(compiled(p)) for p in points]
        return Case(call=call, gradient=_jax_gradient, compile_s=compile_s,
                    per=len(points))
    return setup


def casadi_gradient_function(ops, f, n):
    """f on n casadi SX symbols, and the casadi.Function of its gradient."""
    casadi = ops.module
    x = casadi.SX.sym("x", n)
    y = f([x[i] for i in range(n)])
    return casadi.Function("grad_f", [x], [casadi.gradient(y, x)])


def setup_casadi_build(ops, f, args):
    n = len(args[0][0])
    return Case(call=lambda: casadi_gradient_function(ops, f, n))


def setup_casadi_points(ops, f, args):
    points = [np.array(p) for p in args[0]]
    grad_f = casadi_gradient_function(ops, f, len(points[0]))
    return Case(call=lambda: [grad_f(p).full() for p in points], gradient=flat_floats,
                per=len(points))


def _setup_casadi_map(n_threads):
    def setup(ops, f, args):
        matrix = np.array(args[0]).T                    # one column per point
        grad_f = casadi_gradient_function(ops, f, matrix.shape[0])
        mapped = grad_f.map(matrix.shape[1], *(("thread", n_threads) if n_threads > 1
                                               else ("serial",)))
        return Case(call=lambda: mapped(matrix).full().T, gradient=flat_floats,
                    per=matrix.shape[1])
    return setup


@dataclass(frozen=True)
class Variant:
    """One row of a workload's table: a way to compute (or part of) the gradient."""
    name: str
    library: str              # key of LIBRARIES that must be importable
    setup: Callable
    kind: str = "grad"        # "baseline" (f, no derivative), "grad", or "part" (a
                              # piece or a one-off cost: no speed ratio)
    slow: bool = False        # skipped by --quick
    note: str = ""            # what exactly is timed (printed under the table)


VARIANTS = {v.name: v for v in [
    Variant("python f", "python", setup_python, kind="baseline"),
    Variant("fasttape", "fasttape", setup_fasttape),
    Variant("fasttape record", "fasttape", setup_fasttape_record, kind="part"),
    Variant("fasttape sweep", "fasttape", setup_fasttape_sweep, kind="part"),
    Variant("autograd", "autograd", setup_autograd_ndarray),
    Variant("autograd list", "autograd", setup_autograd_list),
    Variant("torch", "torch", setup_torch),
    Variant("jax", "jax", setup_jax, slow=True),
    Variant("jax.jit", "jax", setup_jax_jit, slow=True),
    Variant("micrograd", "micrograd", setup_micrograd),
]}

# The setups of scalar Python code: every variant above, by name.
SCALAR_SETUPS = {name: v for name, v in VARIANTS.items()}

VARIANT_NOTES = {
    "python f": "the function on Python floats (no derivative): the baseline",
    "fasttape": "fasttape.grad(f)(x), the whole call (leaves, record, sweep, result)",
    "fasttape record": "record only: t.reset(); with t: Variable per input, f",
    "fasttape sweep": "reverse sweep only: y.backward() on the recorded tape",
    "autograd": "autograd.grad(f)(np.array(x)), f with autograd.numpy",
    "autograd list": "autograd.grad(f)(x) with x a Python list",
    "torch": "float64 0-d leaf tensors (requires_grad), f, backward, leaf .grad",
    "jax": "jax.grad(f)(x), eager (no jit), x a Python list",
    "jax.jit": "compiled jax.jit(jax.grad(f))(jnp.asarray(x)); compile time apart",
    "micrograd": "micrograd Value leaves, backward (sin/exp/log1p/logaddexp added)",
}


def _variants(*variants):
    return {v.name: v for v in variants}


ARRAY_SETUPS = _variants(
    Variant("numpy f", "python", setup_python, kind="baseline",
            note="f on NumPy arrays (no derivative): the baseline"),
    Variant("fasttape", "fasttape", setup_fasttape,
            note="fasttape.grad(f)(x), f with fasttape.numpy (one tape node per array "
                 "op)"),
    Variant("fasttape record", "fasttape", setup_fasttape_array_record, kind="part",
            note="record only: t.reset(); with t: an array leaf per input, f"),
    Variant("fasttape sweep", "fasttape", setup_fasttape_array_sweep, kind="part",
            note="reverse sweep only: y.backward() on the recorded tape"),
    Variant("autograd", "autograd", setup_autograd_arrays,
            note="autograd.grad(f)(x), f with autograd.numpy"),
    Variant("torch", "torch", setup_torch_arrays,
            note="leaves torch.from_numpy(x).requires_grad_() (float64), f, backward"),
    Variant("mygrad", "mygrad", setup_mygrad,
            note="leaves mygrad.tensor(x), f, backward, .grad"),
    Variant("jax", "jax", setup_jax_arrays,
            note="jax.grad(f)(x) eager (no jit), x jnp arrays"),
    Variant("jax.jit", "jax", setup_jax_jit_arrays,
            note="compiled jax.jit(jax.grad(f))(x); compile time apart"),
)

_SECOND_ORDER_BASELINE = Variant(
    "python f", "python", setup_python_second, kind="baseline",
    note="f on a list of Python floats (no derivative): the baseline")

HESSIAN_SETUPS = _variants(
    _SECOND_ORDER_BASELINE,
    Variant("fasttape", "fasttape", setup_fasttape_hessian,
            note="fasttape.hessian(f)(x), x a list: one forward-over-reverse C sweep "
                 "per column on a tape recorded once"),
    Variant("fasttape ndarray", "fasttape", setup_fasttape_hessian_ndarray,
            note="fasttape.hessian(f)(np.array(x)): the same C sweeps over the tape "
                 "(the ndarray input is one array leaf)"),
    Variant("fasttape trace", "fasttape", setup_fasttape_hessian_traced,
            note="g = fasttape.trace(f, x) once (not timed), g.hessian(x)"),
    Variant("autograd", "autograd", setup_autograd_hessian,
            note="autograd.hessian(f)(np.array(x))"),
    Variant("torch", "torch", setup_torch_hessian,
            note="torch.autograd.functional.hessian(f, x), x a float64 tensor"),
    Variant("jax", "jax", setup_jax_hessian,
            note="jax.hessian(f)(x) eager (jacfwd of jacrev), x a jnp array unpacked "
                 "by list(jnp.unstack(x))"),
    Variant("jax.jit", "jax", setup_jax_jit_hessian,
            note="compiled jax.jit(jax.hessian(f)), unpacked the same way (indexing "
                 "x[i] instead: 223 s to compile); compile time apart"),
)

HVP_SETUPS = _variants(
    _SECOND_ORDER_BASELINE,
    Variant("fasttape", "fasttape", setup_fasttape_hvp,
            note="fasttape.hvp(f)(x, v), lists: record, then one forward-over-reverse "
                 "sweep in C"),
    Variant("fasttape record", "fasttape", setup_fasttape_hvp_record, kind="part",
            note="record only: t.reset(); with t: Variable per input, f"),
    Variant("fasttape sweep", "fasttape", setup_fasttape_hvp_sweep, kind="part",
            note="the forward-over-reverse sweep alone (tape.hessian_vector_c)"),
    Variant("fasttape ndarray", "fasttape", setup_fasttape_hvp_ndarray,
            note="fasttape.hvp(f)(np.array(x), np.array(v)): the same C sweep (one "
                 "array leaf)"),
    Variant("fasttape trace", "fasttape", setup_fasttape_hvp_traced,
            note="g = fasttape.trace(f, x) once (not timed), g.hvp((x,), v)"),
    Variant("autograd", "autograd", setup_autograd_hvp,
            note="autograd.grad(lambda x: np.dot(autograd.grad(f)(x), v))(x)"),
    Variant("torch", "torch", setup_torch_hvp,
            note="torch.autograd.functional.hvp(f, x, v) (reverse over reverse)"),
    Variant("jax", "jax", setup_jax_hvp,
            note="jax.jvp(jax.grad(f), (x,), (v,)) eager (forward over reverse), x "
                 "unpacked by list(jnp.unstack(x))"),
    Variant("jax.jit", "jax", setup_jax_jit_hvp,
            note="the same, compiled with jax.jit; compile time apart"),
)

REPLAY_SETUPS = _variants(
    Variant("python f", "python", setup_python_points, kind="baseline",
            note="f on a list of floats, per point (no derivative): the baseline"),
    Variant("fasttape", "fasttape", setup_fasttape_points,
            note="fasttape.grad(f)(x) per point: records every time"),
    Variant("fasttape trace", "fasttape", setup_fasttape_trace, kind="part",
            note="g = fasttape.trace(f, x): the one-off recording, per trace"),
    Variant("traced g(x)", "fasttape", setup_traced_call, kind="part",
            note="g(x): forward replay in C, value only"),
    Variant("traced g.grad", "fasttape", setup_traced_grad,
            note="g.grad(x) per point: replay and reverse sweep in C"),
    Variant("grad_many x1", "fasttape", _setup_grad_many(1),
            note="g.grad_many(points, n_threads=1), per point"),
    Variant("grad_many x2", "fasttape", _setup_grad_many(2),
            note="g.grad_many(points, n_threads=2), per point"),
    Variant("jax.jit", "jax", _setup_jax_jit_points(False), slow=True,
            note="compiled jax.jit(jax.grad(f))(x) per point, x a jnp array indexed "
                 "x[i] in the loop; compile time apart"),
    Variant("jax.jit unstack", "jax", _setup_jax_jit_points(True), slow=True,
            note="the same with x unpacked by list(jnp.unstack(x)) before the loop"),
    Variant("casadi build", "casadi", setup_casadi_build, kind="part",
            note="f on casadi.SX symbols, casadi.gradient, casadi.Function: per build"),
    Variant("casadi", "casadi", setup_casadi_points,
            note="the casadi.Function of the gradient, called per point (ndarray in, "
                 ".full() out)"),
    Variant("casadi map", "casadi", _setup_casadi_map(1),
            note="Function.map(100) on the 1000x100 matrix of points, per point"),
    Variant("casadi map x2", "casadi", _setup_casadi_map(2),
            note="Function.map(100, 'thread', 2), per point"),
)


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    make: Callable            # make(ops) -> f
    args: tuple               # the point: numbers or lists of numbers, or arrays
    setups: Mapping[str, Variant] = field(default_factory=lambda: SCALAR_SETUPS)
    group: str = "scalar"     # workloads of a group share a summary table
    rtol: float = 1e-6        # of the agreement check with fasttape's derivative
    n_ops: Optional[int] = None    # ops per call: the table adds a time per op
    reference: str = "fasttape"    # the row the 'fasttape faster' ratios divide by
    unit: str = "per call"


REPLAY_ARRAY_SETUPS = _variants(
    Variant("numpy f", "python", setup_python_points, kind="baseline",
            note="f on NumPy arrays, per point (no derivative): the baseline"),
    *(REPLAY_SETUPS[name] for name in ("fasttape", "fasttape trace", "traced g(x)",
                                       "traced g.grad", "grad_many x1", "grad_many x2")),
    Variant("jax.jit", "jax", _setup_jax_jit_points(False),
            note="compiled jax.jit(jax.grad(f))(x) per point, x a jnp array; compile "
                 "time apart"),
)


WORKLOADS = {w.name: w for w in [
    Workload("textbook", "grad(lambda x, y: x*y + sin(x), argnum=(0, 1))(2.0, 3.0)",
             make_textbook, (2.0, 3.0)),
    Workload("rosenbrock", "Rosenbrock as a Python loop over n=1000 floats",
             make_rosenbrock, (rosenbrock_point(1000),)),
    Workload("chain", "x = sin(x)*1.0001 + x*0.5 repeated 1000 times (4000 ops); "
             "the adjoint underflows: gradient 0.0, fasttape's sweep skips most nodes",
             lambda ops: make_chain(ops, 1000), (0.3,)),
    Workload("chain-live", "x = sin(x)*0.5 + x*0.5 repeated 1000 times (4000 ops), "
             "every adjoint nonzero", lambda ops: make_chain(ops, 1000, 0.5), (0.3,)),
    # 100 points: jax.jit's XLA compile of the unrolled loop grows superlinearly
    # (25 points 3 s, 50 points 6 s, 100 points 23 s, 300 points > 10 min)
    Workload("gmm", "2-component 1-D Gaussian mixture log-likelihood, 100 points",
             lambda ops: make_gmm(ops, gmm_data(100)),
             ([-1.0, 1.5, math.log(0.7), math.log(1.2), 0.3],)),
    Workload("rosenbrock-vec", "Rosenbrock with array slices, n=10,000: "
             "sum(100*(x[1:]-x[:-1]**2)**2 + (1-x[:-1])**2)",
             make_rosenbrock_vec, (rosenbrock_vec_point(10_000),), ARRAY_SETUPS,
             group="arrays"),
    Workload("logreg", "logistic regression, X 10000x100: sum(logaddexp(0, X@w) - "
             "y*(X@w)), gradient w.r.t. w (100,)",
             make_logreg, (logreg_data()[2],), ARRAY_SETUPS, group="arrays"),
    Workload("mlp", "MLP 784-256-10, tanh, batch 256, mean softmax cross-entropy "
             "(max-shifted logsumexp); gradient w.r.t. [W1, b1, W2, b2]",
             make_mlp, (mlp_data()[2],), ARRAY_SETUPS, group="arrays"),
    Workload("small-arrays", "x = sin(x)*1.01 + x on an array of 10, 33 times, then "
             "sum: 100 array ops (the per-op overhead)",
             make_small_chain, (np.linspace(0.1, 1.0, 10),), ARRAY_SETUPS,
             group="arrays", n_ops=SMALL_CHAIN_OPS),
    Workload("gmm-arrays", f"ADBench-style GMM objective, vectorised: K={GMM_K}, "
             f"d={GMM_D}, n={GMM_N}, diagonal precisions; gradient w.r.t. [alphas, "
             f"means, icf]", make_gmm_arrays, (gmm_arrays_data()[1],), ARRAY_SETUPS,
             group="arrays"),
    Workload("hessian", "Hessian (100x100) of the extended Rosenbrock loop over 100 "
             "floats (50 pairs)", make_rosenbrock_pairs, (second_order_point()[0],),
             HESSIAN_SETUPS, group="second order"),
    Workload("hvp", "one Hessian-vector product of the extended Rosenbrock loop over "
             "100 floats", make_rosenbrock_pairs, second_order_point(), HVP_SETUPS,
             group="second order"),
    Workload("replay", f"Rosenbrock loop over n={REPLAY_N} floats at "
             f"{REPLAY_POINTS} points: record once (trace), replay in C",
             make_rosenbrock, (replay_points(),), REPLAY_SETUPS, group="replay",
             reference="traced g.grad", unit="per point (trace, build: per call)"),
    Workload("replay-vec", f"Rosenbrock with array slices, n={REPLAY_VEC_N:,}, at "
             f"{REPLAY_VEC_POINTS} points: record once (trace), replay in C",
             make_rosenbrock_vec, (replay_vec_points(),), REPLAY_ARRAY_SETUPS,
             group="replay", reference="traced g.grad",
             unit="per point (trace: per call)"),
]}


def all_variants():
    """Every variant name of every workload, with its library (first seen)."""
    out = dict(VARIANTS)
    for w in WORKLOADS.values():
        for name, v in w.setups.items():
            out.setdefault(name, v)
    return out


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------

@dataclass
class Timing:
    median: float
    min: float
    number: int               # calls per repeat
    repeats: int
    first: float              # the untimed first call (warm-up)
    result: object = None


def time_call(call, budget, min_repeats=3, max_repeats=51, repeat_target=0.01,
              first=None):
    """Median and min seconds per call of ``call()``, time-boxed by ``budget``.

    ``first`` is the duration of a warm-up call already made; without it, one is
    made here (its result is returned in Timing.result).
    """
    gc.collect()
    result = None
    if first is None:
        t0 = time.perf_counter()
        result = call()
        first = time.perf_counter() - t0
    number = max(1, int(repeat_target / max(first, 1e-9)))
    times = []
    resized = 0
    start = time.perf_counter()
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        dt = time.perf_counter() - t0
        if not times and dt < 0.5 * repeat_target and resized < 3:
            # the first call was slow (warm-up): re-size the repeats
            number = max(1, int(number * repeat_target / max(dt, 1e-9)))
            resized += 1
            continue
        times.append(dt / number)
        if len(times) >= min_repeats and time.perf_counter() - start >= budget:
            break
    return Timing(statistics.median(times), min(times), number, len(times), first,
                  result)


def interleaved_ratio(num_call, den_call, budget, rounds_min=5, repeat_target=0.01):
    """Median over rounds of time(num_call)/time(den_call), the two timed
    alternately in each round so that machine noise hits both alike.

    Returns (median ratio, min ratio, median num time, median den time, rounds).
    """
    gc.collect()
    num_call()
    den_call()

    def calls_for(call):
        t0 = time.perf_counter()
        call()
        return max(1, int(repeat_target / max(time.perf_counter() - t0, 1e-9)))
    n_num, n_den = calls_for(num_call), calls_for(den_call)
    ratios, t_num, t_den = [], [], []
    start = time.perf_counter()
    while len(ratios) < rounds_min or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        for _ in range(n_num):
            num_call()
        a = (time.perf_counter() - t0) / n_num
        t0 = time.perf_counter()
        for _ in range(n_den):
            den_call()
        b = (time.perf_counter() - t0) / n_den
        ratios.append(a / b)
        t_num.append(a)
        t_den.append(b)
        if len(ratios) >= 200:
            break
    return (statistics.median(ratios), min(ratios), statistics.median(t_num),
            statistics.median(t_den), len(ratios))


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.1f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_ratio(r):
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:,.0f}x"
    return f"{r:.3g}x"


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Running the workloads
# --------------------------------------------------------------------------------------

def run_workload(workload, variant_names, budget, quick=False):
    """Time every selected variant of one workload; returns a list of row dicts."""
    rows = []
    reference = None            # fasttape's gradient, the reference for the checks
    cases = []
    selected = set(variant_names)
    for name, variant in workload.setups.items():
        if name not in selected or (quick and variant.slow):
            continue
        try:
            ops = load(variant.library)
        except ImportError as e:
            progress(f"  {workload.name} / {name}: skipped ({variant.library} not "
                     f"installed: {e})")
            continue
        try:
            progress(f"  {workload.name} / {name}: setting up")
            f = workload.make(ops)
            case = variant.setup(ops, f, workload.args)
        except NotApplicable:
            continue
        except Exception as e:          # a peer that cannot run this workload
            progress(f"  {workload.name} / {name}: FAILED in setup: "
                     f"{type(e).__name__}: {e}")
            cases.append((variant, dict(workload=workload.name, variant=name,
                                        kind=variant.kind, library=variant.library,
                                        error=f"{type(e).__name__}: {e}")))
            continue
        cases.append((variant, case))
    for variant, case in cases:
        name = variant.name
        if isinstance(case, dict):          # failed in setup
            rows.append(case)
            continue
        if case.compile_s is not None:
            progress(f"  {workload.name} / {name}: compiled in {case.compile_s:.2f} s")
        row = dict(workload=workload.name, variant=name, kind=variant.kind,
                   library=variant.library, compile_s=case.compile_s,
                   n_nodes=case.n_nodes, note=case.note, check=None,
                   max_abs_diff=None, per=case.per)
        try:
            # warm-up call, whose gradient is checked against fasttape's before timing
            gc.collect()
            t0 = time.perf_counter()
            result = case.call()
            first = time.perf_counter() - t0
            if case.gradient is not None:
                reference = check_gradient(row, case.gradient(result), reference,
                                           workload.rtol)
                progress(f"  {workload.name} / {name}: gradient {row['check']}")
            del result
            progress(f"  {workload.name} / {name}: timing")
            timing = time_call(case.call, budget, first=first)
        except Exception as e:
            progress(f"  {workload.name} / {name}: FAILED: {type(e).__name__}: {e}")
            rows.append(dict(workload=workload.name, variant=name, kind=variant.kind,
                             library=variant.library,
                             error=f"{type(e).__name__}: {e}"))
            continue
        # times per item (per point for the replay workload)
        row.update(median_s=timing.median / case.per, min_s=timing.min / case.per,
                   number=timing.number, repeats=timing.repeats, first_call_s=first)
        if workload.n_ops:
            row.update(median_per_op_s=row["median_s"] / workload.n_ops,
                       min_per_op_s=row["min_s"] / workload.n_ops)
        rows.append(row)
        progress(f"  {workload.name} / {name}: {fmt_time(row['median_s'])} "
                 f"{workload.unit} ({timing.repeats} x {timing.number} calls)")
    # ratios within this run
    base = next((r["median_s"] for r in rows if r.get("kind") == "baseline"
                 and "median_s" in r), None)
    mine = next((r["median_s"] for r in rows if r.get("variant") == workload.reference
                 and "median_s" in r), None)
    for row in rows:
        if "median_s" not in row:
            continue
        row["ratio_to_f"] = row["median_s"] / base if base else None
        row["fasttape_speedup"] = (row["median_s"] / mine
                                   if mine and row["kind"] == "grad" else None)
    return rows


def check_gradient(row, g, reference, rtol=1e-6):
    """Compare gradient g with fasttape's (np.allclose with ``rtol``) and note the
    outcome in row["check"]; fasttape's own row sets the reference. Returns the
    reference."""
    if row["variant"] == "fasttape":
        row["check"] = "reference"
        return g
    if reference is None:
        row["check"] = "no reference"
    elif g.shape != reference.shape:
        row["check"] = f"MISMATCH (shape {g.shape} vs {reference.shape})"
    else:
        row["max_abs_diff"] = float(np.max(np.abs(g - reference)))
        if np.allclose(g, reference, rtol=rtol):
            row["check"] = "ok"
        else:
            row["check"] = "MISMATCH"
            progress(f"  {row['workload']} / {row['variant']}: gradient DISAGREES with "
                     f"fasttape's (max abs diff {row['max_abs_diff']:.3g})")
    return reference


def print_workload_table(workload, rows, out=sys.stdout):
    print(f"\n== {workload.name}: {workload.title}", file=out)
    nodes = next((r for r in rows if r.get("n_nodes")), None)
    if nodes:
        extra = f" ({nodes['note']})" if nodes.get("note") else ""
        print(f"   fasttape tape: {nodes['n_nodes']} nodes{extra}", file=out)
    if workload.unit != "per call":
        print(f"   times {workload.unit}", file=out)
    per_op = workload.n_ops is not None
    faster = "fasttape faster" if workload.reference == "fasttape" else \
        f"/ {workload.reference}"
    header = (f"   {'variant':<16} {'median':>10} {'min':>10} "
              + (f"{'per op':>10} " if per_op else "")
              + f"{'/ f':>9} {faster:>15}  {'gradient':<9} {'compile':>8}  calls")
    print(header, file=out)
    print("   " + "-" * (len(header) - 3), file=out)
    for r in rows:
        if "error" in r:
            print(f"   {r['variant']:<16} failed: {r['error']}", file=out)
            continue
        speed = r["fasttape_speedup"]
        speed_s = "-" if speed is None else (
            "1 (this)" if r["variant"] == workload.reference else fmt_ratio(speed))
        check = r["check"] or "-"
        if check == "reference":
            check = "ref"
        op_s = f"{fmt_time(r['median_per_op_s']):>10} " if per_op else ""
        print(f"   {r['variant']:<16} {fmt_time(r['median_s']):>10} "
              f"{fmt_time(r['min_s']):>10} {op_s}{fmt_ratio(r['ratio_to_f']):>9} "
              f"{speed_s:>15}  {check:<9} {fmt_time(r['compile_s']):>8}  "
              f"{r['repeats']}x{r['number']}", file=out)
    if workload.setups is not SCALAR_SETUPS:
        for r in rows:
            note = workload.setups[r["variant"]].note
            if note:
                print(f"     {r['variant'] + ':':<17} {note}", file=out)


def print_summary(all_rows, out=sys.stdout):
    """Workloads by variants: median times, one line per workload; one table per
    group of workloads (scalar, arrays, ...) that has more than one workload."""
    groups = {}
    for r in all_rows:
        w = WORKLOADS.get(r["workload"])
        groups.setdefault(w.group if w else "", []).append(r)
    for group, rows in groups.items():
        if len(dict.fromkeys(r["workload"] for r in rows)) > 1:
            _print_summary_group(group, rows, out)


def _print_summary_group(group, all_rows, out):
    workloads = list(dict.fromkeys(r["workload"] for r in all_rows))
    variants = list(dict.fromkeys(r["variant"] for r in all_rows
                                  if "median_s" in r))
    if not workloads or not variants:
        return
    width = max(10, max(len(v) for v in variants) + 1)
    first = max(11, max(len(w) for w in workloads) + 1)
    print(f"\n== summary ({group} workloads): median time per call (x = fasttape's "
          f"speedup over it)", file=out)
    print("   " + f"{'workload':<{first}}" + "".join(f"{v:>{width}}" for v in variants),
          file=out)
    for w in workloads:
        cells = []
        for v in variants:
            r = next((r for r in all_rows if r["workload"] == w and r["variant"] == v
                      and "median_s" in r), None)
            cells.append("-" if r is None else fmt_time(r["median_s"]))
        print("   " + f"{w:<{first}}" + "".join(f"{c:>{width}}" for c in cells),
              file=out)
        cells = []
        for v in variants:
            r = next((r for r in all_rows if r["workload"] == w and r["variant"] == v
                      and "median_s" in r), None)
            s = None if r is None else r.get("fasttape_speedup")
            cells.append("" if s is None or v == "fasttape" else fmt_ratio(s))
        print("   " + f"{'':<{first}}" + "".join(f"{c:>{width}}" for c in cells),
              file=out)


# --------------------------------------------------------------------------------------
# The Foundation figures (fasttape alone)
# --------------------------------------------------------------------------------------

def foundation(budget):
    """The four Foundation targets, measured in this process."""
    res = {}
    # (a) time(grad f)/time(f) for the Rosenbrock loop, n = 1000, interleaved
    progress("  foundation (a): Rosenbrock n=1000 grad/f")
    x = rosenbrock_point(1000)
    f_plain = make_rosenbrock(load_python())
    g = ft.grad(make_rosenbrock(load_fasttape()))
    med, lo, t_g, t_f, rounds = interleaved_ratio(lambda: g(x), lambda: f_plain(x),
                                                  2 * budget)
    res["a_rosenbrock1000_grad_over_f"] = dict(
        ratio_median=med, ratio_min=lo, grad_s=t_g, f_s=t_f, rounds=rounds)
    # (b) one textbook grad call
    progress("  foundation (b): textbook grad call")
    tb = ft.grad(lambda x, y: x * y + ft.sin(x), argnum=(0, 1))
    t = time_call(lambda: tb(2.0, 3.0), budget)
    res["b_textbook_grad_us"] = dict(median_us=t.median * 1e6, min_us=t.min * 1e6,
                                     calls=t.repeats * t.number, value=t.result)
    # (c) reverse sweep per node, on large tapes
    res["c_sweep_ns_per_node"] = {}
    sweeps = [("rosenbrock n=10000", make_rosenbrock, (rosenbrock_point(10_000),)),
              ("chain-live n=100000", lambda ops: make_chain(ops, 100_000, 0.5),
               (0.3,)),
              ("chain n=100000, adjoint underflowed: mostly skipped",
               lambda ops: make_chain(ops, 100_000), (0.3,))]
    for label, make, args in sweeps:
        progress(f"  foundation (c): sweep of {label}")
        tape = ft.Tape()
        f = make(load_fasttape())
        record = recorder(tape, f, args)
        t_rec = time_call(record, budget)
        y, leaves = record()
        n = tape.n_nodes
        t_sw = time_call(y.backward, budget)
        res["c_sweep_ns_per_node"][label] = dict(
            n_nodes=n, sweep_ns_per_node=t_sw.median * 1e9 / n,
            sweep_ns_per_node_min=t_sw.min * 1e9 / n,
            record_ns_per_node=t_rec.median * 1e9 / n,
            sweep_s=t_sw.median, record_s=t_rec.median)
        if label.startswith("chain-live"):
            # (d) measured tape size on this big tape (capacity, after a sweep)
            res["d_memory"] = dict(bytes_per_node=tape.bytes_per_node,
                                   nbytes=tape.nbytes, n_nodes=n,
                                   nbytes_per_node=tape.nbytes / n)
        del y, leaves, tape
    return res


# --------------------------------------------------------------------------------------
# Memory per recorded op, each library in a fresh subprocess
# --------------------------------------------------------------------------------------

# chain iterations per library (4 ops each): large enough to dwarf the noise, small
# enough to build in about a second
MEMORY_ITERATIONS = {"fasttape": 250_000, "autograd": 25_000, "torch": 25_000,
                     "micrograd": 25_000, "jax": 1_000}
MEMORY_SLOW = {"jax"}


def _status_bytes(field):
    """A size field of /proc/self/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark (VmHWM); False where unsupported.
    Without it the peak left by the imports would hide the growth measured."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _build_graph(library, n):
    """Record the chain of n iterations with ``library`` and return what keeps the
    graph alive (the reverse pass is not run, except for fasttape: see below)."""
    ops = load(library)
    f = make_chain(ops, n, 0.5)
    if library == "fasttape":
        tape = ft.Tape()
        y = f(ft.Variable(0.3, tape))
        return tape, y
    if library == "autograd":
        return ops.module.make_vjp(f)(0.3)
    if library == "torch":
        torch = ops.module
        x = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        return x, f(x)
    if library == "jax":
        return ops.module.vjp(f, 0.3)
    if library == "micrograd":
        return f(ops.module(0.3))
    raise ValueError(library)


def memory_probe(library, n):
    """Print (JSON) memory growth per recorded op of the chain workload: RSS growth
    and tracemalloc growth while the graph is alive, and peak RSS growth."""
    import tracemalloc
    _build_graph(library, 10)                    # imports, caches, first-op setup
    gc.collect()
    ops = 4 * n
    rss0 = _status_bytes("VmRSS")
    peak_ok = _reset_peak_rss()
    graph = _build_graph(library, n)
    rss1, peak1 = _status_bytes("VmRSS"), _status_bytes("VmHWM")
    out = dict(library=library, ops=ops,
               rss_per_op=None if rss0 is None else (rss1 - rss0) / ops,
               peak_rss_per_op=(peak1 - rss0) / ops if peak_ok and peak1 else None)
    if library == "fasttape":
        tape, y = graph
        out["n_nodes"] = tape.n_nodes
        y.backward()                             # allocates the adjoints
        rss2 = _status_bytes("VmRSS")
        out["rss_per_node_after_sweep"] = None if rss0 is None else (
            (rss2 - rss0) / tape.n_nodes)
        out["nbytes_per_node"] = tape.nbytes / tape.n_nodes
    del graph
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    graph = _build_graph(library, n)
    held = tracemalloc.get_traced_memory()[0] - base
    out["tracemalloc_per_op"] = held / ops
    if library == "fasttape":
        graph[1].backward()
        out["tracemalloc_per_node_after_sweep"] = (
            (tracemalloc.get_traced_memory()[0] - base) / graph[0].n_nodes)
    tracemalloc.stop()
    print(json.dumps(out))


def run_memory(libraries, quick):
    results = {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    for lib in libraries:
        if lib not in MEMORY_ITERATIONS or (quick and lib in MEMORY_SLOW):
            continue
        try:
            load(lib)
        except ImportError:
            continue
        n = MEMORY_ITERATIONS[lib] // (5 if quick else 1)
        progress(f"  memory: {lib} (chain of {n} iterations, fresh process)")
        code = f"from fasttape.bench import memory_probe; memory_probe({lib!r}, {n})"
        try:
            p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               text=True, env=env, timeout=600)
        except subprocess.TimeoutExpired:
            results[lib] = dict(library=lib, error="timed out")
            continue
        try:
            results[lib] = json.loads(p.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            err = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            progress(f"  memory: {lib} failed: {err}")
            results[lib] = dict(library=lib, error=err)
    return results


def print_foundation(res, mem, out=sys.stdout):
    if res is not None:
        print_foundation_figures(res, mem, out)
    if mem:
        print_memory(mem, out)


def print_foundation_figures(res, mem, out=sys.stdout):
    print("\n== Foundation figures (fasttape, this machine, this run)", file=out)
    a = res["a_rosenbrock1000_grad_over_f"]
    print(f"   (a) Rosenbrock loop n=1000, time(grad(f)(x)) / time(f(x) on floats): "
          f"{a['ratio_median']:.2f}  (min {a['ratio_min']:.2f}; grad "
          f"{fmt_time(a['grad_s'])}, f {fmt_time(a['f_s'])}; median of "
          f"{a['rounds']} interleaved rounds)", file=out)
    b = res["b_textbook_grad_us"]
    print(f"   (b) textbook grad(lambda x, y: x*y + sin(x), argnum=(0, 1))(2.0, 3.0): "
          f"{b['median_us']:.2f} µs per call (min {b['min_us']:.2f} µs; "
          f"{b['calls']} calls)", file=out)
    for label, c in res["c_sweep_ns_per_node"].items():
        print(f"   (c) reverse sweep, {label} ({c['n_nodes']} nodes): "
              f"{c['sweep_ns_per_node']:.2f} ns/node (min "
              f"{c['sweep_ns_per_node_min']:.2f}); recording "
              f"{c['record_ns_per_node']:.0f} ns/node", file=out)
    d = res["d_memory"]
    print(f"   (d) tape bytes per scalar node: bytes_per_node = {d['bytes_per_node']} "
          f"(op + 2 int32 operands + value + adjoint); nbytes/n_nodes = "
          f"{d['nbytes_per_node']:.1f} on a {d['n_nodes']}-node chain tape "
          f"(allocated capacity after a sweep, incl. doubling slack and constants)",
          file=out)
    m = mem.get("fasttape")
    if m and "error" not in m:
        print(f"       fresh process, chain of {m['n_nodes']} nodes: tracemalloc "
              f"{m['tracemalloc_per_op']:.1f} B/node after recording, "
              f"{m['tracemalloc_per_node_after_sweep']:.1f} after the sweep; RSS "
              f"growth {_fmt_b(m['rss_per_op'])}/node, "
              f"{_fmt_b(m['rss_per_node_after_sweep'])} after the sweep; peak RSS "
              f"growth {_fmt_b(m['peak_rss_per_op'])}/node", file=out)


def print_memory(mem, out=sys.stdout):
    print("\n== memory per recorded scalar op (chain workload, 4 ops per "
          "iteration, graph held alive, fresh process)", file=out)
    print(f"   {'library':<10} {'ops':>9} {'RSS growth':>11} {'peak RSS':>10} "
          f"{'tracemalloc':>12}   (bytes per op)", file=out)
    for lib, m in mem.items():
        if "error" in m:
            print(f"   {lib:<10} failed: {m['error']}", file=out)
            continue
        print(f"   {lib:<10} {m['ops']:>9} {_fmt_b(m['rss_per_op']):>11} "
              f"{_fmt_b(m['peak_rss_per_op']):>10} "
              f"{_fmt_b(m['tracemalloc_per_op']):>12}", file=out)
    print("   (tracemalloc sees Python-allocator memory only: it misses torch's "
          "and XLA's C++ buffers; RSS sees everything but is coarse)", file=out)


def _fmt_b(x):
    return "-" if x is None else f"{x:.1f}"


# --------------------------------------------------------------------------------------
# Machine information, JSON and PNG output
# --------------------------------------------------------------------------------------

def machine_info():
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(), machine=platform.machine(),
        cpu_model=cpu or platform.processor() or None, cpu_count=os.cpu_count(),
        python=platform.python_version(),
        python_implementation=platform.python_implementation(),
        numpy=np.__version__, fasttape=ft.__version__,
        fasttape_path=os.path.dirname(os.path.abspath(ft.__file__)),
        fasttape_git_commit=_git_commit(),
        peers={lib: library_version(lib) for lib in LIBRARIES
               if lib not in ("python", "fasttape")},
        threads={k: os.environ.get(k) for k in list(SINGLE_THREAD_ENV) + ["XLA_FLAGS"]},
    )
    return info


def _git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(ft.__file__)))
    try:
        p = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode == 0:
            dirty = subprocess.run(["git", "-C", root, "status", "--porcelain",
                                    "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=10).stdout.strip()
            return p.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def save_png(path, all_rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\n(--png: matplotlib is not installed; no chart written to {path})")
        return
    workloads = list(dict.fromkeys(r["workload"] for r in all_rows))
    n_cols = 2 if len(workloads) > 3 else 1
    n_rows = math.ceil(len(workloads) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                             figsize=(8 * n_cols, 0.6 + 3.4 * n_rows))
    for ax in axes.ravel()[len(workloads):]:
        ax.set_visible(False)
    for ax, w in zip(axes.ravel(), workloads):
        rows = [r for r in all_rows if r["workload"] == w and "median_s" in r]
        names = [r["variant"] for r in rows]
        times = [r["median_s"] for r in rows]
        colors = ["tab:gray" if r["kind"] == "baseline" else
                  "tab:blue" if r["library"] == "fasttape" else "tab:orange"
                  for r in rows]
        ax.barh(names, times, color=colors)
        ax.set_xscale("log")
        if times:
            ax.set_xlim(right=max(times) * 30)        # room for the labels
        ax.invert_yaxis()
        workload = WORKLOADS[w]
        ax.set_title(textwrap.fill(f"{w}: {workload.title}", 90), fontsize=8)
        unit = "per call" if workload.unit == "per call" else workload.unit
        ax.set_xlabel(f"median seconds {unit} (log scale)", fontsize=8)
        ax.tick_params(labelsize=8)
        for y, (t, r) in enumerate(zip(times, rows)):
            label = " " + fmt_time(t)
            if r.get("ratio_to_f"):
                label += f" ({fmt_ratio(r['ratio_to_f'])} f)"
            if r.get("check") and r["check"].startswith("MISMATCH"):
                label += " MISMATCH"
            ax.text(t, y, label, va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"\nchart written to {path}")


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

SECTIONS = ("foundation", "memory")


def parse_only(only):
    """Split --only NAME[,NAME...] into workloads, variants/libraries and sections."""
    names = all_variants()
    workloads, variants, sections = [], [], []
    if not only:
        return list(WORKLOADS), list(names), list(SECTIONS)
    for token in only.split(","):
        token = token.strip()
        if token in WORKLOADS:
            workloads.append(token)
        elif token in SECTIONS:
            sections.append(token)
        elif token in LIBRARIES:          # a library: all its variants
            variants.extend(n for w in WORKLOADS.values() for n, v in w.setups.items()
                            if v.library == token)
        elif token in names:
            variants.append(token)
        else:
            raise SystemExit(
                f"--only: unknown name {token!r}; choose from workloads "
                f"{', '.join(WORKLOADS)}; sections {', '.join(SECTIONS)}; libraries "
                f"{', '.join(LIBRARIES)}; variants {', '.join(names)}")
    if variants and not workloads and not sections:
        workloads = list(WORKLOADS)
        sections = ["memory"]
    if workloads and not variants:
        variants = list(names)
    if variants:
        # the baselines and the reference rows give every row its ratios
        always = ([n for n, v in names.items() if v.kind == "baseline"] + ["fasttape"]
                  + [w.reference for w in WORKLOADS.values()])
        variants = list(dict.fromkeys(always + variants))
    return workloads, variants, sections


# Threads: one per library, so that the columns compare like with like and a second
# process on a 2-core machine disturbs them less. The BLAS libraries read these when
# they load, before main() runs: ``python -m fasttape.bench`` re-executes itself with
# them set when they are missing (an explicit setting is kept).
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1", "JAX_PLATFORMS": "cpu"}
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single_thread_environ(environ):
    """``environ`` with the single-thread settings added where missing."""
    env = dict(environ)
    for key, value in SINGLE_THREAD_ENV.items():
        env.setdefault(key, value)
    if "xla_cpu_multi_thread_eigen" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_SINGLE_THREAD).strip()
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fasttape.bench",
        description="Time fasttape against the installed peers (autograd, PyTorch, "
                    "JAX, micrograd, mygrad, CasADi) on scalar, array, second-order "
                    "and replay workloads; print a table and the Foundation figures.")
    parser.add_argument("--quick", action="store_true",
                        help="short time boxes; skip the slow peers (jax eager and "
                             "jax.jit on scalar loops, whose compile takes tens of "
                             "seconds) and shrink the memory probes")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help="run only these workloads (%s), sections (%s), or "
                             "libraries/variants (%s)" % (", ".join(WORKLOADS),
                                                          ", ".join(SECTIONS),
                                                          ", ".join(LIBRARIES)))
    parser.add_argument("--json", metavar="PATH", help="save all results as JSON")
    parser.add_argument("--png", metavar="PATH",
                        help="save a bar chart (needs matplotlib)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time box per cell (default 1.5, or 0.3 with --quick)")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 1.5)
    workloads, variants, sections = parse_only(args.only)

    started = time.perf_counter()
    info = machine_info()
    progress(f"fasttape.bench: fasttape {ft.__version__} from {info['fasttape_path']}; "
             f"peers: " + ", ".join(f"{k} {v}" for k, v in info["peers"].items()
                                    if v) + f"; budget {budget} s per cell")
    print(f"fasttape {info['fasttape']} ({info['fasttape_git_commit'] or 'no git'}) | "
          f"Python {info['python']} | NumPy {info['numpy']} | {info['cpu_model']} x "
          f"{info['cpu_count']} | {info['platform']} | {info['date']}")
    print("peers: " + ", ".join(f"{k} {v or 'not installed'}"
                                for k, v in info["peers"].items()))
    print("threads: " + ", ".join(f"{k}={v}" for k, v in info["threads"].items()) +
          " (torch.set_num_threads(1))")
    print("times: median (and min) seconds per call over time-boxed repeats; "
          "'/ f' = time / time of f (no derivative); 'fasttape faster' = time / "
          "fasttape's.")
    if any(WORKLOADS[w].setups is SCALAR_SETUPS for w in workloads):
        print("scalar workloads:")
        for v in variants:
            if v in VARIANT_NOTES:
                print(f"   {v:<16} {VARIANT_NOTES[v]}")

    all_rows = []
    for i, name in enumerate(workloads):
        progress(f"[{i + 1}/{len(workloads)}] workload {name}")
        rows = run_workload(WORKLOADS[name], variants, budget, args.quick)
        print_workload_table(WORKLOADS[name], rows)
        sys.stdout.flush()
        all_rows.extend(rows)
    print_summary(all_rows)

    found, mem = None, {}
    if "foundation" in sections:
        progress("foundation figures")
        found = foundation(budget)
    if "memory" in sections:
        libs = list(dict.fromkeys(["fasttape"] + [VARIANTS[v].library for v in variants
                                                  if v in VARIANTS
                                                  and VARIANTS[v].kind == "grad"]))
        mem = run_memory(libs, args.quick)
    print_foundation(found, mem)
    elapsed = time.perf_counter() - started
    print(f"\n(total {elapsed:.0f} s)")

    if args.json:
        payload = dict(machine=info, settings=dict(quick=args.quick, budget_s=budget,
                                                   only=args.only),
                       results=all_rows, foundation=found, memory=mem,
                       elapsed_s=elapsed)
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=1, default=_json_default)
        print(f"results written to {args.json}")
    if args.png:
        save_png(args.png, all_rows)
    return 0


if __name__ == "__main__":
    _env = single_thread_environ(os.environ)
    if _env != dict(os.environ) and "FASTTAPE_BENCH_REEXEC" not in os.environ:
        _env["FASTTAPE_BENCH_REEXEC"] = "1"
        os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:], _env)
    sys.exit(main())
