"""A long scalar chain, x = sin(x) * a + x * 0.5 repeated n times (4 n nodes, each
depending on the one before): the per-op cost of recording and sweeping.

a = 1.0001 is the workload as first specified; its adjoint underflows to 0.0 after
~430 steps, so for large n its sweep times the zero-adjoint skip, not the
derivative rules. a = 0.5 keeps every adjoint nonzero (the sweep does all the work).
"""
from .common import FLOAT_OPS, TAPE_OPS, _Calls, _Sweep, require, workloads


def make(n, a):
    require()
    chain_float = workloads.make_chain(FLOAT_OPS, n, a)
    chain_tape = workloads.make_chain(TAPE_OPS, n, a)
    return (lambda x: chain_float(x[0]), lambda x: chain_tape(x[0]), [0.3])


class Chain(_Calls):
    # recording and the whole call do not depend on a (same ops, same count)
    params = [[1000, 100_000], [1.0001]]
    param_names = ["n", "a"]
    make = staticmethod(make)


class ChainSweep(_Sweep):
    params = [[1000, 100_000], [1.0001, 0.5]]
    param_names = ["n", "a"]
    make = staticmethod(make)
