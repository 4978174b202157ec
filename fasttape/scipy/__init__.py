"""SciPy functions, differentiable (``fasttape.scipy.special``)."""
from fasttape.scipy import special  # noqa: F401
