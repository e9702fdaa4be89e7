"""What a request costs the server, bounded: each request's work runs in a thread of its own, waits its turn for a
run's model in a short queue (more is refused: 503 with Retry-After), and stops at its deadline, when its client
disconnects, or when the server stops. Code that loops asks ``Work.should_stop`` between steps (a scan, between
tiles); a request whose work does not stop in time is answered anyway, its thread ending on its own.

The threads are daemon threads: a server stopping never waits for one (Python joins every other thread at exit).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from cnnkit.errors import CnnkitError
from cnnkit.scan.windows import ScanStopped
from cnnkit.serve.limits import Limits, refuse
from cnnkit.serve.uploads import UploadError

STOP_WAIT = 1.0  # seconds a request waits, once its work is told to stop, for the work to say where it stopped


class Refused(Exception):
    """A request answered with an HTTP status, a one-line reason and headers instead of a result."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


class Stopped(Exception):
    """Work stopped before its end: ``reason`` is deadline, busy (the model was never free), disconnected or
    stopping."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Lane:
    """One model of a run and the requests for it: one at work (a model is never used by two threads), at most
    ``queue`` waiting; its counters are what ``/api/load`` shows."""

    def __init__(self, run_id: str, kind: str, queue: int):
        self.run_id, self.kind, self.queue = run_id, kind, queue
        self.model = threading.Lock()
        self.admitted = 0  # at work or waiting: changed on the event loop only
        self.seconds = 0.0  # a request's time at work, a moving average (0: none measured yet)
        self.answered = self.refused = self.steps = 0
        self.stopped: Counter[str] = Counter()

    def refusal(self, deadline: float) -> str | None:
        """Why one more request is refused, or None: the queue is full, or the requests ahead of it hold more work
        than its deadline (at the recent time per request), so that it would wait to be told it waited too long."""
        if self.admitted > self.queue:
            return (f"{self.admitted} {self.kind} requests are at work or waiting, the most it takes (one at work, "
                    f"`queue` {self.queue} waiting)")
        if (self.admitted + 1) * self.seconds > deadline:
            return (f"the {self.admitted} {self.kind} requests ahead hold about {self.admitted * self.seconds:.0f} s "
                    f"of work (recently {self.seconds:.1f} s each), so that one more would not end within its "
                    f"deadline, {deadline:g} s (`deadline`)")
        return None

    def retry_after(self) -> int:
        return max(1, math.ceil(self.admitted * self.seconds))

    def summary(self) -> dict:
        at_work = self.model.locked()
        return {"at_work": at_work, "waiting": max(0, self.admitted - at_work), "queue": self.queue,
                "answered": self.answered, "refused": self.refused, "stopped": dict(self.stopped),
                "steps": self.steps}


class Work:
    """One request's work and when it should stop: at ``deadline`` seconds from now, when its client disconnects
    or when the server stops."""

    def __init__(self, lane: Lane, deadline: float, stopping: threading.Event):
        self.lane, self.stopping = lane, stopping
        self.ends = time.monotonic() + deadline
        self.started = False  # it has the model: past the deadline now, it took too long (not: it waited too long)
        self.reason: str | None = None

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason

    def expired(self) -> str:
        return "deadline" if self.started else "busy"

    def stopped(self) -> bool:
        if self.reason is None and self.stopping.is_set():
            self.reason = "stopping"
        if self.reason is None and time.monotonic() >= self.ends:
            self.reason = self.expired()
        return self.reason is not None

    def should_stop(self) -> bool:
        """Asked between steps (a scan's tiles, ``scan.windows.scan``'s ``should_stop``); each call counts a step."""
        self.lane.steps += 1
        return self.stopped()

    def check(self) -> None:
        """Between stages: raise ``Stopped`` when the work should stop."""
        if self.stopped():
            raise Stopped(self.reason)


def at_work(lane: Lane, work: Work, job: Callable[[Work], Any]) -> Any:
    """In the request's thread: wait for the lane's model (no longer than the work should go on), then do ``job``."""
    while not lane.model.acquire(timeout=0.05):
        work.check()
    try:
        work.started = True
        work.check()
        began = time.monotonic()
        result = job(work)
        took = time.monotonic() - began
        lane.seconds = 0.8 * lane.seconds + 0.2 * took if lane.seconds else took
        return result
    finally:
        lane.model.release()


async def disconnected(receive) -> None:
    """Return when the client has gone: once the body is read, the next message is the disconnect."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Workload:
    """The server's work: a lane per run and kind of work (predict, scan), the limits, and whether it is stopping."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.stopping = threading.Event()
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.requests = 0  # HTTP requests taken and not yet answered, every run together (``RequestLimit``)
        self.requests_refused = 0

    def lane(self, run_id: str, kind: str) -> Lane:
        if (run_id, kind) not in self.lanes:
            self.lanes[run_id, kind] = Lane(run_id, kind, self.limits.queue)
        return self.lanes[run_id, kind]

    def stop_after(self, seconds: float) -> None:
        """The server was told to stop: the work at hand has ``seconds`` to finish, then it stops."""
        timer = threading.Timer(seconds, self.stopping.set)
        timer.daemon = True
        timer.start()

    def summary(self) -> dict:
        """The limits, whether the server is stopping, and each run's lanes (``Lane.summary``)."""
        runs: dict[str, dict] = {}
        for (run_id, kind), lane in self.lanes.items():
            runs.setdefault(run_id, {})[kind] = lane.summary()
        return {"limits": asdict(self.limits), "stopping": self.stopping.is_set(),
                "requests": {"at_once": self.requests, "refused": self.requests_refused}, "runs": runs}

    async def drain(self, seconds: float) -> None:
        """Stop every work, and wait up to ``seconds`` for their threads to end (removing their temporary files)."""
        self.stopping.set()
        ends = time.monotonic() + seconds
        while any(lane.admitted for lane in self.lanes.values()) and time.monotonic() < ends:
            await asyncio.sleep(0.05)

    async def run(self, receive, lane: Lane, job: Callable[[Work], Any], what: str) -> Any:
        """``job(work)``'s result, done in a thread of its own once ``lane``'s model is free and within the deadline;
        else ``Refused`` saying why (503 busy or stopping, 504 deadline; 400, 413 or 415 as the job's errors say).
        ``receive``: the request's ASGI channel, which says when its client disconnects."""
        if self.stopping.is_set():
            raise Refused(503, "The server is stopping.", {"Connection": "close"})
        busy = lane.refusal(self.limits.deadline)
        if busy:
            lane.refused += 1
            raise Refused(503, f"{lane.run_id} is busy: {busy}; try again in a moment.",
                          {"Retry-After": str(lane.retry_after())})
        work = Work(lane, self.limits.deadline, self.stopping)
        outcome = asyncio.get_running_loop().create_future()
        lane.admitted += 1
        threading.Thread(target=self._thread, args=(lane, work, job, outcome), daemon=True,
                         name=f"cnnkit {lane.kind} {lane.run_id}").start()
        watcher = asyncio.ensure_future(disconnected(receive))
        try:
            await asyncio.wait([outcome, watcher], timeout=max(0.0, work.ends - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            if not outcome.done():
                work.stop("disconnected" if watcher.done() else work.expired())
                await asyncio.wait([outcome], timeout=STOP_WAIT)
        except asyncio.CancelledError:  # the server's graceful time is over: the work stops at its next step
            work.stop("stopping")
            lane.stopped["stopping"] += 1
            raise stopped_refusal("stopping", lane, self.limits.deadline, what, "") from None
        finally:
            watcher.cancel()
        result, error = outcome.result() if outcome.done() else (None, Stopped(work.reason))
        if error is None:
            lane.answered += 1
            return result
        raise self._refusal(lane, work, error, what)

    def _thread(self, lane: Lane, work: Work, job: Callable[[Work], Any], outcome: asyncio.Future) -> None:
        try:
            result, error = at_work(lane, work, job), None
        except BaseException as e:  # handed to the request, which answers it
            result, error = None, e
        try:
            outcome.get_loop().call_soon_threadsafe(self._finished, lane, outcome, (result, error))
        except RuntimeError:  # the event loop is closed: the server has stopped
            pass

    @staticmethod
    def _finished(lane: Lane, outcome: asyncio.Future, answer: tuple) -> None:
        lane.admitted -= 1
        if not outcome.done():
            outcome.set_result(answer)

    def _refusal(self, lane: Lane, work: Work, error: BaseException, what: str) -> Exception:
        """The answer to a job's error: a stopped work's reason, an upload's or cnnkit's one line (400), or the
        error itself (a fault cnnkit did not foresee: 500)."""
        if isinstance(error, UploadError):
            return Refused(error.status, str(error))
        if self.stopping.is_set() and not isinstance(error, CnnkitError):  # whatever broke, the stop broke it
            work.stop("stopping")
            error = Stopped(work.reason)
        if isinstance(error, (Stopped, ScanStopped)):
            reason = work.reason or "deadline"
            lane.stopped[reason] += 1
            done = f", after {error.done} of its {error.total} {error.unit}" if isinstance(error, ScanStopped) else ""
            return stopped_refusal(reason, lane, self.limits.deadline, what, done)
        if isinstance(error, CnnkitError):
            return Refused(400, str(error))
        return error


class RequestLimit:
    """ASGI middleware: at most ``limits.max_requests`` HTTP requests at once in the whole server, whatever each is
    doing (its upload being read, waiting for a run's model, at work, or a page); one more is answered 503 with
    Retry-After before its body is read. The per-run queues bound the work of each run; this bounds the server's
    memory and threads whatever the number of runs served, and uploads that arrive slowly."""

    def __init__(self, app, workload: Workload):
        self.app, self.workload = app, workload

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        most = self.workload.limits.max_requests
        if self.workload.requests >= most:
            self.workload.requests_refused += 1
            return await refuse(send, 503, f"The server is answering {self.workload.requests} requests, the most it "
                                           f"takes at once (`max_requests` {most}); try again in a moment.",
                                {"Retry-After": "1"})
        self.workload.requests += 1  # on the event loop only: no lock
        try:
            await self.app(scope, receive, send)
        finally:
            self.workload.requests -= 1


def stopped_refusal(reason: str, lane: Lane, deadline: float, what: str, done: str) -> Refused:
    """Why a request's work stopped, in its HTTP form."""
    if reason == "busy":
        return Refused(503, f"{lane.run_id} was busy with other {lane.kind} requests for the whole deadline, "
                            f"{deadline:g} s (`deadline`); try again later.", {"Retry-After": str(lane.retry_after())})
    if reason == "deadline":
        return Refused(504, f"{what} stopped at its deadline, {deadline:g} s (`deadline`){done}: send a smaller "
                            "image, or serve with a longer `deadline`.")
    if reason == "disconnected":  # nobody reads it: the client has gone
        return Refused(503, f"{what} stopped{done}: the client disconnected.")
    return Refused(503, f"{what} stopped{done}: the server is stopping.", {"Connection": "close"})
