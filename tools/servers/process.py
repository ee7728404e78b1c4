"""One server process of the caller's own: a free loopback port, a temp dir, killable and restartable."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    url: str, timeout: float = 15.0, *, exited: Callable[[], str | None] = lambda: None, **client_options: object
) -> None:
    """Until the server at ``url`` answers PING; fails at once with ``exited()``'s text when that is not None."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        why = exited()
        if why is not None:
            raise RuntimeError(why)
        try:
            with redis.Redis.from_url(url, socket_timeout=1, **client_options) as client:
                if client.ping():
                    return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
            last = error
        time.sleep(0.02)
    raise RuntimeError(f"server at {url} not ready after {timeout}s: {last}")


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
        wait_until_ready(url or self.url, timeout, exited=self._exited, **client_options)

    def _exited(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return (
            f"{self.binary} exited with status {self.process.returncode} before it answered: "
            f"{self.log()[-500:].strip()}"
        )

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
