"""Differential operators, in autograd's and JAX's spellings.

Every operator is a few lines on one recording (fasttape._recording): ``record`` the
function once at the given arguments, then sweep the recording in reverse (grad, vjp,
jacrev: one sweep per output element), forward (jvp, jacfwd: one tangent sweep per
input direction) or forward over reverse (hessian, hvp). A recording goes on the
thread's pooled tape (grad and friends, reset when the operator returns), on a tape of
its own (make_vjp, make_jvp, jacobian: kept alive by the returned function), or, when
the arguments are Variables of an enclosing computation (grad of grad, hessian, jvp of
grad), on the enclosing tape itself, where its sweeps record their own operations.
"""
import functools

import numpy as np

from fasttape import _recording
from fasttape._arrays import frozen, holds_variables
from fasttape._containers import flatten
from fasttape._recording import (POOLED, SCRATCH, VARIABLE_TYPES, hessian_vectors,
                                 record, value_of)
from fasttape._references import find_global, load_global, reduce_by_reference
from fasttape._rule_nodes import rule_node
from fasttape._tape_pools import active_tape
from fasttape._tape_state import OperandSlot
from fasttape._variable import scalar_value_and_grad


# -- gradients ------------------------------------------------------------------------

def value_and_grad(fun, argnum=0):
    """Return a function computing ``(fun(*args), gradient)`` in one pass.

    Parameters
    ----------
    fun : callable
        Returns a scalar: a float, a Variable computed from its arguments, or a
        one-element array.
    argnum : int or tuple of int
        Which positional argument to differentiate; a tuple gives a tuple of
        gradients. An argument may be a number, an array, or a (nested) tuple, list or
        dict of them; its gradient has the same structure, with float entries and
        float64 arrays of the same shapes.

    Returns
    -------
    callable
        ``value_and_grad(fun)(*args, **kwargs) -> (value, gradient)``
    """
    argnums, single = _normalized(argnum)

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        result = scalar_value_and_grad(fun, argnums, single, args, kwargs)
        if result is NotImplemented:
            rec = record(fun, args, argnum, kwargs, POOLED)
            try:
                return rec.value_and_grad()
            finally:
                rec.release()
        return result
    return value_and_grad_fun


def grad(fun, argnum=0):
    """Return a function computing the gradient of ``fun`` by reverse mode.

    ``grad(f)(x)`` is df/dx at x; see ``value_and_grad`` for the parameters. Integer
    inputs are differentiated as floats. A function whose result does not depend on
    its inputs has a zero gradient (with a warning, as autograd). Applied to
    Variables (inside another differentiation), the gradient is itself recorded and
    can be differentiated again: ``grad(grad(f))``.

    Examples
    --------
    >>> from fasttape import grad, sin
    >>> grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0)
    (2.5838531634528574, 2.0)
    """
    argnums, single = _normalized(argnum)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        result = scalar_value_and_grad(fun, argnums, single, args, kwargs)
        if result is NotImplemented:
            rec = record(fun, args, argnum, kwargs, POOLED)
            try:
                return rec.value_and_grad()[1]
            finally:
                rec.release()
        return result[1]
    return grad_fun


def _normalized(argnum):
    """(argnums tuple, single) for the fast path; an invalid argnum gives None, so
    that the general path reports it."""
    if type(argnum) is int:
        return (argnum,), True
    if isinstance(argnum, (tuple, list)) and all(type(i) is int for i in argnum):
        return tuple(argnum), False
    return None, False


def elementwise_grad(fun, argnum=0):
    """Return a function computing the sum over the outputs of their gradients: the
    vector-Jacobian product with a vector of ones. For a function that acts
    elementwise this is the derivative of each output element at its input element."""
    @functools.wraps(fun)
    def elementwise_grad_fun(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs, POOLED)
        try:
            return rec.value_and_grad(ones_seed=True)[1]
        finally:
            rec.release()
    return elementwise_grad_fun


# -- vector-Jacobian and Jacobian-vector products --------------------------------------

def make_vjp(fun, argnum=0):
    """autograd's ``make_vjp(fun, argnum)(*args) -> (vjp, value)``: the function is
    recorded once; ``vjp(cotangent)`` sweeps it in reverse and returns the gradient
    with respect to argument ``argnum`` of ``<cotangent, fun>``."""
    def vjp_maker(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs)
        return rec.vjp, rec.value()
    return vjp_maker


def vjp(fun, *primals):
    """JAX's ``vjp(fun, *primals) -> (value, vjp_fun)``: ``vjp_fun(cotangent)`` returns
    a tuple with the cotangent of each primal."""
    rec = record(fun, primals, tuple(range(len(primals))))
    return rec.value(), rec.vjp


def make_jvp(fun, argnum=0):
    """autograd's ``make_jvp(fun, argnum)(*args)(tangent) -> (value, jvp)``: the
    function is recorded once; each call with a tangent (of argument ``argnum``'s
    structure) runs one forward (tangent) sweep."""
    def jvp_maker(*args, **kwargs):
        rec = record(fun, args, argnum, kwargs)

        def jvp_fun(tangent):
            return rec.value(), rec.jvp(tangent)
        return jvp_fun
    return jvp_maker


def jvp(fun, primals, tangents):
    """JAX's ``jvp(fun, primals, tangents) -> (value, tangent_out)``: forward mode, one
    tangent sweep. ``primals`` and ``tangents`` are tuples of the same structure."""
    primals = tuple(primals)
    tangents = tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    rec = record(fun, primals, tuple(range(len(primals))))
    return rec.value(), rec.jvp(tangents)


# -- Jacobians and Hessians ---------------------------------------------------------------

def jacrev(fun, argnum=0, holomorphic=False):
    """Jacobian by reverse mode: one reverse sweep per output element. Shape
    ``out.shape + x.shape`` (``J[i..., j...] = d out[i...] / d x[j...]``). Complex
    arguments or outputs: as ``jacobian``."""
    @functools.wraps(fun)
    def jacrev_fun(*args, **kwargs):
        return record(fun, args, _single(argnum), kwargs).jacobian("rev", holomorphic)
    return jacrev_fun


def jacfwd(fun, argnum=0, holomorphic=False):
    """Jacobian by forward mode: one tangent sweep per input element. Complex
    arguments or outputs: as ``jacobian``."""
    @functools.wraps(fun)
    def jacfwd_fun(*args, **kwargs):
        return record(fun, args, _single(argnum), kwargs).jacobian("fwd", holomorphic)
    return jacfwd_fun


def jacobian(fun, argnum=0, holomorphic=False):
    """Return a function computing the Jacobian of ``fun`` with respect to argument
    ``argnum`` (a number or an array): shape ``out.shape + x.shape``.

    The function is recorded once, then swept forward once per input element or in
    reverse once per output element, whichever is fewer.

    Complex values (JAX's jacfwd/jacrev conventions, whichever the mode): for a
    complex input and a real output, each row is the gradient (df/dx - i df/dy, as
    ``grad``); for a real input and a complex output, each column is the complex
    tangent d Re f/dx + i d Im f/dx; a complex output of a complex input requires
    ``holomorphic=True`` (a TypeError otherwise) and gives df/dz. ``holomorphic=True``
    with a real input is a TypeError.
    """
    @functools.wraps(fun)
    def jacobian_fun(*args, **kwargs):
        return record(fun, args, _single(argnum), kwargs).jacobian("auto", holomorphic)
    return jacobian_fun


def hessian(fun, argnum=0, holomorphic=False):
    """Return a function computing the Hessian of a scalar ``fun``: shape
    ``x.shape + x.shape``.

    Complex arguments (JAX's conventions): with ``holomorphic=True``, a holomorphic
    ``fun`` of complex ``x`` with a complex output has the Hessian d^2 f/dz^2 (the
    Jacobian of ``holomorphic_grad``); otherwise a complex argument is a TypeError
    (the Hessian of a real function of complex z is not complex-linear:
    ``hessian_vector_product`` takes complex directions, or differentiate the real and
    imaginary parts as real arguments).

    The Hessian is assembled from forward-over-reverse sweeps in C, one per input
    element, over a tape recorded once (scalar and array operations). Otherwise
    (operations with Python rules: linalg, einsum, custom primitives, checkpoint;
    several array arguments; or inside another differentiation) the gradient is
    recorded (its own reverse sweep lands on the tape) and swept forward once per input
    element.
    """
    if holomorphic:
        return jacobian(_recording.COMPLEX.holomorphic_grad(fun, argnum), argnum,
                        holomorphic=True)
    general = jacfwd(grad(fun, argnum), argnum)

    @functools.wraps(fun)
    def hessian_fun(*args, **kwargs):
        x = args[_single(argnum)]
        if _recording.COMPLEX is not None and \
                _recording.COMPLEX.holds_complex(args, argnum):
            raise TypeError(
                f"hessian of {getattr(fun, '__name__', fun)} with respect to a complex "
                f"argument: pass holomorphic=True for a holomorphic function; for a "
                f"real function of complex values use hessian_vector_product (complex "
                f"directions) or take the real and imaginary parts as real arguments")
        if not kwargs and not holds_variables(x) and active_tape() is None:
            flat, structure = flatten(x)
            if isinstance(x, np.ndarray):              # one array
                units = list(np.eye(x.size).reshape((x.size,) + x.shape))
            elif not any(isinstance(v, np.ndarray) for v in flat):   # numbers
                units = [structure.rebuild(list(row)) for row in np.eye(len(flat))]
            else:                                      # several arrays: general path
                units = None
            columns = None if units is None else \
                hessian_vectors(fun, argnum, args, units)
            if columns is not None and not columns:     # an empty input
                return np.zeros(np.shape(x) + np.shape(x))
            if columns is not None:
                return np.stack([np.asarray(c, dtype=float).reshape(-1)
                                 for c in columns], axis=-1).reshape(
                                     np.shape(x) + np.shape(x))
        return general(*args, **kwargs)
    return hessian_fun


def hessian_vector_product(fun, argnum=0):
    """Return ``hvp(*args, vector, **kwargs)``: the Hessian of ``fun`` with respect to
    argument ``argnum`` times ``vector`` (of that argument's structure), without
    forming the Hessian (autograd's ``hessian_tensor_product``: for an array argument,
    ``tensordot(H, vector, vector.ndim)``).

    A forward-over-reverse pass in C records nothing beyond the function itself;
    functions with Python-rule operations (linalg, einsum, custom primitives,
    checkpoint), and calls inside another differentiation, take one forward sweep over
    the recorded gradient instead. A complex argument takes that path too: the result
    is the derivative of ``grad(fun)`` along the complex ``vector`` (JAX's
    ``jvp(grad(fun), (z,), (vector,))``).
    """
    def hvp_fun(*args, **kwargs):
        if not args:
            raise TypeError("hessian_vector_product: call with the function's "
                            "arguments followed by the vector")
        *primals, vector = args
        primals = tuple(primals)
        if kwargs:
            return hessian_vector_product(functools.partial(fun, **kwargs), argnum)(
                *primals, vector)
        fast = hessian_vectors(fun, argnum, primals, [vector])
        if fast is not None:
            return fast[0]
        return record(grad(fun, argnum), primals, argnum).jvp(vector)
    return hvp_fun


hvp = hessian_vector_product


def _single(argnum):
    if type(argnum) is not int:
        raise TypeError("a Jacobian is taken with respect to one argument (an int argnum)")
    return argnum


# -- checkpointing -------------------------------------------------------------------------

def checkpoint(fun):
    """Return ``fun`` rematerialised: called on Variables, it records ONE node instead
    of every operation inside; the reverse (or tangent) sweep re-runs ``fun`` on a
    temporary tape when it reaches that node. Trades time (``fun`` runs twice) for
    memory (its intermediates are never kept), as ``jax.checkpoint``.

    ``fun`` takes numbers, arrays or Variables as positional arguments (keyword
    arguments are passed on as constants, as autograd's checkpoint does) and returns
    one number or array.
    """
    return Checkpointed(fun)


class Checkpointed:
    """A function checkpointed by ``checkpoint``; pickles by reference (to ``fun``
    where a module binds it, else to itself, as with ``@checkpoint``)."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun

    def __call__(self, *args, **kwargs):
        fun = self.fun
        variables = [a for a in args if type(a) in VARIABLE_TYPES]
        if not variables:
            return fun(*args, **kwargs)
        if holds_variables(kwargs):
            raise TypeError("checkpoint: pass the values to differentiate as positional "
                            "arguments (keyword arguments are constants)")
        positions = [i for i, a in enumerate(args) if type(a) in VARIABLE_TYPES]
        plain = [a.value if type(a) in VARIABLE_TYPES else a for a in args]
        value = fun(*plain, **kwargs)
        # the sweeps call fun again: with the plain arguments as they are now
        plain = [p if type(a) in VARIABLE_TYPES else frozen(p)
                 for a, p in zip(args, plain)]
        kwargs = frozen(kwargs)
        if isinstance(value, (tuple, list, dict)):
            raise TypeError("checkpoint: the function must return one number or array")
        value = float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)

        def call(*operands):
            full = list(plain)
            for i, o in zip(positions, operands):
                full[i] = o
            return fun(*full, **kwargs)

        argnums = tuple(range(len(variables)))

        def reverse(g, ans, *operands):
            rec = record(call, operands, argnums, None, SCRATCH)
            try:
                return list(rec.vjp(g))
            finally:
                rec.release()

        def forward(tangents, ans, *operands):
            zeros = [np.zeros_like(np.asarray(value_of(o), dtype=float)) if t is None
                     else t for t, o in zip(tangents, operands)]
            rec = record(call, operands, argnums, None, SCRATCH)
            try:
                return rec.jvp(tuple(zeros))
            finally:
                rec.release()

        call.__name__ = f"checkpoint({getattr(fun, '__name__', 'a function')})"
        slots = dict(zip(positions, range(len(positions))))
        recipe = (self, tuple(OperandSlot(slots[i]) if i in slots else a
                              for i, a in enumerate(args)), kwargs)
        return rule_node(variables, value, reverse, forward, call, recipe)

    def __reduce__(self):
        found = find_global(self.fun)
        if found is not None:
            return _checkpoint_of_global, found
        return reduce_by_reference(self, f"the checkpointed function "
                                         f"{getattr(self.fun, '__name__', '')}")

    def __repr__(self):
        return f"<fasttape checkpoint of {self.fun!r}>"


def _checkpoint_of_global(module, name):
    """checkpoint(module.name): how a pickled checkpointed function loads."""
    return checkpoint(load_global(module, name))
