from typing import Any

from fasttape._tape import Tape

STATE_FIELDS: dict[str, str]
ANODE_COLUMNS: tuple[str, ...]
OPERAND_COLUMNS: tuple[str, ...]

def reduce_tape(t: Tape) -> tuple[Any, tuple[dict[str, Any], int]]: ...
def tape_state(t: Tape) -> dict[str, Any]: ...
def restore_tape(state: dict[str, Any], max_size: int) -> Tape: ...

class OperandSlot:
    position: int
    def __init__(self, position: int) -> None: ...
