# Tape: the tape the rest of fasttape records on and differentiates with. Its storage
# (buffers, growth, reset, inspection, dump()) is TapeStorage's (_tape_storage); the
# sweeps live one concern per module, and the methods below are their entry points:
#
#   _reverse        the reverse sweep                 reverse_c, seed_and_sweep
#   _forward        replay, tangents (forward mode)   replay, forward_sweep
#   _second_order   forward over reverse              hessian_vector_c, ..._arrays
#   _batched        replay then sweep, many points    replay_gradients, ...
#   _array_reverse, _array_forward   the steps of array nodes those sweeps call
#
# Also the thread's stack of active tapes (`with Tape()`), and pickling's hook.

cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from cpython.weakref cimport PyWeakref_NewRef
from cpython.pystate cimport (PyInterpreterState, PyThreadState, PyThreadState_Get,
                              PyThreadState_GetDict)
from libc.stdint cimport uint64_t
from libc.string cimport memcpy


import numpy as np

from fasttape._array_helpers cimport live_adjoints
from fasttape._batched cimport (replay_array_gradients, replay_gradient_of_list,
                                replay_gradients)
from fasttape._forward cimport (prepare_tangents, replay_in_place, run_tangent,
                               tangents_many)
from fasttape._reverse cimport prepare_sweep, run_reverse, seed_and_sweep
from fasttape._second_order cimport (hessian_times_many, hessian_vector_arrays,
                                     hessian_vector_scalar)

# the op table's Python names, where fasttape has always imported them from
from fasttape._tape_storage import (ARRAY_OP_TABLE, COMPARISON_NAMES, COMPILED_OP_CODES,
                                    MASK_OPS, N_ARRAY_OP_CODES, N_OP_CODES, OP_TABLE,
                                    op_arity, op_formulas)

# Pickling (Tape.__reduce__) is fasttape._tape_state's: one schema, its writer and its
# reader (which records Python-rule nodes again, with Variables, so it sits above this
# module); fasttape._wiring hands its writer in here.
cdef object TAPE_PICKLER = None


def register_tape_pickler(pickler):
    """pickler(tape) -> (loader, arguments), what Tape.__reduce__ returns."""
    global TAPE_PICKLER
    TAPE_PICKLER = pickler


@cython.final
cdef class Tape(TapeStorage):
    """A Wengert tape: the record of one computation, in typed arrays.

    Variables created inside ``with Tape() as tape:`` are recorded on ``tape``.
    Without an explicit tape, ``Variable(x)`` records on the thread's default tape,
    and ``grad`` records on a pooled tape that it resets after each call.

    Parameters
    ----------
    max_size : int, optional
        Most nodes (and value slots) the tape may hold; recording past it raises
        OverflowError. The default, 2**31 - 1, is the limit of the int32 indices.
    """

    def __enter__(self):
        push_active(self)
        return self

    def __exit__(self, *exc):
        pop_active(self)
        return False

    def __reduce__(self):
        """A tape pickles as its arrays (fasttape._tape_state: the state's schema, its
        writer and its reader, which checks everything it loads)."""
        if TAPE_PICKLER is None:
            raise TypeError("fasttape: import fasttape before pickling a tape")
        return TAPE_PICKLER(self)

    # -- the reverse sweep (fasttape._reverse) -------------------------------------

    cdef int reverse_c(self, Py_ssize_t node, Py_ssize_t slot, double seed) except -1:
        """Seed adjoints[slot] and sweep nodes node, node-1, ..., 0.

        ``slot`` must be the output slot of ``node``. Afterwards adjoints[0:slot+1]
        (and the array adjoints) hold d(seed * output)/d(value).
        """
        prepare_sweep(self)
        self.adjoints[slot] = seed
        return run_reverse(self, node, slot + 1)

    cdef int reverse_array_c(self, Py_ssize_t node, Py_ssize_t anode,
                             object seed) except -1:
        """Sweep from array node `anode` (tape node `node`) with output adjoint `seed`
        (an array of its size)."""
        cdef const double[::1] s = np.ascontiguousarray(seed, dtype=np.float64).reshape(-1)
        cdef ArrayNode* n = &self.anodes[anode]
        if s.shape[0] != n.size:
            raise ValueError(f"seed has {s.shape[0]} values for an output of {n.size}")
        prepare_sweep(self)
        if n.size:
            memcpy(live_adjoints(self, anode), &s[0], <size_t>n.size * sizeof(double))
        return run_reverse(self, node, self.n_slots)

    def seed_and_sweep(self, list slots, list anodes, list seeds):
        """Reverse sweep from several outputs at once: scalar slots (anode -1) or array
        nodes, each seeded with its cotangent (a float, or values of its size)."""
        seed_and_sweep(self, slots, anodes, seeds)

    # -- forward mode and replay (fasttape._forward) ------------------------------

    def clear_tangents(self):
        """Tangent buffers sized and zeroed (then seed_tangent the leaves)."""
        prepare_tangents(self)

    def seed_tangent(self, Py_ssize_t slot, Py_ssize_t anode, value):
        """Set the tangent of a scalar leaf (anode < 0) or of array leaf `anode`
        (after clear_tangents)."""
        cdef const double[::1] v
        cdef ArrayNode* n
        cdef Py_ssize_t k
        self.check_tangents_prepared()
        if anode < 0:
            self.check_slot(slot)
            self.tangents[slot] = value
            return
        self.check_anode(anode)
        n = &self.anodes[anode]
        v = np.ascontiguousarray(value, dtype=np.float64).reshape(-1)
        if v.shape[0] != n.size:
            raise ValueError(f"tangent of {v.shape[0]} values for an input of {n.size}")
        if n.adj < 0:                     # a one-value output in a scalar slot
            self.tangents[n.out_slot] = v[0]
            return
        for k in range(n.size):
            self.array_tangents[n.adj + k] = v[k]

    def tangent_of(self, Py_ssize_t slot, Py_ssize_t anode):
        """The tangent of a scalar slot (anode < 0) or of array node `anode` (flat),
        after forward_sweep."""
        cdef ArrayNode* n
        self.check_tangents_prepared()
        if anode < 0:
            self.check_slot(slot)
            return self.tangents[slot]
        self.check_anode(anode)
        n = &self.anodes[anode]
        if n.adj < 0:                     # a one-value output in a scalar slot
            return np.array([self.tangents[n.out_slot]])
        return _copy_f64(&self.array_tangents[n.adj], n.size)

    def forward_sweep(self):
        """Run the tangent sweep (after clear_tangents and seed_tangent)."""
        self.check_tangents_prepared()
        run_tangent(self)

    cdef int check_tangents_prepared(self) except -1:
        """The tangent buffers cover every slot and array value (clear_tangents was
        called since the last node was recorded)."""
        if self.tangent_capacity < self.n_slots or \
                self.array_tangent_capacity < self.n_array_values:
            raise RuntimeError("fasttape: call clear_tangents() before seeding or "
                               "sweeping tangents (nodes were recorded since)")
        return 0

    def replay(self, leaf_slots, inputs):
        """Replay the tape in place with new scalar input values (array inputs are
        written before with write_array_input); returns the index of the first
        comparison whose outcome changed, or -1."""
        return replay_in_place(self, leaf_slots, inputs)

    # -- forward over reverse (fasttape._second_order) ----------------------------

    def hessian_vector_c(self, Py_ssize_t node, list leaf_slots, direction):
        """Forward over reverse in C, recording nothing: seed the leaves' tangents with
        `direction`, sweep forward, then sweep in reverse carrying each adjoint and its
        tangent; returns (gradient, Hessian times direction) at the leaves. Scalar tapes
        only (returns None when the tape holds array nodes)."""
        return hessian_vector_scalar(self, node, leaf_slots, direction)

    def hessian_vector_arrays(self, Py_ssize_t output, list leaves, direction,
                              Py_ssize_t output_anode=-1):
        """hessian_vector_c for tapes with array nodes, from scalar slot `output` (or
        from array node output_anode, of one value). leaves: (is_array, index) per
        leaf, index a slot or an array node; direction: their values' tangents, flat,
        in order. Returns (gradient, Hessian times direction), flat, in the same order.
        NotImplementedError for Python-rule nodes (no second derivatives in C)."""
        return hessian_vector_arrays(self, output, leaves, direction, output_anode)

    def tangents_many(self, leaf_index, leaf_is_array, directions, output_index,
                      output_is_array):
        """The outputs' tangents along each row of directions ((k, N), flat over the
        leaves' values): (M, k), flat over the outputs' values. Leaf j is array node
        leaf_index[j] (int64) when leaf_is_array[j] (uint8), else that slot; outputs
        likewise. One call for k tangent sweeps: the columns of a forward-compressed
        Jacobian."""
        return tangents_many(self, np.ascontiguousarray(leaf_index, dtype=np.int64),
                             np.ascontiguousarray(leaf_is_array, dtype=np.uint8),
                             directions,
                             np.ascontiguousarray(output_index, dtype=np.int64),
                             np.ascontiguousarray(output_is_array, dtype=np.uint8))

    def hessian_times_many(self, Py_ssize_t output, leaf_index, leaf_is_array,
                           directions, Py_ssize_t output_anode=-1):
        """The Hessian (of scalar slot `output`, or of array node output_anode of one
        value) times each row of directions ((k, N), flat over the leaves' values):
        (N, k). Leaf j is array node leaf_index[j] (int64) when leaf_is_array[j]
        (uint8), else that slot; any tape (scalar or with array nodes). One tangent
        sweep per direction and one reverse walk for all: the columns of
        hessian_vector_arrays at once. NotImplementedError for Python-rule nodes."""
        return hessian_times_many(self, output,
                                  np.ascontiguousarray(leaf_index, dtype=np.int64),
                                  np.ascontiguousarray(leaf_is_array, dtype=np.uint8),
                                  directions, output_anode)

    # -- replay then sweep, many points (fasttape._batched) -----------------------

    def replay_gradients(self, Py_ssize_t output, leaf_slots, inputs,
                         Py_ssize_t n_threads=1):
        """Replay the (scalar) tape at each row of `inputs` (rows of len(leaf_slots)
        values) and sweep it in reverse from slot `output`, on `n_threads` threads
        that run without the GIL, each with its own value and adjoint buffers.

        Returns (outputs, gradients, changed) where changed is (row, guard index) of
        the first row whose recorded comparisons came out differently, or None.
        """
        return replay_gradients(self, output, leaf_slots, inputs, n_threads)

    def replay_array_gradients(self, Py_ssize_t output_node, Py_ssize_t output_anode,
                               list leaves, inputs, gradients):
        """Replay, then sweep in reverse, at each row of `inputs`, in C: see
        _batched.replay_array_gradients (the arguments, the rows done)."""
        return replay_array_gradients(self, output_node, output_anode, leaves, inputs,
                                      gradients)

    def replay_gradient_of_list(self, Py_ssize_t output, const Py_ssize_t[::1] slots,
                                list values, Py_ssize_t first, Py_ssize_t count,
                                double[::1] scratch_values, double[::1] scratch_adjoints):
        """The fast path of a traced gradient for one point given as a flat list of
        floats: write them into this caller's scratch value buffer (which keeps the
        constants from its first use), replay, sweep, and return (output value, list of
        the adjoints of leaves first .. first + count), or (None, changed guard)."""
        return replay_gradient_of_list(self, output, slots, values, first, count,
                                       scratch_values, scratch_adjoints)

    def scratch_buffers(self):
        """(values, adjoints) arrays for replay_gradient_of_list: a copy of the tape's
        values (constants included) and room for the adjoints."""
        return _copy_f64(self.values, self.n_slots), np.empty(self.n_slots)


# -- which tape records: the thread's stack of active tapes ----------------------------
#
# Each thread has a stack of active tapes: grad() calls and `with Tape()` blocks push
# one, and the innermost records new Variables. The thread's other tapes (its default
# tape, the pool grad() takes tapes from) and its no_grad() depth are _tape_pools';
# one ThreadTapes object holds them all, kept in the thread state's own dict (which
# lives and dies with the thread, as a threading.local does): every gradient call
# reads it several times, and a dict lookup there costs a fraction of a
# threading.local attribute's.

cdef str THREAD_KEY = "fasttape.ThreadTapes"


@cython.final
@cython.auto_pickle(False)
cdef class ThreadTapes:
    """One thread's tapes: the stack of active tapes, grad()'s pool, the default tape
    and the depth of no_grad() blocks."""

    def __cinit__(self):
        self.active = []
        self.depth = 0
        self.pool = []
        self.n_pooled = 0
        self.default = None
        self.no_grad_depth = 0


# The last thread's ThreadTapes, found again without the dict lookup while the same
# thread state asks (its id is unique for the interpreter's life: a new thread state at
# a freed one's address does not match). Held weakly: a finished thread's tapes are
# freed with its thread state, not kept until another thread asks. Not on
# free-threaded builds.
cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define FASTTAPE_CACHE_THREAD_TAPES 0
    #else
    #define FASTTAPE_CACHE_THREAD_TAPES 1
    #endif

    /* The object a weak reference points to, a new reference; NULL when it is gone
       (PyWeakref_GetRef from 3.13, where PyWeakref_GetObject is deprecated). */
    static PyObject *fasttape_weak_target(PyObject *ref) {
    #if PY_VERSION_HEX >= 0x030D0000
        PyObject *target = NULL;
        if (PyWeakref_GetRef(ref, &target) < 0)
            PyErr_Clear();
        return target;
    #else
        PyObject *target = PyWeakref_GetObject(ref);
        if (target == NULL) {
            PyErr_Clear();
            return NULL;
        }
        if (target == Py_None)
            return NULL;
        Py_INCREF(target);
        return target;
    #endif
    }
    """
    bint CACHE_THREAD_TAPES "FASTTAPE_CACHE_THREAD_TAPES"
    PyObject* weak_target "fasttape_weak_target"(PyObject* ref)
    uint64_t PyThreadState_GetID(PyThreadState* tstate)
    PyInterpreterState* PyThreadState_GetInterpreter(PyThreadState* tstate)

cdef object cached_state = None       # a weak reference to the ThreadTapes
cdef PyThreadState* cached_tstate = NULL
cdef PyInterpreterState* cached_interpreter = NULL
cdef uint64_t cached_thread_id = 0


cdef ThreadTapes thread_tapes():
    """This thread's ThreadTapes (made on first use)."""
    global cached_state, cached_tstate, cached_interpreter, cached_thread_id
    cdef PyThreadState* tstate = PyThreadState_Get()
    cdef PyObject* per_thread
    cdef PyObject* found
    cdef ThreadTapes state
    if CACHE_THREAD_TAPES and tstate == cached_tstate and \
            PyThreadState_GetID(tstate) == cached_thread_id and \
            PyThreadState_GetInterpreter(tstate) == cached_interpreter:
        found = weak_target(<PyObject*>cached_state)
        if found != NULL:
            state = <ThreadTapes>found
            Py_DECREF(<object>found)        # (state holds it now)
            return state
    per_thread = PyThreadState_GetDict()
    if per_thread == NULL:
        raise RuntimeError("fasttape: no Python thread state")
    found = PyDict_GetItem(<object>per_thread, THREAD_KEY)
    if found != NULL:
        state = <ThreadTapes>found
    else:
        state = ThreadTapes.__new__(ThreadTapes)
        (<dict>per_thread)[THREAD_KEY] = state
    if CACHE_THREAD_TAPES:
        cached_state = PyWeakref_NewRef(state, None)
        cached_tstate = tstate
        cached_thread_id = PyThreadState_GetID(tstate)
        cached_interpreter = PyThreadState_GetInterpreter(tstate)
    return state


cdef int pop_tape(ThreadTapes s, object tape, bint strict) except -1:
    cdef Py_ssize_t i
    if s.depth and s.active[s.depth - 1] is tape:
        take_last(s.active, s.depth)
        s.depth -= 1
        return 0
    if strict:
        raise RuntimeError("fasttape: tapes were entered and exited out of order")
    for i in range(s.depth - 1, -1, -1):
        if s.active[i] is tape:
            del s.active[i]
            s.depth -= 1
            break
    return 0


cpdef push_active(Tape tape):
    push_tape(thread_tapes(), tape)


cpdef pop_active(Tape tape):
    pop_tape(thread_tapes(), tape, True)
