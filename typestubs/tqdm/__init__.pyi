# The part of tqdm's API that fnn uses (tqdm ships without type hints).
from typing import Any, TextIO

class tqdm:
    n: int
    def __init__(
        self,
        *,
        total: int | None = ...,
        desc: str | None = ...,
        unit: str = ...,
        file: TextIO | None = ...,
        leave: bool = ...,
        mininterval: float = ...,
        dynamic_ncols: bool = ...,
    ) -> None: ...
    def update(self, n: int = ...) -> bool | None: ...
    def set_postfix_str(self, s: str = ..., refresh: bool = ...) -> None: ...
    def close(self) -> None: ...
    def __getattr__(self, name: str) -> Any: ...
