from typing import IO, Any, NamedTuple

from typing_extensions import Self, disjoint_base
from typing import TypeAlias

import numpy as np

OP_TABLE: tuple[tuple[str, int, int], ...]
N_OP_CODES: int
COMPARISON_NAMES: tuple[str, ...]
ARRAY_OP_TABLE: tuple[tuple[str, int], ...]
N_ARRAY_OP_CODES: int
MASK_OPS: dict[str, int]
COMPILED_OP_CODES: dict[str, int]

class BinaryGeometry(NamedTuple):
    shape: tuple[int, ...]
    a_strides: tuple[int, ...]
    b_strides: tuple[int, ...]

class ReduceGeometry(NamedTuple):
    shape: tuple[int, ...]
    out_strides: tuple[int, ...]

class CumsumGeometry(NamedTuple):
    outer: int
    n: int
    inner: int

class MatmulGeometry(NamedTuple):
    batch: int
    m: int
    k: int
    n: int
    a_stride: int
    b_stride: int

class StridedGeometry(NamedTuple):
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int

_Geometry: TypeAlias = (BinaryGeometry | ReduceGeometry | CumsumGeometry | MatmulGeometry
                        | StridedGeometry)

def geometry_width(aop: int, ndim: int) -> int: ...
def decode_geometry(aop: int, pool: Any, offset: int) -> _Geometry | None: ...
def encode_geometry(aop: int, layout: _Geometry) -> list[int]: ...
def op_arity(code: int) -> int: ...
def op_formulas(
    code: int, a: float, b: float = ...
) -> tuple[float, tuple[float, ...], tuple[float, ...]]: ...

@disjoint_base
class OperandInfo:
    kind: int
    ref: int
    size: int
    node: int
    data: Any
    index: np.ndarray | None

@disjoint_base
class ArrayNodeInfo:
    aop: int
    sop: int
    size: int
    out_slot: int
    node: int
    r: int
    c: float
    operands: tuple[OperandInfo, ...]
    value: Any
    weights: np.ndarray | None
    index: np.ndarray | None
    pyfunc: Any
    pyfunc_jvp: Any
    @property
    def layout(self) -> _Geometry | None: ...
    @property
    def weights_node(self) -> int: ...

@disjoint_base
class TapeStorage:
    """The buffers of a tape; fasttape._tape.Tape is the class to use."""
    epoch: int
    locate_guards: bool
    replayable: bool
    guard_locations: list[str]
    pyfunc_recipes: dict[int, tuple[Any, ...]]
    array_guards: list[tuple[Any, ...]]
    pooled: bool
    borrowed_arrays: list[Any]
    def __new__(cls, max_size: int = ...) -> Self: ...
    def reset(self) -> None: ...
    @property
    def node_capacity(self) -> int: ...
    @property
    def n_nodes(self) -> int: ...
    @property
    def n_slots(self) -> int: ...
    @property
    def n_constants(self) -> int: ...
    @property
    def n_guards(self) -> int: ...
    @property
    def n_array_nodes(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def bytes_per_node(self) -> int: ...
    def arrays(self) -> dict[str, np.ndarray]: ...
    def guards(self) -> list[tuple[str, str, str | float, bool]]: ...
    def dump(self, file: IO[str] | None = ...) -> None: ...
    def node(self, i: int) -> tuple[int, int, int]: ...
    def constant(self, k: int) -> float: ...
    def select_operands(self, i: int) -> tuple[int, int, int]: ...
    def selected(self, i: int) -> int: ...
    def array_node(self, r: int) -> ArrayNodeInfo: ...
    def forget_sweep_after_fork(self) -> None: ...
    def geometry_of(self, r: int) -> _Geometry | None: ...
    def array_adjoint(self, anode: int) -> np.ndarray: ...
    def scalar_adjoint(self, slot: int) -> float: ...
    def value_at(self, slot: int) -> float: ...
    def check_leaves_and_output(self, leaves: list[tuple[bool, int]], output: int,
                                output_anode: int) -> int: ...
    def has_python_rules(self) -> bool: ...
    def replay_support(self) -> str | None: ...
    def write_array_input(self, anode: int, values: Any) -> None: ...
    def select(self, condition_slot: int, a_slot: int, b_slot: int, value: float) -> int: ...
    def last_guard(self) -> tuple[int, int, int, bool, bool] | None: ...
    def forget_last_guard(self) -> None: ...
