"""Least-privilege ACL user and TLS, each against a private server."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from livermore_cache import CandleCache, candle_close_pattern
from tests.support.builders import unified
from tests.support.constants import EXCHANGE, MINUTE, T0, USER
from tools.servers.process import ServerProcess

Start = Callable[..., ServerProcess]

# The candle commands this test's calls need (no roll-ups), with the password and the one pattern it
# subscribes to; tests/system/test_acl.py runs docs/deployment.md's documented lines in full.
ACL_RULES = (
    "reset resetchannels on >s3cret ~candles:* &channel:* &" + candle_close_pattern(USER, EXCHANGE) + " "
    "+evalsha +eval +zrange +zrangebyscore +zcard +del +zadd +zrem +expire +zremrangebyrank "
    "+publish +subscribe +psubscribe +unsubscribe +punsubscribe +ping"
)


def test_least_privilege_user_runs_the_whole_api_and_nothing_else(private_server: Start) -> None:
    server = private_server()
    admin = redis.Redis.from_url(server.url)
    assert admin.execute_command("ACL", "SETUSER", "livermore", *ACL_RULES.split())  # type: ignore[no-untyped-call]
    admin.set("other:key", "secret")
    client = redis.Redis(host="127.0.0.1", port=server.port, username="livermore", password="s3cret")
    cache = CandleCache(client, max_candles=5)

    with (
        cache.subscribe_closes(USER, EXCHANGE) as pattern,
        cache.subscribe_closes(USER, EXCHANGE, "BTC-USD", "1m") as one,
    ):
        batch = [unified(T0 + i * MINUTE, 1, symbol=s) for i in range(7) for s in ("BTC-USD", "ETH-USD")]
        assert cache.add_candles_if_newer(USER, EXCHANGE, batch, publish_close=True) == [False] * 4 + [True] * 10
        admin.script_flush()  # NOSCRIPT -> EVAL, also allowed
        assert cache.add_candle_if_newer(USER, EXCHANGE, unified(T0 + 6 * MINUTE, 2), publish_close=True)
        cache.add_candles(USER, EXCHANGE, [unified(T0 + 9 * MINUTE, 1)])
        assert len(cache.get_recent_candles(USER, EXCHANGE, "BTC-USD", "1m")) == 5
        in_range = cache.get_candles_in_range(USER, EXCHANGE, "ETH-USD", "1m", T0, T0 + 3 * MINUTE)
        assert [c.timestamp for c in in_range] == [T0 + 2 * MINUTE, T0 + 3 * MINUTE]
        assert cache.get_latest_candle(USER, EXCHANGE, "BTC-USD", "1m") is not None
        assert cache.get_candle_count(USER, EXCHANGE, "ETH-USD", "1m") == 5
        assert cache.publish_update(USER, EXCHANGE, unified(T0, 1)) == 0
        assert cache.publish_close(USER, EXCHANGE, unified(T0, 1)) == 2
        seen_one = [e.candle.timestamp for e in iter(lambda: one.get(timeout=0.5), None)]
        seen_pattern = [e.candle.timestamp for e in iter(lambda: pattern.get(timeout=0.5), None)]
        assert len(seen_one) == 5 + 1 + 1
        assert len(seen_pattern) == 10 + 1 + 1
        cache.clear_candles(USER, EXCHANGE, "ETH-USD", "1m")

    denied: list[Callable[[], object]] = [
        lambda: client.get("other:key"),
        lambda: client.set("other:key", "x"),
        lambda: client.zadd("other:zset", {"m": 1}),
        lambda: client.zrange("other:zset", 0, -1),
        lambda: client.delete("other:key"),
        lambda: client.eval("return redis.call('GET', KEYS[1])", 1, "other:key"),
        lambda: client.eval("return redis.call('SET', KEYS[1], 'x')", 1, "other:key"),
        lambda: client.eval("return redis.call('GET', 'other:key')", 1, "candles:1:1:X:1m"),
        lambda: client.publish("elsewhere", "x"),
        lambda: client.keys("*"),
        lambda: client.flushall(),
        lambda: client.config_get("*"),
    ]
    for attempt in denied:  # refused by ACL: NOPERM, or, inside a script, "can't run this command"
        with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)noperm|permission|can't run"):
            attempt()
    assert admin.get("other:key") == b"secret"
    client.close()
    admin.close()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


# Certificates that a strict verifier accepts (Python 3.13 sets VERIFY_X509_STRICT by default):
# a CA with critical basicConstraints and keyUsage, a leaf for serverAuth naming 127.0.0.1.
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always, issuer
"""


def _config(directory: Path) -> str:
    path = directory / "openssl.cnf"
    path.write_text(OPENSSL_CONFIG)
    return str(path)


def make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-config", _config(directory), "-extensions", "ca", "-newkey", "rsa:2048", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1", "-subj", f"/CN={name}",
             cwd=directory)  # fmt: skip


def make_server_cert(directory: Path, ca: str) -> None:
    config = _config(directory)
    _openssl("req", "-new", "-config", config, "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", config, "-extensions", "server", cwd=directory)  # fmt: skip


def test_tls(tmp_path: Path) -> None:
    from tools.servers.discovery import private_server_binary

    binary = private_server_binary()
    if binary is None:
        pytest.fail("no redis-server or valkey-server binary to start a TLS server with")
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "wrong-ca")
    make_server_cert(tmp_path, "ca")
    server = ServerProcess(binary)
    server.args = [
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(tmp_path / "server.pem"),
        "--tls-key-file", str(tmp_path / "server.key"), "--tls-ca-cert-file", str(tmp_path / "ca.pem"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip
    server.start(ready=False)
    try:
        url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={tmp_path / 'ca.pem'}"
        try:
            server.wait_ready(timeout=10, url=url)
        except RuntimeError:
            exited = server.process is None or server.process.poll() is not None
            if exited and "tls" in server.log().lower():  # "TLS support" (Valkey) or "tls-port": Bad directive (6.2)
                last = server.log().strip().splitlines()[-1]
                pytest.skip(f"{binary} was built without TLS support: {last}")
            raise
        client = redis.Redis.from_url(url)
        cache = CandleCache(client)
        assert cache.add_candles_if_newer(USER, EXCHANGE, [unified(T0, 1), unified(T0, 2, symbol="ETH-USD")]) == [
            True,
            True,
        ]
        assert cache.get_latest_candle(USER, EXCHANGE, "ETH-USD", "1m") is not None
        client.close()
        wrong = redis.Redis.from_url(
            f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={tmp_path / 'wrong-ca.pem'}", socket_timeout=5
        )
        with pytest.raises(redis.exceptions.ConnectionError, match=r"(?i)certificate verify failed"):
            CandleCache(wrong, retries=0).add_candle_if_newer(USER, EXCHANGE, unified(T0, 3))
        wrong.close()
        plain = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
        with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            plain.ping()
        plain.close()
    finally:
        server.stop()
