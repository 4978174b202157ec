# The per-thread tapes (_tape_pools.pyx): the default tape and the pool of grad()'s
# tapes, over _tape's stack of active tapes.

from fasttape._tape cimport Tape, ThreadTapes

cpdef Tape current_tape()        # where new Variables record in this thread
cpdef object active_tape()       # the innermost active tape, or None (also mid-sweep)
cpdef Tape acquire_tape()        # a clean pooled tape, pushed as the active one
cpdef release_tape(Tape tape)    # pop it, reset it, return it to the pool
# the same, given this thread's ThreadTapes (a caller that has it saves the lookups)
cdef Tape acquire_tape_in(ThreadTapes state)
cdef int release_tape_in(ThreadTapes state, Tape tape) except -1

# no_grad(): the number of open no_grad() blocks over all threads (changed with the GIL
# held), read inline by the recording paths before they ask recording_paused().
cdef int n_paused
# True inside a no_grad() block of this thread
cdef bint recording_paused() noexcept
