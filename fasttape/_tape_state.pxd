# Pickling tapes (the contract of _tape_state.pyx): the columns of the two int64
# tables of a tape's pickled state, by name. ANODE_COLUMNS and OPERAND_COLUMNS in
# _tape_state.pyx name them for Python (tests, tools); an import-time check keeps the
# two in step.

cdef enum:                    # the "array_nodes" table: a row per array node
    A_AOP = 0                 # ArrayNode.aop
    A_SOP                     # ArrayNode.sop
    A_SIZE                    # number of output values
    A_ADJ                     # offset of its adjoint block, or -1
    A_OUT_SLOT                # scalar output slot, or -1
    A_OPERAND0                # first row of its operands in the "operands" table
    A_N_OPERANDS
    A_GEOM                    # offset in "geometry", or -1
    A_NODE                    # the tape node that refers to it
    A_VALUE_REF               # keepalive index of the output array, or -1
    A_WEIGHTS_REF             # keepalive index of the weights, or -1
    A_INDEX_REF               # keepalive index of the positions, or -1
    N_ANODE_COLUMNS

cdef enum:                    # the "operands" table: a row per operand
    O_KIND = 0                # OPERAND_*
    O_REF                     # array node, scalar slot or constants index
    O_SIZE                    # number of values
    O_DATA_REF                # keepalive index of a constant's values, or -1
    O_INDEX_REF               # keepalive index of a join's positions, or -1
    N_OPERAND_COLUMNS
