# Variable: the number protocol, comparisons (remembered on the tape as guards),
# and the conversions that must not silently drop a derivative.

cimport cython
from libc cimport math as cm

import numbers
import sys
from types import MethodType

import numpy as np

from fasttape._opmath cimport eval_arithmetic, eval_binary, eval_unary
from fasttape._tape cimport *
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.sequence cimport PySequence_Fast_ITEMS
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
cdef extern from "Python.h":
    bint PyObject_IS_GC(PyObject* o)
    bint PyObject_GC_IsTracked(PyObject* o)
    void PyObject_GC_UnTrack(void* o)
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM

from fasttape._forward cimport prepare_tangents, run_tangent
from fasttape._reverse_lanes cimport LANE_BLOCK, lanes_apply, order_lanes, sweep_lanes
from fasttape._tape_pools cimport (acquire_tape_in, current_tape, release_tape_in)
from fasttape.errors import StaleVariableError, TapeMismatchError


cdef int raise_stale(Variable v) except -1:
    raise StaleVariableError(
        "this Variable belongs to a tape that has been reset since it was recorded "
        "(grad() resets its tape when it returns; a Variable kept from inside the "
        "differentiated function cannot be used afterwards). Use .value inside the "
        "function to keep a plain number.")


cdef int raise_mismatch(Variable a, Variable b) except -1:
    raise TapeMismatchError(
        f"cannot combine Variables recorded on two different tapes ({a.tape!r} and "
        f"{b.tape!r}). Each grad() call records on its own tape, and the default tape "
        f"is replaced after backward(): create all inputs of one computation before "
        f"calling backward(), or record inside one `with fasttape.Tape():` block.")


cdef bint as_double(object o, double* out) except -1:
    """Convert a real Python or NumPy number to double; False for anything else."""
    if PyFloat_Check(o):                 # float, np.float64
        out[0] = PyFloat_AS_DOUBLE(o)
        return True
    if PyLong_Check(o):                  # int, bool; huge ints raise OverflowError
        out[0] = PyLong_AsDouble(o)
        return True
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        out[0] = float(o)
        return True
    if isinstance(o, np.ndarray) or isinstance(o, numbers.Complex) and not isinstance(
            o, numbers.Real):
        return False
    if isinstance(o, numbers.Real):      # Fraction, Decimal-like
        out[0] = float(o)
        return True
    return False


# COMPLEX_OPERATION(opcode, a, b): an operator of a Variable and a complex constant,
# recorded as real operations on parts by fasttape._complex (x * 1j)
cdef object COMPLEX_OPERATION = None


def register_complex_operation(operation):
    global COMPLEX_OPERATION
    COMPLEX_OPERATION = operation


cdef object not_a_real_operand(opcode_t vv, Variable a, object other, bint reflected):
    """An operator's other operand is not a real number: a complex constant (x * 1j)
    goes to the complex layer, anything else is NotImplemented. (Not inline: the
    operators' inlined bodies stay as small as before.)"""
    if COMPLEX_OPERATION is not None and isinstance(other, numbers.Complex):
        return COMPLEX_OPERATION(vv, other, a) if reflected else \
            COMPLEX_OPERATION(vv, a, other)
    return NotImplemented


cdef inline object arithmetic(opcode_t vv, opcode_t vc, opcode_t cv, bint commutative,
                              object a, object b):
    """The arithmetic operators' shared body, a op b: one of them is a Variable (the
    slot is called for either order). A commutative op records a constant operand on
    the right (x + c for c + x)."""
    # (the operands are used through casts, not typed locals: a local would take and
    # drop a reference to each, at every recorded op)
    if type(a) is Variable:
        if type(b) is Variable:
            check_pair(<Variable>a, <Variable>b)
            return record_binary(vv, <Variable>a, <Variable>b, eval_arithmetic(
                vv, value_of(<Variable>a), value_of(<Variable>b)))
        return with_constant(vv, vc, cv, <Variable>a, b, False)
    if type(b) is Variable:
        return with_constant(vv, vc, cv, <Variable>b, a, not commutative)
    return NotImplemented


cdef object with_constant(opcode_t vv, opcode_t vc, opcode_t cv, Variable a,
                          object other, bint reflected):
    """a op other, or other op a when reflected; other is not a Variable."""
    cdef double c
    if type(other) is float:
        c = PyFloat_AS_DOUBLE(other)
    elif not as_double(other, &c):
        return not_a_real_operand(vv, a, other, reflected)
    if reflected:
        return record_cv(cv, c, a, eval_arithmetic(vv, c, value_of(a)))
    return record_vc(vc, a, c, eval_arithmetic(vv, value_of(a), c))


cdef object compare(opcode_t cmp, Variable a, object other):
    """Evaluate a comparison and remember it (operands and outcome) on the tape."""
    cdef Variable b
    cdef double x, y
    cdef bint outcome
    cdef index_t rhs
    cdef Tape t = a.tape
    if type(other) is Variable:
        b = <Variable>other
        check_pair(a, b)
        y = value_of(b)
        rhs = <index_t>b.slot
    elif as_double(other, &y):
        check_live(a)
        rhs = push_constant(t, y)
        cmp |= GUARD_CONST_RHS
    else:
        return NotImplemented
    x = value_of(a)
    outcome = compare_c(cmp & 7, x, y)
    push_guard(t, cmp, <index_t>a.slot, rhs, outcome)
    if t.locate_guards:
        frame = sys._getframe(0)     # the Python frame that made the comparison
        t.guard_locations.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
    return outcome


# Handlers for NumPy ufuncs applied to Variables, registered by _elementary.
cdef dict UFUNC_HANDLERS = {}


def register_ufunc(ufunc, handler):
    UFUNC_HANDLERS[ufunc] = handler


# What the layers above provide, handed in by fasttape._wiring:
# ARRAY_UFUNC(ufunc, method, inputs, kwargs) records a ufunc with an array operand
# (_arrays.array_ufunc); ARRAY_FUNCTION(func, args, kwargs) runs fasttape.numpy's
# implementation of a NumPy function (np.stack([x, y]), ...) or raises TypeError naming
# it (_arrays.array_function); FINISH_OUTPUT(fun, result, tape, leaves, single) ends grad's
# fast path (scalar_value_and_grad) for a result that is not a Variable of its tape,
# as the general path would (_recording.finish_output); FINISH_JACOBIAN(fun, argnum,
# argnums, args, tape, leaves, result, by_rows, by_columns) ends jacobian's fast path
# (scalar_jacobian) for another result (_recording.finish_jacobian).
cdef object ARRAY_UFUNC = None
cdef object ARRAY_FUNCTION = None
cdef object FINISH_OUTPUT = None
cdef object FINISH_JACOBIAN = None
cdef object FLOAT64 = np.dtype(np.float64)


def register_array_ufunc_handler(handler):
    global ARRAY_UFUNC
    ARRAY_UFUNC = handler


def register_array_function_handler(handler):
    global ARRAY_FUNCTION
    ARRAY_FUNCTION = handler


def register_output_finisher(finisher):
    global FINISH_OUTPUT
    FINISH_OUTPUT = finisher


def register_jacobian_finisher(finisher):
    global FINISH_JACOBIAN
    FINISH_JACOBIAN = finisher


FLOAT_ERROR = (
    "{what} of a fasttape Variable would drop its derivative. Use fasttape's own "
    "functions (fasttape.sin, fasttape.exp, ...; fasttape.math mirrors the math module) "
    "so the operation is recorded, or .value for a plain number without a derivative.")


# Not tracked by the cycle collector (as NumPy arrays are not): a Variable refers only
# to its tape, and a tape refers to user objects only through its Python rules and the
# arrays its nodes read (keepalive), which every reset drops. Tracking cost about a
# tenth of an eager gradient's time (every Variable linked into and out of the
# collector's lists, and a collection every 700 of them).
@cython.no_gc
@cython.final
@cython.c_api_binop_methods(True)
cdef class Variable:
    """A differentiable real number: a handle to one value on a tape.

    ``Variable(x)`` records ``x`` as an input (a leaf) on the current tape; every
    arithmetic operation and fasttape function applied to Variables records one node.
    After ``y.backward()``, ``x.grad`` holds dy/dx.

    Parameters
    ----------
    value : real number
        The value; ints and NumPy scalars are taken as float64.
    tape : Tape, optional
        Where to record. By default the innermost active tape of this thread (the
        one of an enclosing ``grad`` call or ``with Tape()`` block), else the thread's
        default tape, which starts afresh after ``backward()``.

    Notes
    -----
    Arithmetic follows IEEE/NumPy float64 rules, not Python's: ``x / 0`` is inf,
    ``log(-1)`` is nan; no exception is raised for them.
    Comparisons return plain bools and are remembered on the tape.
    ``float(x)``, and so ``math.sin(x)``, raise TypeError rather than drop the
    derivative.
    """

    def __init__(self, value, Tape tape=None):
        cdef double v
        if type(value) is Variable:
            raise TypeError("Variable() takes a number; this is already a Variable")
        if not as_double(value, &v):
            raise TypeError(f"Variable() takes a real number, not "
                            f"{type(value).__name__}")
        if tape is None:
            tape = current_tape()
        self.tape = tape
        self.node = push_node(tape, OP_LEAF, 0, 0, v)
        self.slot = tape.n_slots - 1
        self.epoch = tape.epoch

    # -- values and derivatives ------------------------------------------------------

    @property
    def value(self):
        """The float value."""
        check_live(self)
        return value_of(self)

    # a Variable answers as a 0-d float64 array does (as autograd's boxes of scalars)
    @property
    def shape(self):
        return ()

    @property
    def ndim(self):
        return 0

    @property
    def size(self):
        return 1

    @property
    def dtype(self):
        return FLOAT64

    @property
    def real(self):
        return self

    @property
    def imag(self):
        """0.0: a real number's imaginary part."""
        return 0.0

    def conjugate(self):
        return self

    @property
    def grad(self):
        """d(output)/d(self) from the last ``backward()`` on this tape, or None.

        Each ``backward()`` overwrites the gradients of its tape (PyTorch instead
        accumulates into leaves across backward calls).
        """
        check_live(self)
        cdef Tape t = self.tape
        check_idle(t)               # (another thread's backward() is filling them)
        if t.swept_epoch != t.epoch or self.slot >= t.swept_slot_end:
            return None
        return t.adjoints[self.slot]

    def backward(self, double seed=1.0):
        """Reverse sweep from this Variable: sets ``.grad`` of every earlier Variable
        to d(seed * self)/d(that Variable)."""
        check_live(self)
        self.tape.reverse_c(self.node, self.slot, seed)

    # -- arithmetic ---------------------------------------------------------------------

    # Each operator is one slot for both orders (c_api_binop_methods): a or b is the
    # Variable. (Python's __radd__ semantics would call a wrapper that tests the
    # operands' types before each method.)

    def __add__(a, b):
        return arithmetic(OP_ADD_VV, OP_ADD_VC, OP_ADD_VC, True, a, b)

    def __sub__(a, b):
        return arithmetic(OP_SUB_VV, OP_SUB_VC, OP_SUB_CV, False, a, b)

    def __mul__(a, b):
        return arithmetic(OP_MUL_VV, OP_MUL_VC, OP_MUL_VC, True, a, b)

    def __truediv__(a, b):
        return arithmetic(OP_DIV_VV, OP_DIV_VC, OP_DIV_CV, False, a, b)

    def __pow__(a, b, mod):
        cdef double c
        if mod is not None:
            raise TypeError("pow() with a modulus is not differentiable")
        if type(a) is Variable and type(b) is not Variable and as_double(b, &c) and \
                c == 2.0:
            # x ** 2 is the commonest power: x * x is exact and ~20x cheaper than pow
            return record_unary(OP_SQUARE, <Variable>a,
                                value_of(<Variable>a) * value_of(<Variable>a))
        return arithmetic(OP_POW_VV, OP_POW_VC, OP_POW_CV, False, a, b)

    def __mod__(a, b):
        # Python's %, as np.remainder (the sign of the divisor): the op table's
        # remainder, registered by _elementary
        return UFUNC_HANDLERS[np.remainder](a, b)

    def __neg__(self):
        return record_unary(OP_NEG, self, -value_of(self))

    def __pos__(self):
        check_live(self)
        return self

    def __abs__(self):
        return record_unary(OP_ABS, self, cm.fabs(value_of(self)))

    # -- comparisons: plain bools, remembered on the tape --------------------------------

    def __lt__(self, other):
        return compare(CMP_LT, self, other)

    def __le__(self, other):
        return compare(CMP_LE, self, other)

    def __gt__(self, other):
        return compare(CMP_GT, self, other)

    def __ge__(self, other):
        return compare(CMP_GE, self, other)

    def __eq__(self, other):
        return compare(CMP_EQ, self, other)

    def __ne__(self, other):
        return compare(CMP_NE, self, other)

    def __bool__(self):
        return compare(CMP_NE, self, 0.0)

    def __hash__(self):
        # identity hash (as autograd's boxes and torch tensors): == compares values
        return id(self) >> 4

    # -- conversions that would lose the derivative ----------------------------------

    def __float__(self):
        raise TypeError(FLOAT_ERROR.format(what="float() (and math.* functions)"))

    def __int__(self):
        raise TypeError(FLOAT_ERROR.format(what="int()"))

    def __complex__(self):
        raise TypeError(FLOAT_ERROR.format(what="complex()"))

    def __index__(self):
        raise TypeError(FLOAT_ERROR.format(what="Using as an index"))

    # -- NumPy ---------------------------------------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        cdef double number
        for x in inputs:
            if not (type(x) is Variable or isinstance(x, np.ndarray) and x.ndim == 0
                    or as_double(x, &number)):
                if COMPLEX_OPERATION is not None and isinstance(x, numbers.Complex) \
                        and len(inputs) == 2 and method == "__call__" and not kwargs:
                    # a complex number (np.complex128(1j) * x): the complex layer's
                    return COMPLEX_OPERATION(ufunc, inputs[0], inputs[1])
                # an array operand: the array layer records it
                return ARRAY_UFUNC(ufunc, method, inputs, kwargs)
        handler = UFUNC_HANDLERS.get(ufunc)
        if method != "__call__" or kwargs or handler is None:
            raise unsupported_ufunc(ufunc, method, kwargs, " applied to a Variable")
        # NumPy scalars become Python floats, so that the handler's own operators
        # (float * Variable) reach Variable's reflected methods instead of NumPy again
        return handler(*[x if type(x) is Variable else float(x[()] if isinstance(
            x, np.ndarray) else x) for x in inputs])

    def __array_function__(self, func, types, args, kwargs):
        # np.stack([x, y]), np.append(a, x), ...: fasttape.numpy's implementation
        # records one node, or a TypeError names the function; never an object array
        return ARRAY_FUNCTION(func, args, kwargs)

    def __repr__(self):
        if self.epoch != self.tape.epoch:
            return "Variable(<stale: its tape was reset>)"
        return f"Variable({value_of(self)!r})"

    def __reduce__(self):
        raise TypeError("a Variable cannot be pickled (it is a handle into a live "
                        "tape); pickle .value instead")


# -- Variable's allocator ---------------------------------------------------------------
#
# A Variable is made and dropped for every recorded operation. Its own free list (as
# CPython's floats have) and its fields written in one C function save most of the
# general path's cost (tp_new through the type's slot and its wrappers, zeroing, None
# stored and then replaced, a type test): 24 -> 20 ns an op (a * b of Variables).
# Variable(x) takes its objects from the same free list (the type's tp_alloc).
# fasttape_VariableLayout must be Variable's layout: checked at import against a
# Variable made the general way; if it is not (another Cython's layout), the general
# path stays.
cdef extern from *:
    """
    typedef struct {
        PyObject_HEAD
        PyObject *tape;
        Py_ssize_t node, slot, epoch;
    } fasttape_VariableLayout;

    #define FASTTAPE_FREE_VARIABLES 1024
    static PyObject *fasttape_free_variables[FASTTAPE_FREE_VARIABLES];
    static int fasttape_n_free_variables = 0;
    static PyTypeObject *fasttape_variable_type = NULL;

    static void fasttape_variable_dealloc(PyObject *o) {
        Py_CLEAR(((fasttape_VariableLayout *)o)->tape);
        if (fasttape_n_free_variables < FASTTAPE_FREE_VARIABLES)
            fasttape_free_variables[fasttape_n_free_variables++] = o;
        else
            Py_TYPE(o)->tp_free(o);
    }

    /* A Variable from the free list keeps its type (a static type: no reference
       to it is held), so a new life is a reference count of 1, written here rather
       than by PyObject_Init: two calls into libpython fewer per recorded op (about
       2 ns of ~20). Not where _Py_NewReference does more: debug builds' reference
       bookkeeping, free-threaded builds' split counts, and from 3.13 the reference
       tracers (PyRefTracer), which must see every creation. (tracemalloc's traceback
       of the block stays the one of its first allocation.) */
    #if defined(Py_TRACE_REFS) || defined(Py_REF_DEBUG) || \
        defined(Py_GIL_DISABLED) || PY_VERSION_HEX >= 0x030D0000
    #define fasttape_reuse_variable(o) \
        ((void)PyObject_Init((o), fasttape_variable_type))
    #else
    #define fasttape_reuse_variable(o) Py_SET_REFCNT((o), 1)
    #endif

    static PyObject *fasttape_variable_new(PyObject *tape, Py_ssize_t node,
                                           Py_ssize_t slot, Py_ssize_t epoch) {
        fasttape_VariableLayout *v;
        if (fasttape_n_free_variables > 0) {
            v = (fasttape_VariableLayout *)
                fasttape_free_variables[--fasttape_n_free_variables];
            fasttape_reuse_variable((PyObject *)v);
        } else {
            v = (fasttape_VariableLayout *)PyObject_Malloc(sizeof(fasttape_VariableLayout));
            if (v == NULL)
                return PyErr_NoMemory();
            (void)PyObject_Init((PyObject *)v, fasttape_variable_type);
        }
        Py_INCREF(tape);
        v->tape = tape;
        v->node = node;
        v->slot = slot;
        v->epoch = epoch;
        return (PyObject *)v;
    }

    /* Derivatives as Python floats. 0.0, 1.0 and -1.0 (the commonest entries of
       Jacobians: independence, identity, subtraction) share one object each, as
       CPython shares small ints; any other value (-0.0 too) is a new float. */
    static PyObject *fasttape_shared_floats[3];

    static int fasttape_shared_index(double v) {
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        return bits == 0 ? 0 : bits == 0x3FF0000000000000ULL ? 1 :
               bits == 0xBFF0000000000000ULL ? 2 : -1;
    }

    static int fasttape_make_shared_floats(void) {
        static const double shared_values[3] = {0.0, 1.0, -1.0};
        int k;
        for (k = 0; k < 3; k++) {
            if (fasttape_shared_floats[k] == NULL) {
                fasttape_shared_floats[k] = PyFloat_FromDouble(shared_values[k]);
                if (fasttape_shared_floats[k] == NULL)
                    return -1;
            }
        }
        return 0;
    }

    static PyObject *fasttape_result_float(double v) {
        int k = fasttape_shared_index(v);
        if (k < 0)
            return PyFloat_FromDouble(v);
        if (fasttape_make_shared_floats() < 0)
            return NULL;
        Py_INCREF(fasttape_shared_floats[k]);
        return fasttape_shared_floats[k];
    }

    /* items[0:n] (a new list's or tuple's, all NULL) = the floats of values[0:n]. The
       shared objects' references are added once per object, not once per item (an
       item after item increment of one count is a chain of dependent stores). */
    static int fasttape_fill_floats(PyObject **items, const double *values,
                                    Py_ssize_t n) {
        Py_ssize_t j, uses[3] = {0, 0, 0};
        int k, status = 0;
        if (fasttape_make_shared_floats() < 0)
            return -1;
        for (j = 0; j < n; j++) {
            k = fasttape_shared_index(values[j]);
            if (k >= 0) {
                items[j] = fasttape_shared_floats[k];
                uses[k]++;
            } else if ((items[j] = PyFloat_FromDouble(values[j])) == NULL) {
                status = -1;
                break;
            }
        }
        for (k = 0; k < 3; k++) {
    /* (one at a time where an increment does more than a store: free-threaded
       builds' split counts, debug builds' total of references) */
    #if defined(Py_GIL_DISABLED) || defined(Py_REF_DEBUG)
            for (j = 0; j < uses[k]; j++)
                Py_INCREF(fasttape_shared_floats[k]);
    #else
            Py_SET_REFCNT(fasttape_shared_floats[k],
                          Py_REFCNT(fasttape_shared_floats[k]) + uses[k]);
    #endif
        }
        return status;
    }

    /* Variable's tp_alloc (Variable(x), Variable.__new__: Cython's tp_new), from the
       same free list, zeroed past the header as PyType_GenericAlloc's */
    static PyObject *fasttape_variable_tp_alloc(PyTypeObject *type, Py_ssize_t nitems) {
        PyObject *o;
        if (fasttape_n_free_variables > 0 && type == fasttape_variable_type) {
            o = fasttape_free_variables[--fasttape_n_free_variables];
            memset((char *)o + sizeof(PyObject), 0,
                   sizeof(fasttape_VariableLayout) - sizeof(PyObject));
            (void)PyObject_Init(o, type);
            return o;
        }
        return PyType_GenericAlloc(type, nitems);
    }

    /* Install the allocator if `sample` (a Variable made by Cython's tp_new, with
       the fields given) is laid out as fasttape_VariableLayout; 1 if installed. */
    static int fasttape_install_variable_allocator(PyObject *sample, PyObject *tape,
                                                   Py_ssize_t node, Py_ssize_t slot,
                                                   Py_ssize_t epoch) {
        PyTypeObject *type = Py_TYPE(sample);
        fasttape_VariableLayout *v = (fasttape_VariableLayout *)sample;
    #ifdef Py_GIL_DISABLED
        return 0;   /* the free list relies on the GIL (as Cython's do) */
    #endif
        if (type->tp_basicsize != (Py_ssize_t)sizeof(fasttape_VariableLayout) ||
                type->tp_alloc != PyType_GenericAlloc ||
                type->tp_itemsize != 0 || PyType_HasFeature(type, Py_TPFLAGS_HAVE_GC) ||
                PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE) ||
                type->tp_free != PyObject_Free || v->tape != tape ||
                v->node != node || v->slot != slot || v->epoch != epoch)
            return 0;
        fasttape_variable_type = type;
        type->tp_dealloc = fasttape_variable_dealloc;
        type->tp_alloc = fasttape_variable_tp_alloc;
        return 1;
    }
    """
    object fasttape_variable_new(PyObject* tape, Py_ssize_t node, Py_ssize_t slot,
                                 Py_ssize_t epoch)
    int fasttape_install_variable_allocator(object sample, object tape, Py_ssize_t node,
                                            Py_ssize_t slot, Py_ssize_t epoch)
    object result_float "fasttape_result_float"(double v)
    int fill_floats "fasttape_fill_floats"(PyObject** items, const double* values,
                                           Py_ssize_t n) except -1

cdef bint own_allocator = False


cdef Variable variable_at(Tape t, Py_ssize_t node, Py_ssize_t slot):
    cdef Variable v
    if own_allocator:
        return <Variable>fasttape_variable_new(<PyObject*>t, node, slot, t.epoch)
    v = Variable.__new__(Variable)
    v.tape = t
    v.node = node
    v.slot = slot
    v.epoch = t.epoch
    return v


cdef Variable push_variable(PyObject* tape, opcode_t op, index_t a, index_t b,
                            double value):
    cdef Py_ssize_t node = push_node(<Tape>tape, op, a, b, value)
    if own_allocator:
        return <Variable>fasttape_variable_new(tape, node, (<Tape>tape).n_slots - 1,
                                               (<Tape>tape).epoch)
    return variable_at(<Tape>tape, node, (<Tape>tape).n_slots - 1)


def _install_allocator():
    global own_allocator
    cdef Tape t = Tape()
    cdef Variable sample = variable_at(t, 3, 5)
    sample.epoch = 7
    own_allocator = fasttape_install_variable_allocator(sample, t, 3, 5, 7)


_install_allocator()


def uses_own_allocator():
    """True when Variables come from the allocator above (for tests)."""
    return own_allocator


def unsupported_ufunc(ufunc, method, kwargs, where=""):
    """The TypeError for a ufunc that fasttape does not differentiate. A ufunc of
    scipy.special reaches Variables too, but SciPy's functions (ufuncs or not) are not
    intercepted: the message names the differentiable fasttape.scipy.special function
    instead (never a silent float)."""
    name = ufunc.__name__
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        ours = sys.modules.get("fasttape.scipy.special")
        if ours is None or name in getattr(ours, "__all__", ()):
            hint = f"use fasttape.scipy.special.{name}, its differentiable version"
        else:
            hint = "fasttape.scipy.special has no differentiable version of it"
        return TypeError(f"scipy.special.{name} was called on a fasttape Variable: "
                         f"SciPy's functions cannot be intercepted; {hint}")
    return TypeError(
        f"fasttape cannot differentiate numpy.{name}"
        f"{'' if method == '__call__' else '.' + method}"
        f"{' with keyword arguments ' + str(sorted(kwargs)) if kwargs else ''}{where}")


cpdef Variable make_leaf(Tape tape, double value):
    """Record an input on ``tape`` (no current-tape lookup: the fast path of grad)."""
    return new_variable(tape, push_node(tape, OP_LEAF, 0, 0, value))


cpdef Variable make_constant(Tape tape, double value):
    """A constant as a Variable on `tape` (no derivative flows out of it)."""
    return promote_constant(tape, value)


def make_leaves(Tape tape, values):
    """Leaves for a flat list or tuple of numbers, as a list of Variables.

    Returns None, recording nothing, if some element is not a real number.
    """
    cdef list out
    cdef double v
    cdef Py_ssize_t i, n = len(values)
    for x in values:
        if type(x) is not float and not (type(x) is not Variable and as_double(x, &v)):
            return None
    out = [None] * n
    for i in range(n):
        as_double(values[i], &v)
        out[i] = new_variable(tape, push_node(tape, OP_LEAF, 0, 0, v))
    return out


def is_leaf_input(x):
    """True if x can be a scalar input leaf (a real Python or NumPy number)."""
    cdef double v
    return type(x) is not Variable and as_double(x, &v)



cdef bint is_float_or_floats(object x):
    """A Python float, or a nonempty flat list or tuple of Python floats."""
    if type(x) is float:
        return True
    if (type(x) is not list and type(x) is not tuple) or len(x) == 0:
        return False
    for v in x:
        if type(v) is not float:
            return False
    return True


# the fast paths' differentiated arguments at most (each one's leaf count is kept in a
# C array); more go to the general path
cdef enum:
    MAX_FAST_ARGUMENTS = 32


cdef bint takes_float_path(argnums, tuple args, ThreadTapes state) except -1:
    """The fast paths of grad and jacobian apply: every differentiated argument a
    float or a flat list or tuple of floats, outside any other differentiation."""
    cdef Py_ssize_t n = len(args), i
    if argnums is None or len(argnums) > MAX_FAST_ARGUMENTS:
        return False
    for i in argnums:
        if not -n <= i < n or not is_float_or_floats(args[i]):
            return False
    # (as active_tape() is None: no active tape, or the innermost one mid-sweep)
    if state.depth and not (<Tape>innermost_tape(state)).sweeping:
        return False
    return not (n_paused and recording_paused())


cdef object leaves_like(Tape tape, object x, Py_ssize_t* count):
    """x (a float, or a flat list or tuple of floats) as leaves on tape, in the next
    slots in order, in its own container; count receives the number of leaves."""
    cdef Py_ssize_t j, n
    cdef object items, item
    cdef Variable leaf
    cdef bint is_list = type(x) is list
    if type(x) is float:
        count[0] = 1
        return new_variable(tape, push_node(tape, OP_LEAF, 0, 0, PyFloat_AS_DOUBLE(x)))
    n = len(x)
    items = PyList_New(n) if is_list else PyTuple_New(n)
    for j in range(n):
        item = (<list>x)[j] if is_list else (<tuple>x)[j]
        if type(item) is not float:     # (checked before; only a finalizer changes it)
            raise RuntimeError("an argument changed while its leaves were recorded")
        leaf = new_variable(tape, push_node(tape, OP_LEAF, 0, 0, PyFloat_AS_DOUBLE(item)))
        Py_INCREF(leaf)
        if is_list:
            PyList_SET_ITEM(items, j, leaf)
        else:
            PyTuple_SET_ITEM(items, j, leaf)
    count[0] = n
    return items


cdef object call_on_leaves(Tape tape, fun, argnums, tuple args, dict kwargs,
                           Py_ssize_t* counts):
    """fun called with leaves on tape (its next slots, argument after argument) for the
    differentiated arguments; counts[k] receives argument argnums[k]'s leaf count."""
    cdef list call_args
    cdef Py_ssize_t i, k = 0
    if len(args) == 1 and len(argnums) == 1 and not kwargs:   # (f(z): no list to build)
        return fun(leaves_like(tape, args[0], counts))
    call_args = list(args)
    for i in argnums:
        call_args[i] = leaves_like(tape, args[i], &counts[k])
        k += 1
    return fun(*call_args, **kwargs)


# Results and the garbage collector. A derivative returned as lists of floats cannot
# be part of a reference cycle, so those lists are untracked, as CPython untracks the
# tuples and dicts that hold only untracked objects. Tracked, each list would count
# towards the next collection and, kept (a loop storing a Jacobian per point), be
# walked by every full collection: measured on the Lorenz-96 Jacobian (13 lists per
# call) kept for 1,000 points, 5.8 us per call, against 4.5 us untracked. A list a
# caller later makes part of a cycle (row.append(row)) is freed by reference counting
# only, which then never frees it.

cdef inline void untrack_if_atomic(list container):
    """Untrack container if none of its items is a tracked object (see above)."""
    cdef PyObject* item
    for o in container:
        item = <PyObject*>o
        if PyObject_IS_GC(item) and PyObject_GC_IsTracked(item):
            return
    PyObject_GC_UnTrack(<PyObject*>container)


cdef object floats_like(object x, const double* values, Py_ssize_t count):
    """values[0:count] as Python floats in x's container (one float for a float); a
    list untracked by the garbage collector (see above)."""
    cdef object out
    if type(x) is float:
        return result_float(values[0])
    if type(x) is list:
        out = PyList_New(count)
        fill_floats(PySequence_Fast_ITEMS(out), values, count)
        PyObject_GC_UnTrack(<PyObject*>out)
        return out
    out = PyTuple_New(count)
    fill_floats(PySequence_Fast_ITEMS(out), values, count)
    return out


cdef object structured(const double* values, tuple args, argnums, bint single,
                       const Py_ssize_t* counts):
    """One output's derivatives (values: one per leaf, in order) in the structure of
    the differentiated arguments, as row_like gives them, built from C."""
    cdef Py_ssize_t k = 0, start = 0
    cdef list parts
    if single:
        return floats_like(args[argnums[0]], values, counts[0])
    parts = []
    for i in argnums:
        parts.append(floats_like(args[i], values + start, counts[k]))
        start += counts[k]
        k += 1
    return tuple(parts)


cdef object row_like(list row, tuple args, argnums, bint single):
    """One output's derivatives (one per leaf, in order) in the structure of the
    differentiated arguments: one per number argument, a list or tuple of them per
    list or tuple argument, a tuple of those for a tuple argnum."""
    cdef Py_ssize_t start = 0, k, i
    if single and type(args[argnums[0]]) is list and len(args) == 1:
        return row                   # (one list argument: the row is its gradient)
    per_argument = []
    for i in argnums:
        x = args[i]
        if type(x) is not list and type(x) is not tuple:
            per_argument.append(row[start])
            start += 1
        else:
            k = len(x)
            per_argument.append(row[start:start + k] if type(x) is list
                                else tuple(row[start:start + k]))
            start += k
    return per_argument[0] if single else tuple(per_argument)


cdef list leaf_handles(Tape tape, Py_ssize_t first, Py_ssize_t n_leaves):
    """Handles to the leaves in slots first, first + 1, ... (for the general endings)."""
    return [handle_at(tape, first + j) for j in range(n_leaves)]


cpdef object scalar_value_and_grad(fun, argnums, bint single, tuple args, dict kwargs):
    """The fast path of grad and value_and_grad: every differentiated argument a
    Python float or a flat list or tuple of them, outside any other differentiation.
    Returns (value, gradient), the gradient of each argument a float or a list or
    tuple of floats as the argument, or NotImplemented (having run nothing) when the
    path does not apply."""
    cdef Tape tape
    cdef Variable out
    cdef Py_ssize_t counts[MAX_FAST_ARGUMENTS]
    cdef Py_ssize_t k, first, n_leaves = 0
    cdef ThreadTapes state = thread_tapes()
    if not takes_float_path(argnums, args, state):
        return NotImplemented
    tape = acquire_tape_in(state)
    try:
        first = tape.n_slots
        result = call_on_leaves(tape, fun, argnums, args, kwargs, counts)
        for k in range(len(argnums)):
            n_leaves += counts[k]
        if type(result) is not Variable or (<Variable>result).tape is not tape:
            value, gradients = FINISH_OUTPUT(fun, result, tape,
                                             leaf_handles(tape, first, n_leaves), False)
            gradient = row_like(list(gradients), args, argnums, single)
        else:
            out = <Variable>result
            check_live(out)
            tape.reverse_c(out.node, out.slot, 1.0)
            value = value_of(out)
            gradient = structured(tape.adjoints + first, args, argnums, single, counts)
    finally:
        release_tape_in(state, tape)
    return value, gradient


cpdef object scalar_jacobian(fun, argnum, argnums, bint single, tuple args, dict kwargs,
                             bint by_rows, bint by_columns):
    """The fast path of jacobian, jacrev and jacfwd: the arguments as grad's fast path
    takes them, the output a Variable or a flat list or tuple of Variables (and
    constants). by_rows: reverse sweeps, one per output; by_columns: tangent sweeps, one
    per input; both: whichever are fewer. The Jacobian is structured as the general
    path's (Recording.jacobian), or NotImplemented (having run nothing) when the path
    does not apply; another output is handed to FINISH_JACOBIAN."""
    cdef Py_ssize_t j, k, n_out, n_leaves = 0, first, stride, n_lanes, block
    cdef Py_ssize_t* lanes
    cdef Py_ssize_t counts[MAX_FAST_ARGUMENTS]
    cdef Tape tape
    cdef Variable out
    cdef list outputs, rows
    cdef bint reverse
    cdef double* columns = NULL
    cdef double* lane_adjoints
    cdef ThreadTapes state = thread_tapes()
    if not takes_float_path(argnums, args, state):
        return NotImplemented
    tape = acquire_tape_in(state)
    try:
        first = tape.n_slots
        result = call_on_leaves(tape, fun, argnums, args, kwargs, counts)
        for k in range(len(argnums)):
            n_leaves += counts[k]
        if type(result) is Variable and (<Variable>result).tape is tape:
            outputs = [result]
        elif (type(result) is list or type(result) is tuple) and len(result) > 0 and \
                only_floats_or_variables_of(result, tape):
            # (a copy: the sweeps below can run user code, a primitive's rule or a
            # finalizer, which may change f's own list, and the outputs are read
            # after it without their types or tape checked again)
            outputs = list(result)
        else:
            return FINISH_JACOBIAN(fun, argnum, argnums, args, tape,
                                   leaf_handles(tape, first, n_leaves), result,
                                   by_rows, by_columns)
        n_out = len(outputs)
        for k in range(n_out):
            if type(outputs[k]) is Variable:
                check_live(<Variable>outputs[k])
        reverse = by_rows and (not by_columns or n_out <= n_leaves)
        rows = [None] * n_out
        if reverse and n_out > 1 and lanes_apply(tape):
            # the outputs' sweeps in blocks of lanes, one pass per block, in the
            # tape's lane buffer: the lanes, then their nodes, order and tops
            stride = tape.n_slots
            block = min(<Py_ssize_t>LANE_BLOCK, n_out)
            ensure_doubles(&tape.lane_adjoints, &tape.lane_adjoint_capacity,
                           block * stride + 3 * n_out)
            lane_adjoints = tape.lane_adjoints
            lanes = <Py_ssize_t*>(lane_adjoints + block * stride)
            for k in range(n_out):
                lanes[k] = (<Variable>outputs[k]).node \
                    if type(outputs[k]) is Variable else -1
                if lanes[k] < 0:
                    rows[k] = row_like([0.0] * n_leaves, args, argnums, single)
            n_lanes = order_lanes(lanes, n_out, lanes + n_out, lanes + 2 * n_out)
            j = 0
            while j < n_lanes:
                block = min(<Py_ssize_t>LANE_BLOCK, n_lanes - j)
                sweep_lanes(tape, tape.values, lane_adjoints, block, stride,
                            lanes + 2 * n_out + j)
                for k in range(block):
                    rows[lanes[n_out + j + k]] = structured(
                        lane_adjoints + k * stride + first, args, argnums, single,
                        counts)
                j += block
        elif reverse:
            for k in range(n_out):
                if type(outputs[k]) is float:
                    rows[k] = row_like([0.0] * n_leaves, args, argnums, single)
                    continue
                out = <Variable>outputs[k]
                tape.reverse_c(out.node, out.slot, 1.0)
                rows[k] = structured(tape.adjoints + first, args, argnums, single,
                                     counts)
        else:
            # one tangent sweep per leaf; the outputs' tangents gathered by rows
            columns = <double*>PyMem_Calloc(n_out * n_leaves + 1, sizeof(double))
            if columns == NULL:
                raise MemoryError()
            prepare_tangents(tape)
            for j in range(n_leaves):
                if j:
                    tape.tangents[first + j - 1] = 0.0
                tape.tangents[first + j] = 1.0
                run_tangent(tape)
                for k in range(n_out):
                    if type(outputs[k]) is Variable:
                        columns[k * n_leaves + j] = \
                            tape.tangents[(<Variable>outputs[k]).slot]
            for k in range(n_out):
                rows[k] = structured(columns + k * n_leaves, args, argnums, single,
                                     counts)
    finally:
        PyMem_Free(columns)
        release_tape_in(state, tape)
    if type(result) is Variable:
        if single and type(args[argnums[0]]) is float:
            return np.array(rows[0])       # one number in and out: a 0-d array
        return rows[0]
    if type(result) is list:
        untrack_if_atomic(rows)
        return rows
    return tuple(rows)


@cython.final
@cython.auto_pickle(False)
cdef class JacobianFunction:
    """What ``jacobian(fun)`` (``jacrev``, ``jacfwd``) returns without has_aux: the fast
    path for floats tried from C, without a Python frame per call; other arguments go
    to `general(args, kwargs)`. Carries fun's name and docstring
    (functools.update_wrapper) and binds as a method does; copy.copy and
    copy.deepcopy return it, as they return a function."""
    cdef object fun, argnum, argnums, general
    cdef bint single, by_rows, by_columns
    cdef dict __dict__

    def __init__(self, fun, argnum, argnums, bint single, bint by_rows, bint by_columns,
                 general):
        self.fun, self.argnum, self.argnums, self.single = fun, argnum, argnums, single
        self.by_rows, self.by_columns = by_rows, by_columns
        self.general = general

    def __call__(self, *args, **kwargs):
        jac = scalar_jacobian(self.fun, self.argnum, self.argnums, self.single, args,
                              kwargs, self.by_rows, self.by_columns)
        return self.general(args, kwargs) if jac is NotImplemented else jac

    def __get__(self, instance, owner):
        return self if instance is None else MethodType(self, instance)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return f"<Jacobian of {getattr(self.fun, '__qualname__', self.fun)!r}>"


cdef bint only_floats_or_variables_of(object outputs, Tape tape) except -1:
    """Every element a Python float or a Variable of tape."""
    for o in outputs:
        if not ((type(o) is Variable and (<Variable>o).tape is tape) or type(o) is float):
            return False
    return True
