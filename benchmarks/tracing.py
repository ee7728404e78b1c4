"""What tracing costs the client: CPU time per call and per candle with no API, the no-op tracer, and the SDK.

    python -m benchmarks.tracing [--redis-url URL] [--repeats 3]

Each measurement runs in a process of its own (a process has one global tracer
provider), the three setups interleaved repeat after repeat so that the
machine's drift falls on all of them; the figures are medians:

- ``none``: the OpenTelemetry API cannot be imported (as without the ``otel`` extra);
- ``noop``: the API is installed and no SDK is configured (its no-op tracer);
- ``sdk``: the SDK with a batch span processor (its exporter drops the spans) and a metric reader.

Client CPU is ``time.process_time`` around the calls, so the server's time and
the network wait are not in it. Two shapes: ``add_candle_if_newer`` (one candle
per call: the per-call cost shows most) and ``add_candles_if_newer`` with 100.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SETUPS = ("none", "noop", "sdk")
ROOT = Path(__file__).resolve().parent.parent


def _child(setup: str, url: str, calls: int) -> dict[str, float]:
    """In this process: configure ``setup``, write, and return client CPU µs per call and per candle for each shape."""
    import time

    if setup == "none":

        class NoOpenTelemetry:
            def find_spec(self, name: str, path: object = None, target: object = None) -> None:
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, NoOpenTelemetry())  # type: ignore[arg-type, unused-ignore]
    elif setup == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Dropping(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropping()))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

    from livermore_cache import CandleCache, UnifiedCandle, telemetry

    assert telemetry.ENABLED is (setup != "none")

    def candle(stamp: int, sequence: int, symbol: str) -> UnifiedCandle:
        return UnifiedCandle(
            timestamp=1_704_067_200_000 + stamp * 60_000,
            open=1.0,
            high=2.0,
            low=0.5,
            close=1.5,
            volume=3.0,
            symbol=symbol,
            timeframe="1m",
            exchange="bench",
            sequence_num=sequence,
        )

    out: dict[str, float] = {}
    with CandleCache.from_url(url, max_candles=100_000) as cache:
        cache.client.flushall()
        singles = [candle(i, 1, "TRACE-1") for i in range(calls)]
        batches = [
            [candle(b * 25 + i, 1, f"TRACE-{s}") for s in range(4) for i in range(25)] for b in range(calls // 4)
        ]
        cache.add_candle_if_newer(7, 1, candle(-1, 1, "WARM"))
        started = time.process_time()
        for one in singles:
            cache.add_candle_if_newer(7, 1, one)
        single_cpu = time.process_time() - started
        started = time.process_time()
        for batch in batches:
            cache.add_candles_if_newer(7, 1, batch)
        batch_cpu = time.process_time() - started
    out["single_us_per_call"] = single_cpu / len(singles) * 1e6
    out["batch_us_per_call"] = batch_cpu / len(batches) * 1e6
    out["batch_us_per_candle"] = batch_cpu / (len(batches) * 100) * 1e6
    return out


def measure(url: str, *, repeats: int = 3, calls: int = 2000) -> dict[str, Any]:
    """Medians (and the runs) per setup, interleaved over ``repeats``; ratios against ``none``."""
    runs: dict[str, list[dict[str, float]]] = {setup: [] for setup in SETUPS}
    for _ in range(repeats):
        for setup in SETUPS:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.tracing",
                    "--child",
                    setup,
                    "--redis-url",
                    url,
                    "--calls",
                    str(calls),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            runs[setup].append(json.loads(done.stdout))
    medians = {
        setup: {name: statistics.median(run[name] for run in runs[setup]) for name in runs[setup][0]}
        for setup in SETUPS
    }
    base = medians["none"]
    return {
        "setups": medians,
        "ratios": {
            setup: {name: medians[setup][name] / base[name] for name in base} for setup in SETUPS if setup != "none"
        },
        "runs": runs,
        "repeats": repeats,
        "calls": calls,
    }


def rows(result: dict[str, Any]) -> list[str]:
    """The tracing rows of the benchmark's report."""
    lines = [
        "tracing (client CPU, medians of "
        f"{result['repeats']} interleaved runs): setup | 1 candle/call us | 100 candles/call us | us/candle",
    ]
    for setup in SETUPS:
        m = result["setups"][setup]
        ratio = result["ratios"].get(setup)
        shown = "" if ratio is None else f"  ({ratio['single_us_per_call']:.2f}x / {ratio['batch_us_per_call']:.2f}x)"
        lines.append(
            f"  {setup:<5} {m['single_us_per_call']:8.1f} {m['batch_us_per_call']:10.1f} "
            f"{m['batch_us_per_candle']:8.2f}{shown}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracing", description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", help="an existing server (it is FLUSHED); default: one found as the tests do")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--child", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.redis_url, args.calls)))
        return 0
    if args.redis_url:
        result = measure(args.redis_url, repeats=args.repeats, calls=args.calls)
    else:
        from tools.servers.discovery import find_server

        with find_server() as found:
            result = measure(found.url, repeats=args.repeats, calls=args.calls)
    print("\n".join(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
