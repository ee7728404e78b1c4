"""``python -m tools.servers binary NAME``: prints the server binary a pinned pip package ships."""

from __future__ import annotations

import sys

from tools.servers.discovery import PACKAGED_SERVERS, packaged_server_binary


def main(argv: list[str]) -> int | str:
    if len(argv) != 2 or argv[0] != "binary" or argv[1] not in PACKAGED_SERVERS:
        return f"usage: python -m tools.servers binary {{{','.join(PACKAGED_SERVERS)}}}"
    path = packaged_server_binary(argv[1])
    if path is None:
        return f"{argv[1]}: its package ({PACKAGED_SERVERS[argv[1]][0]}) is not installed"
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
