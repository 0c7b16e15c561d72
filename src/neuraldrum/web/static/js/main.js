// The instrument page: controls → voice → live render → WebAudio, plus upload, latent map and kit.
// Uses only the server's documented API (net.js). window.nd holds counters the end-to-end test reads.

import { api, Live } from "./net.js";
import { audio, makeBuffer, Mono, saveBlob, wavBlob } from "./audio.js";
import { COLOURS, MapView, drawMap, drawSpectrogram, drawWave } from "./draw.js";
import { History, loadFavourites, saveFavourites } from "./history.js";
import { KitView } from "./kit.js";

const $ = (id) => document.getElementById(id);
const rand31 = () => Math.floor(Math.random() * 2 ** 31);
// latencies: one per control move, move → the sound that answered it (or a later move's sound that replaced it)
const nd = (window.nd = { received: 0, played: 0, ended: 0, superseded: 0, hifi: 0, lengths: [], latencies: [], serverMs: [],
  errors: [], pendingMoves: 0 });
const HIFI_AFTER_MS = 250; // a pad this long still is rendered again in hi-fi (when the server has it)
const S = { cls: "kick", start: { kind: "centre", label: "class centre" }, x: 0, y: 0, fine: 0, range: 2, axes: "pca",
  amount: 0, vseed: rand31(), tune: 0, decay: 0, velocity: 127, current: null, sent: false,
  unsent: [], waiting: [], seq: 0 }; // unsent: times of moves no request carries yet; waiting: [seq, time] of sent ones
let info, live, kit, mapView = null, mapPoints = [], mapHover = -1, mapSel = -1, mapClass = "all";
const history = new History();
let favourites = [], favSel = -1, restoring = false;
nd.ab = { played: 0, side: "A" };
Object.defineProperty(nd, "mapPoints", { get: () => mapPoints.length });
Object.defineProperty(nd, "map", { get: () => ({ shown: shown().length, zoom: mapView ? mapView.zoom : 1, window: mapView && mapView.b,
  slots: mapSlots().length, cls: mapClass }) });
Object.defineProperty(nd, "current", { get: () => S.current && { voice: S.current.voice, head: Array.from(S.current.samples.slice(0, 2048)) } });
const mono = new Mono(), mapMono = new Mono();

function message(text) {
  const m = $("message");
  m.textContent = text; m.hidden = false; nd.errors.push(text);
  clearTimeout(message.t); message.t = setTimeout(() => { m.hidden = true; }, 9000);
}

// ------------------------------------------------------------------ the voice the controls describe
function voice() {
  const v = { class: S.cls };
  if (S.start.kind === "seed") { v.seed = S.start.seed; if (S.start.temperature != null) v.temperature = S.start.temperature; }
  if (S.start.kind === "z") v.z = S.start.z;
  const dims = [Number($("dim-i").value) || 0, Number($("dim-j").value) || 0];
  v.controls = { x: S.x, y: S.y, fine: S.axes === "pca" ? S.fine : 0, range: S.range, axes: S.axes === "pca" ? "pca" : dims };
  if (S.amount > 0) { v.amount = S.amount; v.variation_seed = S.vseed; }
  const sm = {};
  if (S.tune) sm.tune = S.tune;
  if (S.decay) sm.decay = S.decay / 10;
  if (S.velocity !== 127) sm.velocity = S.velocity;
  if (Object.keys(sm).length) v.sampler = sm;
  return v;
}

function loadVoice(v, label) { // a voice dict (a kit slot, a map point) into the controls
  S.cls = v.class;
  S.start = v.z ? { kind: "z", z: v.z, label: label || "a stored latent" }
    : v.seed != null ? { kind: "seed", seed: v.seed, temperature: v.temperature, label: `prior draw #${v.seed}` }
    : { kind: "centre", label: "class centre" };
  const c = v.controls || {};
  S.x = c.x || 0; S.y = c.y || 0; S.fine = c.fine || 0; S.range = c.range || 2;
  S.axes = Array.isArray(c.axes) ? "dims" : "pca";
  if (Array.isArray(c.axes)) { $("dim-i").value = c.axes[0]; $("dim-j").value = c.axes[1]; }
  S.amount = v.amount || 0; S.vseed = v.variation_seed ?? S.vseed;
  const sm = v.sampler || {};
  S.tune = sm.tune || 0; S.decay = sm.decay ? Math.min(30, Math.max(1, Math.round(sm.decay * 10))) : 0;
  S.velocity = sm.velocity ?? 127;
  syncUI(); changed();
}

// ------------------------------------------------------------------ undo/redo, favourites, A/B
const snap = () => ({ voice: voice(), label: S.start.label });

function restore(s) { // a snapshot back into the controls, without a new undo step
  if (!s) return;
  restoring = true;
  try { loadVoice(s.voice, s.label); } finally { restoring = false; }
  showHistory();
}

function showHistory() {
  $("undo").disabled = !history.back.length; $("redo").disabled = !history.ahead.length;
}

function showFavourites() {
  $("favs").replaceChildren(...favourites.map((f, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "fav"; b.textContent = f.label; b.title = `load ${f.label}; A/B compares with it`;
    b.setAttribute("aria-pressed", String(i === favSel));
    b.addEventListener("click", () => { favSel = i; loadVoice(f.voice, f.label); showFavourites(); });
    const x = document.createElement("button");
    x.type = "button"; x.className = "fav-x"; x.textContent = "×"; x.setAttribute("aria-label", `forget ${f.label}`);
    x.addEventListener("click", () => { favourites.splice(i, 1); favSel = -1; saveFavourites(favourites); showFavourites(); });
    const w = document.createElement("span"); w.className = "fav-item"; w.append(b, x);
    return w;
  }));
  $("ab").disabled = favSel < 0 && !favourites.length;
}

function keep() {
  const n = favourites.filter((f) => f.voice.class === S.cls).length + 1;
  favourites.push({ voice: voice(), label: `${S.cls} ${n}` });
  favSel = favourites.length - 1;
  saveFavourites(favourites); showFavourites();
}

async function abCompare() { // alternately: B (the selected kept sound) and A (the current one)
  const f = favourites[favSel >= 0 ? favSel : favourites.length - 1];
  if (!f) return;
  audio();
  if (nd.ab.side === "A") {
    try {
      const r = await live.render("ab", f.voice);
      if (!r) return;
      mono.play(makeBuffer(r.samples, r.header.sample_rate));
    } catch (e) { message(e.message); return; }
    nd.ab.side = "B";
  } else { playCurrent(); nd.ab.side = "A"; }
  nd.ab.played++;
  $("ab-out").textContent = nd.ab.side === "B" ? `hearing B: ${f.label}` : "hearing A: the current sound";
}

function syncUI() {
  $("cls").value = S.cls;
  $("start-label").textContent = S.start.label;
  for (const k of ["x", "y", "fine", "amount", "tune", "decay", "velocity"]) $(k).value = S[k];
  $("x-out").value = S.x.toFixed(2); $("y-out").value = S.y.toFixed(2); $("fine-out").value = S.fine.toFixed(2);
  $("amount-out").value = S.amount.toFixed(2); $("tune-out").value = `${S.tune > 0 ? "+" : ""}${S.tune} st`;
  $("decay-out").value = S.decay ? `${(S.decay / 10).toFixed(1)} s` : "own"; $("velocity-out").value = S.velocity;
  $("axes").value = S.axes; $("dims").hidden = S.axes === "pca"; $("fine").disabled = S.axes !== "pca";
  document.querySelector("#pad .ax").textContent = S.axes === "pca" ? "P1 →" : `z${$("dim-i").value} →`;
  document.querySelector("#pad .ay").textContent = S.axes === "pca" ? "P2 →" : `z${$("dim-j").value} →`;
  document.querySelectorAll("input[name=range]").forEach((r) => { r.checked = Number(r.value) === S.range; });
  const puck = $("puck");
  puck.style.left = `${(S.x + 1) * 50}%`; puck.style.top = `${(1 - S.y) * 50}%`;
  $("pad").setAttribute("aria-valuetext", `x ${S.x.toFixed(2)}, y ${S.y.toFixed(2)}`);
}

// ------------------------------------------------------------------ live rendering (one request per frame at most)
// changed(t): a person moved a control at time t (performance.now() clock; a pointer event's own timeStamp), or
// changed(null): the sound changed without a move (the page's latency counts only moves). Every move's latency runs
// from the move to the first sound played (or made ready, with autoplay off) whose request left after the move: its
// own, or a newer one when the server dropped its own for a newer move.
function changed(t = performance.now()) {
  clearTimeout(S.hifiTimer);
  if (t != null) { S.unsent.push(t); nd.pendingMoves++; }
  if (t != null && !restoring) { history.changed(performance.now(), snap()); showHistory(); }
  if (S.sent) return;
  S.sent = true;
  requestAnimationFrame(() => { S.sent = false; renderNow(); });
}

function answerMoves(seq, now) { // the sound of request `seq` is out: every move carried by it or before it waited till now
  let n = 0;
  while (n < S.waiting.length && S.waiting[n][0] <= seq) nd.latencies.push(now - S.waiting[n++][1]);
  S.waiting.splice(0, n); nd.pendingMoves -= n;
  return n;
}

async function renderNow() {
  const v = voice(), seq = ++S.seq;
  for (const t of S.unsent) S.waiting.push([seq, t]);
  S.unsent = []; clearTimeout(S.hifiTimer);
  S.inFlight = (S.inFlight || 0) + 1;
  let r;
  try { r = await live.render("pad", v); } catch (e) {
    message(e.message);
    const lost = S.waiting.findIndex((w) => w[0] > seq); // moves only this request carried get no sound: not counted
    nd.pendingMoves -= lost < 0 ? S.waiting.length : lost; S.waiting.splice(0, lost < 0 ? S.waiting.length : lost);
    return;
  } finally { S.inFlight--; }
  try {
    if (!r) { nd.superseded++; return; }
    const buffer = makeBuffer(r.samples, r.header.sample_rate);
    nd.received++; nd.lengths.push(r.samples.length);
    S.current = { buffer, samples: r.samples, voice: v, map: r.header.map, sr: r.header.sample_rate };
    if ($("autoplay").checked) playCurrent();
    if (answerMoves(seq, performance.now())) { nd.serverMs.push(r.header.render_ms); showLatency(); }
    drawLater(); showQuality("live");
    clearTimeout(S.hifiTimer); // (not while a newer move's sound is still coming or about to be asked for)
    if (info.hifi && !S.inFlight && !S.sent) S.hifiTimer = setTimeout(renderHifi, HIFI_AFTER_MS);
  } catch (e) { message(e.message); }
}

// The pad is still: the same voice again in hi-fi (Griffin-Lim iterations after the inverter), replacing the
// current sound for what is played, downloaded or put in the kit next. A move in between supersedes it.
async function renderHifi() {
  const v = S.current?.voice;
  if (!v) return;
  try {
    const r = await live.render("pad", v, "hifi");
    if (!r || r.header.quality !== "hifi" || S.current?.voice !== v || S.inFlight) return;
    S.current = { ...S.current, buffer: makeBuffer(r.samples, r.header.sample_rate), samples: r.samples };
    nd.hifi++;
    drawLater(); showQuality("hifi");
  } catch (e) { /* the live sound stays */ }
}

function showQuality(q) {
  const el = $("quality");
  el.textContent = q === "hifi" ? "hi-fi" : "live";
  el.title = q === "hifi" ? "rendered again in hi-fi when the pad stood still (Griffin-Lim iterations after the inverter)"
    : "the playing path: rendered at once for every move" + (info.hifi ? "; hi-fi follows when the pad is still" : "");
}

function playCurrent() {
  if (!S.current) return;
  const src = mono.play(S.current.buffer);
  nd.played++;
  src.addEventListener("ended", () => { nd.ended++; });
}

function showLatency() {
  const l = nd.latencies.slice(-200).sort((a, b) => a - b);
  const q = (p) => l[Math.min(l.length - 1, Math.floor(p * l.length))];
  $("latency").textContent = `move → sound: p50 ${q(0.5).toFixed(0)} ms · p95 ${q(0.95).toFixed(0)} ms (last ${l.length} moves)`;
}

// The views follow the sound at most once a frame, and drawing (a spectrogram costs ~10–30 ms) takes at most a
// quarter of the page's time: during a drag the sounds keep coming and the pad keeps answering.
const drawing = { pending: false, cost: 0, end: 0 };
function drawLater() {
  if (drawing.pending) return;
  drawing.pending = true;
  setTimeout(() => requestAnimationFrame(() => {
    const t = performance.now();
    drawing.pending = false; drawSound(); redrawMap();
    drawing.end = performance.now(); drawing.cost = drawing.end - t;
  }), Math.max(0, drawing.end + 3 * drawing.cost - performance.now()));
}

function drawSound() {
  if (!S.current) return;
  drawWave($("wave"), S.current.samples);
  drawSpectrogram($("spec"), S.current.samples, S.current.sr);
}

// ------------------------------------------------------------------ the XY pad
function setXY(x, y, t) {
  S.x = Math.round(Math.max(-1, Math.min(1, x)) * 100) / 100;
  S.y = Math.round(Math.max(-1, Math.min(1, y)) * 100) / 100;
  syncUI(); changed(t);
}

function wirePad() {
  const pad = $("pad");
  const at = (e) => { const r = pad.getBoundingClientRect(); setXY(2 * (e.clientX - r.left) / r.width - 1, 1 - 2 * (e.clientY - r.top) / r.height, e.timeStamp); };
  pad.addEventListener("pointerdown", (e) => { audio(); pad.setPointerCapture(e.pointerId); pad.focus(); at(e); });
  pad.addEventListener("pointermove", (e) => { if (pad.hasPointerCapture(e.pointerId)) at(e); });
  pad.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 0.2 : 0.05;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[e.key];
    if (d) { e.preventDefault(); audio(); setXY(S.x + d[0], S.y + d[1]); }
    if (e.key === "Home") { e.preventDefault(); setXY(0, 0); }
  });
}

// ------------------------------------------------------------------ your own sound
async function encodeFile(file) {
  if (file.size > info.limits.upload_bytes) throw new Error(`${file.name}: larger than ${info.limits.upload_bytes / 2 ** 20} MiB`);
  return api(`/api/encode?name=${encodeURIComponent(file.name)}`, file, true);
}

async function useOwnSound(file) {
  $("upload-result").textContent = `analysing ${file.name}…`;
  try {
    const r = await encodeFile(file);
    $("upload-result").textContent = `${r.name}: ${r.class} (${(100 * (r.probabilities[r.class] ?? 1)).toFixed(0)} %), ${r.seconds} s`;
    showProbs(r.probabilities, r.class);
    mapPoints.push({ x: r.map[0], y: r.map[1], class: r.class, label: `your sound: ${r.name}`, z: r.z, mine: true });
    loadVoice({ class: r.class, z: r.z }, `your sound: ${r.name}`);
    try {
      const buf = await audio().decodeAudioData(await file.arrayBuffer());
      $("original").hidden = false; $("original").onclick = () => mono.play(buf);
    } catch (e) { $("original").hidden = true; }
  } catch (e) { $("upload-result").textContent = ""; message(e.message); }
}

function showProbs(probs, top) {
  const rows = Object.entries(probs).sort((a, b) => b[1] - a[1]).slice(0, 5);
  $("probs").replaceChildren(...rows.flatMap(([c, p]) => {
    const name = document.createElement("span"); name.textContent = c; if (c === top) name.className = "top";
    const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = `${Math.max(1, 100 * p)}%`;
    const val = document.createElement("span"); val.textContent = `${(100 * p).toFixed(1)} %`;
    return [name, bar, val];
  }));
}

const AUDIO_NAME = /\.(wav|wave|flac|ogg|oga|aif|aiff|aifc)$/i;

async function filesIn(entry, out, limit) { // a dropped folder's audio files, depth first, at most `limit`
  if (out.length >= limit) return;
  if (entry.isFile) {
    if (AUDIO_NAME.test(entry.name)) out.push(await new Promise((ok, no) => entry.file(ok, no)));
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
    if (!batch.length) return;
    for (const e of batch) await filesIn(e, out, limit);
  }
}

function dropZone(el, onFiles, limit = 1) {
  el.addEventListener("dragover", (e) => { e.preventDefault(); el.classList.add("over"); });
  el.addEventListener("dragleave", () => el.classList.remove("over"));
  el.addEventListener("drop", async (e) => {
    e.preventDefault(); el.classList.remove("over");
    const entries = [...e.dataTransfer.items].map((it) => it.webkitGetAsEntry && it.webkitGetAsEntry()).filter(Boolean);
    if (!entries.some((en) => en.isDirectory)) { onFiles([...e.dataTransfer.files].slice(0, limit)); return; }
    const files = [];
    for (const en of entries) await filesIn(en, files, limit);
    onFiles(files);
  });
}

// ------------------------------------------------------------------ the latent map
async function loadMap() {
  $("map-about").textContent = info.map_source === "corpus" ? "encoding the corpus for the map…" : "";
  try {
    const m = await api("/api/map");
    mapPoints = m.points.concat(mapPoints.filter((p) => p.mine));
    mapView = new MapView(m.bounds);
    $("map-about").textContent = m.about;
    redrawMap();
  } catch (e) { message(`map: ${e.message}`); }
}

// the map shows one class or all; the kit's slots are marked where their sounds lie
const shown = () => mapPoints.flatMap((p, i) => (mapClass === "all" || p.class === mapClass ? [i] : []));
const mapSlots = () => (kit ? kit.slots.filter((s) => s.map).map((s) => ({ x: s.map[0], y: s.map[1], name: s.name })) : []);

function redrawMap() {
  if (!mapView) return;
  const vis = shown(), colour = mapClass === "all" ? null : COLOURS[info.classes.indexOf(mapClass) % COLOURS.length];
  drawMap($("map"), mapView, vis.map((i) => mapPoints[i]), info.classes, S.current && S.current.map,
    vis.indexOf(mapHover >= 0 ? mapHover : mapSel), mapSlots(), colour);
}

function canvasXY(e) {
  const c = $("map"), r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
  return [(e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr, c.width, c.height];
}

function nearest(e) {
  const [mx, my, w, h] = canvasXY(e), dpr = window.devicePixelRatio || 1;
  let best = -1, bd = (10 * dpr) ** 2;
  for (const i of shown()) {
    const q = mapView.toPixel(mapPoints[i].x, mapPoints[i].y, w, h);
    if (!q) continue;
    const d = (q[0] - mx) ** 2 + (q[1] - my) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}

async function hearPoint(i) {
  const p = mapPoints[i];
  $("map-tip").textContent = `${p.label} — click to load`;
  try {
    const r = await live.render("map", { class: p.class, z: p.z });
    if (r && (mapHover === i || mapSel === i)) mapMono.play(makeBuffer(r.samples, r.header.sample_rate));
  } catch (e) { message(e.message); }
}

function wireMap() {
  const c = $("map");
  let grab = null; // a drag on the map pans it (a click without one loads a point)
  c.addEventListener("pointerdown", (e) => { if (mapView) { grab = { x: e.clientX, y: e.clientY, moved: false }; c.setPointerCapture(e.pointerId); } });
  c.addEventListener("pointerup", () => { setTimeout(() => { grab = null; }, 0); });
  c.addEventListener("wheel", (e) => { // zoom around the pointer
    if (!mapView) return;
    e.preventDefault();
    const [x, y, w, h] = canvasXY(e);
    mapView.zoomAt(Math.exp(-e.deltaY / 300), x, y, w, h); redrawMap();
  }, { passive: false });
  c.addEventListener("pointermove", (e) => {
    if (!mapView) return;
    if (grab && (grab.moved || Math.hypot(e.clientX - grab.x, e.clientY - grab.y) > 4)) {
      const dpr = window.devicePixelRatio || 1;
      mapView.pan((e.clientX - grab.x) * dpr, (e.clientY - grab.y) * dpr, c.width, c.height);
      grab = { x: e.clientX, y: e.clientY, moved: true }; redrawMap();
      return;
    }
    const i = nearest(e);
    if (i !== mapHover) { mapHover = i; redrawMap(); if (i >= 0) { audio(); hearPoint(i); } else $("map-tip").innerHTML = "&nbsp;"; }
  });
  c.addEventListener("pointerleave", () => { mapHover = -1; redrawMap(); });
  c.addEventListener("click", (e) => { if (grab && grab.moved) return; const i = nearest(e); if (i >= 0) loadPoint(i); });
  c.addEventListener("keydown", (e) => { // ← → walk the points shown (each plays), Enter loads it, + − zoom, 0 resets
    const vis = shown();
    if (!vis.length || !mapView) return;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault(); audio();
      const at = vis.indexOf(mapSel), n = vis.length;
      mapSel = vis[at < 0 ? (e.key === "ArrowRight" ? 0 : n - 1) : (at + (e.key === "ArrowRight" ? 1 : -1) + n) % n];
      redrawMap(); hearPoint(mapSel);
    } else if (e.key === "Enter" && mapSel >= 0) { e.preventDefault(); loadPoint(mapSel); }
    else if (e.key === "+" || e.key === "=" || e.key === "-") {
      e.preventDefault(); mapView.zoomAt(e.key === "-" ? 1 / 1.5 : 1.5, c.width / 2, c.height / 2, c.width, c.height); redrawMap();
    } else if (e.key === "0") { e.preventDefault(); mapView.reset(); redrawMap(); }
  });
  $("map-class").replaceChildren(new Option("all classes", "all"), ...info.classes.map((cls) => new Option(cls, cls)));
  $("map-class").addEventListener("change", (e) => { mapClass = e.target.value; mapHover = mapSel = -1; redrawMap(); });
  $("map-reset").addEventListener("click", () => { if (mapView) { mapView.reset(); redrawMap(); } });
  dropZone(c, async (files) => { // sounds or folders of sounds: each becomes a dot of its predicted class
    $("map-tip").textContent = `adding ${files.length} sound${files.length === 1 ? "" : "s"}…`;
    for (const f of files) {
      try {
        const r = await encodeFile(f);
        mapPoints.push({ x: r.map[0], y: r.map[1], class: r.class, label: `your sound: ${r.name}`, z: r.z, mine: true });
        redrawMap();
      } catch (e) { message(e.message); }
    }
    $("map-tip").textContent = `added ${files.length}: hover to hear, click to load`;
  }, 64);
  $("legend").replaceChildren(...info.classes.map((cls, k) => {
    const s = document.createElement("span"); s.textContent = cls; s.style.setProperty("--c", COLOURS[k % COLOURS.length]);
    return s;
  }));
}

function loadPoint(i) { const p = mapPoints[i]; loadVoice({ class: p.class, z: p.z }, p.label); }

// ------------------------------------------------------------------ MIDI learn: a controller's knob → a control
// Choose a target, press "learn", move a knob: that controller (CC number) moves the target from then on. Bindings
// are saved in this browser. x, y and fine: value 64 is the centre, 0 and 127 the ends (as `neuraldrum midi`);
// variation and a slot's level: 0 → 0, 127 → 1.5.
const LEARN_KEY = "neuraldrum.midi-learn";
let learning = null, bindings = {};
try { bindings = JSON.parse(localStorage.getItem(LEARN_KEY) || "{}") || {}; } catch (e) { bindings = {}; }
nd.learned = () => ({ ...bindings });

function learnTargets() {
  const t = [["x", "pad x"], ["y", "pad y"], ["fine", "fine (P3)"], ["amount", "variation"]];
  return t.concat(kit.slots.map((s) => [`level:${s.name}`, `level: ${s.name}`]));
}

function showLearn() {
  const sel = $("learn-target"), keep = sel.value;
  sel.replaceChildren(...learnTargets().map(([v, l]) => new Option(l, v)));
  if (keep) sel.value = keep;
  const bound = Object.entries(bindings).map(([cc, t]) => `CC ${cc} → ${t}`).join(", ");
  $("learn-out").textContent = learning ? `move a knob for ${learning}…` : bound || "no knob bound";
}

function onCC(cc, value) {
  if (learning) {
    for (const k of Object.keys(bindings)) if (bindings[k] === learning) delete bindings[k];
    bindings[cc] = learning; learning = null;
    try { localStorage.setItem(LEARN_KEY, JSON.stringify(bindings)); } catch (e) { /* storage off */ }
    $("learn").setAttribute("aria-pressed", "false"); showLearn();
    return true;
  }
  const t = bindings[cc];
  if (!t) return false;
  const centred = Math.min(1, Math.max(-1, (value - 64) / 63)), up = (1.5 * value) / 127;
  if (t.startsWith("level:")) {
    const k = kit.slots.findIndex((s) => s.name === t.slice(6));
    if (k < 0) return false;
    kit.setLevel(k, Math.round(up * 100) / 100);
    return true;
  }
  if (t === "amount") S.amount = Math.round(up * 100) / 100;
  else S[t] = Math.round(centred * 100) / 100;
  syncUI(); changed();
  return true;
}

// ------------------------------------------------------------------ controls
function wireControls() {
  $("cls").replaceChildren(...info.classes.map((c) => new Option(c, c)));
  $("cls").addEventListener("change", (e) => { S.cls = e.target.value; S.start = { kind: "centre", label: "class centre" }; syncUI(); changed(); });
  const slider = (id, f) => $(id).addEventListener("input", (e) => { audio(); f(Number(e.target.value)); syncUI(); changed(); });
  slider("x", (v) => { S.x = v; }); slider("y", (v) => { S.y = v; }); slider("fine", (v) => { S.fine = v; });
  slider("amount", (v) => { S.amount = v; }); slider("tune", (v) => { S.tune = v; });
  slider("decay", (v) => { S.decay = v; }); slider("velocity", (v) => { S.velocity = v; });
  document.querySelectorAll("input[name=range]").forEach((r) => r.addEventListener("change", () => { S.range = Number(r.value); changed(); }));
  $("axes").addEventListener("change", (e) => { S.axes = e.target.value; syncUI(); changed(); });
  for (const id of ["dim-i", "dim-j"]) {
    $(id).max = info.latent_dim - 1;
    $(id).addEventListener("change", () => { syncUI(); changed(); });
  }
  $("random").addEventListener("click", () => {
    const seed = rand31();
    S.start = { kind: "seed", seed, label: `prior draw #${seed}` }; S.x = S.y = S.fine = 0; syncUI(); changed();
  });
  $("centre").addEventListener("click", () => { S.start = { kind: "centre", label: "class centre" }; S.x = S.y = S.fine = 0; syncUI(); changed(); });
  $("direction").addEventListener("click", () => { S.vseed = rand31(); if (!S.amount) S.amount = 0.4; syncUI(); changed(); });
  $("play").addEventListener("click", () => { audio(); playCurrent(); });
  // drag the sound out of the page: Chromium saves it as a WAV file where it is dropped (desktop, a DAW's track)
  $("drag-out").addEventListener("dragstart", (e) => {
    if (!S.current) { e.preventDefault(); return; }
    const name = `${S.cls}.wav`, url = URL.createObjectURL(wavBlob(S.current.samples, S.current.sr));
    e.dataTransfer.effectAllowed = "copy";
    e.dataTransfer.setData("DownloadURL", `audio/wav:${name}:${url}`);
    e.dataTransfer.setData("text/uri-list", url);
    nd.dragOut = { name, url };
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });
  $("download").addEventListener("click", async () => {
    try { saveBlob(await api("/api/generate", { voice: voice(), name: S.cls, quality: "hifi" }), `${S.cls}.wav`); } catch (e) { message(e.message); }
  });
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) useOwnSound(e.target.files[0]); e.target.value = ""; });
  dropZone($("drop"), (files) => { if (files[0]) useOwnSound(files[0]); });
  $("undo").addEventListener("click", () => restore(history.undo()));
  $("redo").addEventListener("click", () => restore(history.redo()));
  $("keep").addEventListener("click", keep);
  $("ab").addEventListener("click", abCompare);
  document.addEventListener("keydown", (e) => { // ctrl/cmd+Z undoes a sound change, with shift (or ctrl+Y) redoes it
    const t = e.target;
    if (!(e.ctrlKey || e.metaKey) || e.altKey || (t.tagName === "INPUT" && t.type === "text")) return;
    if (e.key.toLowerCase() === "z") { e.preventDefault(); restore(e.shiftKey ? history.redo() : history.undo()); }
    else if (e.key.toLowerCase() === "y") { e.preventDefault(); restore(history.redo()); }
  });
  document.addEventListener("keydown", (e) => {
    const t = e.target, typing = t.tagName === "SELECT" || t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "checkbox" && t.type !== "radio");
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (kit.onKey(e)) { e.preventDefault(); return; }
    if (e.code === "Space" && !["BUTTON", "INPUT"].includes(t.tagName)) { e.preventDefault(); audio(); playCurrent(); }
  });
}

function wireKit() {
  kit = new KitView(live, info, message);
  kit.onRendered = drawLater; // the map marks the slots
  window.ndKit = kit;
  $("kit-new").addEventListener("click", async () => { try { await kit.load(await api("/api/kit/new", { seed: rand31() })); } catch (e) { message(e.message); } });
  $("to-slot").addEventListener("click", () => {
    const k = kit.selected, v = voice(), role = kit.role(k), name = kit.slots[k].name;
    kit.setVoice(k, v);
    $("kit-status").textContent = role !== v.class
      ? `slot ${name} keeps playing as ${role} (its key, its choke group), now with a ${v.class} sound` : `slot ${name}: new sound`;
  });
  $("from-slot").addEventListener("click", () => { const s = kit.slots[kit.selected]; if (s) loadVoice(s.voice, `slot ${s.name}`); });
  $("kit-zip").addEventListener("click", async () => {
    try { saveBlob(await api("/api/kit/zip", kit.toDict()), `${kit.meta.name}.zip`); } catch (e) { message(e.message); }
  });
  $("kit-json").addEventListener("click", () => saveBlob(new Blob([JSON.stringify(kit.toDict(), null, 1)], { type: "application/json" }), "kit.json"));
  $("kit-file").addEventListener("change", async (e) => {
    const f = e.target.files[0]; e.target.value = "";
    if (!f) return;
    try {
      let d;
      try { d = JSON.parse(await f.text()); } catch (err) { throw new Error(`${f.name}: not valid JSON`); }
      const k = await api("/api/kit/check", d);
      if (!k.same_model) message(`${f.name} was made with another model: its sounds will differ here`);
      await kit.load(k, d.mixer, d.patterns);
    } catch (err) { message(err.message); }
  });
  $("midi").addEventListener("click", () => kit.enableMidi((t) => { $("midi-status").textContent = t; }));
  kit.onCC = onCC;
  $("learn").addEventListener("click", (e) => {
    learning = learning ? null : $("learn-target").value;
    e.target.setAttribute("aria-pressed", String(!!learning)); showLearn();
    if (learning && !kit.midiOn) kit.enableMidi((t) => { $("midi-status").textContent = t; });
  });
  $("learn-target").addEventListener("focus", showLearn);
  $("seq-play").addEventListener("click", (e) => {
    audio();
    if (kit.playing) kit.stop(); else kit.start();
    e.target.setAttribute("aria-pressed", String(kit.playing));
    e.target.textContent = kit.playing ? "stop beat" : "play beat";
  });
  $("seq-clear").addEventListener("click", () => kit.clear());
  for (const [fmt, path] of [["wav", "/api/beat/wav"], ["mid", "/api/beat/mid"]]) $(`beat-${fmt}`).addEventListener("click", async () => {
    try { saveBlob(await api(path, kit.toDict()), `${kit.meta.name}-beat.${fmt}`); } catch (e) { message(e.message); }
  });
  $("steps").addEventListener("change", (e) => kit.setSteps(Number(e.target.value)));
  $("chain").addEventListener("change", (e) => {
    try { kit.setChain(e.target.value); } catch (err) { message(err.message); e.target.value = kit.beat.chain.join(" "); }
  });
  $("swing").addEventListener("input", (e) => { $("swing-out").value = `${e.target.value} %`; });
}

async function main() {
  info = await api("/api/info");
  live = new Live((text, ok, isErr) => { if (isErr) message(text); else $("status").textContent = `${text} · model ${info.model.name} · ${info.sample_rate} Hz`; });
  S.cls = info.classes.includes("snare") ? "snare" : info.classes[0];
  wireControls(); wirePad(); wireKit(); wireMap(); syncUI();
  window.addEventListener("resize", () => { drawSound(); redrawMap(); });
  history.start(snap()); showHistory();
  favourites = loadFavourites(); showFavourites();
  changed(null);
  loadMap();
  try { await kit.load(await api("/api/kit/new", { seed: rand31() })); } catch (e) { message(e.message); }
  showLearn();
  nd.ready = true;
}

main().catch((e) => message(`could not start: ${e.message}`));
