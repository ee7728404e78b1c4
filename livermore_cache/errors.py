"""Exceptions raised by livermore_cache."""

from __future__ import annotations

from redis.exceptions import RedisError

__all__ = ["CacheClosedError", "NotReplicatedError", "PartialWriteError", "ValidationError"]


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


class NotReplicatedError(RedisError):
    """A write was applied on the primary, but fewer replicas than ``min_replicas`` acknowledged it in time.

    Raised only by a cache made with ``min_replicas`` >= 1, and only when some
    candle (or value) would have reported True. ``results`` holds, in input
    order, what the write did on the primary, as the call would have returned
    it (True: written and stored there; False: not written; None: its key failed,
    see ``errors``). ``acknowledged`` holds, per candle or value, how many
    replicas acknowledged the round that gave its result (None where there is no
    result), and ``replicas`` the fewest of them over the True results;
    ``required`` is the cache's ``min_replicas``. ``problem`` is what the server
    said when WAIT/WAITAOF failed outright ("" otherwise).

    What it means: each True result is on the primary, and on ``replicas``
    replicas at least; it may still reach the others (replication goes on), or
    be lost if the primary fails first. Sending the same batch again is safe:
    a retry of a versioned write re-proves what is stored (see docs/durability.md).
    """

    def __init__(
        self,
        results: list[bool | None],
        acknowledged: list[int | None],
        *,
        required: int,
        items: str = "candles",
        errors: dict[str, BaseException] | None = None,
        problem: str = "",
    ) -> None:
        self.results = results
        self.acknowledged = acknowledged
        self.required = required
        self.errors = dict(errors or {})
        self.problem = problem
        counts = [a for r, a in zip(results, acknowledged, strict=True) if r and a is not None]
        self.replicas = min(counts) if counts else 0
        unproven = sum(1 for r, a in zip(results, acknowledged, strict=True) if r and (a is None or a < required))
        written = sum(1 for r in results if r)
        message = (
            f"{unproven} of {written} written {items} were acknowledged by {self.replicas} replicas, "
            f"fewer than min_replicas={required}"
        )
        if problem:
            message += f" ({problem})"
        if self.errors:
            message += f"; {len(self.errors)} keys failed: " + "; ".join(
                f"{key}: {type(error).__name__}: {error}" for key, error in self.errors.items()
            )
        super().__init__(message)
