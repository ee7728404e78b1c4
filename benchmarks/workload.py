"""The feeds the contestants get: candle updates, and ticker updates, out of order, with re-deliveries, from a seed.

A workload is the feed plus the state the keys start in and the batch size: the stream
into empty keys; the same stream into keys already full (every new timestamp trims one);
the stream in batches of 1,000; and the ticker race, a ticker feed (the same symbols,
every update delivered at least twice) written by the Node service's plain ``SETEX``
beside the library's newer-wins ``set_ticker_if_newer``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from livermore_cache import Ticker, UnifiedCandle

T = TypeVar("T")
USER_ID = 1
EXCHANGE_ID = 1
TIMEFRAME = "1m"
T0 = 1_704_067_200_000
MINUTE = 60_000
MAX_CANDLES = 1000  # the library's default, and what a full key holds
TICK_MS = 250  # between one symbol's ticker timestamps
TICKER_CONTESTANTS = ("seed-ticker", "ticker-if-newer", "ticker-if-newer-batch")


@dataclass(frozen=True)
class Workload:
    """What a run starts from: ``prefilled`` keys hold ``max_candles`` older candles; ``batch_size`` None: ``--batch-size``.

    ``tickers``: the feed is the ticker feed, and only ``contestants`` (the ticker ones) run it.
    """

    name: str
    title: str
    prefilled: bool = False
    batch_size: int | None = None
    contestants: tuple[str, ...] | None = None  # None: every candle contestant
    tickers: bool = False

    def runs(self, contestant: str) -> bool:
        if self.contestants is None:
            return contestant not in TICKER_CONTESTANTS
        return contestant in self.contestants


WORKLOADS = {
    w.name: w
    for w in (
        Workload("stream", "the stream into empty keys"),
        Workload(
            "full-keys",
            "full keys: every series pre-filled to max_candles, so new timestamps trim",
            prefilled=True,
            contestants=("seed", "watch", "lua", "lua-batch", "ceiling", "floor"),
        ),
        Workload(
            "batch-1000", "batches of 1,000 updates", batch_size=1000, contestants=("lua-batch", "ceiling", "floor")
        ),
        Workload(
            "ticker",
            "the ticker race: every symbol's updates delivered twice or more, out of order",
            contestants=TICKER_CONTESTANTS,
            tickers=True,
        ),
    )
}


@dataclass(frozen=True)
class FeedShape:
    symbols: int
    timestamps: int
    updates_per_timestamp: int
    window: int = 64
    redelivery: float = 0.1
    ticker_copies: int = 2  # every ticker update is delivered this often, a ``redelivery`` share once more

    @property
    def ticker_updates_per_symbol(self) -> int:
        """Distinct ticker timestamps per symbol: as many as a series has candle updates."""
        return self.timestamps * self.updates_per_timestamp

    def symbol(self, index: int) -> str:
        return f"SYM{index}-USD"


def make_feed(shape: FeedShape, seed: int) -> list[UnifiedCandle]:
    """Updates in time order, each candle's sequence rising; then shuffled within a window and partly repeated."""
    rng = random.Random(seed)
    ordered: list[UnifiedCandle] = []
    for slot in range(shape.timestamps):
        for seq in range(1, shape.updates_per_timestamp + 1):
            for s in range(shape.symbols):
                price = 100.0 + s + slot * 0.01 + seq * 0.001
                ordered.append(
                    UnifiedCandle(
                        timestamp=T0 + slot * MINUTE,
                        open=100.0 + s,
                        high=price + 1.0,
                        low=100.0 + s - 1.0,
                        close=price,
                        volume=float(seq * 10),
                        symbol=shape.symbol(s),
                        timeframe=TIMEFRAME,
                        exchange="bench",
                        exchange_timestamp=f"2024-01-01T00:{slot % 60:02d}:{seq % 60:02d}.000Z",
                        sequence_num=seq,
                    )
                )
    keyed = [(i + rng.uniform(0, shape.window), candle) for i, candle in enumerate(ordered)]
    for i, candle in enumerate(ordered):
        if rng.random() < shape.redelivery:
            keyed.append((i + rng.uniform(0, shape.window * 2), candle))
    keyed.sort(key=lambda pair: pair[0])
    return [candle for _, candle in keyed]


def make_ticker_feed(shape: FeedShape, seed: int) -> list[Ticker]:
    """Every symbol's tickers at rising timestamps; each delivered ``ticker_copies`` times (a share once more), shuffled.

    A copy lands up to ``window`` (the first) or ``2 * window`` (the others) places after its place in time
    order, so the last update to arrive for a symbol is seldom its newest: a plain ``SETEX`` leaves it stale.
    """
    rng = random.Random(seed ^ 0x7EC7E2)
    ordered: list[Ticker] = []
    for step in range(shape.ticker_updates_per_symbol):
        for s in range(shape.symbols):
            price = 100.0 + s + step * 0.01
            ordered.append(
                Ticker(
                    symbol=shape.symbol(s),
                    price=price,
                    change24h=step * 0.01,
                    change_percent24h=step * 0.01 / (100.0 + s) * 100,
                    high24h=price + 5.0,
                    low24h=90.0 + s,
                    volume24h=1000.0 + step,
                    timestamp=T0 + step * TICK_MS,
                )
            )
    keyed = []
    for i, ticker in enumerate(ordered):
        copies = shape.ticker_copies + (rng.random() < shape.redelivery)
        keyed.append((i + rng.uniform(0, shape.window), ticker))
        keyed.extend((i + rng.uniform(0, shape.window * 2), ticker) for _ in range(copies - 1))
    keyed.sort(key=lambda pair: pair[0])
    return [ticker for _, ticker in keyed]


def newest_tickers(feed: list[Ticker]) -> dict[str, int]:
    """symbol -> the highest timestamp delivered for it."""
    newest: dict[str, int] = {}
    for ticker in feed:
        if ticker.timestamp > newest.get(ticker.symbol, -1):
            newest[ticker.symbol] = ticker.timestamp
    return newest


def deal(feed: list[T], writers: int) -> list[list[T]]:
    """Round-robin: updates of one candle (or one symbol's tickers) land on different writers, so they race."""
    return [feed[i::writers] for i in range(writers)]


def own_copy(items: list[T]) -> list[T]:
    """``items`` decoded afresh in this process from their JSON: its own objects, as a writer decodes what it receives.

    make bench forks its writers after building the feed. A writer that used the parent's
    objects would have the kernel copy each page of them it first writes to (taking a reference
    to an object writes its count): 175 page faults per call of 100 candles for lua-batch,
    whose checks read every field, against 11 with its own objects, and 91 against 8 for the
    ceiling (``python -m benchmarks.writer_profile``). Each writer calls this before its barrier.
    """
    if not items:
        return items
    kind = type(items[0])
    return msgspec.json.decode(msgspec.json.encode(items), type=list[kind])  # type: ignore[valid-type]


def highest_sequences(feed: list[UnifiedCandle]) -> dict[tuple[str, int], int]:
    highest: dict[tuple[str, int], int] = {}
    for candle in feed:
        key = (candle.symbol, candle.timestamp)
        assert candle.sequence_num is not None
        if candle.sequence_num > highest.get(key, -1):
            highest[key] = candle.sequence_num
    return highest


def prefill_candles(symbol: str, count: int) -> list[UnifiedCandle]:
    """``count`` candles of one series at the minutes before the feed's first: a full key, older than every update."""
    return [
        UnifiedCandle(
            timestamp=T0 - back * MINUTE,
            open=90.0,
            high=91.0,
            low=89.0,
            close=90.5,
            volume=1.0,
            symbol=symbol,
            timeframe=TIMEFRAME,
            exchange="bench",
            exchange_timestamp="2023-12-31T23:00:00.000Z",
            sequence_num=1,
        )
        for back in range(count, 0, -1)
    ]
