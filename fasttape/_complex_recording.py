"""Differentiating functions of complex arguments or with complex outputs.

A complex argument is recorded as two real leaves (its real and imaginary parts) and
the function is called with a fasttape._complex.ComplexArray of them; a complex
output is swept as its two real parts. ``ComplexRecording`` wraps the real Recording
(fasttape._recording) with these conversions; ``record`` hands over to it (the hook
``register_complex_recording``, filled by fasttape._wiring) when an argument turns out
to be complex or the output holds a complex value, so that real functions pay
nothing for it.

Conventions (autograd's, which JAX's grad shares for real outputs):

- the gradient of a real f of z = x + iy is df/dx - i df/dy (grad(|z|^2) = 2 conj z);
- a vector-Jacobian product maps covectors to covectors, a covector being the
  conjugate of a natural cotangent: vjp(g) = conj(J_R^T conj(g)) in the real
  representation, so that vjp(1.0) is the gradient above; a real input's entry is
  the real part (real inputs get real gradients);
- a Jacobian-vector product is the plain complex tangent of the output;
- ``holomorphic_grad(f)(z) = f'(z)`` (= grad of Re f); grad of a complex output is an
  error naming holomorphic_grad;
- Jacobians follow JAX's jacfwd/jacrev (whichever the sweep, from the Jacobian of the
  real parts): a complex input's columns of a real output are gradients, a complex
  output's rows for a real input are tangents, and complex to complex needs
  holomorphic=True (then df/dz).
"""
import functools
import warnings

import numpy as np

from fasttape import _complex
from fasttape._complex import ComplexArray, is_complex_value, is_variable, make, split
from fasttape._containers import LEAF_STRUCTURE, flatten
from fasttape._recording import POOLED, Recording, argnums_of, record, resolve_argnum


class ComplexRecording:
    """A Recording (``rec``) of ``fun`` made of real parts.

    ``inputs``: per differentiated argument, (structure, complex flags of its flat
    leaves), or None when no argument is complex; ``outputs``: (structure, flags) of
    the output when it holds a complex value, else None. The wrapped recording's
    differentiated arguments are flat lists of real parts, and its output, when
    ``outputs`` is set, a flat list of real parts too."""

    def __init__(self, rec, inputs, outputs):
        self.rec = rec
        self.inputs = inputs
        self.outputs = outputs
        self.fun = rec.fun
        self.argnum = rec.argnum

    # -- what the differential operators use --------------------------------------------

    @property
    def tape(self):
        return self.rec.tape

    @property
    def nested(self):
        return self.rec.nested

    @property
    def out(self):
        return self.value() if not self.rec.nested else self._merged_output(self.rec.out)

    def release(self):
        self.rec.release()

    def value(self):
        return self._merged_output(self.rec.value())

    def value_and_grad(self, ones_seed=False):
        if self.outputs is not None:
            if not ones_seed:
                name = getattr(self.fun, "__name__", repr(self.fun))
                raise TypeError(
                    f"grad requires {name} to return a real scalar; it returned a "
                    f"complex value. Use holomorphic_grad for a holomorphic function, "
                    f"or differentiate a real quantity (np.real(f), np.abs(f), ...).")
            value = self.value()
            return value, self.vjp(_ones_like(value))
        value, gradient = self.rec.value_and_grad(ones_seed)
        return value, self._merged_inputs(gradient, conjugate=True)

    def vjp(self, cotangent):
        if self.outputs is not None:
            structure, flags = self.outputs
            flat, _ = flatten(cotangent, variables=True)
            if len(flat) != len(flags):
                raise ValueError("the cotangent does not have the structure of the "
                                 "output")
            seeds = []
            for c, is_complex in zip(flat, flags):
                re, im = split(c)
                if is_complex:
                    # the covector's conjugate seeds the imaginary part
                    seeds.extend([_or_zero(re, im), _negated(im, re)])
                else:
                    seeds.append(_or_zero(re, im))
            cotangent = seeds
        return self._merged_inputs(self.rec.vjp(cotangent), conjugate=True)

    def jvp(self, tangent):
        if self.inputs is not None:
            if type(self.argnum) is int:
                tangent = _split_values(tangent, *self.inputs[0])
            else:
                tangent = tuple(_split_values(t, *info)
                                for t, info in zip(tangent, self.inputs))
        return self._merged_output(self.rec.jvp(tangent))

    def jacobian(self, mode, holomorphic=False):
        """The Jacobian with JAX's conventions (jacfwd, jacrev): a real output's row
        for a complex input is the gradient, df/dx - i df/dy; a complex output's
        column for a real input is d Re f/dx + i d Im f/dx; a complex output of a
        complex input needs holomorphic=True and is then df/dz (= d f/dx). Assembled
        from the Jacobian of the real parts (by `mode`, as for real functions)."""
        if self.inputs is None and self.outputs is None:
            return self.rec.jacobian(mode, holomorphic)
        if type(self.argnum) is not int:
            raise TypeError("a Jacobian is taken with respect to one argument (an int "
                            "argnum)")
        in_flags = self.inputs[0][1] if self.inputs is not None else \
            [False] * len(self.rec.leaves)
        out_flags = self.outputs[1] if self.outputs is not None else \
            [False] * len(self.rec.out_flat)
        name = getattr(self.fun, "__name__", repr(self.fun))
        if holomorphic and not all(in_flags):
            raise TypeError(f"jacobian of {name} with holomorphic=True requires complex "
                            f"inputs")
        if any(out_flags) and any(in_flags) and not holomorphic:
            raise TypeError(
                f"jacobian of {name}: a complex output of a complex input has no "
                f"complex Jacobian unless the function is holomorphic (then pass "
                f"holomorphic=True); for a non-holomorphic function use make_jvp or "
                f"make_vjp, or differentiate the real and imaginary parts as real "
                f"arguments")
        real = self.rec.jacobian_matrix(mode)   # (real output parts, input parts)
        rows = _part_ranges([_shape(v) for v in self.rec.out_flat], out_flags)
        columns = _part_ranges([_shape(v) for v in self.rec.leaves], in_flags)
        blocks = []
        for (r0, r1, ri), out_complex in zip(rows, out_flags):
            row = []
            for (c0, c1, ci), in_complex in zip(columns, in_flags):
                block = real[r0:r1, c0:c1]
                if out_complex:       # d Re f/dx + i d Im f/dx (holomorphic: df/dz)
                    block = make(block, real[ri:ri + r1 - r0, c0:c1])
                elif in_complex:      # the gradient: df/dx - i df/dy
                    block = make(block, -real[r0:r1, ci:ci + c1 - c0])
                row.append(block)
            blocks.append(_complex.concatenate(row, axis=1) if len(row) > 1 else row[0])
        full = _complex.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
        out_structure = self.outputs[0] if self.outputs is not None else \
            self.rec.out_structure
        in_structure = self.inputs[0][0] if self.inputs is not None else \
            self.rec.structures[0]
        if len(rows) == 1 and len(columns) == 1 and out_structure is LEAF_STRUCTURE \
                and in_structure is LEAF_STRUCTURE:
            shape = _shape(self.rec.out_flat[0]) + _shape(self.rec.leaves[0])
            return _complex.reshape(full, shape)
        return full

    def hvp(self, directions):
        return None

    # -- conversions ----------------------------------------------------------------------

    def _merged_output(self, parts):
        if self.outputs is None:
            return parts
        structure, flags = self.outputs
        return structure.rebuild(_merged(list(parts), flags, conjugate=False))

    def _merged_inputs(self, gradient, conjugate):
        if self.inputs is None:
            return gradient
        if type(self.argnum) is int:
            structure, flags = self.inputs[0]
            return structure.rebuild(_merged(list(gradient), flags, conjugate))
        return tuple(structure.rebuild(_merged(list(g), flags, conjugate))
                     for g, (structure, flags) in zip(gradient, self.inputs))


def _shape(x):
    return np.shape(x.value if is_variable(x) else x)


def _part_ranges(shapes, flags):
    """Per value of a flat list (flags: complex), the rows (or columns) of its parts
    in the real Jacobian: (start, end, start of the imaginary part)."""
    ranges, k, start = [], 0, 0
    for is_complex in flags:
        size = int(np.prod(shapes[k], dtype=np.int64))
        ranges.append((start, start + size, start + size))
        start += 2 * size if is_complex else size
        k += 2 if is_complex else 1
    return ranges


def _or_zero(re, im):
    if re is not None:
        return re
    return np.zeros(np.shape(im.value if is_variable(im) else im)) \
        if np.ndim(im.value if is_variable(im) else im) else 0.0


def _negated(im, re):
    return -im if im is not None else _or_zero(None, re)


def _ones_like(value):
    return np.ones(np.shape(value)) if np.ndim(value) else 1.0


def _split_values(x, structure, flags):
    """A value of an argument's structure as the flat list of real parts."""
    flat, _ = flatten(x, variables=True)
    if len(flat) != len(flags):
        raise ValueError("the tangent does not have the structure of the inputs")
    parts = []
    for v, is_complex in zip(flat, flags):
        re, im = split(v)
        parts.append(_or_zero(re, im))
        if is_complex:
            parts.append(_or_zero(im, re))
    return parts


def _merged(parts, flags, conjugate):
    """The flat real parts back into values: re + i im (re - i im with conjugate) for
    each complex flag (a ComplexArray when they are Variables)."""
    merged = []
    k = 0
    for is_complex in flags:
        if is_complex:
            re, im = parts[k], parts[k + 1]
            merged.append(make(re, -im if conjugate else im))
            k += 2
        else:
            merged.append(parts[k])
            k += 1
    return merged


def _split_flat(flat):
    """(flat real parts, complex flags) of flat values."""
    parts, flags = [], []
    for v in flat:
        is_complex = is_complex_value(v)
        flags.append(is_complex)
        if is_complex:
            re, im = split(v)
            parts.append(_or_zero(re, im))
            parts.append(_or_zero(im, re))
        else:
            parts.append(v)
    return parts, flags


# -- the hooks in fasttape._recording ------------------------------------------------------------

def holds_complex(args, argnum):
    """True if a differentiated argument holds a complex value."""
    try:
        argnums = argnums_of(None, argnum, args)
    except TypeError:
        return False
    for i in argnums:
        flat, _ = flatten(args[i], variables=True)
        if any(is_complex_value(v) for v in flat):
            return True
    return False


def record_complex(fun, args, argnum, kwargs, tape):
    """Record fun with each complex argument as two real leaves."""
    argnums = argnums_of(fun, argnum, args)
    inputs = []
    call_args = list(args)
    for i in argnums:
        flat, structure = flatten(args[i], variables=True)
        parts, flags = _split_flat(flat)
        inputs.append((structure, flags))
        call_args[i] = parts
    outputs = []

    @functools.wraps(fun)
    def on_parts(*parts_args, **kw):
        full = list(parts_args)
        for i, (structure, flags) in zip(argnums, inputs):
            full[i] = structure.rebuild(_merged(list(parts_args[i]), flags, False))
        out = fun(*full, **kw)
        split_out = _split_output(out)
        if split_out is None:
            return out
        parts, structure, flags = split_out
        outputs.append((structure, flags))
        return parts

    rec = Recording(on_parts, call_args, argnum, kwargs, tape)
    rec.fun = fun
    return ComplexRecording(rec, inputs, outputs[0] if outputs else None)


def complex_outputs(rec):
    """rec itself when its output is real, else a ComplexRecording sweeping its real
    parts."""
    split_out = _split_output(rec.out)
    if split_out is None:
        return rec
    parts, structure, flags = split_out
    rec.out = parts
    rec._out_flat = None
    return ComplexRecording(rec, None, (structure, flags))


def _split_output(out):
    """(flat real parts, structure, flags) of an output holding a complex value, or
    None."""
    if type(out) is not ComplexArray and not isinstance(out, (list, tuple, dict)) and \
            not is_complex_value(out):
        return None
    flat, structure = flatten(out, variables=True)
    if not any(is_complex_value(v) for v in flat):
        return None
    parts, flags = _split_flat(flat)
    return parts, structure, flags


# -- holomorphic_grad ------------------------------------------------------------------------

def holomorphic_grad(fun, argnum=0, *, argnums=None):
    """Return a function computing f'(z) of a holomorphic ``fun`` with a complex scalar
    output (autograd's holomorphic_grad): the vector-Jacobian product with 1, which
    under fasttape's (autograd's) convention is d Re f/dx - i d Re f/dy = f'(z)."""
    argnum = resolve_argnum(argnum, argnums, "holomorphic_grad")

    @functools.wraps(fun)
    def holomorphic_grad_fun(*args, **kwargs):
        differentiated = args[argnum] if type(argnum) is int else \
            [args[i] for i in argnum]
        if not np.iscomplexobj(_plain_values(differentiated)):
            warnings.warn("Input to holomorphic_grad is not complex", stacklevel=2)
        rec = record(fun, args, argnum, kwargs, POOLED)
        try:
            value = rec.out if rec.nested else rec.value()
            plain = value.value if type(value) is ComplexArray or is_variable(value) \
                else value
            if np.size(plain) != 1:
                raise TypeError(f"holomorphic_grad requires "
                                f"{getattr(fun, '__name__', fun)} to return a scalar")
            kind = complex if np.iscomplexobj(plain) else float
            seed = np.ones(np.shape(plain), dtype=kind) if np.ndim(plain) else kind(1.0)
            return rec.vjp(seed)
        finally:
            rec.release()
    return holomorphic_grad_fun


def _plain_values(x):
    """x's numbers (for a look at their type): Variables' values, complex values'
    parts combined."""
    if type(x) is ComplexArray:
        return np.asarray(x.value)
    if is_variable(x):
        return np.asarray(x.value)
    if isinstance(x, (list, tuple)):
        return np.array([np.asarray(_plain_values(v)).ravel()[0] if np.size(
            _plain_values(v)) else 0.0 for v in x]) if x else np.zeros(0)
    return np.asarray(x)
