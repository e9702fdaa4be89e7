"""The dotting page: one self-contained HTML file (inline CSS and script, no external request, no framework) over
the JSON API. The photo is drawn on a canvas from 512-px tiles of the zoom level that suits the view (the whole
photo's coarsest level drawn first, under them), the dots and proposals over it; drag to pan, the wheel to zoom."""

from cnnkit.label.web import LEARN_SECTION, SCRIPT

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnkit label: dots</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;display:flex;height:100vh}
#side{width:300px;padding:.8em;overflow:auto;border-right:1px solid #ddd;font-size:.9em}
#main{flex:1;position:relative;background:#333}canvas{display:block;width:100%;height:100%;cursor:crosshair}
h1{font-size:1.2em;margin:.2em 0}.muted{color:#777}.error{color:#b00020;font-weight:600;min-height:1.2em}
button{margin:.15em;padding:.3em .6em}.current{outline:3px solid #1b8a3a}li{margin:.15em 0}ul{padding-left:1.2em}
#learn-log{white-space:pre-wrap;font-size:.8em;background:#f4f4f4;padding:.4em}code{word-break:break-all}
kbd{background:#eee;border-radius:3px;padding:0 .3em;font-size:.85em}
</style></head><body>
<div id="side">
<h1>cnnkit label: dots</h1>
<p><b id="photo-name"></b><br><span id="counts"></span><br><span id="proposing" class="muted"></span></p>
<p>Class (<kbd>1</kbd>-<kbd>9</kbd>):</p><div id="classes"></div>
<p id="error" class="error"></p>
<p class="muted"><kbd>n</kbd> next proposal, <kbd>a</kbd>/<kbd>Enter</kbd> accept, <kbd>x</kbd>/<kbd>Delete</kbd>
reject or remove, <kbd>m</kbd> then click: move, click: select or add a dot, <kbd>A</kbd> accept all in view,
<kbd>r</kbd> the view is reviewed, <kbd>u</kbd> undo, <kbd>[</kbd> <kbd>]</kbd> photos, <kbd>+</kbd> <kbd>-</kbd>
<kbd>0</kbd> zoom, drag to pan.</p>
<p><button id="undo">undo (u)</button> <button id="reviewed">view reviewed (r)</button>
<button id="accept-all">accept all in view (A)</button></p>
<p>Photos:</p><ul id="photos"></ul>
<h2 style="font-size:1em">Learn again</h2>
""" + LEARN_SECTION + """<p class="muted">Dots are saved to <code id="file"></code> as you give them.</p>
</div>
<div id="main"><canvas id="view"></canvas></div>
<script>
""" + SCRIPT + """const canvas = $("view"), ctx = canvas.getContext("2d");
const COLOURS = ["#ff4d4d", "#4dd2ff", "#ffd24d", "#8cff4d", "#ff4dd2", "#b84dff", "#ff994d", "#4dffb8", "#ffffff"];
let S = null, P = null, cur = 0, cls = 0, view = {scale: 1, x: 0, y: 0}, selected = null, moving = false;
let busy = false, polling = null, drag = null;
const tiles = new Map();
function fit() {
  canvas.width = canvas.clientWidth; canvas.height = canvas.clientHeight;
  if (!P) return;
  view.scale = Math.min(canvas.width / P.width, canvas.height / P.height);
  view.x = (P.width - canvas.width / view.scale) / 2; view.y = (P.height - canvas.height / view.scale) / 2;
}
const screen = (row, col) => [(col - view.x) * view.scale, (row - view.y) * view.scale];
const photoAt = (x, y) => [view.y + y / view.scale, view.x + x / view.scale];
function tile(level, r, c) {
  const key = `${cur}/${level}/${r}/${c}`;
  if (!tiles.has(key)) {
    const image = new Image(); image.onload = draw;
    image.src = `/api/tile?photo=${cur}&level=${level}&row=${r}&col=${c}`; tiles.set(key, image);
  }
  const image = tiles.get(key);
  return image.complete && image.naturalWidth ? image : null;
}
function drawLevel(level) {
  const side = 512 * 2 ** level, [top, left] = photoAt(0, 0), [bottom, right] = photoAt(canvas.width, canvas.height);
  for (let r = Math.max(0, Math.floor(top / side)); r * side < Math.min(P.height, bottom); r++)
    for (let c = Math.max(0, Math.floor(left / side)); c * side < Math.min(P.width, right); c++) {
      const image = tile(level, r, c);
      if (!image) continue;
      const [x, y] = screen(r * side, c * side);
      ctx.drawImage(image, x, y, image.naturalWidth * 2 ** level * view.scale, image.naturalHeight * 2 ** level * view.scale);
    }
}
function ring(row, col, radius, colour, width, dash) {
  const [x, y] = screen(row, col);
  ctx.beginPath(); ctx.setLineDash(dash || []); ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke(); ctx.setLineDash([]);
}
function draw() {
  ctx.fillStyle = "#333"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!P) return;
  const level = Math.max(0, Math.min(P.levels - 1, Math.floor(Math.log2(1 / view.scale))));
  drawLevel(P.levels - 1); if (level < P.levels - 1) drawLevel(level);
  for (const [t, b, l, r] of P.reviewed) {
    const [x0, y0] = screen(t, l), [x1, y1] = screen(b, r);
    ctx.strokeStyle = "#1bd15a"; ctx.lineWidth = 2; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  for (const p of P.proposals) ring(p.row, p.col, 10, "#ffe600", 2, [4, 3]);
  for (const d of P.dots) {
    const [x, y] = screen(d.row, d.col), k = S.classes.indexOf(d.class_name);
    ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fillStyle = COLOURS[k >= 0 ? k % 9 : 8]; ctx.fill();
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
  }
  const s = chosen();
  if (s) ring(s.row, s.col, 14, moving ? "#ff00ff" : "#fff", 3);
}
function chosen() {
  if (!selected || !P) return null;
  return (selected.kind === "dot" ? P.dots : P.proposals).find((x) => x.id === selected.id) || null;
}
function side() {
  const photo = S.photos[cur];
  $("photo-name").textContent = `${cur + 1}/${S.photos.length}: ${photo.name}`;
  $("file").textContent = photo.dots_file;
  $("classes").innerHTML = S.classes.map((c, i) => `<button data-k="${i}" class="${i === cls ? "current" : ""}">` +
    `${i < 9 ? (i + 1) + ": " : ""}${esc(c)}</button>`).join("");
  for (const b of $("classes").querySelectorAll("button")) b.onclick = () => key(String(Number(b.dataset.k) + 1));
  $("photos").innerHTML = S.photos.map((p, i) => `<li><a href="#" data-i="${i}">${esc(p.name)}</a> ` +
    `<span class="muted">${p.dots} dots${p.reviewed ? ", reviewed in part" : ""}</span></li>`).join("");
  for (const a of $("photos").querySelectorAll("a")) a.onclick = (e) => { e.preventDefault(); open(Number(a.dataset.i)); };
  showLearn(S.learn, "the proposals now come from");
}
function shown(next) {
  P = next;
  if (selected && !chosen()) selected = null;
  $("counts").textContent = `${P.dots.length} dots, ${P.proposals.length} proposals`;
  $("proposing").textContent = P.proposing === "computing" ? "the detector is proposing dots..." : P.proposing;
  $("undo").disabled = !P.can_undo;
  if (S) { S.photos[cur].dots = P.dots.length; side(); }
  draw();
}
async function refresh() {
  try {
    S = await call("/api/state");
    const next = await call(`/api/photo?photo=${cur}`);
    if (!P || next.photo !== P.photo) { P = next; fit(); }
    shown(next);
    const waiting = P.proposing === "computing" || (S.learn && S.learn.state === "running");
    if (waiting && !polling) polling = setInterval(refresh, 1500);
    if (!waiting && polling) { clearInterval(polling); polling = null; }
  } catch (error) { $("error").textContent = error.message; }
}
async function act(path, body, after) {
  if (busy) return; busy = true;
  try {
    const next = await call(path, body);
    if (next.photo !== undefined) {
      const fresh = next.photo !== cur; cur = next.photo;
      if (fresh) { P = next; selected = null; tiles.clear(); fit(); }
      shown(next);
    }
    else { S = next; side(); }
    $("error").textContent = ""; if (after) after();
  } catch (error) { $("error").textContent = error.message; }
  finally { busy = false; }
}
function open(i) { if (i < 0 || i >= S.photos.length) return; cur = i; P = null; selected = null; tiles.clear(); refresh(); }
function viewBox() {
  const [top, left] = photoAt(0, 0), [bottom, right] = photoAt(canvas.width, canvas.height);
  return {photo: cur, top, bottom, left, right};
}
function nearest(row, col, exclude) {
  let best = null, distance = Infinity;
  for (const p of P.proposals) {
    const d = Math.hypot(p.row - row, p.col - col);
    if (d < distance && p.id !== exclude) { best = p; distance = d; }
  }
  return best;
}
function select(item, kind) {
  selected = item ? {kind, id: item.id} : null;
  if (item) {
    const [x, y] = screen(item.row, item.col);
    if (x < 0 || y < 0 || x > canvas.width || y > canvas.height) {
      view.x = item.col - canvas.width / 2 / view.scale; view.y = item.row - canvas.height / 2 / view.scale;
    }
  }
  draw();
}
function nextProposal() {
  const s = chosen(), [row, col] = s ? [s.row, s.col] : photoAt(canvas.width / 2, canvas.height / 2);
  select(nearest(row, col, s && selected.kind === "proposal" ? s.id : -1), "proposal");
}
function decide(path) {
  const s = chosen(); if (!s) return;
  const body = {photo: cur, proposal: s.id};
  if (path === "/api/accept" && !s.class_name) body.class_name = S.classes[cls];
  act(path, body, () => select(nearest(s.row, s.col, -1), "proposal"));
}
function key(k) {
  const s = chosen();
  if (k >= "1" && k <= "9" && Number(k) <= S.classes.length) {
    cls = Number(k) - 1; side();
    if (s && selected.kind === "dot") act("/api/class", {photo: cur, dot: s.id, class_name: S.classes[cls]});
    else if (s) act("/api/accept", {photo: cur, proposal: s.id, class_name: S.classes[cls]},
                    () => select(nearest(s.row, s.col, -1), "proposal"));
  } else if (k === "a" || k === "Enter") { if (s && selected.kind === "proposal") decide("/api/accept"); }
  else if (k === "x" || k === "Delete") {
    if (s && selected.kind === "proposal") decide("/api/reject");
    else if (s) act("/api/delete", {photo: cur, dot: s.id}, () => { selected = null; draw(); });
  }
  else if (k === "n" || k === "Tab") nextProposal();
  else if (k === "m") { moving = !!(s && selected.kind === "dot"); draw(); }
  else if (k === "A") act("/api/accept-all", viewBox());
  else if (k === "r") act("/api/reviewed", viewBox());
  else if (k === "u" || k === "Backspace") act("/api/undo", {});
  else if (k === "[" || k === "]") open(cur + (k === "]" ? 1 : -1));
  else if (k === "+" || k === "=" || k === "-") zoom(k === "-" ? 0.5 : 2, canvas.width / 2, canvas.height / 2);
  else if (k === "0") { fit(); draw(); }
  else if (k.startsWith("Arrow")) {
    const step = 100 / view.scale;
    view.x += {ArrowLeft: -step, ArrowRight: step}[k] || 0; view.y += {ArrowUp: -step, ArrowDown: step}[k] || 0; draw();
  } else return false;
  return true;
}
function zoom(factor, x, y) {
  const [row, col] = photoAt(x, y);
  view.scale = Math.max(0.01, Math.min(8, view.scale * factor));
  view.x = col - x / view.scale; view.y = row - y / view.scale; draw();
}
function click(x, y) {
  const [row, col] = photoAt(x, y), s = chosen();
  if (moving && s) { moving = false; act("/api/move", {photo: cur, dot: s.id, row, col}); return; }
  const hit = (items) => items.find((p) => Math.hypot(...screen(p.row, p.col).map((v, i) => v - [x, y][i])) < 12);
  const dot = hit(P.dots), proposal = dot ? null : hit(P.proposals);
  if (dot) select(dot, "dot"); else if (proposal) select(proposal, "proposal");
  else act("/api/add", {photo: cur, row, col, class_name: S.classes[cls]}, () => {
    select(P.dots[P.dots.length - 1], "dot");
  });
}
canvas.addEventListener("mousedown", (e) => { drag = {x: e.offsetX, y: e.offsetY, vx: view.x, vy: view.y, moved: false}; });
canvas.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
  if (Math.hypot(dx, dy) > 4) drag.moved = true;
  if (drag.moved) { view.x = drag.vx - dx / view.scale; view.y = drag.vy - dy / view.scale; draw(); }
});
canvas.addEventListener("mouseup", (e) => { if (drag && !drag.moved && P) click(e.offsetX, e.offsetY); drag = null; });
canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY < 0 ? 1.25 : 0.8, e.offsetX, e.offsetY); },
                        {passive: false});
document.addEventListener("keydown", (e) => {
  if (!S || !P || e.ctrlKey || e.metaKey || e.altKey) return;
  if (key(e.key)) e.preventDefault();
});
window.addEventListener("resize", () => { const [r, c] = photoAt(0, 0); canvas.width = canvas.clientWidth;
  canvas.height = canvas.clientHeight; view.y = r; view.x = c; draw(); });
$("undo").onclick = () => key("u"); $("reviewed").onclick = () => key("r"); $("accept-all").onclick = () => key("A");
$("learn").onclick = () => act("/api/learn", {}, refresh);
refresh();
</script></body></html>
"""
