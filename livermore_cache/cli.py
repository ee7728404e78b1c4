"""``livermore-cache``: the operator's command line (also ``python -m livermore_cache``).

Commands (common options ``--url`` and ``--cluster`` go before the command,
filters and ``--json`` after it)::

    livermore-cache [--url URL] [--cluster] inspect [--user N] [--exchange N] [--symbol S] [--timeframe TF] [--json]
    livermore-cache [--url URL] [--cluster] heal    [filters] [--apply] [--json]
    livermore-cache [--url URL] [--cluster] tail closes|tickers|indicators [filters] [--json]

Keys are found with SCAN only (on every primary of a Cluster), never KEYS.
Exit status: 0 on success; 1 with one line on stderr when the server cannot be
reached or answers with an error; 2 with one line on stderr for a bad URL or
bad arguments. ``tail`` runs until SIGINT (Ctrl-C) or SIGTERM, then exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, NoReturn, cast
from urllib.parse import urlsplit, urlunsplit

import click
import msgspec
import redis
import redis.cluster
from redis.exceptions import RedisClusterException, RedisError

from ._sync.candles import CandleCache
from ._sync.subscriptions import Subscription
from ._sync.values import IndicatorCache, TickerCache
from .candles import Candle
from .errors import ValidationError
from .events import CandleClose, IndicatorUpdate, SubscriptionState, TickerUpdate, ValueSubscriptionState
from .health import find_gaps
from .keys import ticker_key
from .limits import MAX_SAFE_INTEGER
from .plans.values import INDICATORS, TICKERS
from .scripts import Scripts
from .timeframes import TIMEFRAME_VALUES, Timeframe, TimeframeLike
from .values import decode_indicator, decode_orderbook, decode_ticker

__all__ = ["cli", "main"]

PROG: Final = "livermore-cache"
DEFAULT_URL: Final = "redis://localhost:6379"
SCAN_COUNT: Final = 1000
"""The COUNT hint of each SCAN call."""
BATCH: Final = 200
"""Keys read per pipelined round."""
PAGE: Final = 10_000
"""Members read per ZRANGE of a series."""
CONNECT_TIMEOUT_S: Final = 10.0
PROGRESS_DELAY_S = 0.5
"""Scans that end sooner show no progress."""

_TIMEFRAMES: Final = [t.value for t in Timeframe]


class Failure(Exception):
    """A failure to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# ---- connection ---------------------------------------------------------------------------------


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return url


def one_line(error: BaseException | str) -> str:
    """The error's message on one line."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


@dataclass
class Connection:
    """The ``--url``/``--cluster`` choice; the client is made (and checked with PING) on first use."""

    url: str
    cluster: bool
    _client: Any = None

    def client(self) -> Any:
        if self._client is not None:
            return self._client
        shown = redact(self.url)
        try:
            if self.cluster:
                client: Any = redis.cluster.RedisCluster.from_url(  # type: ignore[no-untyped-call, unused-ignore]
                    self.url, socket_connect_timeout=CONNECT_TIMEOUT_S
                )
            else:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        except ValueError as error:
            raise Failure(f"bad URL {shown}: {one_line(error)}", 2) from None
        except (RedisError, RedisClusterException, OSError) as error:
            raise Failure(f"cannot reach {shown}: {one_line(error)}") from None
        try:
            client.ping()
        except ValueError as error:  # a URL part that only the connection reads, such as a port that is not a number
            client.close()
            raise Failure(f"bad URL {shown}: {one_line(error)}", 2) from None
        except (RedisError, RedisClusterException, OSError) as error:
            client.close()
            raise Failure(f"cannot reach {shown}: {one_line(error)}") from None
        self._client = client
        return client

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(RedisError, RedisClusterException, OSError):
                client.close()


def primaries(client: Any) -> list[Any]:
    """The clients to SCAN with: the server itself, or a client per Cluster primary."""
    if isinstance(client, redis.cluster.RedisCluster):
        cluster: Any = client
        return [cluster.get_redis_connection(node) for node in cluster.get_primaries()]
    return [client]


def pipeline(client: Any) -> Any:
    if isinstance(client, redis.cluster.RedisCluster):
        cluster: Any = client
        return cluster.pipeline()
    return client.pipeline(transaction=False)


# ---- progress -----------------------------------------------------------------------------------


class Progress:
    """A one-line counter on stderr, redrawn at most 10 times a second, shown only when stderr is a terminal."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.enabled = _isatty(sys.stderr)
        self._drawn = time.monotonic() + PROGRESS_DELAY_S - 0.1  # first drawn PROGRESS_DELAY_S after the start
        self._shown = False

    def add(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._shown = True
            click.echo(f"\r{PROG}: {self.what}: {self.count}\x1b[K", nl=False, err=True)

    def done(self) -> None:
        if self._shown:
            click.echo("\r\x1b[K", nl=False, err=True)
            self._shown = False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# ---- filters and key parsing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """``--user``, ``--exchange``, ``--symbol``, ``--timeframe``: None matches anything."""

    user: int | None = None
    exchange: int | None = None
    symbol: str | None = None
    timeframe: str | None = None

    def pattern(self, prefix: str, *, timeframe: bool, tail: bool = False) -> str:
        """The SCAN MATCH pattern: ``prefix:user:exchange:symbol[:timeframe][:*]`` with ``*`` for each filter left out."""
        parts = [prefix, *(_glob(v) for v in (self.user, self.exchange, self.symbol))]
        if timeframe:
            parts.append(_glob(self.timeframe))
        if tail:
            parts.append("*")
        return ":".join(parts)

    def accepts(self, user: int, exchange: int, symbol: str, timeframe: str | None = None) -> bool:
        return (
            (self.user is None or self.user == user)
            and (self.exchange is None or self.exchange == exchange)
            and (self.symbol is None or self.symbol == symbol)
            and (self.timeframe is None or timeframe is None or self.timeframe == timeframe)
        )


def _glob(value: object) -> str:
    return "*" if value is None else str(value)


def _id(text: str) -> int | None:
    if not text.isdigit() or len(text) > 16:
        return None
    number = int(text)
    return number if number <= MAX_SAFE_INTEGER else None


def parse_series_key(key: str) -> tuple[int, int, str, str] | None:
    """``candles:{user}:{exchange}:{symbol}:{timeframe}`` as its parts, or None for any other key."""
    parts = key.split(":")
    if len(parts) != 5 or parts[0] != "candles" or parts[4] not in TIMEFRAME_VALUES or not parts[3]:
        return None
    user, exchange = _id(parts[1]), _id(parts[2])
    if user is None or exchange is None:
        return None
    return user, exchange, parts[3], parts[4]


def parse_value_key(kind: str, key: str) -> tuple[int, int, str, str | None] | None:
    """A ticker, orderbook or indicator key as (user, exchange, symbol, timeframe or None), or None.

    Indicator keys are the Node service's: ``indicator:{u}:{e}:{symbol}:{timeframe}:{type}`` as its
    setters write them, and the same with ``:{params}`` after it as its getters build them.
    """
    parts = key.split(":")
    if parts[0] != kind:
        return None
    if kind == "indicator":
        if len(parts) not in (6, 7) or parts[4] not in TIMEFRAME_VALUES or not parts[5]:
            return None
        timeframe: str | None = parts[4]
    else:
        if len(parts) != 4:
            return None
        timeframe = None
    user, exchange = _id(parts[1]), _id(parts[2])
    if user is None or exchange is None or not parts[3]:
        return None
    return user, exchange, parts[3], timeframe


def scan(client: Any, match: str, progress: Progress, type_: str | None = None) -> Iterator[str]:
    """Every key matching ``match`` (SCAN, on each primary), each once, as text."""
    seen: set[str] = set()
    for node in primaries(client):
        for raw in node.scan_iter(match=match, count=SCAN_COUNT, _type=type_):
            key = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)
            if key in seen:  # SCAN may return a key more than once
                continue
            seen.add(key)
            progress.add()
            yield key


def batched(keys: Iterator[str], size: int = BATCH) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def series_keys(client: Any, filters: Filters, progress: Progress) -> Iterator[str]:
    """The candle series keys the filters select, found by SCAN (sorted sets only)."""
    for key in scan(client, filters.pattern("candles", timeframe=True), progress, "zset"):
        parsed = parse_series_key(key)
        if parsed is not None and filters.accepts(*parsed):
            yield key


# ---- inspect --------------------------------------------------------------------------------------


@dataclass
class SeriesReport:
    key: str
    members: int = 0
    timestamps: int = 0
    duplicates: int = 0
    ttl_s: int = -1
    gaps: int = 0
    oldest: int | float | None = None
    newest: int | float | None = None
    gap_runs: list[tuple[int, int, int]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "members": self.members,
            "timestamps": self.timestamps,
            "duplicates": self.duplicates,
            "ttl_s": self.ttl_s,
            "gaps": self.gaps,
            "oldest": self.oldest,
            "newest": self.newest,
        }


def _score(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def series_report(key: str, ttl: int, scored: Sequence[tuple[Any, float]]) -> SeriesReport:
    """One series' figures from its TTL and its (member, score) pairs."""
    per_stamp: dict[float, int] = {}
    for _, score in scored:
        per_stamp[score] = per_stamp.get(score, 0) + 1
    report = SeriesReport(key, members=len(scored), timestamps=len(per_stamp), ttl_s=ttl)
    report.duplicates = sum(1 for n in per_stamp.values() if n > 1)
    if per_stamp:
        report.oldest, report.newest = _score(min(per_stamp)), _score(max(per_stamp))
    parsed = parse_series_key(key)
    stamps = [int(s) for s in per_stamp if s.is_integer() and 0 <= s <= MAX_SAFE_INTEGER]
    if parsed is not None and stamps:
        gaps = find_gaps(stamps, parsed[3], min(stamps), max(stamps))
        report.gaps = sum(g.count for g in gaps)
        report.gap_runs = [(g.start, g.end, g.count) for g in gaps]
    return report


def inspect_series(client: Any, filters: Filters, progress: Progress) -> list[SeriesReport]:
    reports: list[SeriesReport] = []
    for keys in batched(series_keys(client, filters, progress)):
        pipe = pipeline(client)
        for key in keys:
            pipe.ttl(key)
            pipe.zrange(key, 0, PAGE - 1, withscores=True)
        replies = pipe.execute()
        for i, key in enumerate(keys):
            ttl, scored = int(replies[2 * i]), list(replies[2 * i + 1])
            if ttl == -2 or not scored:
                continue  # gone since SCAN found it
            while len(scored) % PAGE == 0:
                more = client.zrange(key, len(scored), len(scored) + PAGE - 1, withscores=True)
                scored.extend(more)
                if not more:
                    break
            reports.append(series_report(key, ttl, scored))
    reports.sort(key=lambda r: r.key)
    return reports


_DECODERS: Final[dict[str, Callable[[bytes], object]]] = {
    "ticker": decode_ticker,
    "orderbook": decode_orderbook,
    "indicator": decode_indicator,
}


def inspect_values(client: Any, kind: str, filters: Filters, progress: Progress) -> dict[str, int]:
    """``{"keys": n, "invalid": m}``: how many keys of the kind, how many hold a value that does not decode."""
    decode = _DECODERS[kind]
    has_timeframe = kind == "indicator"
    match = filters.pattern(kind, timeframe=has_timeframe, tail=has_timeframe)
    found = 0
    invalid = 0

    def selected() -> Iterator[str]:
        for key in scan(client, match, progress):
            parsed = parse_value_key(kind, key)
            if parsed is not None and filters.accepts(*parsed):
                yield key

    for keys in batched(selected()):
        pipe = pipeline(client)
        for key in keys:
            pipe.get(key)
        for reply in pipe.execute(raise_on_error=False):
            if reply is None:
                continue  # expired since SCAN found it
            found += 1
            if isinstance(reply, Exception):  # WRONGTYPE: not a string, so not a value
                invalid += 1
                continue
            try:
                decode(reply)
            except (ValidationError, msgspec.MsgspecError, ValueError, TypeError):
                invalid += 1
    return {"keys": found, "invalid": invalid}


# ---- heal -----------------------------------------------------------------------------------------


@dataclass
class HealResult:
    dry_run: bool
    series_healed: int = 0
    members_removed: int = 0
    healed: list[tuple[str, int, int]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "series_healed": self.series_healed, "members_removed": self.members_removed}


def heal_series(client: Any, filters: Filters, apply: bool, progress: Progress) -> HealResult:
    """Run ``lua/heal.lua`` on every selected series: mode "apply" with ``apply``, else "dry"."""
    script = Scripts(client).heal
    mode = "apply" if apply else "dry"
    result = HealResult(dry_run=not apply)
    for key in series_keys(client, filters, progress):
        timestamps, removed = (int(n) for n in script(keys=[key], args=[mode]))
        if removed:
            result.series_healed += 1
            result.members_removed += removed
            result.healed.append((key, timestamps, removed))
    result.healed.sort()
    return result


# ---- tail -----------------------------------------------------------------------------------------

_ENCODER: Final = msgspec.json.Encoder()


def event_document(event: Any) -> dict[str, Any]:
    """The ``--json`` line of one event."""
    if isinstance(event, CandleClose):
        series = event.series
        return {
            "event": "close",
            "key": series.key,
            "user": series.user_id,
            "exchange": series.exchange_id,
            "symbol": series.symbol,
            "timeframe": series.timeframe,
            "backfilled": event.backfilled,
            "candle": msgspec.to_builtins(event.candle),
        }
    if isinstance(event, TickerUpdate):
        return {
            "event": "ticker",
            "key": event.key,
            "backfilled": event.backfilled,
            "ticker": msgspec.to_builtins(event.ticker),
        }
    assert isinstance(event, IndicatorUpdate)
    return {
        "event": "indicator",
        "key": event.key,
        "backfilled": event.backfilled,
        "indicator": msgspec.to_builtins(event.indicator),
    }


def event_line(event: Any) -> str:
    """The human line of one event."""
    mark = " (backfilled)" if event.backfilled else ""
    if isinstance(event, CandleClose):
        c: Candle = event.candle
        sequence = getattr(c, "sequence_num", None)
        seq = "" if sequence is None else f" seq={sequence}"
        return (
            f"close {event.series.key} t={c.timestamp} o={c.open!r} h={c.high!r} l={c.low!r} c={c.close!r} "
            f"v={c.volume!r}{seq}{mark}"
        )
    if isinstance(event, TickerUpdate):
        t = event.ticker
        return f"ticker {event.key} t={t.timestamp} price={t.price!r} change24h={t.change24h!r}{mark}"
    assert isinstance(event, IndicatorUpdate)
    i = event.indicator
    values = ",".join(f"{name}={number!r}" for name, number in i.value.items())
    return f"indicator {event.key} t={i.timestamp} {values}{mark}"


def subscribe(client: Any, kind: str, filters: Filters) -> Any:
    """The library's subscription for ``kind``; when ``--user`` or ``--exchange`` is left out, a pattern over all."""
    user, exchange, symbol = filters.user, filters.exchange, filters.symbol
    timeframe = cast(TimeframeLike | None, filters.timeframe)  # checked against Timeframe when parsed
    if user is not None and exchange is not None:
        if kind == "closes":
            return CandleCache(client).subscribe_closes(user, exchange, symbol, timeframe)
        if kind == "tickers":
            return TickerCache(client).subscribe_tickers(user, exchange, symbol)
        return IndicatorCache(client).subscribe_indicators(user, exchange, symbol, timeframe)
    state: Any
    if kind == "closes":
        # an operator's view across users or exchanges: the library's own subscriptions always take both ids
        state = SubscriptionState("channel:" + filters.pattern("candle:close", timeframe=True), True)
    elif kind == "tickers":
        state = ValueSubscriptionState(
            TICKERS, TickerUpdate, "channel:" + filters.pattern("ticker", timeframe=False), True
        )
    else:
        pattern = "channel:" + filters.pattern("indicator", timeframe=True, tail=True)
        state = ValueSubscriptionState(INDICATORS, IndicatorUpdate, pattern, True)
    return Subscription(client, state).start()


class _Stop(Exception):
    """SIGTERM, raised in the main thread like SIGINT's KeyboardInterrupt."""


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stop


def run_tail(connection: Connection, kind: str, filters: Filters, as_json: bool) -> None:
    """Print events until SIGINT or SIGTERM, then return (exit 0)."""
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    subscription: Any = None
    try:
        subscription = subscribe(connection.client(), kind, filters)
        out = sys.stdout
        for event in subscription:
            line = _ENCODER.encode(event_document(event)).decode() if as_json else event_line(event)
            out.write(line + "\n")
            out.flush()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        if subscription is not None:
            # interrupted mid-read, unsubscribing may fail: the connection goes away with the process anyway
            with contextlib.suppress(Exception):
                subscription.close()


# ---- output ---------------------------------------------------------------------------------------


def emit_json(document: object) -> None:
    click.echo(_ENCODER.encode(document).decode())


def print_table(rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        click.echo("  ".join(cells).rstrip())


def print_inspect(series: list[SeriesReport], values: dict[str, dict[str, int]]) -> None:
    if series:
        rows = [["KEY", "MEMBERS", "TIMESTAMPS", "DUPLICATES", "GAPS", "TTL_S", "OLDEST", "NEWEST"]]
        rows += [
            [r.key, *(str(n) for n in (r.members, r.timestamps, r.duplicates, r.gaps, r.ttl_s, r.oldest, r.newest))]
            for r in series
        ]
        print_table(rows, right=set(range(1, 8)))
        for r in series:
            for start, end, count in r.gap_runs[:3]:
                click.echo(f"gap in {r.key}: {count} missing from {start} to {end}")
            if len(r.gap_runs) > 3:
                click.echo(f"gap in {r.key}: ... {len(r.gap_runs) - 3} more runs")
    else:
        click.echo("no candle series")
    for kind, counts in values.items():
        click.echo(f"{kind}: {counts['keys']} keys, {counts['invalid']} invalid")


# ---- commands -------------------------------------------------------------------------------------


def _check_symbol(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ticker_key(0, 0, value)
    except ValidationError:
        raise click.BadParameter(
            "must be a non-empty symbol without ':', whitespace, control or glob characters", ctx, param
        ) from None
    return value


_ID = click.IntRange(0, MAX_SAFE_INTEGER)


def filter_options(*, timeframe: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--user", type=_ID, metavar="ID", help="Only this user id."),
            click.option("--exchange", type=_ID, metavar="ID", help="Only this exchange id."),
            click.option(
                "--symbol", callback=_check_symbol, metavar="SYMBOL", help="Only this symbol, such as BTC-USD."
            ),
        ]
        if timeframe:
            options.append(
                click.option(
                    "--timeframe",
                    type=click.Choice(_TIMEFRAMES),
                    metavar="TF",
                    help=f"Only this timeframe: {', '.join(_TIMEFRAMES)}.",
                )
            )
        options.append(click.option("--json", "as_json", is_flag=True, help="Machine-readable output (JSON)."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    invoke_without_command=True,
)
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="The server: redis://[user:password@]host:port[/db], rediss://... or unix://...; with --cluster, any node.",
)
@click.option("--cluster", is_flag=True, help="The URL names a Redis Cluster node: scan every primary.")
@click.version_option(package_name="livermore-cache", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, url: str, cluster: bool) -> None:
    """Inspect, heal and follow a livermore cache in Redis.

    Keys are found with SCAN (on every primary of a Cluster), never KEYS. Common
    options go before the command, filters and --json after it:

        livermore-cache --url redis://host:6379 inspect --symbol BTC-USD --json

    Exit status: 0 on success; 1 when the server cannot be reached or answers with an
    error; 2 for a bad URL or bad arguments. Errors are one line on stderr.
    """
    if ctx.invoked_subcommand is None:
        raise click.UsageError("missing command: inspect, heal or tail")
    connection = Connection(url, cluster)
    ctx.obj = connection
    ctx.call_on_close(connection.close)


@cli.command()
@filter_options()
@click.pass_obj
def inspect(
    connection: Connection,
    user: int | None,
    exchange: int | None,
    symbol: str | None,
    timeframe: str | None,
    as_json: bool,
) -> None:
    """What the cache holds, per candle series and per kind of value.

    \b
    For each candle series (candles:{user}:{exchange}:{symbol}:{timeframe}):
      key, members, timestamps (distinct), duplicates (timestamps holding more than
      one member), ttl_s (-1: no expiry, as Redis reports it), gaps (how many candles
      are missing between the oldest and the newest one: boundaries of the key's
      timeframe with no member, as livermore_cache.find_gaps counts them), oldest and
      newest (open times in ms, as stored).
    For tickers, orderbooks and indicators: keys (how many) and invalid (how many hold
    a value that does not decode). --timeframe does not filter tickers and orderbooks.

    \b
    --json prints one document:
      {"series": [{"key", "members", "timestamps", "duplicates", "ttl_s", "gaps",
                   "oldest", "newest"}, ...],
       "tickers": {"keys", "invalid"}, "orderbooks": {...}, "indicators": {...}}
    """
    filters = Filters(user, exchange, symbol, timeframe)
    client = connection.client()
    progress = Progress("scanned keys")
    try:
        series = inspect_series(client, filters, progress)
        values = {
            "tickers": inspect_values(client, "ticker", filters, progress),
            "orderbooks": inspect_values(client, "orderbook", filters, progress),
            "indicators": inspect_values(client, "indicator", filters, progress),
        }
    finally:
        progress.done()
    if as_json:
        emit_json({"series": [r.document() for r in series], **values})
    else:
        print_inspect(series, values)


@cli.command()
@filter_options()
@click.option("--apply", is_flag=True, help="Remove the members (default: a dry run that only reports).")
@click.pass_obj
def heal(
    connection: Connection,
    user: int | None,
    exchange: int | None,
    symbol: str | None,
    timeframe: str | None,
    as_json: bool,
    apply: bool,
) -> None:
    """Keep one member per timestamp in each candle series; a dry run unless --apply.

    Where several members share a timestamp (left by a non-atomic writer), the one the
    versioned rules keep stays: the highest sequenceNum (a member without one loses to
    any member with one; among equals, the first in the sorted set's order, by member
    bytes). The others are removed, atomically per series, by the Lua script heal.lua;
    TTL and every other member stay as they are. The dry run runs the same script in
    read-only mode, so it reports exactly what --apply would remove.

    \b
    --json prints {"dry_run": bool, "series_healed": n, "members_removed": m}.
    """
    filters = Filters(user, exchange, symbol, timeframe)
    client = connection.client()
    progress = Progress("scanned series")
    try:
        result = heal_series(client, filters, apply, progress)
    finally:
        progress.done()
    if as_json:
        emit_json(result.document())
        return
    verb = "removed" if apply else "would remove"
    for key, timestamps, removed in result.healed:
        click.echo(f"{key}: {timestamps} timestamps with duplicates, {verb} {removed} members")
    healed = "healed" if apply else "to heal"
    click.echo(
        f"{'' if apply else 'dry run: '}{result.series_healed} series {healed}, {verb} {result.members_removed} members"
        + ("" if apply or not result.members_removed else " (run with --apply to heal)")
    )


@cli.command()
@click.argument("kind", metavar="KIND", type=click.Choice(["closes", "tickers", "indicators"]))
@filter_options()
@click.pass_obj
def tail(
    connection: Connection,
    kind: str,
    user: int | None,
    exchange: int | None,
    symbol: str | None,
    timeframe: str | None,
    as_json: bool,
) -> None:
    """Print live events, one line each, until Ctrl-C (then exit 0).

    \b
    KIND is closes (closed candles), tickers or indicators. A filter left out matches
    every value (a pattern subscription). --timeframe does not apply to tickers.
    --json prints one JSON object per line:
      {"event": "close", "key", "user", "exchange", "symbol", "timeframe", "backfilled", "candle": {...}}
      {"event": "ticker", "key", "backfilled", "ticker": {...}}
      {"event": "indicator", "key", "backfilled", "indicator": {...}}
    """
    if kind == "tickers" and timeframe is not None:
        raise click.UsageError("--timeframe does not apply to tail tickers")
    run_tail(connection, kind, Filters(user, exchange, symbol, timeframe), as_json)


# ---- entry point ----------------------------------------------------------------------------------


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"{PROG}: {message}", err=True)
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script: run the command line, turning every failure into one line on stderr and a status."""
    try:
        status = cli.main(args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False)
    except click.UsageError as error:
        _fail(one_line(error.format_message()) + f" (see {PROG} --help)", error.exit_code)
    except click.ClickException as error:
        _fail(one_line(error.format_message()), error.exit_code)
    except click.Abort:  # Ctrl-C outside tail
        _fail("interrupted", 130)
    except Failure as error:
        _fail(str(error), error.status)
    except (RedisError, RedisClusterException) as error:
        _fail(f"redis error: {one_line(error)}", 1)
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(0)
    except OSError as error:
        _fail(one_line(error), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(status if isinstance(status, int) else 0)


def _quiet_stdout() -> None:
    """After EPIPE, stop Python from reporting it again when it flushes stdout at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
