from typing import Any

from fasttape._tape import Tape

FORMAT_VERSION: int
UNARY_SOPS: frozenset[int]
BINARY_SOPS: frozenset[int]
MASK_SOPS: frozenset[int]
WEIGHTED_SOPS: frozenset[int]
STATE_FIELDS: dict[str, str]
ANODE_COLUMNS: tuple[str, ...]
OPERAND_COLUMNS: tuple[str, ...]

def digest(state: dict[str, Any], *extra: Any) -> str: ...
def check_digest(state: dict[str, Any], *extra: Any) -> None: ...
def reduce_tape(t: Tape) -> tuple[Any, tuple[dict[str, Any], int]]: ...
def tape_state(t: Tape) -> dict[str, Any]: ...
def restore_tape(state: dict[str, Any], max_size: int) -> Tape: ...

class OperandSlot:
    position: int
    def __init__(self, position: int) -> None: ...
