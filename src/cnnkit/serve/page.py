"""The page of ``cnnkit serve``: one self-contained HTML file (inline CSS and script, no external request) that uses
only the JSON API."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnkit</title>
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
<a href="/compare" id="compare">compare the served runs</a> · <a href="/docs">API</a></p>
<div id="drop" tabindex="0">Drop images here, or click to choose<input type="file" id="files" accept="image/*"
multiple hidden></div>
<div id="results"></div>
<script>
const $ = (id) => document.getElementById(id);
let runs = [];
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
function current() { return runs.find((r) => r.id === $("run").value); }
function showRun() {
  const r = current(); if (!r) return;
  const t = r.test ? `test accuracy ${r.test.accuracy.toFixed(3)} (n=${r.test.n})` : "no test scores";
  $("run-info").innerHTML = `${esc(r.model)}, ${r.classes.length} classes (${r.classes.map(esc).join(", ")}); ${t}` +
    (r.report ? ` · <a href="/runs/${encodeURIComponent(r.id)}/report">report</a>` : "");
  $("tta").disabled = !r.tta; if (!r.tta) $("tta").checked = false;
  $("similar").disabled = !r.latent; if (!r.latent) $("similar").checked = false;
  $("scan").disabled = !r.latent || r.multi_label;
  $("scan").checked = !$("scan").disabled && Math.max(...r.input) <= 128;  // patch classifiers: small windows
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
  const out = card.querySelector(".out"), run = encodeURIComponent(r.id);
  try {
    const size = await new Promise((ok) => { const i = new Image(); i.onload = () => ok([i.naturalHeight,
      i.naturalWidth]); i.onerror = () => ok([0, 0]); i.src = url; });
    if ($("scan").checked && size[0] > 4 * r.input[0] && size[1] > 4 * r.input[1]) {
      out.innerHTML = "A large photograph: scanning it window by window...";
      const s = await api(`/api/scan?run=${run}`, file);
      const rows = Object.entries(s.counts).map(([c, n]) => `<tr><td>${esc(c)}</td><td>${n}</td></tr>`).join("");
      const pictures = Object.entries(s.images).map(([name, src]) =>
        `<figure><img alt="${esc(name)}" src="${src}"><figcaption>${esc(name)}</figcaption></figure>`).join("");
      out.innerHTML = `<div class="label">Counts</div><table><tr><th>class</th><th>count</th></tr>${rows}</table>` +
        `<p class="muted">${s.detections} detections in ${s.seconds.toFixed(1)} s</p><div class="scan">${pictures}</div>`;
      return;
    }
    const p = await api(`/api/predict?run=${run}&tta=${$("tta").checked ? 8 : 1}`, file);
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
  $("compare").hidden = list.length < 2;
  $("run").innerHTML = list.map((r) => `<option value="${esc(r.id)}">${esc(r.id)}</option>`).join("");
  showRun();
});
</script></body></html>
"""
