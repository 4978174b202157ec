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


# the thread's stack of active tapes (`with Tape()`, grad()); its pool and default
# tape are _tape_pools'
cdef object tape_thread_local()
cdef list active_tapes()
