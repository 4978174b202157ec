"""SciPy functions, differentiable: ``fasttape.scipy.special`` and
``fasttape.scipy.stats`` (autograd.scipy's modules and names)."""
from fasttape.scipy import special, stats  # noqa: F401
