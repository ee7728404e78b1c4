"""Exceptions raised by livermore_cache."""

from __future__ import annotations

__all__ = ["ValidationError"]


class ValidationError(ValueError):
    """A value was refused; the message names the field and the value.

    Raised before any I/O: when it is raised, nothing has been written.
    """

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field} {rule}, got {value!r}")

    def at(self, prefix: str) -> ValidationError:
        """The same error, with ``prefix`` (such as ``candles[3]``) before the field name."""
        return ValidationError(f"{prefix}.{self.field}", self.value, self.rule)
