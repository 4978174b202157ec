# Tape (_tape.pyx): the storage of _tape_storage.pxd (re-exported here: every module
# that records or sweeps cimports its buffers, structs and inline helpers from here)
# and the sweeps' entry points that Variables call.

from fasttape._tape_storage cimport *


cdef class Tape(TapeStorage):
    # reverse sweep from scalar slot `slot` of `node`, seeded with `seed`
    cdef int reverse_c(self, Py_ssize_t node, Py_ssize_t slot, double seed) except -1
    # reverse sweep from array node `anode` (tape node `node`), seeded with an array
    cdef int reverse_array_c(self, Py_ssize_t node, Py_ssize_t anode,
                             object seed) except -1
    # RuntimeError unless clear_tangents sized the tangent buffers for every node
    cdef int check_tangents_prepared(self) except -1


# one thread's tapes: the stack of active tapes (`with Tape()`, grad()), and the pool,
# default tape and no_grad() depth that _tape_pools keeps
cdef class ThreadTapes:
    cdef list active
    cdef list pool
    cdef object default
    cdef int no_grad_depth


cdef ThreadTapes thread_tapes()
cdef list active_tapes()
