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
    limits = Limits.of(ServeConfig(max_upload_mb=1.5, max_scan_pixels=1000, deadline=2.5, queue=0, max_requests=3))
    assert (limits.max_bytes, limits.max_scan_pixels, limits.deadline, limits.queue, limits.max_requests) == (
        1_500_000, 1000, 2.5, 0, 3)
    assert limits.max_body == 1_500_000 + MULTIPART_OVERHEAD


@pytest.mark.parametrize("option, value", [("deadline", 0.0), ("queue", -1), ("grace", -1.0),
                                           ("max_scan_pixels", 0), ("deadline", float("nan")),
                                           ("max_requests", 0)])
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


def test_requests_over_the_servers_limit_are_refused_503_before_their_body_is_read(trained_run, pattern_data):
    """Two uploads arriving slowly (their bodies not yet sent) hold both of ``max_requests`` 2: a third request, for
    any run or page, is answered 503 with Retry-After at once, not one byte of its body read; once they end, the next
    is answered."""
    from cnnkit.serve.app import create_app

    app = create_app([trained_run], Limits(max_requests=2))
    workload = app.state.workload
    image = min(pattern_data.rglob("*.png")).read_bytes()

    async def scenario():
        arrived = asyncio.Event()

        async def slow_upload() -> dict:  # the body never comes, until the client gives up
            await arrived.wait()
            return {"type": "http.disconnect"}

        slow = [asyncio.ensure_future(asgi(app, "POST", "/api/predict", slow_upload)) for _ in range(2)]
        for _ in range(3000):  # a bound on waiting for both to be taken, not a timing assertion
            if workload.requests == 2:
                break
            await asyncio.sleep(0.01)
        refused = [await asgi(app, "POST", "/api/predict", body=b"never read"), await asgi(app, "GET", "/api/runs")]
        load = workload.summary()["requests"]
        arrived.set()
        await asyncio.gather(*slow, return_exceptions=True)
        answered = await asgi(app, "POST", "/api/predict", body=image)
        return refused, load, answered

    refused, load, answered = asyncio.run(scenario())
    for start, body, asked in refused:
        headers = dict(start["headers"])
        assert start["status"] == 503 and asked == 0 and headers[b"retry-after"] == b"1"
        assert json.loads(body) == {"detail": "The server is answering 2 requests, the most it takes at once "
                                              "(`max_requests` 2); try again in a moment."}
    assert load == {"at_once": 2, "refused": 2}
    assert answered[0]["status"] == 200 and "label" in json.loads(answered[1])
    assert workload.summary()["requests"] == {"at_once": 0, "refused": 2}


async def asgi(app, method: str, path: str, receive=None, body: bytes = b"") -> tuple[dict, bytes, int]:
    """One request straight into the ASGI application (a POST's ``body`` a PNG in the multipart field ``file``):
    its response's start, its body, and how many times the application asked for the request's body."""
    asked, sent = [], []
    part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
            + body + b"\r\n--x--\r\n")

    async def whole() -> dict:  # the body once; then, as a server does, nothing until the client disconnects
        if asked[1:]:
            await asyncio.Event().wait()
        return {"type": "http.request", "body": part, "more_body": False}

    async def counted() -> dict:
        asked.append(1)
        return await (receive or whole)()

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1")] + ([(b"content-type", b"multipart/form-data; boundary=x"),
                                            (b"content-length", str(len(part)).encode())] if method == "POST" else [])
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, counted, send)
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:]), len(asked)
