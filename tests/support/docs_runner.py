"""Every ```python block of the README and docs/, found and run as the program it claims to be.

``collect_blocks`` reads the Markdown with markdown-it-py (the CommonMark parser, so a fence is
what any renderer shows as one) and returns each ``python`` fence with where it starts and the
servers it needs. Which servers, in this order:

1. an HTML comment right before the fence, ``<!-- docs-test: standalone|cluster|sentinel -->``;
2. otherwise its text: ``RedisCluster`` -> cluster, ``Sentinel`` -> sentinel, else standalone.

The blocks name fixed addresses (``localhost:6379``; a cluster at 127.0.0.1:7000-7005; a sentinel
at 127.0.0.1:26379 watching ``mymaster``), which the machine's own servers may hold. So each block
runs in a network namespace of its own: ``unshare -n python -m tests.support.docs_runner SETUP BINARY FILE``
runs ``main`` below, which brings loopback up, starts the servers of ``SETUP`` on those ports
(with the binary the suite found, ``tools.servers``), runs the block with ``python -X dev`` and a
timeout, stops every server, and exits with the block's status. Nothing inside can reach the
machine's own servers, and nothing started inside outlives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from markdown_it import MarkdownIt

from tools.servers import cluster as servers
from tools.servers.cluster import ClusterProcess
from tools.servers.process import ServerProcess
from tools.servers.sentinel import SentinelProcess

ROOT = Path(__file__).resolve().parents[2]
SETUPS = ("standalone", "cluster", "sentinel")
MARKER = re.compile(r"<!--\s*docs-test:\s*([a-z]+)\s*-->")

STANDALONE_PORT = 6379
CLUSTER_PORTS = tuple(range(7000, 7006))  # 3 primaries (7000-7002), then one replica each (7003-7005)
SENTINEL_PORT = 26379
SENTINEL_REPLICA_PORT = 6380
SENTINEL_SERVICE = "mymaster"
BLOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Block:
    """One ```python fence: its file (relative to the repository), the line of its opening fence (1-based)."""

    path: str
    line: int
    code: str
    setup: str

    @property
    def id(self) -> str:
        return f"{self.path}:L{self.line}"


def doc_files(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def setup_for(code: str, marker: str | None) -> str:
    if marker is not None:
        return marker
    if "RedisCluster" in code:
        return "cluster"
    if "Sentinel" in code:
        return "sentinel"
    return "standalone"


def collect_blocks(paths: Sequence[Path], root: Path = ROOT) -> list[Block]:
    parser = MarkdownIt("commonmark")
    blocks: list[Block] = []
    for path in paths:
        marker: str | None = None
        for token in parser.parse(path.read_text(encoding="utf-8")):
            if token.type == "html_block" and (found := MARKER.search(token.content)):
                marker = found.group(1)
                if marker not in SETUPS:
                    raise ValueError(f"{path}:{(token.map or [0])[0] + 1}: unknown docs-test setup {marker!r}")
                continue
            if token.type == "fence" and token.info.split()[:1] == ["python"]:
                line = (token.map or [0])[0] + 1
                blocks.append(Block(str(path.relative_to(root)), line, token.content, setup_for(token.content, marker)))
            marker = None  # a marker applies to the fence right after it only
    return blocks


# --- inside the namespace ---


def loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)  # struct ifreq: name, flags, padding to 40 bytes
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", b"lo", flags | iff_up))


@contextlib.contextmanager
def standalone(binary: str) -> Iterator[None]:
    server = ServerProcess(binary, port=STANDALONE_PORT)
    try:
        server.start()
        yield
    finally:
        server.stop()


@contextlib.contextmanager
def cluster(binary: str) -> Iterator[None]:
    """``tools.servers.cluster.ClusterProcess`` on the fixed ports: its port picker is swapped for them, in this process only."""
    ports = iter(CLUSTER_PORTS)
    picker = servers.free_cluster_port
    servers.free_cluster_port = lambda: next(ports)
    made = ClusterProcess(binary, primaries=3, replicas_per_primary=1)
    try:
        made.start()
        yield
    finally:
        servers.free_cluster_port = picker
        made.stop()


def _wait(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _replica_synced(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1) as client:
        return bool(client.info("replication").get("master_link_status") == "up")


def _sentinel_sees_replica() -> bool:
    with redis.Redis(port=SENTINEL_PORT, socket_timeout=1) as client:
        replicas = client.sentinel_slaves(SENTINEL_SERVICE)
    return any(r["port"] == SENTINEL_REPLICA_PORT and r["master-link-status"] == "ok" for r in replicas)


@contextlib.contextmanager
def sentinel(binary: str) -> Iterator[None]:
    started: list[ServerProcess] = []
    try:
        primary = ServerProcess(binary, ["--repl-diskless-sync-delay", "0"], port=STANDALONE_PORT)
        started.append(primary)
        primary.start()
        replica = ServerProcess(binary, ["--replicaof", "127.0.0.1", str(STANDALONE_PORT)], port=SENTINEL_REPLICA_PORT)
        started.append(replica)
        replica.start()
        watcher = SentinelProcess(
            binary, port=SENTINEL_PORT, monitored_port=STANDALONE_PORT, service=SENTINEL_SERVICE, quorum=1
        )
        started.append(watcher)
        watcher.start()
        _wait("the replica to sync", lambda: _replica_synced(SENTINEL_REPLICA_PORT))
        _wait("the sentinel to find the replica", _sentinel_sees_replica)
        yield
    finally:
        for server in reversed(started):
            server.stop()


SERVERS = {"standalone": standalone, "cluster": cluster, "sentinel": sentinel}


def run_block(setup: str, binary: str, block: Path, timeout: float) -> int:
    """Starts the servers of ``setup``, runs the block, stops them; returns the block's exit status."""
    loopback_up()
    with SERVERS[setup](binary):
        command = [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(block)]
        try:
            return subprocess.run(command, cwd=block.parent, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            print(f"docs_runner: the block did not finish within {timeout} s", file=sys.stderr)
            return 124


def main(argv: Sequence[str]) -> int:
    if len(argv) != 4 or argv[0] not in SETUPS:
        print(f"usage: python -m tests.support.docs_runner {{{','.join(SETUPS)}}} SERVER_BINARY BLOCK.py TIMEOUT_S")
        return 2
    return run_block(argv[0], argv[1], Path(argv[2]), float(argv[3]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
