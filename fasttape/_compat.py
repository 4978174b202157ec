"""What differs between the NumPy versions fasttape supports (1.25 and later), in one
place: each helper gives NumPy 2's behaviour whatever NumPy is installed."""
import numpy as np

NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


def solve(a, b):
    """np.linalg.solve with NumPy 2's rule for the right-hand side: b is one vector only
    when it is 1-d (then every matrix of a batch a is solved against it); otherwise b is
    a stack of matrices, broadcast against a's batch. NumPy 1 also read b as a stack of
    vectors when b.ndim == a.ndim - 1, and refused a 1-d b for a batch a; elsewhere (and
    on NumPy 2) this is np.linalg.solve itself, errors included."""
    if not NUMPY_2:
        # np.ndim, not np.asarray: a and b may be fasttape arrays (complex ones reach
        # here and go on to np.linalg.solve's __array_function__ door)
        a_ndim, b_ndim = np.ndim(a), np.ndim(b)
        if b_ndim == 1 and a_ndim > 2:
            return solve(a, b[:, np.newaxis])[..., 0]
        if b_ndim == a_ndim - 1 and b_ndim > 1:
            b = b[np.newaxis]          # the same broadcast, read as matrices by NumPy 1
    return np.linalg.solve(a, b)


def cond(x, p=None):
    """np.linalg.cond with NumPy 2's result type: real. NumPy 1 gave the condition
    number of a stack of complex matrices in the "fro"/"nuc"/inf norms a complex dtype
    (with zero imaginary parts)."""
    result = np.linalg.cond(x, p)
    return np.real(result) if np.iscomplexobj(result) else result
