"""``benchmarks.workload.own_copy``: a writer's share decoded afresh is equal to it, and none of its objects."""

from __future__ import annotations

from benchmarks.workload import FeedShape, deal, make_feed, make_ticker_feed, own_copy

SHAPE = FeedShape(symbols=3, timestamps=20, updates_per_timestamp=3)


def test_candles_are_equal_and_new() -> None:
    share = deal(make_feed(SHAPE, 5), 4)[1]
    copy = own_copy(share)
    assert copy == share
    assert [type(c) for c in copy] == [type(c) for c in share]
    assert not any(a is b for a, b in zip(copy, share, strict=True))


def test_tickers_are_equal_and_new() -> None:
    share = make_ticker_feed(SHAPE, 5)
    copy = own_copy(share)
    assert copy == share
    assert not any(a is b for a, b in zip(copy, share, strict=True))


def test_an_empty_share_stays_empty() -> None:
    assert own_copy([]) == []
