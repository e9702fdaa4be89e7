"""Servers started by the tests (``cnnkit label``, ``cnnkit serve``) on a free loopback port: the port, waiting for
the server to listen, and a JSON request to it."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A loopback port no one listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, server: subprocess.Popen | None = None, seconds: float = 120) -> None:
    """Returns once something listens on ``port``; fails the test, with the server's error output, where ``server``
    ends first or nothing listens within ``seconds`` (a deadline for a server that never starts, not a timing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (server is None or server.poll() is None):
        if listening(port):
            return
        time.sleep(0.2)
    ended = server is not None and server.poll() is not None
    raise AssertionError(f"the server did not start on port {port}: {server.stderr.read() if ended and server.stderr else ''}")


def post(port: int, path: str, body: dict) -> dict:
    """``body`` POSTed as JSON to ``path`` on the loopback ``port``; its JSON answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())
