# Replay then sweep, at many points: a traced function's gradient at each row of an
# input matrix, all rows in C without the GIL. Scalar tapes run on several threads,
# each with its own value and adjoint buffers (replay_gradients); tapes with array
# nodes replay in their own buffers, row after row (replay_array_gradients). Also the
# one-point fast path of a traced gradient (replay_gradient_of_list).

cimport numpy as cnp
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

import threading

import numpy as np

from fasttape._array_helpers cimport live_adjoints
from fasttape._forward cimport first_changed_guard_c, forward_replay_c
from fasttape._reverse cimport prepare_sweep, reverse_sweep_c, reverse_sweep_into_c
from fasttape._tape_storage cimport *

cnp.import_array()

cdef Py_ssize_t replay_array_rows_c(TapeStorage t, const double* inputs,
                                    Py_ssize_t n_rows, Py_ssize_t width,
                                    const int64_t* kinds, const int64_t* refs,
                                    Py_ssize_t n_leaves, Py_ssize_t output_node,
                                    Py_ssize_t output_anode, double* gradients,
                                    const int64_t* mask_nodes, uint8_t** outcomes,
                                    Py_ssize_t n_mask_guards) noexcept nogil:
    """Tape.replay_array_gradients' loop: per row, write the leaves, replay, check the
    guards, sweep in reverse, read the leaves' adjoints. Returns the rows done (fewer
    at a branch change), or -1 with the error in t.sweep_error."""
    cdef Py_ssize_t row, k, j, at, size
    cdef const double* x
    cdef double* g
    cdef ArrayNode* n
    for row in range(n_rows):
        x = inputs + row * width
        at = 0
        for k in range(n_leaves):
            if kinds[k]:
                n = &t.anodes[refs[k]]
                memcpy(n.value, x + at, <size_t>n.size * sizeof(double))
                at += n.size
            else:
                t.values[refs[k]] = x[at]
                at += 1
        if forward_replay_c(t, t.values) < 0:
            return -1
        if first_changed_guard_c(t, t.values) >= 0:
            return row
        for k in range(n_mask_guards):
            n = &t.anodes[mask_nodes[k]]
            for j in range(n.size):
                if (n.value[j] != 0.0) != (outcomes[k][j] != 0):
                    return row
        memset(t.adjoints, 0, <size_t>t.n_slots * sizeof(double))
        if t.n_anodes:
            memset(t.array_adjoint_live, 0, <size_t>t.n_anodes)
        if output_anode >= 0:
            live_adjoints(t, output_anode)[0] = 1.0
        else:
            t.adjoints[output_node] = 1.0
        if reverse_sweep_c(t, output_node + 1) < 0:
            return -1
        g = gradients + row * width
        at = 0
        for k in range(n_leaves):
            if kinds[k]:
                n = &t.anodes[refs[k]]
                size = n.size
                if t.array_adjoint_live[refs[k]]:
                    memcpy(g + at, &t.array_adjoints[n.adj], <size_t>size * sizeof(double))
                else:
                    memset(g + at, 0, <size_t>size * sizeof(double))
                at += size
            else:
                g[at] = t.adjoints[refs[k]]
                at += 1
    return n_rows


cdef Py_ssize_t replay_gradients_c(TapeStorage t, double* values, double* adjoints,
                                   const double* inputs, Py_ssize_t n_rows,
                                   const Py_ssize_t* leaf_slots, Py_ssize_t n_leaves,
                                   Py_ssize_t output, double* gradients,
                                   double* outputs, Py_ssize_t* changed_guard) noexcept nogil:
    """For each row of `inputs` (n_leaves values): replay, check the guards, sweep in
    reverse from slot `output`, and write the output value and the leaves' adjoints.
    values and adjoints are this caller's own buffers (values starts as a copy of the
    tape's). Returns the number of rows done; stops early at a row whose branch
    changed, setting changed_guard."""
    cdef Py_ssize_t row, k
    for row in range(n_rows):
        for k in range(n_leaves):
            values[leaf_slots[k]] = inputs[row * n_leaves + k]
        forward_replay_c(t, values)
        changed_guard[0] = first_changed_guard_c(t, values)
        if changed_guard[0] >= 0:
            return row
        # all slots: inputs recorded after the output read a zero adjoint
        memset(adjoints, 0, <size_t>t.n_slots * sizeof(double))
        adjoints[output] = 1.0
        reverse_sweep_into_c(t, values, adjoints, output + 1)
        outputs[row] = values[output]
        for k in range(n_leaves):
            gradients[row * n_leaves + k] = adjoints[leaf_slots[k]]
    return n_rows


# -- the drivers -----------------------------------------------------------------------

cdef Py_ssize_t replay_array_gradients(TapeStorage t, Py_ssize_t output_node,
                                       Py_ssize_t output_anode, list leaves, inputs,
                                       gradients) except -1:
    """Replay this tape (which has array nodes) at each row of `inputs` and sweep it
    in reverse from its one-value output, writing the gradient of the leaves (a
    row of `gradients`, the leaves' values flat in order) — all rows in C, without
    the GIL (nodes with Python rules take it for their step). leaves: (is_array,
    index) as for hessian_vector_arrays; output_anode: the output's array node, or
    -1 when the output is scalar slot output_node. The recorded comparisons (and
    masks read as booleans) are checked at each row: returns the number of rows
    done, which is less than all at a row whose branch changed."""
    cdef const double[:, ::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
    cdef double[:, ::1] out = gradients
    cdef Py_ssize_t n_leaves = len(leaves), n_guards = len(t.array_guards)
    t.check_leaves_and_output(leaves, output_node if output_anode < 0 else 0,
                              output_anode)
    if output_anode >= 0 and t.anodes[output_anode].node != output_node:
        raise ValueError("the output node and array node disagree")
    cdef Py_ssize_t k, width = 0, done
    cdef int64_t[::1] kinds = np.empty(n_leaves, dtype=np.int64)
    cdef int64_t[::1] refs = np.empty(n_leaves, dtype=np.int64)
    cdef int64_t[::1] mask_nodes = np.empty(n_guards, dtype=np.int64)
    kept = [np.ascontiguousarray(g[2], dtype=np.uint8).reshape(-1)
            for g in t.array_guards]
    cdef uint8_t** outcomes = <uint8_t**>PyMem_Malloc((n_guards + 1) * sizeof(uint8_t*))
    if outcomes == NULL:
        raise MemoryError()
    try:
        for k in range(n_leaves):
            kinds[k] = 1 if leaves[k][0] else 0
            refs[k] = leaves[k][1]
            width += t.anodes[refs[k]].size if kinds[k] else 1
        for k in range(n_guards):
            mask_nodes[k] = t.array_guards[k][0]
            outcomes[k] = <uint8_t*>cnp.PyArray_DATA(<cnp.ndarray>kept[k])
        if x.shape[1] != width or out.shape[1] != width or out.shape[0] < x.shape[0]:
            raise ValueError(f"rows of {width} values expected")
        prepare_sweep(t)           # buffers sized (the loop zeroes per row)
        begin_sweep(t)
        try:
            with nogil:
                done = replay_array_rows_c(t, &x[0, 0] if x.shape[0] else NULL,
                                           x.shape[0], width, &kinds[0] if n_leaves
                                           else NULL, &refs[0] if n_leaves else NULL,
                                           n_leaves, output_node, output_anode,
                                           &out[0, 0] if x.shape[0] else NULL,
                                           &mask_nodes[0] if n_guards else NULL,
                                           outcomes, n_guards)
        finally:
            t.sweeping = False
    finally:
        PyMem_Free(outcomes)
    t.swept_epoch = -1
    if done < 0:
        error, t.sweep_error = t.sweep_error, None
        raise error
    return done


cdef object replay_gradients(TapeStorage t, Py_ssize_t output, leaf_slots, inputs,
                             Py_ssize_t n_threads):
    """Replay the (scalar) tape at each row of `inputs` (rows of len(leaf_slots)
    values) and sweep it in reverse from slot `output`, on `n_threads` threads
    that run without the GIL, each with its own value and adjoint buffers.

    Returns (outputs, gradients, changed) where changed is (row, guard index) of
    the first row whose recorded comparisons came out differently, or None.
    """
    cdef double[:, ::1] x = np.ascontiguousarray(inputs, dtype=np.float64)
    cdef Py_ssize_t n_rows = x.shape[0], n_leaves = len(leaf_slots)
    if t.n_anodes:
        raise NotImplementedError("these buffers replay scalar tapes only; array "
                                  "tapes replay in place (Tape.replay)")
    if x.shape[1] != n_leaves:
        raise ValueError(f"each input row needs {n_leaves} values, got {x.shape[1]}")
    gradients = np.empty((n_rows, n_leaves))
    outputs = np.empty(n_rows)
    slots = np.ascontiguousarray(leaf_slots, dtype=np.intp)
    check_slots(t, output, slots)
    n_threads = max(1, min(n_threads, n_rows))
    if n_threads == 1:
        changed = replay_chunk(t, output, slots, x, 0, n_rows, gradients, outputs)
        return outputs, gradients, changed
    chunks = [n_rows * j // n_threads for j in range(n_threads + 1)]
    results = [None] * n_threads
    threads = [threading.Thread(target=replay_chunk_into,
                                args=(results, j, t, output, slots, x, chunks[j],
                                      chunks[j + 1], gradients, outputs))
               for j in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    changed = None
    for j in range(n_threads):
        if results[j] is not None and (changed is None or results[j][0] < changed[0]):
            changed = results[j]
    return outputs, gradients, changed


cdef object replay_chunk(TapeStorage t, Py_ssize_t output,
                         const Py_ssize_t[::1] slots,
                         const double[:, ::1] x, Py_ssize_t begin, Py_ssize_t end,
                         double[:, ::1] gradients, double[::1] outputs):
    cdef Py_ssize_t n = end - begin, done, changed = -1
    if n <= 0:
        return None
    cdef double* values = <double*>PyMem_Malloc(t.n_slots * sizeof(double))
    cdef double* adjoints = <double*>PyMem_Malloc(t.n_slots * sizeof(double))
    if values == NULL or adjoints == NULL:
        PyMem_Free(values)
        PyMem_Free(adjoints)
        raise MemoryError()
    memcpy(values, t.values, t.n_slots * sizeof(double))
    try:
        with nogil:
            done = replay_gradients_c(t, values, adjoints, &x[begin, 0], n,
                                      &slots[0], slots.shape[0], output,
                                      &gradients[begin, 0], &outputs[begin],
                                      &changed)
    finally:
        PyMem_Free(values)
        PyMem_Free(adjoints)
    if done < n:
        return (begin + done, changed)
    return None


def replay_chunk_into(list results, Py_ssize_t j, TapeStorage t, Py_ssize_t output,
                      const Py_ssize_t[::1] slots, const double[:, ::1] x, Py_ssize_t begin,
                      Py_ssize_t end, double[:, ::1] gradients, double[::1] outputs):
    """A thread of replay_gradients: rows begin .. end, its result in results[j]."""
    results[j] = replay_chunk(t, output, slots, x, begin, end, gradients, outputs)


cdef object replay_gradient_of_list(TapeStorage t, Py_ssize_t output,
                                    const Py_ssize_t[::1] slots, list values,
                                    Py_ssize_t first, Py_ssize_t count,
                                    double[::1] scratch_values,
                                    double[::1] scratch_adjoints):
    """The fast path of a traced gradient for one point given as a flat list of
    floats: write them into this caller's scratch value buffer (which keeps the
    constants from its first use), replay, sweep, and return (output value, list of
    the adjoints of leaves first .. first + count), or (None, changed guard)."""
    cdef Py_ssize_t k, s, n = slots.shape[0], changed
    cdef double* v
    cdef double* adj
    cdef object item
    if t.n_anodes:
        raise NotImplementedError("these buffers replay scalar tapes only; array "
                                  "tapes replay in place (Tape.replay)")
    if len(values) != n:
        raise ValueError(f"expected {n} numbers, got {len(values)}")
    # the checks of this door (the sweeps behind it index unchecked)
    if scratch_values.shape[0] != t.n_slots or scratch_adjoints.shape[0] != t.n_slots:
        raise ValueError(f"scratch buffers of {scratch_values.shape[0]} and "
                         f"{scratch_adjoints.shape[0]} values for a tape of "
                         f"{t.n_slots} slots (make them with Tape.scratch_buffers)")
    if not (0 <= output < t.n_slots and 0 <= first and 0 <= count <= n - first):
        raise IndexError(f"output slot {output} or leaves {first}..{first + count} "
                         f"out of range")
    v = &scratch_values[0]
    adj = &scratch_adjoints[0]
    for k in range(n):
        s = slots[k]
        if not 0 <= s < t.n_slots:
            raise IndexError(f"no value slot {s} on a tape of {t.n_slots}")
        item = values[k]
        if PyFloat_Check(item):        # float, np.float64
            v[s] = PyFloat_AS_DOUBLE(item)
        else:
            v[s] = number_or_error(item, k)
    with nogil:
        forward_replay_c(t, v)
        changed = first_changed_guard_c(t, v)
        if changed < 0:
            # all slots: inputs recorded after the output read a zero adjoint
            memset(adj, 0, <size_t>t.n_slots * sizeof(double))
            adj[output] = 1.0
            reverse_sweep_into_c(t, v, adj, output + 1)
    if changed >= 0:
        return None, changed
    return v[output], [adj[slots[k]] for k in range(first, first + count)]


cdef int check_slots(TapeStorage t, Py_ssize_t output,
                     const Py_ssize_t[::1] slots) except -1:
    """IndexError unless the output and every leaf slot are on the tape."""
    cdef Py_ssize_t k
    t.check_slot(output)
    for k in range(slots.shape[0]):
        t.check_slot(slots[k])
    return 0


cdef double number_or_error(object item, Py_ssize_t k) except? -1:
    try:
        return float(item)
    except (TypeError, ValueError):
        raise ValueError(f"element {k} of the argument is a {type(item).__name__}, "
                         f"where a number was traced") from None
