# The per-thread tapes: the tape a thread records on when no `with Tape()` block or
# grad() call is active (its default tape), and the small pool grad() takes tapes
# from. The stack of active tapes they read and push onto is _tape's (`with Tape()`
# pushes too); all live in one per-thread object (_tape.ThreadTapes).
#
# The default tape is replaced by a fresh one once backward() has been called on it,
# so PyTorch-style rounds (new Variables, backward, read .grad) never grow one tape
# without bound; old tapes are freed with their last Variable. grad() takes its tapes
# from a small per-thread pool and resets them after use.

from fasttape._tape cimport (Tape, ThreadTapes, innermost_tape, pop_tape, push_tape,
                            put_at, take_last, thread_tapes)
cdef Py_ssize_t POOL_SIZE = 4
# A released tape whose buffers grew past these is freed rather than pooled: one
# large grad() must not hold its tens of megabytes for the life of the thread
# (about 40 bytes a node, 8 a value of an array node's adjoints)
cdef Py_ssize_t POOL_MAX_NODES = 1 << 17
cdef Py_ssize_t POOL_MAX_ARRAY_VALUES = 1 << 20
# (a Jacobian's lanes take at most 2**17 doubles, LANE_BLOCK lanes of MAX_LANE_SLOTS,
# and their bookkeeping three numbers per output: past this, a Jacobian of many
# thousands of outputs)
cdef Py_ssize_t POOL_MAX_LANE_ADJOINTS = 1 << 18


cpdef Tape current_tape():
    """The tape new Variables are recorded on in this thread."""
    cdef ThreadTapes state = thread_tapes()
    cdef Tape t
    if state.depth:
        return innermost_tape(state)
    t = state.default
    if t is None or t.swept_epoch == t.epoch:
        t = Tape()
        state.default = t
    return t


cpdef object active_tape():
    """The innermost tape this thread records on (a grad call or `with Tape()` block),
    or None; None too while that tape is being swept (its rules run plain)."""
    cdef object t = innermost_tape(thread_tapes())
    return None if t is None or (<Tape>t).sweeping else t


cpdef Tape acquire_tape():
    """A clean tape from this thread's pool, made the active tape."""
    return acquire_tape_in(thread_tapes())


cdef Tape acquire_tape_in(ThreadTapes state):
    cdef Tape t
    if state.n_pooled:
        t = take_last(state.pool, state.n_pooled)
        state.n_pooled -= 1
    else:
        t = Tape()
    t.pooled = True
    push_tape(state, t)
    return t


cpdef release_tape(Tape tape):
    """Deactivate a tape from acquire_tape(), reset it and return it to the pool."""
    release_tape_in(thread_tapes(), tape)


cdef int release_tape_in(ThreadTapes state, Tape tape) except -1:
    pop_tape(state, tape, False)
    tape.reset()
    if state.n_pooled < POOL_SIZE and tape.node_capacity <= POOL_MAX_NODES \
            and tape.array_adjoint_capacity <= POOL_MAX_ARRAY_VALUES \
            and tape.lane_adjoint_capacity <= POOL_MAX_LANE_ADJOINTS:
        state.n_pooled = put_at(state.pool, state.n_pooled, tape)
    return 0


def pooled_tapes():
    """This thread's pooled tapes (for tests of what the pool keeps)."""
    cdef ThreadTapes state = thread_tapes()
    return state.pool[:state.n_pooled]


# -- no_grad(): recording paused in this thread --------------------------------------------
# A per-thread depth (the thread-local's .no_grad_depth) and, for the fast check, the
# number of open blocks over all threads (n_paused, changed with the GIL held).

n_paused = 0


cdef bint recording_paused() noexcept:
    if n_paused == 0:
        return False
    try:
        return thread_tapes().no_grad_depth > 0
    except BaseException:
        return False


def pause_recording():
    """Enter a no_grad block in this thread."""
    global n_paused
    cdef ThreadTapes state = thread_tapes()
    state.no_grad_depth += 1
    n_paused += 1


def resume_recording():
    """Leave a no_grad block in this thread."""
    global n_paused
    cdef ThreadTapes state = thread_tapes()
    if state.no_grad_depth <= 0:
        raise RuntimeError("resume_recording without pause_recording")
    state.no_grad_depth -= 1
    n_paused -= 1


def suspend_pause():
    """This thread's no_grad depth, set to 0 (a differential operator records even
    inside a no_grad block, as torch.func.grad); give it back to restore_pause."""
    global n_paused
    if n_paused == 0:               # (no block open in any thread: the common case)
        return 0
    cdef ThreadTapes state = thread_tapes()
    depth = state.no_grad_depth
    if depth:
        state.no_grad_depth = 0
        n_paused -= depth
    return depth


def restore_pause(depth):
    global n_paused
    cdef ThreadTapes state
    if depth:
        state = thread_tapes()
        state.no_grad_depth = depth
        n_paused += depth


def recording_is_paused():
    return bool(recording_paused())
