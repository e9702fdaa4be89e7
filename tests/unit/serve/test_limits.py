"""What a request may cost: each limit declared once (``ServeConfig``), and a body over the limit refused by its
Content-Length before one byte of it is read (by the served application itself, not a stand-in)."""

from __future__ import annotations

import asyncio
import json

import pytest

from cnnkit.config import ServeConfig
from cnnkit.errors import ConfigError
from cnnkit.serve.limits import MULTIPART_OVERHEAD, Limits

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")


def test_the_limits_are_the_serve_options_in_bytes_pixels_and_seconds():
    assert Limits() == Limits.of(ServeConfig())
    limits = Limits.of(ServeConfig(max_upload_mb=1.5, max_scan_pixels=1000, deadline=2.5, queue=0))
    assert (limits.max_bytes, limits.max_scan_pixels, limits.deadline, limits.queue) == (1_500_000, 1000, 2.5, 0)
    assert limits.max_body == 1_500_000 + MULTIPART_OVERHEAD


@pytest.mark.parametrize("option, value", [("deadline", 0.0), ("queue", -1), ("grace", -1.0),
                                           ("max_scan_pixels", 0), ("deadline", float("nan"))])
def test_limits_out_of_range_are_refused_naming_the_option(option, value):
    with pytest.raises(ConfigError, match=option):
        ServeConfig(**{option: value})


def call(app, headers: list[tuple[bytes, bytes]]) -> tuple[dict, bytes, int]:
    """One POST /api/predict straight into the ASGI application, its body a file part that never ends: (its
    response's start, its body, and how many times the application asked for the request's body)."""
    asked, sent = [], []

    async def receive() -> dict:
        asked.append(1)
        part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                b"Content-Type: image/png\r\n\r\n") if len(asked) == 1 else b"y" * 65536
        return {"type": "http.request", "body": part, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"multipart/form-data; boundary=x"), *headers],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:]), len(asked)


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_it_is_read(trained_run):
    from cnnkit.serve.app import create_app

    app = create_app([trained_run], Limits(max_bytes=1_000_000))
    start, body, asked = call(app, [(b"content-length", b"60000000")])
    assert start["status"] == 413 and asked == 0
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(body) == {"detail": "The request body of 60 MB is more than the 1 MB this server accepts "
                                          "(`max_upload_mb`); it was refused before it was read."}
    start, body, asked = call(app, [(b"content-length", b"sixty")])
    assert start["status"] == 400 and asked == 0 and "not a number" in json.loads(body)["detail"]


def test_a_body_without_a_length_is_counted_and_refused_once_over_the_limit(trained_run):
    from cnnkit.serve.app import create_app

    start, body, asked = call(create_app([trained_run], Limits(max_bytes=100_000)), [])  # chunked: no length
    assert start["status"] == 413 and asked == 4  # the part's head, then 3 x 64 kB: over 100 kB and its wrapping
    assert json.loads(body)["detail"] == ("The request body of 0.197 MB is more than the 0.1 MB this server accepts "
                                          "(`max_upload_mb`); it was refused once that much had arrived.")
