"""scipy.signal, differentiable: ``convolve``, generalized (as autograd's) to convolve
some axes of A with some axes of B, contract others (``dot_axes``) and carry the rest
through as an outer product.

One convolution is one tape node. The value is one BLAS contraction of a strided
sliding-window view of the zero-padded A against the flipped B (no per-element
Python). The output is bilinear in (A, B), so both derivatives are convolutions:
the cotangent of A is the cotangent of the output, zero-padded to the 'full' size,
correlated with B (a 'valid' convolution with the flipped B, contracting B's outer
axes), and symmetrically for B; the tangent is conv(tA, B) + conv(A, tB). The rules
call ``convolve`` itself, so they record when differentiated again (every order).
"""
import numpy as _np

import fasttape.numpy as fnp
from fasttape._arrays import ArrayVariable
from fasttape._rule_nodes import operand_slots, rule_node
from fasttape._variable import Variable

_MODES = ("full", "valid", "same")


def _is_variable(x):
    return type(x) is Variable or type(x) is ArrayVariable


def _value(x):
    return x.value if _is_variable(x) else _np.asarray(x, dtype=_np.float64)


class _Layout:
    """Which axes of A and B are convolved (conv_*), contracted (dot_*) or carried
    (ignore_*), and the sizes of the result. The output's axes are A's carried axes,
    then B's carried axes, then the convolved axes (in the order given)."""

    def __init__(self, a_shape, b_shape, axes, dot_axes, mode):
        if mode not in _MODES:
            raise ValueError(f"convolve: mode must be one of {_MODES}, not {mode!r}")
        if axes is None:
            if len(a_shape) != len(b_shape):
                raise ValueError(
                    f"convolve: with axes=None A and B must have as many dimensions "
                    f"(they have {len(a_shape)} and {len(b_shape)})")
            axes = (range(len(a_shape)), range(len(b_shape)))
        self.conv_a, self.conv_b = (self._axes(a, s, "axes") for a, s in
                                    zip(self._pair(axes, "axes"), (a_shape, b_shape)))
        self.dot_a, self.dot_b = (self._axes(a, s, "dot_axes") for a, s in
                                  zip(self._pair(dot_axes, "dot_axes"), (a_shape, b_shape)))
        if len(self.conv_a) != len(self.conv_b) or len(self.dot_a) != len(self.dot_b):
            raise ValueError("convolve: A and B need as many axes in axes[0] as in "
                             "axes[1], and in dot_axes[0] as in dot_axes[1]")
        for used, name in ((self.conv_a + self.dot_a, "A"), (self.conv_b + self.dot_b, "B")):
            if len(set(used)) != len(used):
                raise ValueError(f"convolve: an axis of {name} appears twice in axes "
                                 f"and dot_axes")
        for i, j in zip(self.dot_a, self.dot_b):
            if a_shape[i] != b_shape[j]:
                raise ValueError(f"convolve: dot axis {i} of A (size {a_shape[i]}) and "
                                 f"{j} of B (size {b_shape[j]}) differ in size")
        self.ignore_a = [i for i in range(len(a_shape))
                         if i not in self.conv_a and i not in self.dot_a]
        self.ignore_b = [i for i in range(len(b_shape))
                         if i not in self.conv_b and i not in self.dot_b]
        self.m = [a_shape[i] for i in self.conv_a]           # A's convolved sizes
        self.n = [b_shape[i] for i in self.conv_b]           # B's convolved sizes
        if any(s == 0 for s in self.m + self.n):
            raise ValueError("convolve: a convolved axis has size 0")
        # the window of the 'full' output (size m + n - 1) that the mode keeps
        if mode == "full":
            self.start = [0] * len(self.m)
            self.size = [m + n - 1 for m, n in zip(self.m, self.n)]
        elif mode == "same":
            self.start = [(n - 1) // 2 for n in self.n]
            self.size = list(self.m)
        else:
            self.start = [min(m, n) - 1 for m, n in zip(self.m, self.n)]
            self.size = [abs(m - n) + 1 for m, n in zip(self.m, self.n)]

    @staticmethod
    def _pair(axes, name):
        try:
            first, second = axes
        except (TypeError, ValueError):
            raise ValueError(f"convolve: {name} must be a pair (axes of A, axes of B), "
                             f"not {axes!r}") from None
        return first, second

    @staticmethod
    def _axes(axes, shape, name):
        result = []
        for i in axes:
            if not -len(shape) <= int(i) < len(shape):
                raise ValueError(f"convolve: {name} names axis {i} of an array with "
                                 f"{len(shape)} dimensions")
            result.append(int(i) % len(shape))
        return result


def _convolve_values(a, b, layout):
    """The convolution of plain arrays: out[ia, ib, k] = sum over the dot axes d and
    the kernel positions j of A[ia, d, k + start - j] B[ib, d, j]."""
    lay = layout
    n_ia, n_ib, n_d, n_c = (len(lay.ignore_a), len(lay.ignore_b), len(lay.dot_a),
                            len(lay.conv_a))
    a = _np.transpose(a, lay.ignore_a + lay.dot_a + lay.conv_a)
    b = _np.transpose(b, lay.ignore_b + lay.dot_b + lay.conv_b)
    conv = tuple(range(n_ia + n_d, n_ia + n_d + n_c))
    if n_c:
        padding = [(0, 0)] * (n_ia + n_d) + [(n - 1, n - 1) for n in lay.n]
        padded = _np.pad(a, padding)
        # windows[..., k, w] = padded[..., k + w]: A[k + w - (n - 1)]
        windows = _np.lib.stride_tricks.sliding_window_view(padded, lay.n, axis=conv)
        keep = tuple([slice(None)] * (n_ia + n_d)
                     + [slice(s, s + z) for s, z in zip(lay.start, lay.size)])
        windows = windows[keep]
        b = _np.flip(b, axis=tuple(range(n_ib + n_d, n_ib + n_d + n_c)))
    else:
        windows = a
    # contract the dot axes and the window axes of A with B's dot and (flipped) conv axes
    a_axes = list(range(n_ia, n_ia + n_d)) + list(range(n_ia + n_d + n_c,
                                                        n_ia + n_d + 2 * n_c))
    b_axes = list(range(n_ib, n_ib + n_d + n_c))
    out = _np.tensordot(windows, b, axes=(a_axes, b_axes))   # (ia, k, ib)
    order = (list(range(n_ia)) + list(range(n_ia + n_c, n_ia + n_c + n_ib))
             + list(range(n_ia, n_ia + n_c)))
    return _np.ascontiguousarray(_np.transpose(out, order))


def convolve(A, B, axes=None, dot_axes=((), ()), mode="full"):
    """scipy.signal.convolve(A, B, mode) generalized as in autograd: the axes
    ``axes[0]`` of A are convolved with the axes ``axes[1]`` of B (all axes when
    None, A and B of equal rank), the axes ``dot_axes[0]`` of A are contracted with
    ``dot_axes[1]`` of B, and every other axis is carried: the result's axes are A's
    carried axes, then B's, then the convolved ones. ``mode``: 'full' (size m + n -
    1), 'same' (A's size, centered as SciPy's) or 'valid' (|m - n| + 1 per axis).
    Differentiable in A and B, to any order, in both modes."""
    layout = _Layout(_np.shape(_value(A)), _np.shape(_value(B)), axes, dot_axes, mode)
    value = _convolve_values(_value(A), _value(B), layout)
    if not (_is_variable(A) or _is_variable(B)):
        return value
    options = {"axes": axes, "dot_axes": dot_axes, "mode": mode}

    def reverse(g, out, a, b):
        full = _full(g, layout)
        return [_correlate(full, b, layout, for_a=True),
                _correlate(full, a, layout, for_a=False)]

    def forward(t, out, a, b):
        parts = []
        if t[0] is not None:
            parts.append(convolve(t[0], b, **options))
        if t[1] is not None:
            parts.append(convolve(a, t[1], **options))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def evaluate(a, b):
        return _convolve_values(a, b, layout)

    evaluate.__name__ = "convolve"
    return rule_node([A, B], value, reverse, forward, evaluate,
                     (convolve, operand_slots(2), options))


def _full(g, layout):
    """The output cotangent g embedded (zero-padded) in the 'full' output's shape."""
    lay = layout
    n_outer = len(lay.ignore_a) + len(lay.ignore_b)
    if lay.size == [m + n - 1 for m, n in zip(lay.m, lay.n)]:
        return g
    padding = [(0, 0)] * n_outer + [(s, m + n - 1 - s - z) for s, z, m, n in
                                    zip(lay.start, lay.size, lay.m, lay.n)]
    return fnp.pad(g, padding)


def _correlate(full, other, layout, for_a):
    """The cotangent of A (for_a) or of B: the full-size output cotangent correlated
    with the other operand over the convolved axes, the other operand's carried axes
    contracted with their place in the output; then put in the operand's axis order."""
    lay = layout
    n_ia, n_ib, n_c = len(lay.ignore_a), len(lay.ignore_b), len(lay.conv_a)
    out_conv = list(range(n_ia + n_ib, n_ia + n_ib + n_c))
    if for_a:
        mine, theirs = (lay.ignore_a, lay.dot_a, lay.conv_a), (lay.ignore_b, lay.dot_b,
                                                                lay.conv_b)
        their_place = list(range(n_ia, n_ia + n_ib))   # B's carried axes in the output
    else:
        mine, theirs = (lay.ignore_b, lay.dot_b, lay.conv_b), (lay.ignore_a, lay.dot_a,
                                                                lay.conv_a)
        their_place = list(range(n_ia))
    my_ignore, my_dot, my_conv = mine
    their_ignore, their_dot, their_conv = theirs
    flipped = fnp.flip(other, axis=tuple(their_conv)) if their_conv else other
    result = convolve(full, flipped, axes=(out_conv, their_conv),
                      dot_axes=(their_place, their_ignore), mode="valid")
    # result's axes: the output's other carried axes (= mine), then the other
    # operand's dot axes in increasing order, then the convolved axes
    dots_sorted = sorted(their_dot)
    source = {}
    for k, axis in enumerate(my_ignore):
        source[axis] = k
    for mine_axis, their_axis in zip(my_dot, their_dot):
        source[mine_axis] = len(my_ignore) + dots_sorted.index(their_axis)
    for k, axis in enumerate(my_conv):
        source[axis] = len(my_ignore) + len(my_dot) + k
    permutation = [source[axis] for axis in range(len(source))]
    if permutation == sorted(permutation):
        return result
    return fnp.transpose(result, permutation)
