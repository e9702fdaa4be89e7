"""The labelling page: one self-contained HTML file (inline CSS and script, no external request) over the JSON API.
Keys 1-9 give the run's classes, s skips, u or Backspace undoes; every key has its button."""

from cnnkit.label.web import LEARN_SECTION, SCRIPT

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnkit label</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:900px;padding:0 1em;
color:#222}h1{font-size:1.4em}.muted{color:#777}.error{color:#b00020;font-weight:600;min-height:1.2em}
#shown{min-height:300px;display:flex;align-items:center;justify-content:center;background:#f4f4f4;border-radius:8px}
#shown img{max-width:100%;max-height:520px;image-rendering:pixelated;min-width:256px}
#buttons button{margin:.25em;padding:.5em .9em;font-size:1em}#buttons button.guess{outline:3px solid #1b8a3a}
progress{width:100%}#learn-log{white-space:pre-wrap;font-size:.85em;background:#f4f4f4;padding:.5em}
code{word-break:break-all}
</style></head><body>
<h1>cnnkit label</h1>
<p><progress id="bar" value="0" max="1"></progress><br><span id="progress"></span></p>
<p id="path" class="muted"></p>
<div id="shown"><span class="muted">Loading...</span></div>
<p id="guess"></p>
<div id="buttons"></div>
<p><button id="skip">skip (s)</button> <button id="undo">undo (u, Backspace)</button></p>
<p id="error" class="error"></p>
<h2>Learn again</h2>
""" + LEARN_SECTION + """<p class="muted">Labels are saved to <code id="file"></code> as you give them.</p>
<script>
""" + SCRIPT + """let state = null, busy = false, polling = null;
function show(next) {
  const before = state && state.current;
  state = next;
  $("bar").max = Math.max(1, state.total); $("bar").value = state.labelled;
  $("progress").textContent = `${state.labelled} labelled of ${state.total}` +
    (state.skipped ? `, ${state.skipped} skipped` : "");
  $("file").textContent = state.labels_file;
  $("undo").disabled = !state.can_undo;
  const guess = state.guess && state.guess.label;
  $("buttons").innerHTML = state.classes.map((c, i) =>
    `<button data-class="${esc(c)}" class="${c === guess ? "guess" : ""}">${i < 9 ? (i + 1) + ": " : ""}${esc(c)}` +
    `</button>`).join("");
  for (const b of $("buttons").querySelectorAll("button")) b.onclick = () => give(b.dataset.class);
  if (state.current === null) {
    $("shown").innerHTML = '<span id="done">Every image is labelled (or skipped and labelled).</span>';
    $("path").textContent = ""; $("guess").textContent = "";
  } else {
    if (state.current !== before) $("shown").innerHTML =
      `<img id="image" alt="${esc(state.current)}" src="/api/image?path=${encodeURIComponent(state.current)}">`;
    $("path").textContent = state.current;
    $("guess").textContent = guess ? `The run's guess: ${guess} (${state.guess.probability.toFixed(2)})` :
      "The run makes no guess for this image.";
  }
  const learn = state.learn;
  showLearn(learn, "the guesses (and, without a suggestion list, the order) now come from");
  const running = learn && learn.state === "running";
  if (running && !polling) polling = setInterval(refresh, 1000);
  if (!running && polling) { clearInterval(polling); polling = null; }
}
async function act(path, body) {
  if (busy) return; busy = true;
  try { show(await call(path, body)); $("error").textContent = ""; }
  catch (error) { $("error").textContent = error.message; }
  finally { busy = false; }
}
const give = (label) => state && state.current !== null && act("/api/label", {path: state.current, label});
const skip = () => state && state.current !== null && act("/api/skip", {path: state.current});
const undo = () => act("/api/undo", {});
async function refresh() { try { show(await call("/api/state")); } catch (error) { $("error").textContent = error.message; } }
$("skip").onclick = skip; $("undo").onclick = undo; $("learn").onclick = () => act("/api/learn", {});
document.addEventListener("keydown", (e) => {
  if (!state || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key >= "1" && e.key <= "9") {
    const c = state.classes[Number(e.key) - 1];
    if (c !== undefined) { e.preventDefault(); give(c); }
  } else if (e.key === "s") { e.preventDefault(); skip(); }
  else if (e.key === "u" || e.key === "Backspace") { e.preventDefault(); undo(); }
});
refresh();
</script></body></html>
"""
