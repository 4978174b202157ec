# odeint's adjoint ODE (fasttape.scipy.integrate), integrated in C over a traced
# right-hand side. The state is [y, a, a_args]; its derivative at (state, time) is
# [f, -a^T df/dy, -a^T df/dargs], f = func(y, time, *args): one replay of func's tape
# (fasttape._forward), its guards checked, then one reverse sweep (fasttape._reverse)
# seeded with -a. An explicit embedded Runge-Kutta pair (its coefficients handed in:
# Cash-Karp 5(4) or DOP853, fasttape.scipy._adjoint_steps.pair) steps backwards across
# the time points, ends a step on each, adds the output cotangent g_i to a there and
# goes on with the step size it had, as _adjoint_steps.Stepper does in Python; the whole
# backward sweep is one call without the GIL, with no Python per stage (measured on
# tools/odeint_bench.py's 10-state network over 100 time points: 653 derivatives in
# 0.6 ms, ~0.9 us each with the stages' arithmetic, against ~16 us each through
# Traced.value_and_vjp_arrays and the Python stepper). Memory: the pair's stages (one
# row of the state each) and the tape's buffers, whatever the number of steps. It
# looks at Python's signals every SIGNAL_PERIOD steps, so Ctrl-C stops a long sweep.

cimport numpy as cnp
from libc.math cimport fabs, fmax, fmin, INFINITY, nextafter, pow, sqrt
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

import numpy as np

from fasttape._array_helpers cimport live_adjoints
from fasttape._forward cimport first_changed_guard_c, forward_replay_c
from fasttape._reverse cimport prepare_sweep, reverse_sweep_c
from fasttape._tape_storage cimport *

from fasttape.errors import BranchChangedError


cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1     # (with the GIL)

cnp.import_array()

# step-size factor bounds and safety factor (solve_ivp's, as _adjoint_steps)
cdef double SAFETY = 0.9, MIN_FACTOR = 0.2, MAX_FACTOR = 10.0
# steps between two looks at Python's signals (Ctrl-C) in a long sweep: taking the GIL
# costs ~0.1 us, a step of a small system ~5 us
cdef Py_ssize_t SIGNAL_PERIOD = 1024

# statuses of the nogil functions
cdef enum:
    DONE = 0
    PYTHON_ERROR = -1        # a Python value function or rule raised, or a signal's
                             # handler did: the exception is in t.sweep_error
    BRANCH_CHANGED = -2      # a recorded comparison comes out otherwise
    STEP_LIMIT = -3          # more than max_steps steps on one interval
    STEP_TOO_SMALL = -4      # the step size fell below the time's precision


ctypedef struct Rhs:
    # where the traced right-hand side reads and writes, all checked by AdjointSweep
    Py_ssize_t n_states       # y's size (and f's, and a's)
    Py_ssize_t width          # the state's: 2 n_states + the arguments' values
    Py_ssize_t y_anode        # y's array leaf
    Py_ssize_t time_slot      # the time's scalar leaf
    Py_ssize_t out_anode      # f's array node
    Py_ssize_t sweep_end      # the reverse sweep starts at node sweep_end - 1
    Py_ssize_t n_args         # the differentiated arguments' leaves:
    const int64_t* arg_kinds  #   1 for an array node, 0 for a scalar slot
    const int64_t* arg_refs   #   its array node or slot
    Py_ssize_t n_mask_guards  # masks read as booleans: their array nodes
    const int64_t* mask_nodes
    uint8_t** outcomes        #   and their values when traced (0 or 1 each)


ctypedef struct Pair:
    # an embedded explicit Runge-Kutta pair
    Py_ssize_t n_stages       # stages of a step (without the one at the new point)
    bint fsal                 # one more stage at the new point (first same as last)
    const double* A           # n_stages x n_stages, row s: stage s's weights
    const double* B           # the solution's weights (n_stages)
    const double* C           # the stages' time fractions (n_stages)
    const double* E           # the error estimate's weights (n_stages + fsal)
    const double* E3          # DOP853's third-order estimate's, or NULL
    double exponent           # -1 / (order of the error estimate + 1)


ctypedef struct Control:
    double rtol, atol
    double h                  # the step size to try next (magnitude); 0: not chosen yet
    Py_ssize_t max_steps      # per interval
    Py_ssize_t steps          # accepted and rejected, all intervals
    Py_ssize_t evaluations    # derivatives
    Py_ssize_t countdown      # accepted steps until the next look at Python's signals


# -- the derivative: replay, guards, reverse sweep --------------------------------------

cdef int derivative_c(TapeStorage t, Rhs* r, Control* c, const double* state,
                      double time, double* out) noexcept nogil:
    """out = [f, -a^T df/dy, -a^T df/dargs] at (state, time). DONE, PYTHON_ERROR or
    BRANCH_CHANGED."""
    cdef Py_ssize_t n = r.n_states, k, j, at
    cdef ArrayNode* node
    cdef double* seed
    cdef const double* mask
    c.evaluations += 1
    memcpy(t.anodes[r.y_anode].value, state, <size_t>n * sizeof(double))
    t.values[r.time_slot] = time
    if forward_replay_c(t, t.values) < 0:
        return PYTHON_ERROR
    if first_changed_guard_c(t, t.values) >= 0:
        return BRANCH_CHANGED
    for k in range(r.n_mask_guards):
        node = &t.anodes[r.mask_nodes[k]]
        mask = node.value if node.value != NULL else &t.values[node.out_slot]
        for j in range(node.size):
            if (mask[j] != 0.0) != (r.outcomes[k][j] != 0):
                return BRANCH_CHANGED
    node = &t.anodes[r.out_anode]
    memset(t.adjoints, 0, <size_t>t.n_slots * sizeof(double))
    memset(t.array_adjoint_live, 0, <size_t>t.n_anodes)
    if node.adj < 0:                       # one value, in a scalar slot
        out[0] = t.values[node.out_slot]
        t.adjoints[node.out_slot] = -state[n]
    else:
        memcpy(out, node.value, <size_t>n * sizeof(double))
        seed = live_adjoints(t, r.out_anode)
        for k in range(n):
            seed[k] = -state[n + k]
    if reverse_sweep_c(t, r.sweep_end) < 0:
        return PYTHON_ERROR
    read_leaf_adjoints(t, r.y_anode, out + n)
    at = 2 * n
    for k in range(r.n_args):
        if r.arg_kinds[k]:
            read_leaf_adjoints(t, r.arg_refs[k], out + at)
            at += t.anodes[r.arg_refs[k]].size
        else:
            out[at] = t.adjoints[r.arg_refs[k]]
            at += 1
    return DONE


cdef inline void read_leaf_adjoints(TapeStorage t, Py_ssize_t anode,
                                    double* out) noexcept nogil:
    """Array leaf anode's adjoints after a sweep (zeros where the sweep missed it)."""
    cdef ArrayNode* node = &t.anodes[anode]
    if t.array_adjoint_live[anode]:
        memcpy(out, &t.array_adjoints[node.adj], <size_t>node.size * sizeof(double))
    else:
        memset(out, 0, <size_t>node.size * sizeof(double))


# -- the Runge-Kutta pair ----------------------------------------------------------------

cdef double rms(const double* x, const double* scale, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0, v
    cdef Py_ssize_t i
    for i in range(n):
        v = x[i] / scale[i]
        s += v * v
    return sqrt(s / n)


cdef int initial_step_c(TapeStorage t, Rhs* r, Pair* p, Control* c, const double* y,
                        double time, const double* f, double direction,
                        double* work, double* probe, double* f1) noexcept nogil:
    """c.h from the size of y, f and an estimate of y'' (Hairer, Norsett and Wanner,
    II.4), as solve_ivp and _adjoint_steps.Stepper.initial_step choose it."""
    cdef Py_ssize_t i, n = r.width
    cdef double d0, d1, d2, h0, h1
    cdef int status
    for i in range(n):
        work[i] = c.atol + c.rtol * fabs(y[i])
    d0 = rms(y, work, n)
    d1 = rms(f, work, n)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    for i in range(n):
        probe[i] = y[i] + direction * h0 * f[i]
    status = derivative_c(t, r, c, probe, time + direction * h0, f1)
    if status != DONE:
        return status
    for i in range(n):
        f1[i] -= f[i]
    d2 = rms(f1, work, n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = fmax(1e-6, h0 * 1e-3)
    else:
        h1 = pow(0.01 / fmax(d1, d2), -p.exponent)
    c.h = fmin(100 * h0, h1)
    return DONE


cdef double error_norm_c(Pair* p, const double* K, Py_ssize_t n, double h,
                         const double* scale) noexcept nogil:
    """The step's error estimate, a root mean square of E K / scale (DOP853: its blend
    of the fifth- and third-order estimates), as solve_ivp's."""
    cdef Py_ssize_t i, s, rows = p.n_stages + p.fsal
    cdef double e5, e3, err5 = 0.0, err3 = 0.0
    for i in range(n):
        e5 = 0.0
        for s in range(rows):
            e5 += p.E[s] * K[s * n + i]
        e5 /= scale[i]
        err5 += e5 * e5
        if p.E3 != NULL:
            e3 = 0.0
            for s in range(rows):
                e3 += p.E3[s] * K[s * n + i]
            e3 /= scale[i]
            err3 += e3 * e3
    if p.E3 == NULL:
        return h * sqrt(err5 / n)
    if err5 == 0.0:
        return 0.0
    return h * err5 / sqrt((err5 + 0.01 * err3) * n)


cdef int advance_c(TapeStorage t, Rhs* r, Pair* p, Control* c, double* y, double t0,
                   double t1, double* K, double* stage, double* y_new,
                   double* scale) noexcept nogil:
    """y <- the solution at t1 from y at t0 (t1 < t0 allowed), K's first row holding
    the derivative at (y, t0) on entry. The step size is kept in c.h from one call to
    the next. DONE or a failure status (y then unspecified)."""
    cdef Py_ssize_t n = r.width, i, s, j, steps = 0
    cdef double span = t1 - t0, direction, time = t0, t_new, h, step, error, factor, w
    cdef bint last
    cdef int status
    if span == 0.0:
        return DONE
    direction = 1.0 if span > 0 else -1.0
    if c.h == 0.0:
        status = initial_step_c(t, r, p, c, y, t0, K, direction, scale, stage, y_new)
        if status != DONE:
            return status
    while direction * (t1 - time) > 0:
        h = fmin(c.h, fabs(t1 - time))
        last = h == fabs(t1 - time)
        while True:
            steps += 1
            c.steps += 1
            if steps > c.max_steps:
                return STEP_LIMIT
            step = direction * h
            t_new = t1 if last else time + step
            # the stages (K's first row: the derivative at (y, time))
            for s in range(1, p.n_stages):
                for i in range(n):
                    w = 0.0
                    for j in range(s):
                        w += p.A[s * p.n_stages + j] * K[j * n + i]
                    stage[i] = y[i] + step * w
                status = derivative_c(t, r, c, stage, time + p.C[s] * step, K + s * n)
                if status != DONE:
                    return status
            for i in range(n):
                w = 0.0
                for s in range(p.n_stages):
                    w += p.B[s] * K[s * n + i]
                y_new[i] = y[i] + step * w
            if p.fsal:
                status = derivative_c(t, r, c, y_new, t_new, K + p.n_stages * n)
                if status != DONE:
                    return status
            for i in range(n):
                scale[i] = c.atol + c.rtol * fmax(fabs(y[i]), fabs(y_new[i]))
            error = error_norm_c(p, K, n, h, scale)
            if error <= 1.0:
                factor = MAX_FACTOR if error == 0.0 else \
                    fmin(MAX_FACTOR, SAFETY * pow(error, p.exponent))
                # a step shortened to land on t1 does not shrink the next one
                c.h = fmax(c.h, h * factor) if last else h * factor
                break
            h *= fmax(MIN_FACTOR, SAFETY * pow(error, p.exponent))
            c.h = h
            last = False
            if h < 10 * (nextafter(fabs(time), INFINITY) - fabs(time)) + 1e-300:
                return STEP_TOO_SMALL
        time = t_new
        memcpy(y, y_new, <size_t>n * sizeof(double))
        c.countdown -= 1
        if c.countdown <= 0:
            c.countdown = SIGNAL_PERIOD
            if signalled(t):
                return PYTHON_ERROR
        if time != t1:
            # the next step's first stage: the last one (fsal), or a new derivative
            if p.fsal:
                memcpy(K, K + p.n_stages * n, <size_t>n * sizeof(double))
            else:
                status = derivative_c(t, r, c, y, time, K)
                if status != DONE:
                    return status
    return DONE


cdef bint signalled(TapeStorage t) noexcept nogil:
    """A signal's exception (KeyboardInterrupt), if one is pending, into t.sweep_error."""
    with gil:
        try:
            PyErr_CheckSignals()
        except BaseException as error:
            t.sweep_error = error
            return True
    return False


cdef Py_ssize_t sweep_c(TapeStorage t, Rhs* r, Pair* p, Control* c, double* state,
                        const double* yt, const double* g, const double* times,
                        const Py_ssize_t* stops, Py_ssize_t n_stops, double* dt,
                        double* K, double* stage, double* y_new, double* scale,
                        double* start, int* status) noexcept nogil:
    """The backward sweep over the intervals between stops[j - 1] and stops[j], j from
    n_stops - 1 down to 1: y restarts from row stops[j] of yt, a gains row stops[j] of
    g, dt there is g_i . f, then the pair steps to the time of stops[j - 1]. Returns 0
    with status DONE when all are done; else the j where it stopped, with status the
    failure, and state (for STEP_LIMIT and STEP_TOO_SMALL) as at the start of that
    interval."""
    cdef Py_ssize_t n = r.n_states, j, i, hi, lo
    cdef double d
    for j in range(n_stops - 1, 0, -1):
        hi, lo = stops[j], stops[j - 1]
        memcpy(state, yt + hi * n, <size_t>n * sizeof(double))
        for i in range(n):
            state[n + i] += g[hi * n + i]
        status[0] = derivative_c(t, r, c, state, times[hi], K)
        if status[0] != DONE:
            return j
        d = 0.0
        for i in range(n):
            d += g[hi * n + i] * K[i]
        dt[hi] = d
        memcpy(start, state, <size_t>r.width * sizeof(double))
        status[0] = advance_c(t, r, p, c, state, times[hi], times[lo], K, stage, y_new,
                              scale)
        if status[0] != DONE:
            memcpy(state, start, <size_t>r.width * sizeof(double))
            return j
    status[0] = DONE
    return 0


# -- the Python class ---------------------------------------------------------------------

cdef class AdjointSweep:
    """odeint's adjoint over the tape of a traced right-hand side f(y, time, *args):
    y an array leaf (y_anode), time a scalar leaf (time_slot), the differentiated
    arguments' leaves ``args`` ((is_array, array node or slot) each), f the array node
    out_anode (tape node out_node) of y's size. ``pair``: (A, B, C, E, E3, fsal, order)
    as fasttape.scipy._adjoint_steps.pair gives them; rtol, atol as odeint's (scalars);
    max_steps per interval. Everything is checked here: the loops index unchecked."""

    cdef TapeStorage tape
    cdef Py_ssize_t epoch       # the tape's when checked (a reset bumps it)
    cdef Rhs rhs
    cdef Pair pair
    cdef Control control
    cdef object keep            # the arrays the structs point into
    cdef double[:, ::1] K
    cdef double[::1] stage, y_new, scale, start

    def __init__(self, TapeStorage tape, Py_ssize_t y_anode, Py_ssize_t time_slot, list args,
                 Py_ssize_t out_node, Py_ssize_t out_anode, pair, double rtol,
                 double atol, Py_ssize_t max_steps):
        cdef ArrayNode* node
        cdef Py_ssize_t k, width
        self.tape = tape
        self.epoch = tape.epoch
        check_array_leaf(tape, y_anode, "y")
        if not (0 <= time_slot < tape.n_slots and tape.ops[time_slot] == OP_LEAF):
            raise ValueError(f"slot {time_slot} is not a scalar input of this tape")
        tape.check_anode(out_anode)
        node = &tape.anodes[out_anode]
        n_states = tape.anodes[y_anode].size
        if node.size != n_states or node.node != out_node or \
                (node.adj < 0 and node.out_slot < 0) or \
                (node.adj >= 0 and node.value == NULL):
            raise ValueError(f"array node {out_anode} (tape node {out_node}) is not an "
                             f"output of {n_states} values")
        kinds = np.zeros(len(args), dtype=np.int64)
        refs = np.zeros(len(args), dtype=np.int64)
        width = 2 * n_states
        for k, (is_array, ref) in enumerate(args):
            if is_array:
                check_array_leaf(tape, ref, f"argument {k}")
                width += tape.anodes[<Py_ssize_t>ref].size
            elif not (0 <= ref < tape.n_slots and tape.ops[<Py_ssize_t>ref] == OP_LEAF):
                raise ValueError(f"slot {ref} (argument {k}) is not a scalar input of "
                                 f"this tape")
            else:
                width += 1
            kinds[k], refs[k] = (1 if is_array else 0), ref
        masks = np.array([guard[0] for guard in tape.array_guards], dtype=np.int64)
        outcomes = [np.ascontiguousarray(guard[2], dtype=np.uint8).reshape(-1)
                    for guard in tape.array_guards]
        for k in range(len(outcomes)):
            tape.check_anode(masks[k])
            node = &tape.anodes[<Py_ssize_t>masks[k]]
            if node.size != outcomes[k].size or \
                    node.value == NULL and not (node.size == 1 and node.out_slot >= 0):
                raise ValueError(f"the mask of array node {masks[k]} does not match its "
                                 f"recorded outcome")
        pointers = np.array([o.ctypes.data for o in outcomes], dtype=np.uintp)

        A, B, C, E, E3, fsal, order = pair
        n_stages = len(B)
        square = np.zeros((n_stages, n_stages))
        for k in range(1, n_stages):
            row = np.asarray(A[k], dtype=np.float64)[:k]
            square[k, :row.size] = row
        B = np.ascontiguousarray(B, dtype=np.float64)
        C = np.ascontiguousarray(C, dtype=np.float64)
        E = np.ascontiguousarray(E, dtype=np.float64)
        E3 = None if E3 is None else np.ascontiguousarray(E3, dtype=np.float64)
        if n_stages < 1 or C.size != n_stages or E.size != n_stages + bool(fsal) or \
                E3 is not None and E3.size != E.size or order < 1:
            raise ValueError("the Runge-Kutta pair's coefficients do not agree in size")
        if not (rtol >= 0 and atol > 0 and max_steps >= 1):
            raise ValueError(f"rtol {rtol} and atol {atol} (> 0) or max_steps "
                             f"{max_steps} out of range")
        self.keep = (kinds, refs, masks, outcomes, pointers, square, B, C, E, E3)

        self.rhs.n_states = n_states
        self.rhs.width = width
        self.rhs.y_anode = y_anode
        self.rhs.time_slot = time_slot
        self.rhs.out_anode = out_anode
        self.rhs.sweep_end = max(out_node, node.out_slot) + 1
        self.rhs.n_args = len(args)
        self.rhs.arg_kinds = <const int64_t*>cnp.PyArray_DATA(kinds)
        self.rhs.arg_refs = <const int64_t*>cnp.PyArray_DATA(refs)
        self.rhs.n_mask_guards = len(outcomes)
        self.rhs.mask_nodes = <const int64_t*>cnp.PyArray_DATA(masks)
        self.rhs.outcomes = <uint8_t**>cnp.PyArray_DATA(pointers)
        self.pair.n_stages = n_stages
        self.pair.fsal = bool(fsal)
        self.pair.A = <const double*>cnp.PyArray_DATA(square)
        self.pair.B = <const double*>cnp.PyArray_DATA(B)
        self.pair.C = <const double*>cnp.PyArray_DATA(C)
        self.pair.E = <const double*>cnp.PyArray_DATA(E)
        self.pair.E3 = NULL if E3 is None else <const double*>cnp.PyArray_DATA(E3)
        self.pair.exponent = -1.0 / (order + 1)
        self.control.rtol, self.control.atol = rtol, atol
        self.control.h = 0.0
        self.control.max_steps = max_steps
        self.control.steps = self.control.evaluations = 0
        self.control.countdown = SIGNAL_PERIOD
        self.K = np.zeros((n_stages + 1, width))
        self.stage, self.y_new = np.zeros(width), np.zeros(width)
        self.scale, self.start = np.zeros(width), np.zeros(width)

    @property
    def width(self):
        """The state's size: 2 n_states + the differentiated arguments' values."""
        return self.rhs.width

    @property
    def steps(self):
        """Steps taken (accepted and rejected) by all sweeps so far."""
        return self.control.steps

    @property
    def evaluations(self):
        """Derivatives evaluated so far."""
        return self.control.evaluations

    def derivative(self, state, double time):
        """[f, -a^T df/dy, -a^T df/dargs] at (state, time), a new array.
        BranchChangedError where a recorded comparison comes out otherwise."""
        cdef double[::1] x = np.array(state, dtype=np.float64).reshape(-1)
        cdef double[::1] out = np.empty(self.rhs.width)
        cdef int status
        self.check_state(x, "state")
        self.begin()
        try:
            with nogil:
                status = derivative_c(self.tape, &self.rhs, &self.control, &x[0], time,
                                      &out[0])
        finally:
            self.end()
        self.raise_for(status)
        return np.asarray(out)

    def sweep(self, double[::1] state, yt, g, times, stops, double[::1] dt):
        """Integrate backwards across the time points ``stops`` (increasing indices
        into times, the first 0): for j from the last interval down, y restarts from
        yt[stops[j]], a (state[n:2n]) gains g[stops[j]], dt[stops[j]] gets
        g[stops[j]] . f there, and the pair steps to times[stops[j - 1]]. state
        (updated in place) ends at times[0] without g[0]. Returns 0 when all intervals
        are done; else j, the interval the pair gave up on (more than max_steps steps,
        or a step below the time's precision: a stiff problem), with state as at its
        start (after g[stops[j]] was added and dt set). BranchChangedError where a
        recorded comparison comes out otherwise; a Python rule's error as raised."""
        cdef Py_ssize_t n = self.rhs.n_states, k, n_times, j
        cdef const double[:, ::1] y_rows = np.ascontiguousarray(yt, dtype=np.float64)
        cdef const double[:, ::1] g_rows = np.ascontiguousarray(g, dtype=np.float64)
        cdef const double[::1] t_values = np.ascontiguousarray(times, dtype=np.float64)
        cdef const Py_ssize_t[::1] at = np.ascontiguousarray(stops, dtype=np.intp)
        cdef int status = DONE
        self.check_state(state, "state")
        n_times = t_values.shape[0]
        if y_rows.shape[0] != n_times or g_rows.shape[0] != n_times or \
                y_rows.shape[1] != n or g_rows.shape[1] != n or dt.shape[0] != n_times:
            raise ValueError(f"yt and g need {n_times} rows of {n} values and dt "
                             f"{n_times} values")
        if at.shape[0] < 1 or at[0] != 0:
            raise ValueError("the stops must start at time point 0")
        for k in range(1, at.shape[0]):
            if not at[k - 1] < at[k] < n_times:
                raise ValueError(f"the stops must increase within the {n_times} time "
                                 f"points (stop {k} is {at[k]})")
        if at.shape[0] == 1:
            return 0
        self.begin()
        try:
            with nogil:
                j = sweep_c(self.tape, &self.rhs, &self.pair, &self.control, &state[0],
                            &y_rows[0, 0], &g_rows[0, 0], &t_values[0], &at[0],
                            at.shape[0], &dt[0], &self.K[0, 0], &self.stage[0],
                            &self.y_new[0], &self.scale[0], &self.start[0], &status)
        finally:
            self.end()
        if status in (STEP_LIMIT, STEP_TOO_SMALL):
            return j
        self.raise_for(status)
        return 0

    cdef int check_state(self, double[::1] state, str name) except -1:
        if state is None or state.shape[0] != self.rhs.width:
            raise ValueError(f"{name} must hold {self.rhs.width} values (y, a and the "
                             f"arguments' adjoints), got "
                             f"{None if state is None else state.shape[0]}")
        return 0

    cdef int begin(self) except -1:
        """The tape's adjoint buffers sized, and the tape marked as being swept (its
        buffers must not move, nor serve another sweep, until end())."""
        if self.tape.epoch != self.epoch:
            raise RuntimeError("odeint's adjoint: the tape was reset since its nodes "
                               "were checked")
        prepare_sweep(self.tape)
        begin_sweep(self.tape)
        return 0

    cdef void end(self):
        self.tape.sweeping = False
        self.tape.swept_epoch = -1        # the adjoints are no gradient to read

    cdef int raise_for(self, int status) except -1:
        if status == PYTHON_ERROR:
            error, self.tape.sweep_error = self.tape.sweep_error, None
            raise error
        if status == BRANCH_CHANGED:
            raise BranchChangedError("odeint's adjoint: the right-hand side takes "
                                     "another branch than when traced")
        return 0


cdef int check_array_leaf(TapeStorage tape, Py_ssize_t anode, str what) except -1:
    tape.check_anode(anode)
    cdef ArrayNode* node = &tape.anodes[anode]
    if node.aop != AOP_LEAF or node.value == NULL or node.adj < 0:
        raise ValueError(f"array node {anode} ({what}) is not an array input of this "
                         f"tape")
    return 0
