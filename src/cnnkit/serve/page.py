"""The page of ``cnnkit serve``: one self-contained HTML file (inline CSS and script, no external request) that uses
only the JSON API."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnkit</title><link rel="icon" href="/favicon.ico">
<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1000px;padding:0 1em;
color:#222}
h1{font-size:1.4em}#run-info{color:#444}.muted{color:#777}.error{color:#b00020;font-weight:600}
#drop{border:2px dashed #999;border-radius:8px;padding:2em;text-align:center;margin:1em 0;cursor:pointer}
#drop.over{background:#eef6ff;border-color:#2a6edb}
.card{border:1px solid #ddd;border-radius:8px;padding:1em;margin:1em 0;display:flex;gap:1em;flex-wrap:wrap}
.card img.query{max-width:220px;max-height:220px;object-fit:contain}.result{flex:1;min-width:260px}
.bar{display:flex;align-items:center;gap:.5em;margin:.15em 0}.bar span.name{width:9em;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}.bar .track{flex:1;background:#eee;height:1em;border-radius:3px;
position:relative}.bar .fill{background:#2a6edb;height:100%;border-radius:3px}.bar .fill.chosen{background:#1b8a3a}
.bar .mark{position:absolute;top:-2px;bottom:-2px;width:2px;background:#b00020}
.label{font-size:1.2em;font-weight:600}.neighbours{display:flex;gap:.5em;flex-wrap:wrap}
.neighbours figure{margin:0;font-size:.8em;text-align:center}.neighbours img{width:96px;height:96px;object-fit:cover}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}.scan img{max-width:100%}
</style></head><body>
<h1>cnnkit</h1>
<p><label>Run <select id="run"></select></label> <span id="run-info"></span></p>
<p><label><input type="checkbox" id="tta"> test-time augmentation (8 versions)</label>
<label><input type="checkbox" id="similar" checked> nearest training images</label>
<label><input type="checkbox" id="scan"> scan photos larger than 4x the input</label>
<span id="scan-why" class="muted"></span></p>
<p><a href="/compare" id="compare" hidden>compare the served runs</a><span id="compare-why" class="muted"></span>
<a href="/docs">API</a></p>
<div id="drop" tabindex="0">Drop images here, or click to choose<input type="file" id="files" accept="image/*"
multiple hidden></div>
<div id="results"></div>
<script>
const $ = (id) => document.getElementById(id);
let runs = [];
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
function current() { return runs.find((r) => r.id === $("run").value); }
function score(r) {
  if (r.test && r.test.accuracy !== null) return `test accuracy ${r.test.accuracy.toFixed(3)} (n=${r.test.n})`;
  return r.validation ? `no test score; validation accuracy ${r.validation.accuracy.toFixed(3)}` : "no scores";
}
function showRun() {
  const r = current(); if (!r) return;
  $("run-info").innerHTML = `${esc(r.model)}, ${r.classes.length} classes (${r.classes.map(esc).join(", ")}); ` +
    esc(score(r)) + (r.report ? ` · <a href="/runs/${encodeURIComponent(r.id)}/report" id="report">report</a>` :
    " · no report (<code>cnnkit evaluate</code> writes one)");
  $("tta").disabled = !r.tta; if (!r.tta) $("tta").checked = false;
  $("similar").disabled = !r.latent; if (!r.latent) $("similar").checked = false;
  $("scan").disabled = !r.scan.available;  // the server decides from what the run was trained on
  $("scan").checked = r.scan.offered;
  $("scan-why").textContent = `(${r.scan.reason})`;
}
async function api(path, file) {
  const body = new FormData(); body.append("file", file);
  const response = await fetch(path, {method: "POST", body});
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}
function bars(p, r) {
  const order = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
  const chosen = new Set(p.label.split("|"));
  return order.map(([name, v]) => {
    const limit = p.thresholds ? p.thresholds[r.classes.indexOf(name)] :
      (p.threshold !== null && r.classes.length === 2 && name === r.classes[1] ? p.threshold : null);
    const mark = limit === null || limit === undefined ? "" : `<div class="mark" style="left:${100 * limit}%"
      title="threshold ${limit.toFixed(3)}"></div>`;
    return `<div class="bar"><span class="name">${esc(name)}</span><div class="track"><div class="fill` +
      `${chosen.has(name) ? " chosen" : ""}" style="width:${(100 * v).toFixed(1)}%"></div>${mark}</div>` +
      `<span>${v.toFixed(3)}</span></div>`;
  }).join("");
}
async function handle(file) {
  const r = current(), card = document.createElement("div"); card.className = "card";
  const url = URL.createObjectURL(file);
  card.innerHTML = `<img class="query" alt="${esc(file.name)}" src="${url}"><div class="result">` +
    `<div class="muted">${esc(file.name)}</div><div class="out">Predicting...</div></div>`;
  $("results").prepend(card);
  const out = card.querySelector(".out"), run = encodeURIComponent(r.id), scan = $("scan").checked;
  if (scan) out.textContent = "Predicting (a photo larger than 4x the input is scanned window by window)...";
  try {
    const p = await api(`/api/answer?run=${run}&scan=${scan}&tta=${$("tta").checked ? 8 : 1}`, file);
    if (p.kind === "scan") {
      const rows = Object.entries(p.counts).map(([c, n]) => `<tr><td>${esc(c)}</td><td>${n}</td></tr>`).join("");
      const pictures = Object.entries(p.images).map(([name, src]) =>
        `<figure><img alt="${esc(name)}" src="${src}"><figcaption>${esc(name)}</figcaption></figure>`).join("");
      out.innerHTML = `<div class="label">Counts</div><table><tr><th>class</th><th>count</th></tr>${rows}</table>` +
        `<p class="muted">${p.detections} detections in ${p.seconds.toFixed(1)} s</p><div class="scan">${pictures}</div>`;
      return;
    }
    out.innerHTML = `<div class="label">${esc(p.label || "(none)")}</div>${bars(p, r)}`;
    if ($("similar").checked) {
      const s = await api(`/api/similar?run=${run}&k=5`, file);
      out.insertAdjacentHTML("beforeend", '<p class="muted">Nearest training images</p><div class="neighbours">' +
        s.neighbours.map((n) => `<figure><img alt="${esc(n.file)}" src="${n.image}"><figcaption>` +
          `${esc(n["class"])}<br>${n.distance.toFixed(3)}</figcaption></figure>`).join("") + "</div>");
    }
  } catch (error) {
    out.innerHTML = `<span class="error">${esc(error.message)}</span>`;
  }
}
$("drop").onclick = () => $("files").click();
$("files").onchange = () => { for (const f of $("files").files) handle(f); $("files").value = ""; };
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => { e.preventDefault(); $("drop").classList.remove("over");
  for (const f of e.dataTransfer.files) handle(f); };
$("run").onchange = showRun;
fetch("/api/runs").then((r) => r.json()).then((list) => {
  runs = list;
  $("run").innerHTML = list.map((r) => `<option value="${esc(r.id)}">${esc(r.id)}</option>`).join("");
  const opening = list.find((r) => r.default) || list[0];  // the server's choice: the best test, else validation, score
  $("run").value = opening.id;
  $("run").title = list.length > 1 ? `opened on ${opening.id}: ${opening.default_reason}` : "";
  showRun();
  if (list.length > 1) fetch("/api/compare").then((r) => r.json()).then((c) => {
    $("compare").hidden = !c.comparable;  // a link that works, or the reason there is none
    $("compare-why").textContent = c.comparable ? (c.note ? ` (${c.note})` : "") : c.note;
    $("compare-why").insertAdjacentText("beforeend", " · ");
  });
});
</script></body></html>
"""
