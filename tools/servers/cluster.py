"""A Redis Cluster of the caller's own, formed from ``ServerProcess`` nodes with plain CLUSTER commands (no CLI)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from tools.servers.process import ServerProcess, free_port


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


CLUSTER_SLOTS = 16384
ADDSLOTS_CHUNK = 1024  # slots per CLUSTER ADDSLOTS (ADDSLOTSRANGE is Redis 7.0+; ADDSLOTS works everywhere)


def _text(reply: object) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


@dataclass
class ClusterProcess:
    """A Redis Cluster of the tests' own: primaries and replicas on loopback, formed with plain cluster commands.

    No ``redis-cli --cluster create``: only the server binary is needed, so that the pip-shipped
    server (a binary with no CLI beside it) serves the cluster tests too. See ``start``.
    """

    binary: str
    primaries: int = 3
    replicas_per_primary: int = 1
    node_timeout_ms: int = 1000
    nodes: list[ServerProcess] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)  # port -> node id (kept across restarts, in nodes.conf)

    def start(self, timeout: float = 60.0) -> ClusterProcess:
        """Starts the nodes and forms the cluster; on any failure every node started is stopped.

        1. every node starts empty with ``cluster-enabled``, and gets its own config epoch;
        2. the primaries take the 16384 slots in even ranges (``CLUSTER ADDSLOTS``, in chunks);
        3. the first node ``CLUSTER MEET``s every other, until every node knows every node;
        4. each replica ``CLUSTER REPLICATE``s its primary;
        5. until ``wait_ok``: cluster_state:ok, all slots ok, every replica's link up, one view on every node.
        """
        deadline = time.monotonic() + timeout
        try:
            for _ in range(self.primaries * (1 + self.replicas_per_primary)):
                node = ServerProcess(
                    self.binary,
                    port=free_cluster_port(),
                    args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", str(self.node_timeout_ms),
                        "--cluster-replica-validity-factor", "0",
                        "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
                    ],
                )  # fmt: skip
                self.nodes.append(node)
                node.start()
            self._form(deadline)
        except BaseException as error:
            logs = "; ".join(f"{n.port}: {n.log()[-300:].strip()}" for n in self.nodes if n.log())
            self.stop()
            if isinstance(error, Exception):
                raise RuntimeError(f"the cluster did not form ({error}); node logs: {logs}") from error
            raise
        return self

    def _form(self, deadline: float) -> None:
        for node in self.nodes:
            self.ids[node.port] = _text(self._call(node, "CLUSTER", "MYID"))
        # Distinct config epochs before the nodes meet, as redis-cli does: no collision to resolve later.
        for epoch, node in enumerate(self.nodes, start=1):
            self._call(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        primaries, replicas = self.nodes[: self.primaries], self.nodes[self.primaries :]
        for index, node in enumerate(primaries):
            first, end = index * CLUSTER_SLOTS // len(primaries), (index + 1) * CLUSTER_SLOTS // len(primaries)
            for chunk in range(first, end, ADDSLOTS_CHUNK):
                self._call(node, "CLUSTER", "ADDSLOTS", *range(chunk, min(chunk + ADDSLOTS_CHUNK, end)))
        for node in self.nodes[1:]:
            self._call(self.nodes[0], "CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait(deadline, self._all_met, "every node to know every other")
        for index, replica in enumerate(replicas):
            self._call(replica, "CLUSTER", "REPLICATE", self.ids[primaries[index % len(primaries)].port])
        self.wait_ok(max(deadline - time.monotonic(), 1.0))

    @staticmethod
    def _call(node: ServerProcess, *args: object) -> object:
        with redis.Redis.from_url(node.url, socket_timeout=5) as client:
            return client.execute_command(*args)

    @staticmethod
    def _wait(deadline: float, done: Callable[[], bool], what: str) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _view(self, node: ServerProcess) -> dict[str, tuple[str, ...]] | None:
        """``CLUSTER NODES`` as node id -> (role, primary id or slots...), or None if the node does not answer."""
        try:
            lines = _text(self._call(node, "CLUSTER", "NODES")).splitlines()
        except redis.RedisError:
            return None
        view: dict[str, tuple[str, ...]] = {}
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            node_id, flags, primary, link = fields[0], set(fields[2].split(",")), fields[3], fields[7]
            if flags & {"handshake", "noaddr"} or link != "connected":
                view[node_id] = ("joining",)
            elif "master" in flags:
                view[node_id] = ("master", *(f for f in fields[8:] if not f.startswith("[")))
            else:
                view[node_id] = ("replica", primary)
        return view

    def _all_met(self) -> bool:
        everyone = set(self.ids.values())
        for node in self.nodes:
            view = self._view(node)
            if view is None or set(view) != everyone or any(v == ("joining",) for v in view.values()):
                return False
        return True

    def _settled(self) -> bool:
        live = self.live_nodes()
        live_ids = {self.ids[n.port] for n in live}
        views = []
        for node in live:
            try:
                info = _text(self._call(node, "CLUSTER", "INFO"))
                replication = self._call(node, "INFO", "replication")
            except redis.RedisError:
                return False
            if "cluster_state:ok" not in info or f"cluster_slots_ok:{CLUSTER_SLOTS}" not in info:
                return False
            assert isinstance(replication, dict)
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
            view = self._view(node)
            if view is None:
                return False
            views.append({k: v for k, v in view.items() if k in live_ids})
        return all(view == views[0] and set(view) == live_ids for view in views)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok and all 16384 slots ok, every live replica's
        link to its primary is up, and all live nodes agree on who is primary of what."""
        self._wait(time.monotonic() + timeout, self._settled, "the cluster to become ok")

    def live_nodes(self) -> list[ServerProcess]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    @property
    def url(self) -> str:
        return self.live_nodes()[0].url

    def primary_nodes(self) -> list[ServerProcess]:
        out = []
        for node in self.live_nodes():
            with redis.Redis.from_url(node.url, socket_timeout=1) as client:
                if client.info("replication")["role"] == "master":
                    out.append(node)
        return out

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
