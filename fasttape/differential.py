"""Differential operators: ``grad`` and ``value_and_grad`` (autograd's spelling).

Each call records the function on a tape from this thread's pool, sweeps it once in
reverse, reads the gradients and resets the tape for the next call.
"""
import functools
import numbers
import warnings

import numpy as np

from fasttape._containers import LEAF_STRUCTURE, Structure, flatten
from fasttape._tape import acquire_tape, release_tape
from fasttape._variable import Variable, make_leaf, make_leaves, sweep_adjoints


def value_and_grad(fun, argnum=0):
    """Return a function computing ``(fun(*args), gradient)`` in one pass.

    Parameters
    ----------
    fun : callable
        Returns a scalar (a float, or a Variable computed from its arguments).
    argnum : int or tuple of int
        Which positional argument to differentiate; a tuple gives a tuple of
        gradients. An argument may be a number or a (nested) tuple, list or dict of
        numbers; its gradient has the same structure, with float entries.

    Returns
    -------
    callable
        ``value_and_grad(fun)(*args, **kwargs) -> (value, gradient)``
    """
    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs)
    return value_and_grad_fun


def grad(fun, argnum=0):
    """Return a function computing the gradient of ``fun`` by reverse mode.

    ``grad(f)(x)`` is df/dx at x; see ``value_and_grad`` for the parameters. Integer
    inputs are differentiated as floats. A function whose result does not depend on
    its inputs has a zero gradient (with a warning, as autograd).

    Examples
    --------
    >>> from fasttape import grad, sin
    >>> grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0)
    (2.5838531634528574, 2.0)
    """
    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        return _value_and_grad(fun, argnum, args, kwargs)[1]
    return grad_fun


def _value_and_grad(fun, argnum, args, kwargs):
    single = type(argnum) is int
    argnums = (argnum,) if single else tuple(argnum)
    n_args = len(args)
    for i in argnums:
        if type(i) is not int or not -n_args <= i < n_args:
            raise TypeError(f"argnum {i!r} does not name one of the {n_args} positional "
                            f"arguments of {getattr(fun, '__name__', fun)!r}")
    tape = acquire_tape()
    try:
        call_args = list(args)
        structures = []
        leaves = []
        for i in argnums:
            x = args[i]
            if type(x) is float:
                # the fast paths: a number, or a flat list or tuple of numbers
                arg_leaves = [make_leaf(tape, x)]
                structure = LEAF_STRUCTURE
            elif (type(x) is list or type(x) is tuple) and (
                    arg_leaves := make_leaves(tape, x)) is not None:
                structure = Structure.flat(type(x), len(x))
            else:
                flat, structure = flatten(x)
                arg_leaves = make_leaves(tape, flat)
            call_args[i] = structure.rebuild(arg_leaves)
            structures.append(structure)
            leaves.extend(arg_leaves)
        out = fun(*call_args, **kwargs)
        if type(out) is Variable:
            value, flat_grads = sweep_adjoints(tape, out, leaves)
        else:
            value = _constant_output(fun, out)
            flat_grads = [0.0] * len(leaves)
    finally:
        release_tape(tape)
    if single:
        return value, structures[0].rebuild(flat_grads)
    grads = []
    start = 0
    for structure in structures:
        grads.append(structure.rebuild(flat_grads[start:start + structure.n_leaves]))
        start += structure.n_leaves
    return value, tuple(grads)


def _constant_output(fun, out):
    """The value of an output that is not a Variable, or a TypeError saying why not."""
    name = getattr(fun, "__name__", repr(fun))
    if isinstance(out, np.ndarray) and out.shape == ():
        out = out[()]
        if type(out) is Variable:
            raise TypeError(f"{name} returned a 0-d array holding a Variable; "
                            f"return the Variable itself")
    if isinstance(out, numbers.Real):
        warnings.warn(f"Output of {name} seems independent of its input: "
                      f"the gradient is zero", stacklevel=4)
        return float(out)
    if isinstance(out, (list, tuple, dict, np.ndarray)):
        size = len(out) if not isinstance(out, np.ndarray) else out.shape
        raise TypeError(
            f"grad requires {name} to return a scalar; it returned a "
            f"{type(out).__name__} of {'shape' if isinstance(out, np.ndarray) else 'length'} "
            f"{size}. Differentiate one output at a time (or sum them).")
    raise TypeError(f"grad requires {name} to return a real scalar (a float or a "
                    f"Variable); it returned {type(out).__name__}")
