"""The hooks by which lower layers reach upper ones, filled in one place.

Modules import only modules below them (docs/architecture.md; tests/test_layers.py
checks it). Where a lower layer must call something an upper layer owns, it keeps a
table or a hook, and ``connect_layers`` below fills them all. fasttape/__init__.py
calls it once, after importing its modules; since Python imports a package before
any of its modules, every program that uses fasttape runs with them filled,
whichever of its modules it imports.
"""
import numpy as np

import fasttape.numpy as fnp
import fasttape.numpy.fft as fnp_fft
import fasttape.numpy.linalg as fnp_linalg
from fasttape import (_arrays, _complex, _complex_linalg, _complex_recording, _containers,
                      _recording, _recording_sweeps, _scalar_recording_sweep, _tape,
                      _variable)
from fasttape._masks import ArrayMask
from fasttape._tape_state import reduce_tape


def connect_layers():
    """Fill the hooks of the lower layers (idempotent)."""
    # NumPy's functions and ufuncs applied to fasttape's arrays (__array_function__,
    # __array_ufunc__, and ArrayVariable's methods such as .T), and ufuncs applied to
    # a Variable and an array, run fasttape.numpy's implementations
    _variable.register_array_ufunc_handler(_arrays.array_ufunc)
    _variable.register_array_function_handler(_arrays.array_function)
    for ufunc, implementation in fnp._UFUNCS.items():
        _arrays.register_array_ufunc(ufunc, implementation)
    for table in (fnp._FUNCTIONS, fnp_linalg._FUNCTIONS, fnp_fft._FUNCTIONS):
        for numpy_function, implementation in table.items():
            _arrays.register_array_function(numpy_function, implementation)
    # complex numbers are pairs of real values (fasttape._complex): real operations
    # that meet a complex operand, complex arguments and outputs of the differential
    # operators, and the FFT of complex values go there
    _arrays.register_complex_operations(_complex.operation, _complex.as_complex,
                                        _complex.ComplexArray)
    _variable.register_complex_operation(_complex.operation)
    _variable.register_ufunc(np.conjugate, fnp.conjugate)
    _recording.register_complex_recording(_complex_recording)
    _complex.FUNCTIONS.update(fnp_fft._FUNCTIONS)
    _complex.FUNCTIONS.update(_complex_linalg.FUNCTIONS)
    fnp_linalg.register_complex_functions(_complex_linalg.FOR_REAL_LINALG)
    # containers of other kinds than tuples, lists and dicts (fasttape._containers)
    _arrays.register_tree_search(_containers.holds_variables_in_tree)
    # a comparison of arrays recorded while tracing returns an ArrayMask
    _arrays.register_mask_class(ArrayMask)
    # a tape pickles by _tape_state's writer (which names its reader)
    _tape.register_tape_pickler(reduce_tape)
    # grad's fast path (in _variable) ends as the recording's general path
    _variable.register_output_finisher(_recording.finish_output)
    _variable.register_jacobian_finisher(_recording.finish_jacobian)
    # grad inside another differentiation: the C recording sweep's rules and endings
    _scalar_recording_sweep.register_recording_rules(
        *_recording_sweeps.rules_by_code(), _recording_sweeps.python_reverse_recording)
    _scalar_recording_sweep.register_nested_finisher(_recording.finish_nested)
