"""The libraries: each one's namespace of elementary functions (``ops``), in which the
workload factories are written.

``load(library)`` imports a library lazily and returns its ``ops``: ``sin``, ``exp``,
``log1p``, ``logaddexp`` for scalar code, ``arrays`` for array code (see
``workloads``), and ``module``, the library itself, from which the setups of ``peers``
take its differential operators. A library that is not installed raises ImportError
(remembered), and its variants are skipped.
"""
import math
import platform
import sys
import types

import numpy as np

import fasttape as ft


def python_logaddexp(a, b):
    """log(exp(a) + exp(b)) on Python floats, without overflow."""
    m = a if a > b else b
    return m + math.log1p(math.exp(-abs(a - b)))


# The scalar namespaces of the baseline (Python floats) and of fasttape, without their
# array namespaces, whose imports (SciPy, fasttape.numpy) the asv suite's scalar
# benchmarks leave out: peakmem_ counts what the process imported.
FLOAT_OPS = types.SimpleNamespace(sin=math.sin, exp=math.exp, log1p=math.log1p,
                                  logaddexp=python_logaddexp, cos=math.cos,
                                  sqrt=math.sqrt, module=math)
FASTTAPE_OPS = types.SimpleNamespace(sin=ft.sin, exp=ft.exp, log1p=ft.log1p,
                                     logaddexp=ft.logaddexp, cos=ft.cos, sqrt=ft.sqrt,
                                     module=ft)


def _arrays_namespace(module, **overrides):
    """An array namespace (see workloads) from a NumPy-like module."""
    names = dict(sin=module.sin, exp=module.exp, log=module.log, tanh=module.tanh,
                 logaddexp=module.logaddexp, sum=module.sum, const=np.asarray)
    names.update(overrides)
    return types.SimpleNamespace(**names)


def _with_arrays(scalar_ops, arrays):
    return types.SimpleNamespace(**vars(scalar_ops), arrays=arrays)


def load_python():
    import scipy.special
    return _with_arrays(FLOAT_OPS, _arrays_namespace(
        np, logsumexp=scipy.special.logsumexp))


def load_fasttape():
    import fasttape.numpy as fnp
    import fasttape.scipy.special
    return _with_arrays(FASTTAPE_OPS, _arrays_namespace(
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
                                 logaddexp=jnp.logaddexp, cos=jnp.cos, sqrt=jnp.sqrt,
                                 module=jax,
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
                                 cos=casadi.cos, sqrt=casadi.sqrt, module=casadi)


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
    out = Value(python_logaddexp(a.data, b.data), (a, b), "logaddexp")

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
    """The installed version of ``library``, or None if it is not installed."""
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
