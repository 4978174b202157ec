"""A long scalar chain, x = sin(x) * a + x * 0.5 repeated n times (4 n nodes, each
depending on the one before): the per-op cost of recording and sweeping.

a = 1.0001 is the workload as first specified; its adjoint underflows to 0.0 after
~430 steps, so for large n its sweep times the zero-adjoint skip, not the
derivative rules. a = 0.5 keeps every adjoint nonzero (the sweep does all the work).
"""
import math

import fasttape as ft

from .common import _Calls, _Sweep, chain


def make(n, a):
    return (lambda x: chain(x[0], n, math.sin, a),
            lambda x: chain(x[0], n, ft.sin, a),
            [0.3])


class Chain(_Calls):
    # recording and the whole call do not depend on a (same ops, same count)
    params = [[1000, 100_000], [1.0001]]
    param_names = ["n", "a"]
    make = staticmethod(make)


class ChainSweep(_Sweep):
    params = [[1000, 100_000], [1.0001, 0.5]]
    param_names = ["n", "a"]
    make = staticmethod(make)
