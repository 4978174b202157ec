"""autograd's remaining differential operators, composed from fasttape's own
(fasttape.differential) with autograd's names, signatures and meaning: ``deriv``,
``grad_named``, ``make_hvp``, ``hessian_tensor_product``, ``make_ggnvp``,
``tensor_jacobian_product`` (and its alias ``vector_jacobian_product``),
``multigrad_dict`` and ``grad_and_aux`` (``holomorphic_grad`` is fasttape._complex_recording's).
"""
import collections
import functools
import inspect

import numpy as np

import fasttape.numpy as fnp
from fasttape._recording import (POOLED, VARIABLE_TYPES, Recording, record,
                                 resolve_argnum, shape_of, value_of, zeros_of)
from fasttape._vspace import vspace
from fasttape.differential import (grad, hessian_vector_product, jacobian,
                                   make_vjp)


def deriv(fun, argnum=0, *, argnums=None):
    """Return a function computing the derivative of ``fun`` by forward mode: the
    directional derivative along a vector of ones in argument ``argnum``
    (``d fun / dx`` for a number x; for an array, the Jacobian times ones), as
    autograd's ``deriv``."""
    argnum = resolve_argnum(argnum, argnums, "deriv")

    @functools.wraps(fun)
    def deriv_fun(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs)
        x = args[argnum] if type(argnum) is int else tuple(args[i] for i in argnum)
        return rec.jvp(vspace(x).ones())
    return deriv_fun


def grad_named(fun, argname):
    """``grad`` with respect to the argument named ``argname`` (a named parameter of
    ``fun``, not ``*args`` or ``**kwargs``); it may be passed by position or by name."""
    signature = inspect.signature(fun)
    positional = [name for name, p in signature.parameters.items()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if argname not in positional:
        raise ValueError(f"grad_named: {getattr(fun, '__name__', fun)} has no "
                         f"positional parameter named {argname!r} (it has "
                         f"{', '.join(positional) or 'none'})")
    index = positional.index(argname)
    gradient = grad(fun, index)

    @functools.wraps(fun)
    def grad_named_fun(*args, **kwargs):
        if len(args) <= index:
            # passed by name, or left to its default: bind it to its position
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            args, kwargs = bound.args, bound.kwargs
        return gradient(*args, **kwargs)
    return grad_named_fun


def make_hvp(fun, argnum=0, *, argnums=None):
    """autograd's ``make_hvp(fun, argnum)(*args) -> (hvp, gradient)``: ``hvp(v)`` is the
    Hessian of ``fun`` at args times v (the gradient recorded once, each hvp one
    reverse sweep of it); the second value is the gradient at args."""
    argnum = resolve_argnum(argnum, argnums, "make_hvp")

    def hvp_maker(*args, **kwargs):
        return make_vjp(grad(fun, argnum), argnum)(*args, **kwargs)
    return hvp_maker


hessian_tensor_product = hessian_vector_product


def make_ggnvp(f, g=lambda x: 1.0 / 2 * fnp.sum(x ** 2, axis=-1), f_argnum=0):
    """autograd's ``make_ggnvp(f, g, f_argnum)(*args) -> ggnvp``: ``ggnvp(v)`` is the
    generalized Gauss-Newton matrix of ``g(f(x))`` times v, ``J^T H J v`` with J the
    Jacobian of f at x (argument f_argnum) and H the Hessian of g at f(x) (by default
    g is half the sum of squares over the last axis)."""
    def ggnvp_maker(*args, **kwargs):
        rec = record(f, args, f_argnum, kwargs)
        g_hvp, _ = make_hvp(g)(rec.value())

        def ggnvp(v):
            return rec.vjp(g_hvp(rec.jvp(v)))
        return ggnvp
    return ggnvp_maker


def tensor_jacobian_product(fun, argnum=0, *, argnums=None):
    """Return ``product(*args, tensor, **kwargs)``: the Jacobian of ``fun`` with
    respect to argument ``argnum``, contracted on the left with ``tensor`` over the
    output's leading ``tensor.ndim`` axes (``tensordot(tensor, J, tensor.ndim)``). A
    tensor of the output's shape is one vector-Jacobian product (one reverse sweep)."""
    argnum = resolve_argnum(argnum, argnums, "tensor_jacobian_product")

    def product(*args, **kwargs):
        if not args:
            raise TypeError("tensor_jacobian_product: call with the function's "
                            "arguments followed by the tensor")
        *primals, tensor = args
        primals = tuple(primals)
        rec = record(fun, primals, argnum, kwargs)
        out = rec.out
        if not isinstance(out, (tuple, list, dict)) and \
                np.shape(value_of(tensor)) == shape_of(out):
            return rec.vjp(tensor)
        axes = np.ndim(value_of(tensor))

        def contracted(*xs, **kw):
            return fnp.tensordot(tensor, fun(*xs, **kw), axes=axes)
        return jacobian(contracted, argnum)(*primals, **kwargs)
    return product


vector_jacobian_product = tensor_jacobian_product


def multigrad_dict(fun):
    """Return a function giving the gradient of ``fun`` with respect to every
    argument at once, as a dict from parameter name to gradient, in the order of the
    parameters (defaults included; ``*args`` gives a tuple, ``**kwargs`` a dict)."""
    signature = inspect.signature(fun)
    parameters = signature.parameters

    def call(arguments):
        positional, keywords = [], {}
        for name, p in parameters.items():
            if p.kind is p.VAR_POSITIONAL:
                positional.extend(arguments[name])
            elif p.kind is p.VAR_KEYWORD:
                keywords.update(arguments[name])
            elif p.kind is p.KEYWORD_ONLY:
                keywords[name] = arguments[name]
            else:
                positional.append(arguments[name])
        return fun(*positional, **keywords)

    def multigrad_fun(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        gradients = grad(call)(arguments)
        return collections.OrderedDict((name, gradients[name]) for name in arguments)
    return multigrad_fun


def grad_and_aux(fun, argnum=0, *, argnums=None):
    """For ``fun`` returning ``(value, aux)``: a function returning ``(gradient of
    value, aux)``, aux unchanged (its numbers as plain values, as the value of
    ``value_and_grad``)."""
    argnum = resolve_argnum(argnum, argnums, "grad_and_aux")

    @functools.wraps(fun)
    def grad_and_aux_fun(*args, **kwargs):
        rec = Recording(fun, args, argnum, kwargs, POOLED)
        try:
            out = rec.out
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"grad_and_aux: {getattr(fun, '__name__', 'fun')} must "
                                f"return a pair (value, aux), not {type(out).__name__}")
            value = out[0]
            if isinstance(value, (tuple, list, dict)) or \
                    int(np.prod(shape_of(value))) != 1:
                raise TypeError("grad_and_aux: the value (first output) must be a "
                                "scalar")
            # cotangent: ones for the value, zeros for aux
            n_value = 1
            seeds = [np.ones(shape_of(value)) if shape_of(value) else 1.0] + [
                zeros_of(o) if type(o) in VARIABLE_TYPES else 0.0
                for o in rec.out_flat[n_value:]]
            gradient = rec.vjp(rec.out_structure.rebuild(seeds))
            return gradient, rec.value()[1]
        finally:
            rec.release()
    return grad_and_aux_fun
