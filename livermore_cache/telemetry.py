"""OpenTelemetry spans and metrics for every public cache method, when the OpenTelemetry API is installed.

Install the extra (``pip install livermore-cache[otel]``: the API only) and
configure an SDK as usual; each public method call then makes one span named
``livermore_cache.<method>`` with these attributes:

========================================  ==============================================
``db.system.name``                        ``"redis"``
``db.operation.name``                     the Redis command sent (``EVALSHA``, ``ZRANGE``...)
``server.address``, ``server.port``       the server the client was made for
``livermore_cache.items``                 how many candles or values came in (writes)
``livermore_cache.written``               how many of them reported True (versioned writes)
``livermore_cache.retried_rounds``        rounds this call sent again (writes)
========================================  ==============================================

A failure (``PartialWriteError`` included) sets the span's status to ERROR and
records the exception. Two instruments are kept: the histogram
``livermore_cache.operation.duration`` (seconds; attribute
``livermore_cache.operation``, the method's name) and the counter
``livermore_cache.write.retried_rounds``.

Without the API nothing of it is imported: ``ENABLED`` is False, the facades'
decorator only checks that the cache is open, and ``current()`` is None.
"""

from __future__ import annotations

import contextvars
import importlib.util
import time
from typing import Any, Final

from .errors import PartialWriteError

__all__ = ["ENABLED", "Operation", "current", "note", "start"]


def _api_installed() -> bool:
    """Whether the OpenTelemetry API can be imported, found without importing it."""
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):
        return False


ENABLED: bool = _api_installed()
"""Whether the OpenTelemetry API is installed (then spans and metrics are made)."""

_CURRENT: Final[contextvars.ContextVar[Operation | None]] = contextvars.ContextVar(
    "livermore_cache_operation", default=None
)

if ENABLED:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    _TRACER = trace.get_tracer("livermore_cache")
    _METER = metrics.get_meter("livermore_cache")
    _DURATION = _METER.create_histogram(
        "livermore_cache.operation.duration", unit="s", description="Duration of a livermore_cache method call"
    )
    _RETRIED = _METER.create_counter(
        "livermore_cache.write.retried_rounds", unit="{round}", description="Write rounds sent again after a failure"
    )


class Operation:
    """One public method call: its span, and what the write path learns on the way (items, written, retries)."""

    __slots__ = ("_span", "_started", "_token", "command", "items", "name", "retried_rounds", "written")

    def __init__(self, name: str, address: tuple[str | None, int | None]) -> None:
        self.name = name
        self.items: int | None = None
        self.written: int | None = None
        self.retried_rounds = 0
        self.command: str | None = None
        host, port = address
        attributes: dict[str, Any] = {"db.system.name": "redis"}
        if host is not None:
            attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
        self._span = _TRACER.start_span(f"livermore_cache.{name}", kind=SpanKind.CLIENT, attributes=attributes)
        self._token: Any = None
        self._started = time.perf_counter()

    def __enter__(self) -> Operation:
        self._token = (_CURRENT.set(self), trace.use_span(self._span, end_on_exit=False))
        self._token[1].__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        current, scope = self._token
        scope.__exit__(None, None, None)
        _CURRENT.reset(current)
        span = self._span
        if isinstance(error, PartialWriteError):
            self.items = len(error.results)
            self.written = sum(1 for result in error.results if result)
        for name, value in (
            ("db.operation.name", self.command),
            ("livermore_cache.items", self.items),
            ("livermore_cache.written", self.written),
        ):
            if value is not None:
                span.set_attribute(name, value)
        if self.items is not None:
            span.set_attribute("livermore_cache.retried_rounds", self.retried_rounds)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        attributes = {"livermore_cache.operation": self.name}
        _DURATION.record(time.perf_counter() - self._started, attributes)
        if self.retried_rounds:
            _RETRIED.add(self.retried_rounds, attributes)

    def results(self, results: list[bool]) -> list[bool]:
        """Note a versioned write's per-item results; returns them."""
        self.items = len(results)
        self.written = sum(results)
        return results


def current() -> Operation | None:
    """The operation of the public method being run in this context, if telemetry is on."""
    return _CURRENT.get()


_NO_SDK: Final = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})


def _sdk_configured() -> bool:
    """Whether a tracer or meter provider was set: with the API's defaults only, a span records
    nothing and an instrument keeps nothing, so an operation is skipped (4.4 us per public call
    saved, docs/benchmark.md "Performance round 3"). Read per call: a provider set later counts."""
    global _configured
    if not _configured:  # a provider, once set, stays set (the API refuses to replace it)
        _configured = (
            type(trace.get_tracer_provider()).__name__ not in _NO_SDK
            or type(metrics.get_meter_provider()).__name__ not in _NO_SDK
        )
    return _configured


_configured = False


def start(name: str, address: tuple[str | None, int | None]) -> Operation | None:
    """A new operation for a public method call, or None when one is already running (a method calling another)
    or when no OpenTelemetry SDK is configured (nothing would be recorded)."""
    if _CURRENT.get() is not None or not _sdk_configured():
        return None
    return Operation(name, address)


def note(command: str, items: int | None = None) -> None:
    """Record the Redis command (and, for a write, how many items came in) on the current operation, if any."""
    op = _CURRENT.get()
    if op is not None:
        op.command = command
        if items is not None:
            op.items = items
