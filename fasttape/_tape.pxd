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
# default tape and no_grad() depth that _tape_pools keeps. The stack and the pool are
# lists that never shrink: entries [0:depth] (and [0:n_pooled]) are in use, the rest
# None (a list popped to empty frees its storage, and the next push reallocates it:
# two reallocations per gradient call)
cdef class ThreadTapes:
    cdef list active
    cdef Py_ssize_t depth
    cdef list pool
    cdef Py_ssize_t n_pooled
    cdef object default
    cdef int no_grad_depth
    cdef object __weakref__         # (thread_tapes' cache holds it weakly)


cdef ThreadTapes thread_tapes()


cdef inline object innermost_tape(ThreadTapes s):
    """The innermost active tape, or None."""
    return s.active[s.depth - 1] if s.depth else None


# The stack and the pool's lists: items[0:n] in use, the rest None
cdef inline Py_ssize_t put_at(list items, Py_ssize_t n, object item) except -1:
    """items[n] = item (appended when the list is full); returns n + 1."""
    if n < len(items):
        items[n] = item
    else:
        items.append(item)
    return n + 1


cdef inline object take_last(list items, Py_ssize_t n):
    """items[n - 1], its place set to None (the caller counts n - 1 in use)."""
    item = items[n - 1]
    items[n - 1] = None
    return item


cdef inline int push_tape(ThreadTapes s, object tape) except -1:
    s.depth = put_at(s.active, s.depth, tape)
    return 0


# take tape off the stack: the innermost (or, strict=False, wherever it is; not there:
# nothing); strict: a RuntimeError unless it is the innermost
cdef int pop_tape(ThreadTapes s, object tape, bint strict) except -1
