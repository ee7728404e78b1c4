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

    _UNCONFIGURED_TRACING: Final = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    from opentelemetry.metrics import _internal as _metrics_internal

    # The API's stand-in until an SDK is set is private; without it, metrics are only treated as configured.
    _PROXY_METERS: tuple[type, ...] = tuple(
        c for c in (getattr(_metrics_internal, "_ProxyMeterProvider", None),) if isinstance(c, type)
    )
    _UNCONFIGURED_METRICS: Final = (*_PROXY_METERS, metrics.NoOpMeterProvider)
    """The providers that stand in until an SDK is set (the API's proxies) or that record nothing."""

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
            if isinstance(error, Exception):  # the API types record_exception for Exception (1.20+)
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


def start(name: str, address: tuple[str | None, int | None]) -> Operation | None:
    """A new operation for a public method call; None when one is already running (a method calling another),
    or when no SDK has been set for traces or metrics (nothing would record it: a type check is all it costs)."""
    if _CURRENT.get() is not None:
        return None
    if isinstance(trace.get_tracer_provider(), _UNCONFIGURED_TRACING) and isinstance(
        metrics.get_meter_provider(), _UNCONFIGURED_METRICS
    ):
        return None
    return Operation(name, address)


def note(command: str, items: int | None = None) -> None:
    """Record the Redis command (and, for a write, how many items came in) on the current operation, if any."""
    op = _CURRENT.get()
    if op is not None:
        op.command = command
        if items is not None:
            op.items = items
