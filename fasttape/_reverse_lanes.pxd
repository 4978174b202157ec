# Several outputs' reverse sweeps in one pass over a tape of scalar nodes (no array
# node; node i writes slot i), for Jacobians (_reverse_lanes.pyx): lane k's adjoints
# at adjoints + k * stride, seeded at its output. order_lanes numbers the lanes of
# outputs at out_nodes (-1: a constant output, no lane), last output first;
# sweep_lanes zeroes and seeds them, then sweeps; lanes_jacobian does so block by
# block and reads the rows out. Lanes go LANE_BLOCK at a time, on tapes of at most
# MAX_LANE_SLOTS slots (the block's adjoints stay in cache).

from fasttape._tape_storage cimport TapeStorage

cdef enum:
    LANE_BLOCK = 16
    MAX_LANE_SLOTS = 8192

cdef inline bint lanes_apply(TapeStorage t) noexcept:
    return t.n_anodes == 0 and t.n_slots == t.n_nodes and t.n_slots <= MAX_LANE_SLOTS

cdef Py_ssize_t order_lanes(const Py_ssize_t* out_nodes, Py_ssize_t n_out,
                            Py_ssize_t* order, Py_ssize_t* tops) noexcept nogil
cdef void sweep_lanes(TapeStorage t, const double* values, double* adjoints,
                      Py_ssize_t n_lanes, Py_ssize_t stride,
                      const Py_ssize_t* tops) noexcept nogil
cdef void lanes_jacobian(TapeStorage t, const double* values, double* adjoints,
                         Py_ssize_t stride, const Py_ssize_t* order,
                         const Py_ssize_t* tops, Py_ssize_t n_lanes,
                         const Py_ssize_t* leaf_slots, Py_ssize_t count,
                         double* jac) noexcept nogil
