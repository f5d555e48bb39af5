"""The two exception types gradscope raises on purpose; `cli.main` catches them once."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command line or unusable script path: one clear line, exit 2."""

    exit_code = 2


class GradscopeError(Exception):
    """Something gradscope itself could not do; carries the exit code to use."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
