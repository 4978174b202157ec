"""numpy.fft, differentiable: fft ifft fft2 ifft2 fftn ifftn rfft irfft rfft2 irfft2
rfftn irfftn fftshift ifftshift, with n / s, axis / axes and norm.

Each transform of Variables is ONE tape node (fasttape._rule_nodes.rule_node) whose
operands are the real parts of its input (the real and imaginary parts of a
fasttape._complex.ComplexArray, or one real array) and whose value is the result's
real and imaginary parts stacked, shape (2, ...) (split again into a ComplexArray by
two views); a real result (irfft) is itself. The value and each rule cost one FFT of
the whole block (NumPy's pocketfft), and the rules are written with these same
functions, so that they are recorded when a derivative is differentiated again.

The rules, for the natural real adjoint (the cotangent of a complex value is
g_re + i g_im with <g, dy> = Re sum(conj(g) dy)):

- complex transforms are linear, y = F(P x) (P pads or truncates to s); the adjoint
  of fftn with norm N is ifftn with the dual norm (backward <-> forward, ortho
  itself), then P^T (truncate or zero-pad back): x_bar = P^T ifftn(y_bar, dual N);
- rfftn keeps the first n//2 + 1 outputs of the last axis: x_bar = P^T irfftn(c y_bar,
  s, dual N) with c = 1 at 0 and at n/2 (even n) and 1/2 elsewhere (irfftn counts the
  other half of the spectrum twice);
- irfftn reads Y's last axis as half a Hermitian spectrum: Y_bar = P^T (c' rfftn(y_bar,
  dual N)) with c' = 1 at 0 and at n/2 (even n) and 2 elsewhere.
Tangents are the transforms themselves (they are linear).
"""
import numpy as _np
from numpy.fft import *  # noqa: F401,F403  (fftfreq, rfftfreq, ...)

import fasttape.numpy as fnp
from fasttape import _complex
from fasttape._complex import ComplexArray, is_variable, make, split
from fasttape._rule_nodes import operand_slots, rule_node

_DUAL_NORM = {None: "forward", "backward": "forward", "ortho": "ortho",
              "forward": "backward"}


def fft(a, n=None, axis=-1, norm=None):
    return _transform("fft", a, None if n is None else (n,), (axis,), norm)


def ifft(a, n=None, axis=-1, norm=None):
    return _transform("ifft", a, None if n is None else (n,), (axis,), norm)


def rfft(a, n=None, axis=-1, norm=None):
    return _transform("rfft", a, None if n is None else (n,), (axis,), norm)


def irfft(a, n=None, axis=-1, norm=None):
    return _transform("irfft", a, None if n is None else (n,), (axis,), norm)


def fft2(a, s=None, axes=(-2, -1), norm=None):
    return _transform("fft", a, s, axes, norm)


def ifft2(a, s=None, axes=(-2, -1), norm=None):
    return _transform("ifft", a, s, axes, norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None):
    return _transform("rfft", a, s, axes, norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None):
    return _transform("irfft", a, s, axes, norm)


def fftn(a, s=None, axes=None, norm=None):
    return _transform("fft", a, s, axes, norm)


def ifftn(a, s=None, axes=None, norm=None):
    return _transform("ifft", a, s, axes, norm)


def rfftn(a, s=None, axes=None, norm=None):
    return _transform("rfft", a, s, axes, norm)


def irfftn(a, s=None, axes=None, norm=None):
    return _transform("irfft", a, s, axes, norm)


def fftshift(x, axes=None):
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    return _shift(x, axes, -1)


def _shift(x, axes, sign):
    """np.fft.fftshift / ifftshift: a roll of each axis by half its length."""
    if not (is_variable(x) or type(x) is ComplexArray):
        return (_np.fft.fftshift if sign > 0 else _np.fft.ifftshift)(x, axes)
    shape = x.shape
    if axes is None:
        axes = tuple(range(len(shape)))
    elif isinstance(axes, int):
        axes = (axes,)
    shifts = [sign * (shape[ax] // 2) for ax in axes]
    if type(x) is ComplexArray:
        return _complex.roll(x, shifts, tuple(axes))
    return fnp.roll(x, shifts, tuple(axes))


# -- the transforms -------------------------------------------------------------------------

_NUMPY = {"fft": _np.fft.fftn, "ifft": _np.fft.ifftn, "rfft": _np.fft.rfftn,
          "irfft": _np.fft.irfftn}


_ONE_AXIS = {"fft": _np.fft.fft, "ifft": _np.fft.ifft, "rfft": _np.fft.rfft,
             "irfft": _np.fft.irfft}


def _lengths(kind, shape, s, axes):
    """(s, axes) as NumPy's n-dimensional transforms take them, every length known."""
    ndim = len(shape)
    if axes is None:
        axes = tuple(range(ndim)) if s is None else tuple(range(ndim - len(s), ndim))
    for ax in axes:
        if not -ndim <= int(ax) < ndim:
            raise _np.exceptions.AxisError(int(ax), ndim)
    axes = tuple(int(ax) % ndim for ax in axes)
    if s is None:
        s = [shape[ax] for ax in axes]
        if kind == "irfft":
            s[-1] = 2 * (shape[axes[-1]] - 1)
    else:
        if len(s) != len(axes):
            raise ValueError("shape and axes have different lengths")
        full = [shape[ax] if n is None or n == -1 else int(n) for n, ax in zip(s, axes)]
        if kind == "irfft" and (s[-1] is None or s[-1] == -1):
            full[-1] = 2 * (shape[axes[-1]] - 1)
        s = full
    for n in s:
        if n < 1:
            raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return tuple(s), axes


def _transform(kind, a, s, axes, norm):
    """One of the four n-dimensional transforms of a (plain values: NumPy's)."""
    if isinstance(a, (list, tuple)):
        a = fnp.array(a) if fnp._holds_variables(a) else _np.asarray(a)
    re, im = split(a) if type(a) is ComplexArray or is_variable(a) else (None, None)
    if not is_variable(re) and not is_variable(im):
        plain = a.value if type(a) is ComplexArray else a
        if axes is not None and len(axes) == 1:
            return _ONE_AXIS[kind](plain, None if s is None else s[0], axes[0], norm)
        return _NUMPY[kind](plain, s=s, axes=axes, norm=norm)
    if norm not in _DUAL_NORM:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" '
                         f'or "forward".')
    if kind == "rfft" and im is not None:
        raise TypeError("rfft of a complex array: use fft (rfft takes real input)")
    in_shape = _np.shape(_complex._plain(a))
    s, axes = _lengths(kind, in_shape, s, axes)
    operands = [p for p in (re, im) if is_variable(p)]
    node = _transform_node(kind, s, axes, norm, in_shape,
                           tuple(j == 0 for j, p in enumerate((re, im)) if is_variable(p)),
                           None if is_variable(re) else re,
                           None if is_variable(im) else im, *operands)
    return node if kind == "irfft" else make(node[0], node[1])


def _transform_node(kind, s, axes, norm, in_shape, which, constant_re, constant_im,
                    *operands):
    """The node of one transform (s and axes complete): operands are the input's real
    parts that are Variables (which[j]: operand j is the real part, else the
    imaginary part), the constant parts are given; its value is the result's parts
    stacked (the real result of irfft). Also the recipe that records it again (a
    pickled tape)."""
    numpy_transform = _NUMPY[kind]

    def input_of(values):
        """The complex (or real) input from the operands' values and the constants."""
        parts = dict(zip(which, values))
        r = parts.get(True, constant_re)
        i = parts.get(False, constant_im)
        if i is None:
            return _np.asarray(r if r is not None else 0.0, dtype=float)
        return _np.asarray(r if r is not None else 0.0) + 1j * _np.asarray(i)

    def evaluate(*values):
        if len(axes) == 1:       # (NumPy's 1-d functions: fftn's loop costs more)
            y = _ONE_AXIS[kind](input_of(values), s[0], axes[0], norm)
        else:
            y = numpy_transform(input_of(values), s=s, axes=axes, norm=norm)
        return _np.stack([y.real, y.imag]) if kind != "irfft" else y

    def forward_rule(tangents, ans, *values):
        t_re = t_im = None
        for t, is_re in zip(tangents, which):
            if is_re:
                t_re = t
            else:
                t_im = t
        if t_re is None and t_im is None:
            return _np.zeros(_np.shape(ans))
        if kind == "rfft":
            return _stacked(_transform("rfft", t_re, s, axes, norm))
        tangent = make(t_re, t_im) if t_im is not None else t_re
        result = _transform(kind, tangent, s, axes, norm)
        return result if kind == "irfft" else _stacked(result)

    def reverse_rule(g, ans, *values):
        dual = _DUAL_NORM[norm]
        if kind == "irfft":
            spectrum = _transform("rfft", g, None, axes, dual)
            spectrum = _complex.multiply(spectrum, _weights(s, axes, len(in_shape), 2.0))
        else:
            g_complex = make(g[0], g[1])
            if kind == "rfft":
                g_complex = _complex.multiply(g_complex,
                                              _weights(s, axes, len(in_shape), 0.5))
                spectrum = _transform("irfft", g_complex, s, axes, dual)
            else:
                spectrum = _transform("ifft" if kind == "fft" else "fft", g_complex,
                                      None, axes, dual)
        x_bar = _fit(spectrum, in_shape, axes)
        if type(x_bar) is _np.ndarray:          # (plain numbers: the parts as views)
            return [x_bar.real if is_re else _np.imag(x_bar) for is_re in which]
        return [_complex.real(x_bar) if is_re else _complex.imag(x_bar)
                for is_re in which]

    value = evaluate(*[p.value for p in operands])
    recipe = (_transform_node, (kind, s, axes, norm, in_shape, which, constant_re,
                                constant_im) + operand_slots(len(operands)), {})
    return rule_node(list(operands), value, reverse_rule, forward_rule, evaluate, recipe)


def _stacked(z):
    """A complex value's parts stacked: shape (2, ...)."""
    if type(z) is ComplexArray:
        return fnp.stack([z.real, z.imag])
    z = _np.asarray(z)
    return _np.stack([z.real, _np.imag(z) if z.dtype.kind == "c" else _np.zeros(z.shape)])


def _weights(s, axes, ndim, inner):
    """Along the last transformed axis (n = s[-1] points, n//2 + 1 kept): 1 at 0 and at
    n/2 for even n, `inner` elsewhere; shaped to broadcast."""
    n = s[-1]
    w = _np.full(n // 2 + 1, inner)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    shape = [1] * ndim
    shape[axes[-1]] = w.size
    return w.reshape(shape)


def _fit(z, shape, axes):
    """z truncated or zero-padded along `axes` to `shape` (the transpose of what the
    transforms do to their input)."""
    for ax in axes:
        length = shape[ax]
        current = z.shape[ax] if type(z) is ComplexArray or is_variable(z) else \
            _np.shape(z)[ax]
        if current > length:
            index = (slice(None),) * ax + (slice(0, length),)
            z = z[index]
        elif current < length:
            pad_shape = list(z.shape if type(z) is ComplexArray or is_variable(z)
                             else _np.shape(z))
            pad_shape[ax] = length - current
            zeros = _np.zeros(pad_shape)
            if type(z) is ComplexArray:
                z = _complex.concatenate([z, zeros], axis=ax)
            else:
                z = fnp.concatenate([z, zeros], axis=ax)
    return z


# the dispatch table for plain NumPy calls on Variables and ComplexArrays (registered
# with fasttape._arrays and fasttape._complex by fasttape._wiring)
_FUNCTIONS = {getattr(_np.fft, f.__name__): f
              for f in (fft, ifft, fft2, ifft2, fftn, ifftn, rfft, irfft, rfft2, irfft2,
                        rfftn, irfftn, fftshift, ifftshift)}
