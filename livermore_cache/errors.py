"""Exceptions raised by livermore_cache."""

from __future__ import annotations

from redis.exceptions import RedisError

__all__ = ["CacheClosedError", "PartialWriteError", "ValidationError"]


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


class CacheClosedError(RuntimeError):
    """A cache or subscription was used after ``close()``/``aclose()``: nothing was sent and nothing was opened."""


class PartialWriteError(RedisError):
    """A batch write applied some of its keys (candle series, tickers, ...) and not others.

    ``results`` holds, in input order, the result of each candle (or value) of an
    applied key (True: written and still stored) and None for each one of a key
    that failed; ``errors`` maps each failed key to its error. Events were
    published for exactly the applied keys' winning writes. Sending the whole
    batch again is safe; what the applied keys stored then reports False (it is
    already stored), so act on ``results`` here.
    """

    def __init__(self, results: list[bool | None], errors: dict[str, BaseException], items: str = "candles") -> None:
        self.results = results
        self.errors = errors
        applied = sum(1 for r in results if r is not None)
        detail = "; ".join(f"{key}: {type(error).__name__}: {error}" for key, error in errors.items())
        super().__init__(
            f"{len(errors)} keys failed and the rest were applied ({applied} of {len(results)} {items} "
            f"have a result): {detail}"
        )
