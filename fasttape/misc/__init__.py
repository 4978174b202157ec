"""autograd.misc's helpers: ``flatten`` (nested containers of arrays to one vector and
back, differentiably), ``flatten_func``, ``const_graph`` (record once, replay),
``fixed_point`` (differentiated by the implicit function theorem) and, in
``fasttape.misc.optimizers``, ``sgd``, ``rmsprop`` and ``adam`` on containers of
arrays.

As in autograd, ``fasttape.misc.flatten`` is the function once this package is
imported; its module (with ``flatten_func``) is ``sys.modules["fasttape.misc.flatten"]``,
so ``from fasttape.misc.flatten import flatten, flatten_func`` works too.
"""
from fasttape.misc.fixed_points import fixed_point
from fasttape.misc.flatten import flatten, flatten_func  # (the function hides the module)
from fasttape.misc.tracers import const_graph

__all__ = ["flatten", "flatten_func", "const_graph", "fixed_point"]
