"""A Redis Sentinel of the caller's own: ``redis-server <conf> --sentinel`` on a port, its conf in its temp dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tools.servers.process import ServerProcess


@dataclass
class SentinelProcess(ServerProcess):
    """A sentinel watching the primary on ``monitored_port`` as ``service``, with ``quorum`` votes to fail over.

    ``failover_timeout_ms`` (0: the server's default) is written when given.
    """

    monitored_port: int = 0
    service: str = "mymaster"
    quorum: int = 2
    down_after_ms: int = 1000
    failover_timeout_ms: int = 0

    @property
    def conf(self) -> str:
        return os.path.join(self.directory, "sentinel.conf")

    def command(self) -> list[str]:
        return [self.binary, self.conf, "--sentinel"]

    def start(self, ready: bool = True) -> SentinelProcess:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            "protected-mode no",
            f"dir {self.directory}",
            f"logfile {os.path.join(self.directory, 'server.log')}",
            f"sentinel monitor {self.service} 127.0.0.1 {self.monitored_port} {self.quorum}",
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
        ]
        if self.failover_timeout_ms:
            lines.append(f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}")
        Path(self.conf).write_text("\n".join(lines) + "\n")
        super().start(ready)
        return self
