"""What one request may cost the server, and request bodies refused by their declared size before they are read.

Each limit is declared once, as an option of ``ServeConfig`` (its help says why it is there); ``Limits`` is the
server's copy, in the units the code counts (bytes, pixels, seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cnnkit.config import ServeConfig

# What a multipart body holds beside the file: the boundaries, the part's headers and its file name.
MULTIPART_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """The limits of one served request (defaults: ``ServeConfig``'s)."""

    max_bytes: int = round(ServeConfig.max_upload_mb * 1e6)
    max_pixels: int = ServeConfig.max_pixels
    max_scan_pixels: int = ServeConfig.max_scan_pixels
    deadline: float = ServeConfig.deadline
    queue: int = ServeConfig.queue
    max_requests: int = ServeConfig.max_requests

    @classmethod
    def of(cls, config: ServeConfig) -> Limits:
        return cls(round(config.max_upload_mb * 1e6), config.max_pixels, config.max_scan_pixels, config.deadline,
                   config.queue, config.max_requests)

    @property
    def max_body(self) -> int:
        """The largest request body taken: an upload at the limit, and its multipart wrapping."""
        return self.max_bytes + MULTIPART_OVERHEAD


class BodyLimit:
    """ASGI middleware: a request whose Content-Length is over ``limits.max_body`` is answered 413 before one byte
    of its body is read; one that declares none (chunked) is counted as it arrives and refused once over the limit.
    (FastAPI's own ``max_body_size`` answers "Content Too Large", naming neither the size nor the limit.)"""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            size = int(declared) if declared.isdigit() else None
            if size is None or size > self.limits.max_body:
                return await refuse(send, 400 if size is None else 413, self.refusal(size))
            return await self.app(scope, receive, send)
        received = 0

        async def counted():
            from starlette.exceptions import HTTPException

            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limits.max_body:  # FastAPI answers it as it answers any HTTPException
                raise HTTPException(413, self.refusal(received, declared=False))
            return message

        await self.app(scope, counted, send)

    def refusal(self, size: int | None, declared: bool = True) -> str:
        if size is None:
            return "The request's Content-Length is not a number of bytes."
        when = "before it was read" if declared else "once that much had arrived"
        return (f"The request body of {megabytes(size)} is more than the {megabytes(self.limits.max_bytes)} this "
                f"server accepts (`max_upload_mb`); it was refused {when}.")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.3g} MB"


async def refuse(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answer ``status`` with ``{"detail": ...}`` (FastAPI's form of an error), closing the connection."""
    body = json.dumps({"detail": detail}).encode()
    head = {"content-type": "application/json", "content-length": str(len(body)), "connection": "close",
            **(headers or {})}
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in head.items()]})  # ASGI: lower case
    await send({"type": "http.response.body", "body": body})
