"""fasttape's version: the one place it is written (pyproject.toml reads it from here,
and pickled tapes carry it)."""
__version__ = "0.1.0"
