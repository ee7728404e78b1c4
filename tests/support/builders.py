"""Valid values to write: candles, tickers, orderbooks and indicator values, any field overridable."""

from __future__ import annotations

from typing import Any

from livermore_cache import Candle, IndicatorValue, Order, Orderbook, Ticker, UnifiedCandle
from tests.support.constants import INDICATOR_TIMEFRAME, INDICATOR_TYPE, SYMBOL, T0, TIMEFRAME


def unified(
    timestamp: int = T0,
    sequence_num: int | None = None,
    *,
    close: float = 42000.5,
    symbol: str = SYMBOL,
    timeframe: str = TIMEFRAME,
    **extra: Any,
) -> UnifiedCandle:
    """A valid UnifiedCandle; ``close`` is the handle tests use to tell candles apart."""
    fields: dict[str, Any] = {
        "timestamp": timestamp,
        "open": 42000.0,
        "high": max(42001.25, close),
        "low": min(41999.0, close),
        "close": close,
        "volume": 12.345678,
        "symbol": symbol,
        "timeframe": timeframe,
        "exchange": "coinbase",
        "sequence_num": sequence_num,
    }
    fields.update(extra)
    return UnifiedCandle(**fields)


def plain(timestamp: int = T0, *, close: float = 42000.5, symbol: str = SYMBOL, timeframe: str = TIMEFRAME) -> Candle:
    return Candle(
        timestamp=timestamp,
        open=42000.0,
        high=max(42001.25, close),
        low=min(41999.0, close),
        close=close,
        volume=1.5,
        symbol=symbol,
        timeframe=timeframe,
    )


def ticker(symbol: str = SYMBOL, timestamp: int = T0, price: float = 42000.5, **overrides: Any) -> Ticker:
    """A valid Ticker; ``price`` tells updates apart. ``bid`` and ``ask`` are unset unless given."""
    fields: dict[str, Any] = {
        "symbol": symbol,
        "price": price,
        "change24h": -1.5,
        "change_percent24h": -0.1,
        "high24h": 42100.25,
        "low24h": 41000.75,
        "volume24h": 10.5,
        "timestamp": timestamp,
    }
    fields.update(overrides)
    return Ticker(**fields)


def orderbook(symbol: str = SYMBOL, timestamp: int = T0, price: float = 42000.5, **overrides: Any) -> Orderbook:
    """A valid Orderbook around ``price``: two bids (the first with ``num_orders``), one ask."""
    fields: dict[str, Any] = {
        "symbol": symbol,
        "bids": [Order(price, 1.25, 3), Order(price - 0.5, 2.0)],
        "asks": [Order(price + 1.0, 0.5)],
        "timestamp": timestamp,
    }
    fields.update(overrides)
    return Orderbook(**fields)


def indicator(
    symbol: str = SYMBOL, timestamp: int = T0, price: float = 45.67, *, signal: float = 40.1, **overrides: Any
) -> IndicatorValue:
    """A valid IndicatorValue of the MACD-V kind: ``value`` is ``{"macdV": price, "signal": signal}``, no params."""
    fields: dict[str, Any] = {
        "timestamp": timestamp,
        "type": INDICATOR_TYPE,
        "symbol": symbol,
        "timeframe": INDICATOR_TIMEFRAME,
        "value": {"macdV": price, "signal": signal},
    }
    fields.update(overrides)
    return IndicatorValue(**fields)
