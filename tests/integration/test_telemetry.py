"""OpenTelemetry: one span per public method call, its attributes and status, and the two instruments.

The SDK's in-memory exporter and reader are installed once for the session (a
process has one global provider); each test reads only what it made.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import StatusCode

from livermore_cache import AsyncCandleCache, CandleCache, PartialWriteError, TickerCache, candle_key, telemetry
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, SYMBOL, T0, TIMEFRAME, USER
from tools.servers.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()


@pytest.fixture(scope="module")
def otel() -> Iterator[None]:
    """The SDK, installed for this module's tests and shut down after them.

    The API takes a global provider once per process; shutting it down afterwards stops
    its exporter and reader, so the rest of the session's calls keep no spans in memory.
    """
    assert telemetry.ENABLED, "the dev environment installs the OpenTelemetry API"
    sampler = _Switch()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    meters = MeterProvider(metric_readers=[_READER])
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(meters)
    yield
    sampler.on = False  # from here on every span is a non-recording one: nothing is kept
    _EXPORTER.clear()
    provider.shutdown()
    meters.shutdown()


class _Switch(Sampler):
    """Samples every span while on; none once the module's tests are done."""

    on = True

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)  # the span keeps its attributes

    def get_description(self) -> str:
        return "the telemetry tests' switch"


@pytest.fixture
def spans(otel: None) -> Callable[[], list[ReadableSpan]]:
    _EXPORTER.clear()
    return lambda: list(_EXPORTER.get_finished_spans())


def _collect() -> dict[str, list[Any]]:
    """One collection of the reader: metric name -> its data points (a collection may reset delta points)."""
    data = _READER.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def test_a_versioned_batch_makes_one_span_with_its_attributes(
    r: redis.Redis, server: Any, spans: Callable[[], list[ReadableSpan]]
) -> None:
    cache = CandleCache(r)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))  # the script is cached from here on
    _EXPORTER.clear()
    batch = [unified(T0, 2), unified(T0, 1), unified(T0 + MINUTE, 1)]
    assert cache.add_candles_if_newer(USER, EXCHANGE, batch) == [True, False, True]
    (span,) = spans()
    assert span.name == "livermore_cache.add_candles_if_newer"
    attributes = dict(span.attributes or {})
    assert attributes["db.system.name"] == "redis"
    assert attributes["db.operation.name"] == "EVALSHA"
    host, port = r.connection_pool.connection_kwargs["host"], r.connection_pool.connection_kwargs["port"]
    assert (attributes["server.address"], attributes["server.port"]) == (host, port)
    assert attributes["livermore_cache.items"] == 3
    assert attributes["livermore_cache.written"] == 2
    assert attributes["livermore_cache.retried_rounds"] == 0
    assert span.status.status_code is StatusCode.UNSET


def test_a_method_calling_another_makes_one_span_and_each_names_its_command(
    r: redis.Redis, spans: Callable[[], list[ReadableSpan]]
) -> None:
    cache = CandleCache(r)
    assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1)) is True
    assert len(cache.get_recent_candles(USER, EXCHANGE, SYMBOL, TIMEFRAME)) == 1
    assert cache.find_gaps(USER, EXCHANGE, SYMBOL, TIMEFRAME, T0, T0 + MINUTE)
    tickers = TickerCache(r)
    assert tickers.get_ticker(USER, EXCHANGE, SYMBOL) is None
    names = [(span.name, (span.attributes or {}).get("db.operation.name")) for span in spans()]
    assert names == [
        ("livermore_cache.add_candle_if_newer", "EVAL"),  # an empty script cache: NOSCRIPT, then EVAL
        ("livermore_cache.get_recent_candles", "ZRANGE"),
        ("livermore_cache.find_gaps", "EVAL"),  # its script too is sent by EVAL the first time
        ("livermore_cache.get_ticker", "GET"),
    ]


def test_asyncio_spans(redis_url: str, spans: Callable[[], list[ReadableSpan]]) -> None:
    async def scenario() -> None:
        async with AsyncCandleCache.from_url(redis_url) as cache:
            assert await cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0 + MINUTE, 1)]) == [
                True,
                True,
            ]
            await asyncio.gather(*(cache.get_candle_count(USER, EXCHANGE, SYMBOL, TIMEFRAME) for _ in range(3)))

    asyncio.run(scenario())
    made = spans()
    assert [span.name for span in made] == ["livermore_cache.add_candles_if_newer"] + [
        "livermore_cache.get_candle_count"
    ] * 3
    assert (made[0].attributes or {})["livermore_cache.written"] == 2
    assert all(span.parent is None for span in made)  # concurrent calls do not nest in each other


def test_a_partial_write_sets_error_status_and_records_the_exception(
    r: redis.Redis, spans: Callable[[], list[ReadableSpan]]
) -> None:
    r.set(candle_key(USER, EXCHANGE, "ETH-USD", TIMEFRAME), "not a sorted set")
    cache = CandleCache(r)
    with pytest.raises(PartialWriteError):
        cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0, 1, symbol="ETH-USD")])
    (span,) = spans()
    assert span.status.status_code is StatusCode.ERROR
    assert "PartialWriteError" in (span.status.description or "")
    assert [event.name for event in span.events] == ["exception"]
    attributes = dict(span.attributes or {})
    assert (attributes["livermore_cache.items"], attributes["livermore_cache.written"]) == (2, 1)


def test_duration_histogram_and_retried_rounds_counter(
    private_server: Callable[..., ServerProcess], spans: Callable[[], list[ReadableSpan]]
) -> None:
    server = private_server()
    client = redis.Redis.from_url(server.url, socket_timeout=0.3)
    try:
        cache = CandleCache(client)
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 - MINUTE, 1))
        retried_before = sum(p.value for p in _collect().get("livermore_cache.write.retried_rounds", []))
        server.signal(signal.SIGSTOP)
        resumer = threading.Timer(1.0, server.signal, args=(signal.SIGCONT,))
        resumer.start()
        try:
            assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1)) is True
        finally:
            resumer.join()
    finally:
        client.close()
    span = spans()[-1]
    retried = (span.attributes or {})["livermore_cache.retried_rounds"]
    assert isinstance(retried, int)
    assert retried >= 1
    collected = _collect()
    counted = sum(p.value for p in collected["livermore_cache.write.retried_rounds"])
    # cumulative (the SDK's default) or, on some releases, delta since the last collection
    assert counted - retried_before == retried or counted == retried
    durations = [
        p
        for p in collected["livermore_cache.operation.duration"]
        if dict(p.attributes) == {"livermore_cache.operation": "add_candle_if_newer"}
    ]
    assert durations
    assert durations[0].count >= 1
    assert durations[0].max >= 0.5  # the paused call took at least the pause's share


def test_without_the_api_nothing_is_imported_and_the_cache_works(redis_url: str) -> None:
    """A process where the API cannot be imported: telemetry is off, no opentelemetry module loads, calls work."""
    program = textwrap.dedent(
        f"""
        import sys

        class NoOpenTelemetry:
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        from livermore_cache import CandleCache, telemetry
        from tests.support.builders import unified
        from tests.support.constants import EXCHANGE, T0, USER

        assert telemetry.ENABLED is False
        with CandleCache.from_url({redis_url!r}) as cache:
            assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0, 1)) is True
        assert telemetry.current() is None
        assert not [name for name in sys.modules if name.startswith("opentelemetry")], sorted(sys.modules)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_with_the_api_and_no_sdk_no_operation_is_made() -> None:
    """The API's stand-in providers record nothing, so nothing is built per call until an SDK is set."""
    program = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        from livermore_cache import telemetry

        assert telemetry.ENABLED
        assert telemetry.start("get_ticker", (None, None)) is None
        trace.set_tracer_provider(TracerProvider())
        assert telemetry.start("get_ticker", (None, None)) is not None
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
