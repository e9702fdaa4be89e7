"""Running the application with uvicorn, and stopping it within seconds of SIGTERM or Ctrl-C whatever is at work."""

from __future__ import annotations

CONNECTIONS_PER_REQUEST = 2  # connections kept open, per request that `max_requests` takes at once


def serve(app, host: str, port: int, grace: float) -> None:
    """Serve ``app`` (``create_app``'s) until SIGTERM or Ctrl-C. Then no new connection is taken, the requests at work
    have ``grace`` seconds to finish, and their work is stopped (a scan at its next tile: each answered 503); a
    second later uvicorn cancels what still runs, and the work's threads, daemon threads, are not waited for. A scan
    kept its server 8 minutes after SIGTERM when uvicorn waited for it and Python joined its thread at exit."""
    import uvicorn

    workload = app.state.workload

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if not self.should_exit:
                workload.stop_after(grace)
            super().handle_exit(sig, frame)

    # connections: twice the requests taken at once (a browser keeps idle ones open), so that a request over
    # `max_requests` meets RequestLimit's message; uvicorn answers 503 itself on one more (its limit counts that one)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=grace + 1,
                            limit_concurrency=CONNECTIONS_PER_REQUEST * workload.limits.max_requests + 1)
    Server(config).run()
