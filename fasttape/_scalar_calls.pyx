# Small calls of a traced scalar function, one C call each. ScalarCalls holds what a
# call of a traced function of numbers needs (its leaf and output slots, and value,
# adjoint and tangent buffers of its own), so that g(z), g.grad(z) and g.jacobian(z)
# each convert the arguments, replay, check the recorded comparisons, seed and sweep
# in one call, with no Python objects built but the result (or none: out=).
#
# Whatever it does not handle (an argument of another type or structure, a changed
# comparison, a call while another thread sweeps its buffers) it hands back: the call
# returns None and fasttape.trace takes its general path, which raises the errors
# and retraces. So this module never decides an error or a branch.

cimport cython
cimport numpy as cnp
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._forward cimport first_changed_guard_c, forward_replay_c
from fasttape._opmath cimport tangent_step
from fasttape._reverse cimport reverse_sweep_into_c
from fasttape._reverse_lanes cimport (LANE_BLOCK, lanes_apply, lanes_jacobian,
                                     order_lanes)
from fasttape._tape_storage cimport *

cnp.import_array()

# how an argument (or the output) is laid out: one number, or a flat list or tuple
cdef enum:
    KIND_NUMBER = 0
    KIND_LIST = 1
    KIND_TUPLE = 2
    KIND_OTHER = 3          # (outputs only: rebuilt by their Structure)
    # tapes longer than this sweep without the GIL (releasing it costs ~0.1 us)
    NOGIL_NODES = 2048


cdef inline int kind_of(structure, leaf_kind) except -2:
    if structure.kind == leaf_kind:
        return KIND_NUMBER
    # (a list or tuple structure holds numbers only: others are TREE structures)
    if structure.kind is list:
        return KIND_LIST
    if structure.kind is tuple:
        return KIND_TUPLE
    return KIND_OTHER


def check_out(out, tuple shape):
    """out= of a traced derivative: a writable, C-contiguous float64 array of the
    shape given; TypeError or ValueError naming the problem otherwise."""
    if type(out) is not np.ndarray:
        raise TypeError(f"out must be a numpy array of float64, got "
                        f"{type(out).__name__}")
    if out.dtype != np.float64:
        raise TypeError(f"out must have dtype float64, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array")


@cython.final
cdef class ScalarCalls:
    """The compiled calls of one recording of a scalar traced function (a tape with no
    array nodes, arguments that are numbers or flat lists or tuples of numbers).

    Each call returns its result, or None to hand the call to the general path (see
    the module's comment); after None, `changed` is the index of the comparison that
    came out differently, or -1.
    """
    cdef TapeStorage tape
    cdef Py_ssize_t n_nodes, n_slots
    cdef double* values                 # the tape's values (constants) and new inputs
    cdef double* adjoints
    cdef double* tangents
    cdef double* gradient               # argument argnum's adjoints (no out=)
    cdef Py_ssize_t* slots              # every leaf's slot, argument after argument
    cdef Py_ssize_t n_leaves
    cdef Py_ssize_t n_args
    cdef int* arg_kinds
    cdef Py_ssize_t* arg_firsts         # the argument's first leaf in slots
    cdef Py_ssize_t* arg_counts
    cdef Py_ssize_t* out_slots          # -1: a constant output
    cdef double* out_constants
    cdef double* lane_adjoints          # the Jacobian's reverse sweeps (_reverse's lanes)
    cdef Py_ssize_t* lane_order         # lane k's output, and its node
    cdef Py_ssize_t* lane_tops
    cdef Py_ssize_t n_lanes             # 0: a sweep per output instead
    cdef readonly Py_ssize_t n_out
    cdef int out_kind
    cdef object out_structure
    cdef readonly Py_ssize_t argnum, first, count   # argument argnum's leaves
    cdef bint busy                      # a sweep without the GIL runs in the buffers
    cdef readonly Py_ssize_t changed

    def __cinit__(self):
        self.values = self.adjoints = self.tangents = self.gradient = NULL
        self.slots = self.arg_firsts = self.arg_counts = self.out_slots = NULL
        self.arg_kinds = NULL
        self.out_constants = self.lane_adjoints = NULL
        self.lane_order = self.lane_tops = NULL
        self.n_lanes = 0

    def __dealloc__(self):
        PyMem_Free(self.values)
        PyMem_Free(self.adjoints)
        PyMem_Free(self.tangents)
        PyMem_Free(self.gradient)
        PyMem_Free(self.slots)
        PyMem_Free(self.arg_kinds)
        PyMem_Free(self.arg_firsts)
        PyMem_Free(self.arg_counts)
        PyMem_Free(self.out_slots)
        PyMem_Free(self.out_constants)
        PyMem_Free(self.lane_adjoints)
        PyMem_Free(self.lane_order)
        PyMem_Free(self.lane_tops)

    def __init__(self, TapeStorage tape, structures, leaf_slots, all_slots,
                 out_structure, out_slots, out_constants, argnum, leaf_kind):
        """tape: the recording's (scalar) tape; structures and leaf_slots: per
        argument, all_slots: the leaf slots in one array (np.intp); out_slots /
        out_constants: per output value (None for the other); argnum: an int (the
        argument grad and jacobian differentiate), else None; leaf_kind: the
        Structure kind of one number."""
        cdef Py_ssize_t k, at = 0
        cdef const Py_ssize_t[::1] every_slot = all_slots
        if tape.n_anodes:
            raise ValueError("ScalarCalls replays tapes without array nodes")
        self.tape = tape
        self.n_nodes = tape.n_nodes
        self.n_slots = tape.n_slots
        self.n_args = len(structures)
        self.n_leaves = every_slot.shape[0]
        self.n_out = len(out_slots)
        self.values = <double*>PyMem_Malloc((self.n_slots + 1) * sizeof(double))
        self.adjoints = <double*>PyMem_Malloc((self.n_slots + 1) * sizeof(double))
        self.tangents = <double*>PyMem_Malloc((self.n_slots + 1) * sizeof(double))
        self.gradient = <double*>PyMem_Malloc((self.n_leaves + 1) * sizeof(double))
        self.slots = <Py_ssize_t*>PyMem_Malloc((self.n_leaves + 1) * sizeof(Py_ssize_t))
        self.arg_kinds = <int*>PyMem_Malloc((self.n_args + 1) * sizeof(int))
        self.arg_firsts = <Py_ssize_t*>PyMem_Malloc((self.n_args + 1) * sizeof(Py_ssize_t))
        self.arg_counts = <Py_ssize_t*>PyMem_Malloc((self.n_args + 1) * sizeof(Py_ssize_t))
        self.out_slots = <Py_ssize_t*>PyMem_Malloc((self.n_out + 1) * sizeof(Py_ssize_t))
        self.out_constants = <double*>PyMem_Malloc((self.n_out + 1) * sizeof(double))
        if (self.values == NULL or self.adjoints == NULL or self.tangents == NULL or
                self.gradient == NULL or
                self.slots == NULL or self.arg_kinds == NULL or self.arg_firsts == NULL
                or self.arg_counts == NULL or self.out_slots == NULL or
                self.out_constants == NULL):
            raise MemoryError()
        if self.n_slots:
            memcpy(self.values, tape.values, <size_t>self.n_slots * sizeof(double))
        for k in range(self.n_args):
            self.arg_kinds[k] = kind_of(structures[k], leaf_kind)
            if self.arg_kinds[k] == KIND_OTHER:
                raise ValueError("ScalarCalls takes numbers and flat lists or tuples")
            self.arg_firsts[k] = at
            self.arg_counts[k] = len(leaf_slots[k])
            at += self.arg_counts[k]
        if at != self.n_leaves:
            raise ValueError("the arguments' leaves and the slots disagree")
        for k in range(self.n_leaves):
            self.slots[k] = every_slot[k]
            if not 0 <= self.slots[k] < self.n_slots:
                tape.check_slot(self.slots[k])      # (raises, naming the slot)
        for k in range(self.n_out):
            if out_slots[k] is None:
                self.out_slots[k] = -1
                self.out_constants[k] = out_constants[k]
            else:
                self.out_slots[k] = out_slots[k]
                tape.check_slot(self.out_slots[k])
                self.out_constants[k] = 0.0
        self.out_kind = kind_of(out_structure, leaf_kind)
        self.out_structure = out_structure
        self.argnum = -1
        self.first = self.count = 0
        if argnum is not None and -self.n_args <= argnum < self.n_args:
            self.argnum = argnum % self.n_args
            self.first = self.arg_firsts[self.argnum]
            self.count = self.arg_counts[self.argnum]
        if 1 < self.n_out <= self.count and lanes_apply(tape):
            self.lane_order = <Py_ssize_t*>PyMem_Malloc(self.n_out * sizeof(Py_ssize_t))
            self.lane_tops = <Py_ssize_t*>PyMem_Malloc(self.n_out * sizeof(Py_ssize_t))
            self.lane_adjoints = <double*>PyMem_Malloc(
                min(self.n_out, LANE_BLOCK) * self.n_slots * sizeof(double))
            if self.lane_order == NULL or self.lane_tops == NULL or \
                    self.lane_adjoints == NULL:
                raise MemoryError()
            # (node i writes slot i: an output's slot is its node)
            self.n_lanes = order_lanes(self.out_slots, self.n_out, self.lane_order,
                                       self.lane_tops)
        self.busy = False
        self.changed = -1

    # -- the steps ---------------------------------------------------------------------

    cdef bint enter(self):
        """Take the buffers for a call: False when another thread sweeps in them or
        the tape changed since (the general path then takes the call)."""
        if self.busy or self.tape.n_nodes != self.n_nodes or \
                self.tape.n_slots != self.n_slots or self.tape.n_anodes:
            return False
        self.busy = True
        self.changed = -1
        return True

    cdef int load(self, tuple args) except -1:
        """Write the arguments' numbers into the leaf slots: 1, or 0 when an argument
        is not of its traced kind and length (the general path says what is wrong)."""
        cdef Py_ssize_t i, k, n, first
        cdef int kind
        cdef object a
        cdef cnp.ndarray arr
        cdef char* data
        cdef Py_ssize_t stride
        if len(args) != self.n_args:
            return 0
        for i in range(self.n_args):
            a = args[i]
            kind = self.arg_kinds[i]
            first = self.arg_firsts[i]
            n = self.arg_counts[i]
            if kind == KIND_NUMBER:
                if PyFloat_Check(a):
                    self.values[self.slots[first]] = PyFloat_AS_DOUBLE(a)
                elif not self.load_number(a, first):
                    return 0
            elif (kind == KIND_LIST and type(a) is list) or \
                    (kind == KIND_TUPLE and type(a) is tuple):
                if len(a) != n:
                    return 0
                for k in range(n):
                    item = a[k]
                    if PyFloat_Check(item):
                        self.values[self.slots[first + k]] = PyFloat_AS_DOUBLE(item)
                    elif not self.load_number(item, first + k):
                        return 0
            elif type(a) is np.ndarray:
                arr = <cnp.ndarray>a
                if cnp.PyArray_NDIM(arr) != 1 or cnp.PyArray_DIM(arr, 0) != n or \
                        cnp.PyArray_TYPE(arr) != cnp.NPY_DOUBLE:
                    return 0
                data = <char*>cnp.PyArray_DATA(arr)
                stride = cnp.PyArray_STRIDE(arr, 0)
                for k in range(n):
                    self.values[self.slots[first + k]] = (<double*>(data + k * stride))[0]
            else:
                return 0
        return 1

    cdef int load_number(self, object item, Py_ssize_t leaf) except -1:
        """A number that is not a float: ints and NumPy's real scalars; 0 for others."""
        if type(item) is int or isinstance(item, (np.floating, np.integer)):
            self.values[self.slots[leaf]] = float(item)
            return 1
        return 0

    cdef Py_ssize_t replay(self) noexcept nogil:
        """Replay into the buffers; the first changed comparison, or -1."""
        forward_replay_c(self.tape, self.values)     # (no Python steps: no errors)
        return first_changed_guard_c(self.tape, self.values)

    cdef Py_ssize_t run_replay(self):
        if self.n_nodes > NOGIL_NODES:
            with nogil:
                return self.replay()
        return self.replay()

    cdef bint take(self, tuple args, bint replay) except -1:
        """The start of every call: take the buffers (enter), load the arguments and,
        with replay, replay them. True when the call goes on with the buffers taken
        (the caller releases them: busy = False in a finally); False when the general
        path takes it, the buffers released (after a replay, `changed` names the
        comparison that came out differently)."""
        cdef bint ready = False
        if not self.enter():
            return False
        try:
            if self.load(args):
                if replay:
                    self.changed = self.run_replay()
                    ready = self.changed < 0
                else:
                    ready = True
        finally:
            if not ready:
                self.busy = False
        return ready

    cdef Py_ssize_t replay_and_jacobian(self, double* jac) noexcept nogil:
        cdef Py_ssize_t changed = self.replay()
        if changed < 0 and self.n_out and self.count:
            self.jacobian_c(jac)
        return changed

    cdef void gradient_c(self, Py_ssize_t output, double* gradient) noexcept nogil:
        """The adjoints of argument argnum's leaves, swept from output slot `output`."""
        cdef Py_ssize_t k
        memset(self.adjoints, 0, <size_t>self.n_slots * sizeof(double))
        self.adjoints[output] = 1.0
        # (all slots zeroed: leaves recorded after the output read a zero adjoint)
        reverse_sweep_into_c(self.tape, self.values, self.adjoints, output + 1)
        for k in range(self.count):
            gradient[k] = self.adjoints[self.slots[self.first + k]]

    cdef void tangent_c(self, Py_ssize_t leaf) noexcept nogil:
        """The tangents of every slot along leaf `leaf` (an index into slots)."""
        cdef const opcode_t* ops = self.tape.ops
        cdef const index_t* arg0s = self.tape.arg0s
        cdef const index_t* arg1s = self.tape.arg1s
        cdef const double* constants = self.tape.constants
        cdef const index_t* extras = self.tape.extras
        cdef const double* values = self.values
        cdef double* tangents = self.tangents
        cdef Py_ssize_t i, start = self.slots[leaf]
        cdef opcode_t op
        memset(tangents, 0, <size_t>self.n_slots * sizeof(double))
        tangents[start] = 1.0
        # (nodes before the leaf have zero tangents: node i writes slot i)
        for i in range(start + 1, self.n_nodes):
            op = ops[i]
            if op > OP_CONST:       # leaves and constants: seeded, or zero
                tangents[i] = tangent_step(op, arg0s[i], arg1s[i], values[i], values,
                                           constants, extras, tangents)

    cdef void jacobian_c(self, double* jac) noexcept nogil:
        """The (n_out, count) Jacobian at the replayed values, row-major: one reverse
        sweep per output, or one tangent sweep per input, whichever are fewer."""
        cdef Py_ssize_t j, k, o
        if self.n_lanes:
            for j in range(self.n_out):
                if self.out_slots[j] < 0:
                    memset(jac + j * self.count, 0, <size_t>self.count * sizeof(double))
            lanes_jacobian(self.tape, self.values, self.lane_adjoints, self.n_slots,
                           self.lane_order, self.lane_tops, self.n_lanes,
                           self.slots + self.first, self.count, jac)
        elif self.n_out <= self.count:
            for j in range(self.n_out):
                o = self.out_slots[j]
                if o < 0:
                    memset(jac + j * self.count, 0, <size_t>self.count * sizeof(double))
                else:
                    self.gradient_c(o, jac + j * self.count)
        else:
            for k in range(self.count):
                self.tangent_c(self.first + k)
                for j in range(self.n_out):
                    o = self.out_slots[j]
                    jac[j * self.count + k] = self.tangents[o] if o >= 0 else 0.0

    cdef object output_object(self):
        cdef Py_ssize_t j
        cdef list flat
        if self.out_kind == KIND_NUMBER:
            return self.output_value(0)
        flat = [self.output_value(j) for j in range(self.n_out)]
        if self.out_kind == KIND_LIST:
            return flat
        if self.out_kind == KIND_TUPLE:
            return tuple(flat)
        return self.out_structure.rebuild(flat)

    cdef inline double output_value(self, Py_ssize_t j):
        return self.values[self.out_slots[j]] if self.out_slots[j] >= 0 \
            else self.out_constants[j]

    cdef object argument_like(self, object given, double* gradient):
        """A gradient shaped as argument argnum was given (a float64 array for an
        array)."""
        cdef Py_ssize_t k
        cdef int kind = self.arg_kinds[self.argnum]
        cdef cnp.ndarray result
        if kind == KIND_NUMBER:
            return gradient[0]
        if type(given) is np.ndarray:
            result = np.empty(self.count)
            if self.count:
                memcpy(cnp.PyArray_DATA(result), gradient,
                       <size_t>self.count * sizeof(double))
            return result
        flat = [gradient[k] for k in range(self.count)]
        return flat if kind == KIND_LIST else tuple(flat)

    # -- the calls ---------------------------------------------------------------------

    cpdef object call(self, tuple args):
        """f(*args): the outputs in their structure, or None (see the class)."""
        if not self.take(args, True):
            return None
        try:
            return self.output_object()
        finally:
            self.busy = False

    cpdef object value_and_grad(self, tuple args, out=None, bint with_value=True):
        """(value, gradient with respect to argument argnum): the gradient in out (a
        float64 array of the argument's size) when given, else shaped as the
        argument; the gradient alone without with_value; or None (see the class)."""
        cdef object gradient_object
        cdef double* gradient = self.gradient
        cdef Py_ssize_t o
        if self.argnum < 0 or self.n_out != 1:
            return None
        if out is not None:
            if not (type(out) is np.ndarray and
                    cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.NPY_DOUBLE and
                    cnp.PyArray_NDIM(<cnp.ndarray>out) == 1 and
                    cnp.PyArray_DIM(<cnp.ndarray>out, 0) == self.count and
                    cnp.PyArray_ISCARRAY(<cnp.ndarray>out)):
                check_out(out, (self.count,))       # (raises, naming the problem)
            gradient = <double*>cnp.PyArray_DATA(<cnp.ndarray>out)
        if not self.take(args, True):
            return None
        try:
            o = self.out_slots[0]
            if o < 0:
                memset(gradient, 0, <size_t>self.count * sizeof(double))
            elif self.n_nodes > NOGIL_NODES:
                with nogil:
                    self.gradient_c(o, gradient)
            else:
                self.gradient_c(o, gradient)
            gradient_object = out if out is not None else \
                self.argument_like(args[self.argnum], gradient)
            if with_value:
                return self.output_value(0), gradient_object
            return gradient_object
        finally:
            self.busy = False

    cpdef object jacobian(self, tuple args, out=None):
        """The (outputs, argument argnum's numbers) Jacobian, into out when given; or
        None (see the class)."""
        cdef cnp.npy_intp dims[2]
        cdef double* jac
        if self.argnum < 0:
            return None
        if out is None:
            dims[0] = self.n_out
            dims[1] = self.count
            out = cnp.PyArray_EMPTY(2, dims, cnp.NPY_DOUBLE, 0)
        elif not (type(out) is np.ndarray and
                  cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.NPY_DOUBLE and
                  cnp.PyArray_NDIM(<cnp.ndarray>out) == 2 and
                  cnp.PyArray_DIM(<cnp.ndarray>out, 0) == self.n_out and
                  cnp.PyArray_DIM(<cnp.ndarray>out, 1) == self.count and
                  cnp.PyArray_ISCARRAY(<cnp.ndarray>out)):
            check_out(out, (self.n_out, self.count))    # (raises, naming the problem)
        jac = <double*>cnp.PyArray_DATA(<cnp.ndarray>out)
        if not self.take(args, False):
            return None
        try:
            if self.n_nodes * (1 + min(self.n_out, self.count)) > NOGIL_NODES:
                with nogil:
                    self.changed = self.replay_and_jacobian(jac)
            else:
                self.changed = self.replay_and_jacobian(jac)
            if self.changed >= 0:
                return None
            return out
        finally:
            self.busy = False

    def jacobian_many(self, tuple args, points, out, Py_ssize_t begin):
        """The Jacobian (into out[row], an (n_out, count) block) at each row of points
        from `begin`, the other arguments as in args; returns the row reached: all
        (points.shape[0]), a row whose comparisons changed (then `changed` >= 0), or
        -1 when the general path takes the call (args not as traced, or the buffers in
        use)."""
        cdef const double[:, ::1] x = points
        cdef double[:, :, ::1] into = out
        cdef Py_ssize_t row = begin, k, n_rows = x.shape[0]
        if self.argnum < 0 or x.shape[1] != self.count or into.shape[0] != n_rows or \
                into.shape[1] != self.n_out or into.shape[2] != self.count:
            raise ValueError("jacobian_many: points or out of the wrong shape")
        if not self.take(args, False):
            return -1
        try:
            with nogil:
                for row in range(begin, n_rows):
                    for k in range(self.count):
                        self.values[self.slots[self.first + k]] = x[row, k]
                    self.changed = self.replay()
                    if self.changed >= 0:
                        break
                    if self.n_out and self.count:
                        self.jacobian_c(&into[row, 0, 0])
            return row if self.changed >= 0 else n_rows
        finally:
            self.busy = False


# -- the traced function's calls, from C ----------------------------------------------

@cython.auto_pickle(False)
cdef class TracedCalls:
    """The base of fasttape.trace.Traced: g(z), g.grad, g.value_and_grad and
    g.jacobian try the current recording's ScalarCalls from C, without a Python frame
    (which cost about as much as the replay of a small function), and hand every other
    call to the subclass's general path (_call_general(args), _value_and_grad_general
    (args, out), _jacobian_general(args, out)). The current recording is published by
    assigning ``_current`` (one assignment: see TraceRecording), which also reads its
    calls once. ``argnum`` is kept here too: setting it says again whether the calls
    differentiate it (they differentiate their recording's)."""
    cdef object current
    cdef object traced_argnum       # the traced function's argnum
    cdef ScalarCalls calls          # the current recording's, or None
    cdef bint calls_take_argnum     # they differentiate the traced function's argnum

    @property
    def _current(self):
        return self.current

    @_current.setter
    def _current(self, recording):
        calls = recording.calls
        self.current = recording
        self.calls = calls if type(calls) is ScalarCalls else None
        self.calls_take_argnum = recording.argnum is self.traced_argnum

    @property
    def argnum(self):
        """The argument(s) grad, jacobian, hvp ... differentiate."""
        return self.traced_argnum

    @argnum.setter
    def argnum(self, value):
        self.traced_argnum = value
        self.calls_take_argnum = self.current is not None and \
            self.current.argnum is value

    def __call__(self, *args):
        cdef ScalarCalls calls = self.calls
        if calls is not None:
            result = calls.call(args)
            if result is not None:
                return result
        return self._call_general(args)

    def value_and_grad(self, *args, out=None):
        """(value, gradient with respect to argument(s) argnum). Replays in buffers of
        its own, so calls from several threads run in parallel (without the GIL on long
        tapes). out: a float64 array that receives the gradient (flat, or of the
        array argument's shape) and is returned in its place."""
        return self.gradient_call(args, out, True)

    def grad(self, *args, out=None):
        """The gradient with respect to argument(s) argnum at args (into out, a float64
        array, when given: see value_and_grad)."""
        return self.gradient_call(args, out, False)

    cdef object gradient_call(self, tuple args, out, bint with_value):
        cdef ScalarCalls calls = self.calls
        if calls is not None and self.calls_take_argnum:
            result = calls.value_and_grad(args, out, with_value)
            if result is not None:
                return result
        result = self._value_and_grad_general(args, out)
        return result if with_value else result[1]

    def jacobian(self, *args, out=None):
        """Jacobian of the (flat) outputs with respect to the (flat) argument(s)
        argnum: shape (number of output values, number of input values), into out (a
        float64 array of that shape) when given. Scalar code: one replay, then one
        reverse sweep per output or one tangent sweep per input, whichever are fewer,
        in one C call."""
        cdef ScalarCalls calls = self.calls
        if calls is not None and self.calls_take_argnum:
            result = calls.jacobian(args, out)
            if result is not None:
                return result
        return self._jacobian_general(args, out)
