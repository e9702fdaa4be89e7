"""A request's work in the server (``serve.work``): a short queue per run's model with a clear refusal beyond it,
and work that stops at its deadline, when its client disconnects or when the server stops, saying which."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cnnkit.errors import DataError
from cnnkit.scan.windows import check_stop
from cnnkit.serve.limits import Limits
from cnnkit.serve.uploads import UploadError
from cnnkit.serve.work import Refused, Workload


async def never_disconnects() -> dict:
    await asyncio.Event().wait()
    return {}


def disconnects_when(event: threading.Event):
    async def receive() -> dict:
        while not event.is_set():
            await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}
    return receive


async def until(condition) -> None:
    for _ in range(3000):  # at most 30 s for what should take a moment: a bound, not a timing assertion
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("waited 30 s")


def steps_until_stopped(work) -> str:
    """A job that works step by step (as a scan does tile by tile) until it is told to stop."""
    while not work.should_stop():
        time.sleep(0.005)
    work.check()
    return "never"


def refusal(workload: Workload, lane, job, receive=never_disconnects) -> Refused:
    with pytest.raises(Refused) as refused:
        asyncio.run(workload.run(receive, lane, job, "the scan of x.png"))
    return refused.value


def test_one_request_works_the_queue_waits_and_more_are_refused_with_retry_after():
    workload = Workload(Limits(queue=1))
    lane, release = workload.lane("aerial", "scan"), threading.Event()

    async def three():
        first = asyncio.ensure_future(workload.run(never_disconnects, lane, lambda work: release.wait(30) and 1, "a"))
        second = asyncio.ensure_future(workload.run(never_disconnects, lane, lambda work: 2, "b"))
        await until(lane.model.locked)
        with pytest.raises(Refused) as third:
            await workload.run(never_disconnects, lane, lambda work: 3, "c")
        release.set()
        return await first, await second, third.value

    first, second, third = asyncio.run(three())
    assert (first, second) == (1, 2) and third.status == 503 and int(third.headers["Retry-After"]) >= 1
    assert str(third) == ("aerial is busy: 2 scan requests are at work or waiting, the most it takes (one at work, "
                          "`queue` 1 waiting); try again in a moment.")
    assert lane.summary() == {"at_work": False, "waiting": 0, "queue": 1, "answered": 2, "refused": 1, "stopped": {},
                              "steps": 0}


def test_a_request_that_would_wait_past_its_deadline_is_refused_at_once():
    workload = Workload(Limits(queue=32, deadline=1.0))
    lane, release = workload.lane("aerial", "scan"), threading.Event()
    lane.seconds = 0.3  # what the recent scans took

    async def four():
        ahead = [asyncio.ensure_future(workload.run(never_disconnects, lane, lambda work: release.wait(30), "a"))
                 for _ in range(3)]  # 3 x 0.3 s: the third ends within the deadline, a fourth would not
        await until(lambda: lane.admitted == 3)
        with pytest.raises(Refused) as fourth:
            await workload.run(never_disconnects, lane, lambda work: 4, "d")
        release.set()
        await asyncio.gather(*ahead)
        return fourth.value

    fourth = asyncio.run(four())
    assert fourth.status == 503 and fourth.headers["Retry-After"] == "1"
    assert str(fourth) == ("aerial is busy: the 3 scan requests ahead hold about 1 s of work (recently 0.3 s each), so "
                           "that one more would not end within its deadline, 1 s (`deadline`); try again in a moment.")


def test_work_past_its_deadline_stops_at_its_next_step_and_says_so():
    workload = Workload(Limits(deadline=0.3))
    lane = workload.lane("aerial", "scan")
    refused = refusal(workload, lane, lambda work: check_stop(work.should_stop, 0, 9) or steps_until_stopped(work))
    assert refused.status == 504 and str(refused) == (
        "the scan of x.png stopped at its deadline, 0.3 s (`deadline`): send a smaller image, or serve with a longer "
        "`deadline`.")
    steps = lane.steps
    time.sleep(0.2)
    assert lane.stopped == {"deadline": 1} and lane.steps == steps and not lane.model.locked()


def test_a_scan_stopped_between_tiles_says_how_far_it_went():
    workload = Workload(Limits(deadline=0.3))

    def tiles(work):
        for done in range(10**6):
            check_stop(work.should_stop, done, 10**6)
            time.sleep(0.005)

    refused = refusal(workload, workload.lane("aerial", "scan"), tiles)
    assert refused.status == 504 and "stopped at its deadline, 0.3 s (`deadline`), after " in str(refused)
    assert " of its 1000000 tiles: send a smaller image" in str(refused)


def test_a_request_that_waited_its_whole_deadline_for_the_model_is_told_the_run_was_busy():
    workload = Workload(Limits(deadline=0.3, queue=1))
    lane, release = workload.lane("aerial", "predict"), threading.Event()
    holder = threading.Thread(target=lambda: lane.model.acquire() and release.wait(30) and lane.model.release())
    holder.start()
    try:
        refused = refusal(workload, lane, lambda work: "never")
    finally:
        release.set()
        holder.join()
    assert refused.status == 503 and "Retry-After" in refused.headers
    assert str(refused).startswith("aerial was busy with other predict requests for the whole deadline, 0.3 s")
    assert lane.stopped == {"busy": 1}


def test_work_whose_client_disconnects_stops():
    workload = Workload(Limits(deadline=60))
    lane, gone = workload.lane("aerial", "scan"), threading.Event()

    def job(work):
        gone.set()
        return steps_until_stopped(work)

    refused = refusal(workload, lane, job, receive=disconnects_when(gone))
    assert refused.status == 503 and "the client disconnected" in str(refused)
    assert lane.stopped == {"disconnected": 1} and not lane.model.locked() and lane.admitted == 0


def test_a_stopping_server_stops_the_work_at_hand_and_takes_no_more():
    workload = Workload(Limits(deadline=60))
    lane = workload.lane("aerial", "scan")
    workload.stop_after(0.2)
    refused = refusal(workload, lane, steps_until_stopped)
    assert refused.status == 503 and refused.headers == {"Connection": "close"}
    assert str(refused) == "the scan of x.png stopped: the server is stopping."
    again = refusal(workload, lane, lambda work: "never")
    assert str(again) == "The server is stopping." and lane.stopped == {"stopping": 1}


@pytest.mark.parametrize("error, status", [(UploadError(413, "x.png: too large"), 413),
                                           (DataError("x.png is a grayscale photo"), 400)])
def test_a_jobs_own_error_is_answered_in_one_line_with_its_status(error, status):
    workload = Workload(Limits())

    def job(work):
        raise error

    refused = refusal(workload, workload.lane("aerial", "predict"), job)
    assert (refused.status, str(refused)) == (status, str(error))


def test_a_fault_cnnkit_did_not_foresee_is_not_dressed_as_a_refusal():
    workload = Workload(Limits())

    def job(work):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        asyncio.run(workload.run(never_disconnects, workload.lane("aerial", "predict"), job, "the prediction"))
