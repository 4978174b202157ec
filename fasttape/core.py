"""autograd's core-level names, for code written against ``autograd.core`` and
``autograd.wrap_util``: operators of one argument (``make_vjp(fun, x)``), the
decorator that makes them operators of any argument (``unary_to_nary``), and the
primitive machinery of fasttape.extend.

fasttape's own operators (``fasttape.make_vjp(fun, argnum)`` and the rest) are the
ones to use in new code; these are for code that defines its own operators the way
autograd's differential_operators module does."""
import functools

from fasttape.differential import make_jvp as _make_jvp_of_argnum
from fasttape.differential import make_vjp as _make_vjp_of_argnum
from fasttape.extend import (defjvp, defjvp_argnum, defjvp_argnums, defvjp,  # noqa: F401
                             defvjp_argnum, defvjp_argnums, notrace_primitive,
                             primitive, primitive_vjps, vspace, VSpace)


def make_vjp(fun, x):
    """``(vjp, value)`` of a function of one argument at x: ``vjp(g)`` is the
    gradient of ``<g, fun>`` at x (the function is recorded once)."""
    return _make_vjp_of_argnum(fun)(x)


def make_jvp(fun, x):
    """A function of a tangent of x giving ``(value, tangent of fun(x))``: forward
    mode at x (the function is recorded once)."""
    return _make_jvp_of_argnum(fun)(x)


def unary_to_nary(unary_operator):
    """From an operator of functions of one argument, ``unary_operator(fun, x,
    *options)``, an operator of functions of many, ``nary_operator(fun, argnum=0,
    *options)``: applied to ``fun`` and called with arguments, it applies
    ``unary_operator`` to ``fun`` seen as a function of argument ``argnum`` alone (of
    a tuple of them when ``argnum`` is a tuple), the others held at the call's
    values."""
    @functools.wraps(unary_operator)
    def nary_operator(fun, argnum=0, *nary_op_args, **nary_op_kwargs):
        @functools.wraps(fun)
        def nary_f(*args, **kwargs):
            several = isinstance(argnum, tuple)

            def unary_f(x):
                subargs = list(args)
                for i, value in zip(argnum if several else (argnum,),
                                    x if several else (x,)):
                    subargs[i] = value
                return fun(*subargs, **kwargs)

            x = tuple(args[i] for i in argnum) if several else args[argnum]
            return unary_operator(unary_f, x, *nary_op_args, **nary_op_kwargs)
        return nary_f
    return nary_operator
