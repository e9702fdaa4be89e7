"""What the labelling page's server and the dotting page's share: the application with its one-line refusals, the
page, the state and learning again; the checks of a request's text fields; and the pages' common script and "learn
again" section. Each server adds only the requests of its own kind of labelling."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from cnnkit.errors import CnnkitError
from cnnkit.label.learn import Learner


def text(body: dict, key: str, required: bool = True) -> str | None:
    """``body[key]``, a non-empty string; None where it is missing and not ``required``."""
    value = body.get(key) if isinstance(body, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise CnnkitError(f"The request needs `{key}`, a non-empty string; got {value!r}.")
    return value


def create_page_app(page: str, title: str, summary: str, state: Callable[[], dict], learner: Learner | None,
                    summaries: tuple[str, str], stopping: Callable[[], None] | None = None):
    """A FastAPI application answering ``page`` at ``/``, ``state()`` with the learner's status at ``/api/state``,
    and learning again at ``/api/learn`` (``summaries``: of those two requests); a ``CnnkitError`` is answered 400
    with its one line. When the server stops, ``stopping`` is called, then the learner stopped (a training at work
    is resumed by the next one). Returns the application and its state function, the answer to most changes."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    @asynccontextmanager
    async def lifespan(_):
        yield
        if stopping is not None:
            stopping()
        if learner is not None:
            learner.stop()

    app = FastAPI(title=title, summary=summary, lifespan=lifespan)

    @app.exception_handler(CnnkitError)
    async def _refused(request, error: CnnkitError):
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def shown_page() -> str:
        return page

    @app.get("/api/state", summary=summaries[0])
    def answered_state() -> dict:
        return {**state(), "learn": learner.status() if learner else None}

    @app.post("/api/learn", summary=summaries[1])
    def learn() -> dict:
        if learner is None:
            raise CnnkitError("Learning again is not offered by this server.")
        learner.start()
        return answered_state()

    return app, answered_state


# The pages' common script: `$`, `esc` (text made safe for HTML), `call` (a GET, or a POST of a JSON body, whose
# refusal becomes an Error with the server's one line) and `showLearn` (the "learn again" section, `done` saying
# what a finished training changed). Plain text, not a format string: braces are the script's own.
SCRIPT = """const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
async function call(path, body) {
  const options = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
                                              body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}
function showLearn(learn, done) {
  if (learn) {
    $("learn-command").textContent = learn.command; $("learn").disabled = learn.state === "running";
    $("learn-state").textContent = {idle: "", running: `learning (${learn.seconds.toFixed(0)} s)...`,
      done: `done: ${done} ${learn.run}`, failed: "failed: see the output below"}[learn.state];
    $("learn-log").hidden = !learn.log.length; $("learn-log").textContent = learn.log.join("\\n");
  } else { $("learn").disabled = true; $("learn-state").textContent = "not offered"; }
}
"""

# The "learn again" section below its heading: the button, its state, the command it runs and that command's output.
LEARN_SECTION = """<p><button id="learn">learn again</button> <span id="learn-state" class="muted"></span></p>
<p class="muted">Runs: <code id="learn-command"></code></p>
<pre id="learn-log" hidden></pre>
"""
