"""Sparse Jacobians and Hessians of plain functions: trace, then compressed sweeps.

``sparse_jacobian(f)(x)`` and ``sparse_hessian(f)(x)`` trace ``f`` at their first
arguments and keep the trace (with its pattern and colouring) for later calls; a call
whose arguments take another branch records again (``retrace=True``). For repeated
use, ``g = fasttape.trace(f, x0)`` and ``g.sparse_hessian(x)`` say the same directly.
"""
import threading

from fasttape.trace import trace


def _traced_operator(fun, argnum, method, **options):
    lock = threading.Lock()
    cache = {}

    def operator(*args):
        with lock:
            traced = cache.get("traced")
            if traced is None:
                traced = cache["traced"] = trace(fun, *args, argnum=argnum,
                                                 retrace=True)
        return getattr(traced, method)(*args, **options)

    operator.__name__ = f"{method}_of_{getattr(fun, '__name__', 'function')}"
    operator.__doc__ = f"The {method.replace('_', ' ')} of {operator.__name__[len(method) + 4:]}."
    return operator


def sparse_jacobian(fun, argnum=0, format="csr"):
    """A function returning the Jacobian of ``fun``'s flat outputs with respect to
    argument ``argnum``'s flat values as scipy.sparse CSR, or in another scipy.sparse
    ``format`` ("coo", "csc", ...; see Traced.sparse_jacobian)."""
    return _traced_operator(fun, argnum, "sparse_jacobian", format=format)


def sparse_hessian(fun, argnum=0, coloring="star", format="csr"):
    """A function returning the Hessian of scalar ``fun`` with respect to argument
    ``argnum``'s flat values as scipy.sparse CSR, or in another scipy.sparse
    ``format`` (see Traced.sparse_hessian; coloring "star" or "acyclic")."""
    return _traced_operator(fun, argnum, "sparse_hessian", coloring=coloring,
                            format=format)
