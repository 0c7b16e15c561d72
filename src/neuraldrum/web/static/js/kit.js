// The kit: slots (a voice each, rendered ahead so a hit never waits), pads played by mouse, keyboard and Web
// MIDI, and a 16-step sequencer with tempo and swing.

import { audio, makeBuffer, play, velocityGain, withContext } from "./audio.js";

// Patterns: A–D, 16 or 32 steps, one MIDI velocity per step (0 off, HIT, ACCENT), played in the chain's order;
// saved in kit.json as {"patterns": {"version": 1, "tempo", "swing", "steps", "chain", "patterns": {A: {slot:
// [velocities]}}}} (neuraldrum.beat checks the same format).
const PATTERNS_VERSION = 1, NAMES = ["A", "B", "C", "D"], HIT = 100, ACCENT = 127;

const KEYS = ["Digit1", "Digit2", "Digit3", "Digit4", "Digit5", "Digit6", "Digit7", "Digit8", "Digit9", "Digit0", "Minus"];
const KEY_LABELS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-"];
const BEAT = { kick: [0, 7, 8], snare: [4, 12], clap: [12], hh_closed: [0, 2, 4, 6, 8, 10, 12, 14], hh_open: [14] };
// The mixer: per slot level (linear gain 0–1.5), pan (-1…1), mute, solo and choke group (0: none, 1–4: a hit
// cuts every ringing sound of its group over 3 ms). The hats share group 1 by default. Saved in kit.json as
// {"mixer": {"version": 1, "slots": {name: {...}}}}; a kit without it gets the defaults.
const MIXER_VERSION = 1, CHOKE_GROUPS = 4;
const defaultMix = (role) => ({ level: 1, pan: 0, mute: false, solo: false, choke: role === "hh_open" || role === "hh_closed" ? 1 : 0 });

// The patterns section of a kit.json → the page's beat, checked: a bad field is an Error naming it.
export function readPatterns(p, slotNames, where = "kit.json: patterns") {
  if (typeof p !== "object" || p === null || p.version !== PATTERNS_VERSION)
    throw new Error(`${where}: version ${JSON.stringify(p?.version)} is not supported (this page reads ${PATTERNS_VERSION})`);
  const num = (v, lo, hi, w) => { if (typeof v !== "number" || !(v >= lo && v <= hi)) throw new Error(`${where}.${w}: ${JSON.stringify(v)} must be ${lo}–${hi}`); return v; };
  num(p.tempo, 40, 240, "tempo"); num(p.swing, 0, 100, "swing");
  if (p.steps !== 16 && p.steps !== 32) throw new Error(`${where}.steps: ${JSON.stringify(p.steps)} must be 16 or 32`);
  if (typeof p.patterns !== "object" || p.patterns === null) throw new Error(`${where}.patterns: must be an object`);
  const patterns = {};
  for (const [n, rows] of Object.entries(p.patterns)) {
    if (!NAMES.includes(n)) throw new Error(`${where}.patterns.${n}: a pattern is named A, B, C, D`);
    for (const s of Object.keys(rows || {})) if (!slotNames.includes(s)) throw new Error(`${where}.patterns.${n}.${s}: the kit has no slot of that name`);
    patterns[n] = slotNames.map((s) => {
      const row = (rows || {})[s] ?? new Array(p.steps).fill(0);
      if (!Array.isArray(row) || row.length !== p.steps) throw new Error(`${where}.patterns.${n}.${s}: must be a list of ${p.steps} velocities`);
      row.forEach((v, i) => { if (!Number.isInteger(v) || v < 0 || v > 127) throw new Error(`${where}.patterns.${n}.${s}[${i}]: ${JSON.stringify(v)} must be 0–127`); });
      return [...row];
    });
  }
  if (!Array.isArray(p.chain) || !p.chain.length || p.chain.some((c) => !(c in patterns)))
    throw new Error(`${where}.chain: must list 1 to 16 of the patterns`);
  return { tempo: p.tempo, swing: p.swing, steps: p.steps, chain: [...p.chain], edit: p.chain[0], patterns };
}

// One slot's mixer settings from kit.json, checked: a bad one is an Error naming the field.
export function readMix(d, where, role) {
  const m = defaultMix(role);
  if (d === undefined) return m;
  if (typeof d !== "object" || d === null || Array.isArray(d)) throw new Error(`${where}: not an object`);
  for (const [k, v] of Object.entries(d)) {
    const bad = () => new Error(`${where}.${k}: ${JSON.stringify(v)} is not allowed`);
    if (k === "level") { if (typeof v !== "number" || !(v >= 0 && v <= 1.5)) throw bad(); m.level = v; }
    else if (k === "pan") { if (typeof v !== "number" || !(v >= -1 && v <= 1)) throw bad(); m.pan = v; }
    else if (k === "mute" || k === "solo") { if (typeof v !== "boolean") throw bad(); m[k] = v; }
    else if (k === "choke") { if (!Number.isInteger(v) || v < 0 || v > CHOKE_GROUPS) throw bad(); m.choke = v; }
    else throw new Error(`${where}: unknown field ${JSON.stringify(k)}`);
  }
  return m;
}

export class KitView {
  constructor(live, info, onError) {
    this.live = live; this.info = info; this.onError = onError;
    this.meta = {}; this.slots = []; this.mix = []; this.selected = 0;
    this.beat = { steps: 16, chain: ["A"], edit: "A", patterns: {} }; // patterns: name → rows (slot index) of velocities
    this.chainPos = 0;
    this.pads = document.getElementById("pads"); this.grid = document.getElementById("seq");
    this.tempo = document.getElementById("tempo"); this.swing = document.getElementById("swing");
    this.timer = null; this.step = 0; this.focus = [0, 0];
    this.stats = { hits: 0, rendered: 0, hifi: 0, choked: 0 };
    this.ringing = new Map(); // choke group → sources that may still ring
  }

  // A slot's role: the class it is named after (a closed-hat sound in the "snare" slot plays as the snare, on the
  // snare's key, in no choke group), else its sound's class. The SFZ export and the MIDI renderer use the same rule.
  role(k) { const s = this.slots[k]; return this.info.classes.includes(s.name) ? s.name : s.voice.class; }
  // (readMix's defaults use the same rule before the slots are in place)

  get pattern() { return this.beat.patterns[this.beat.edit]; } // the rows being edited

  // kit: the server's canonical kit; mixer, patterns: those sections of the kit.json it came from (if any)
  load(kit, mixer, patterns) {
    if (mixer !== undefined && (typeof mixer !== "object" || mixer === null || mixer.version !== MIXER_VERSION))
      throw new Error(`kit.json: mixer: version ${JSON.stringify(mixer?.version)} is not supported (this page reads ${MIXER_VERSION})`);
    const ms = mixer?.slots || {}, role = (s) => this.info.classes.includes(s.name) ? s.name : s.voice.class;
    for (const n of Object.keys(ms)) if (!kit.slots.some((s) => s.name === n)) throw new Error(`kit.json: mixer.slots.${n}: the kit has no slot of that name`);
    const mix = kit.slots.map((s) => readMix(ms[s.name], `kit.json: mixer.slots.${s.name}`, role(s))); // before any change
    this.meta = { name: kit.name || "kit", sample_rate: kit.sample_rate, model: kit.model || {}, info: kit.info || {} };
    const beat = patterns === undefined ? null : readPatterns(patterns, kit.slots.map((s) => s.name));
    const oldRows = this.slots.length === kit.slots.length ? this.beat.patterns : null;
    this.slots = kit.slots.map((s) => ({ name: s.name, note: s.note ?? null, voice: s.voice, buffer: null }));
    this.mix = mix; this.ringing = new Map();
    if (beat) {
      this.beat = beat; this.tempo.value = beat.tempo; this.swing.value = beat.swing;
      this.swing.dispatchEvent(new Event("input"));
    } else if (oldRows && Object.keys(oldRows).length) this.beat.patterns = oldRows; // a new kit keeps the beat
    else this.beat = { steps: 16, chain: ["A"], edit: "A", patterns: { A: this.slots.map((s, k) =>
      Array.from({ length: 16 }, (_, i) => ((BEAT[this.role(k)] || []).includes(i) ? HIT : 0))) } };
    this.chainPos = 0; this.step = 0;
    this.buildPatternControls();
    this.selected = Math.min(this.selected, this.slots.length - 1);
    this.buildPads(); this.buildGrid();
    return Promise.all(this.slots.map((_, k) => this.renderSlot(k)));
  }

  toDict() {
    return { format: "neuraldrum-kit", version: 1, ...this.meta,
      slots: this.slots.map((s) => ({ name: s.name, ...(s.note == null ? {} : { note: s.note }), voice: s.voice })),
      mixer: { version: MIXER_VERSION, slots: Object.fromEntries(this.slots.map((s, k) => [s.name, { ...this.mix[k] }])) },
      patterns: { version: PATTERNS_VERSION, tempo: this.bpm, swing: Number(this.swing.value), steps: this.beat.steps,
        chain: [...this.beat.chain], patterns: Object.fromEntries(Object.entries(this.beat.patterns).map(([n, rows]) =>
          [n, Object.fromEntries(this.slots.map((s, k) => [s.name, [...rows[k]]]))])) } };
  }

  setLevel(k, v) { // from a learned controller: the mixer's level and its slider
    this.mix[k].level = v;
    const r = this.grid.querySelectorAll("input.level")[k];
    if (r) r.value = v;
  }

  audible(k) { const m = this.mix[k]; return !m.mute && (m.solo || !this.mix.some((x) => x.solo)); }

  async renderSlot(k) {
    const s = this.slots[k], el = this.pads.children[k];
    el?.classList.add("loading");
    try {
      const r = await this.live.render(`slot${k}`, s.voice, "hifi"); // slots are rendered ahead: in hi-fi
      if (r) { s.buffer = makeBuffer(r.samples, r.header.sample_rate); s.length = r.samples.length; this.stats.rendered++;
        s.map = r.header.map; this.onRendered?.();
        if (r.header.quality === "hifi") this.stats.hifi++; }
    } catch (e) { this.onError(`slot ${s.name}: ${e.message}`); }
    el?.classList.remove("loading");
  }

  setVoice(k, voice) { this.slots[k].voice = voice; this.slots[k].map = null; this.updatePad(k); return this.renderSlot(k); }

  hit(k, gain = 1, when = 0) {
    const s = this.slots[k], m = this.mix[k];
    if (!s || !s.buffer || !this.audible(k)) return false;
    const t = when || audio().currentTime, g = m.choke;
    if (g) { // a hit cuts every ringing sound of its choke group
      for (const src of this.ringing.get(g) || []) { src.choke(t); this.stats.choked++; }
      this.ringing.set(g, []);
    }
    const src = play(s.buffer, gain * m.level, t, m.pan);
    if (g) {
      this.ringing.set(g, [...(this.ringing.get(g) || []), src]);
      src.addEventListener("ended", () => this.ringing.set(g, (this.ringing.get(g) || []).filter((x) => x !== src)));
    }
    if (audio() instanceof OfflineAudioContext) return true; // a bounce: no pad lights up
    this.last = src;
    this.stats.hits++;
    const el = this.pads.children[k], delay = when ? Math.max(0, (when - audio().currentTime) * 1000) : 0;
    setTimeout(() => { el.classList.add("hit"); setTimeout(() => el.classList.remove("hit"), 90); }, delay);
    return true;
  }

  select(k) {
    this.selected = k;
    [...this.pads.children].forEach((el, i) => {
      el.classList.toggle("selected", i === k);
      if (i === k) el.setAttribute("aria-current", "true"); else el.removeAttribute("aria-current");
    });
  }

  // ------------------------------------------------------------------ pads
  buildPads() {
    this.pads.replaceChildren(...this.slots.map((s, k) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "pad";
      b.addEventListener("click", () => { audio(); this.hit(k); this.select(k); });
      return b;
    }));
    this.slots.forEach((_, k) => this.updatePad(k));
    this.select(this.selected);
  }

  updatePad(k) {
    const s = this.slots[k], b = this.pads.children[k];
    const key = KEY_LABELS[k], cls = s.voice.class, role = this.role(k);
    b.innerHTML = "";
    const nm = document.createElement("span"); nm.className = "nm"; nm.textContent = s.name;
    const meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = [cls !== s.name ? (role === s.name ? `${cls} sound` : cls) : "", s.note != null ? `note ${s.note}` : "",
      key ? `key ${key}` : ""].filter(Boolean).join(" · ");
    b.title = role !== cls ? `plays as ${role} (its key, its choke group) with a ${cls} sound` : "";
    b.append(nm, meta);
    b.setAttribute("aria-label", `${s.name} (${cls})${key ? `, key ${key}` : ""}${s.note != null ? `, MIDI note ${s.note}` : ""}`);
  }

  onKey(e) {
    const k = KEYS.indexOf(e.code);
    if (k < 0 || k >= this.slots.length || e.repeat) return false;
    audio(); this.hit(k);
    return true;
  }

  // ------------------------------------------------------------------ Web MIDI: note-on plays the slot with that note
  async enableMidi(status) {
    if (!navigator.requestMIDIAccess) { status("Web MIDI is not available in this browser"); return; }
    this.midiOn = true;
    try {
      const m = await navigator.requestMIDIAccess();
      const bind = () => {
        for (const input of m.inputs.values()) input.onmidimessage = (ev) => this.onMidi(ev.data);
        status(`MIDI: ${m.inputs.size} input${m.inputs.size === 1 ? "" : "s"}`);
      };
      bind(); m.onstatechange = bind;
    } catch (e) { status(`MIDI refused: ${e.message}`); }
  }

  onMidi(data) {
    const [st, note, vel] = data;
    if ((st & 0xf0) === 0xb0) return this.onCC ? this.onCC(note, vel) : false; // a controller: MIDI learn (main.js)
    if ((st & 0xf0) !== 0x90 || !vel) return false;
    const k = this.slots.findIndex((s) => s.note === note);
    return k >= 0 && this.hit(k, velocityGain(vel));
  }

  // ------------------------------------------------------------------ sequencer
  buildGrid() {
    const cells = [];
    this.slots.forEach((s, k) => {
      const lab = document.createElement("span"); lab.className = "lab"; lab.textContent = s.name;
      cells.push(lab, ...this.mixerCells(k, "pre"));
      for (let i = 0; i < this.beat.steps; i++) {
        const b = document.createElement("button");
        b.type = "button"; b.className = i % 4 === 0 ? "beat" : "";
        b.dataset.k = k; b.dataset.i = i; b.tabIndex = k === this.focus[0] && i === this.focus[1] ? 0 : -1;
        b.setAttribute("aria-label", `${s.name} step ${i + 1}`);
        this.showCell(b, this.pattern[k][i]);
        b.addEventListener("click", () => this.toggle(k, i));
        b.addEventListener("keydown", (e) => this.gridKey(e, k, i));
        cells.push(b);
      }
      cells.push(...this.mixerCells(k, "post"));
    });
    this.grid.replaceChildren(...cells);
  }

  // A row's mixer: mute and solo before the steps ("pre"), level, pan and choke group after them ("post").
  mixerCells(k, where) {
    const s = this.slots[k], m = this.mix[k];
    const toggle = (key, text, title) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = `mx ${key}`; b.textContent = text; b.title = title;
      b.setAttribute("aria-label", `${title}: ${s.name}`); b.setAttribute("aria-pressed", String(m[key]));
      b.addEventListener("click", () => { m[key] = !m[key]; b.setAttribute("aria-pressed", String(m[key])); });
      return b;
    };
    if (where === "pre") return [toggle("mute", "M", "mute"), toggle("solo", "S", "solo")];
    const range = (key, min, max, step, title) => {
      const r = document.createElement("input");
      Object.assign(r, { type: "range", min, max, step, value: m[key], title });
      r.className = `mx ${key}`; r.setAttribute("aria-label", `${title}: ${s.name}`);
      r.addEventListener("input", () => { m[key] = Number(r.value); });
      return r;
    };
    const choke = document.createElement("select");
    choke.className = "mx choke"; choke.title = "choke group: a hit cuts the ringing sounds of its group";
    choke.setAttribute("aria-label", `choke group: ${s.name}`);
    choke.replaceChildren(...Array.from({ length: CHOKE_GROUPS + 1 }, (_, g) => new Option(g ? `choke ${g}` : "–", g)));
    choke.value = String(m.choke);
    choke.addEventListener("change", () => { m.choke = Number(choke.value); });
    return [range("level", 0, 1.5, 0.01, "level"), range("pan", -1, 1, 0.01, "pan"), choke];
  }

  cell(k, i) { return this.grid.querySelector(`button[data-k="${k}"][data-i="${i}"]`); }

  toggle(k, i) { // off → hit → accent → off
    const v = this.pattern[k][i];
    this.pattern[k][i] = v === 0 ? HIT : v < ACCENT ? ACCENT : 0;
    this.showCell(this.cell(k, i), this.pattern[k][i]);
  }

  showCell(b, v) {
    b.setAttribute("aria-pressed", String(v > 0));
    b.classList.toggle("accent", v >= ACCENT);
    b.setAttribute("aria-label", `${this.slots[b.dataset.k].name} step ${Number(b.dataset.i) + 1}${v >= ACCENT ? ", accent" : ""}`);
  }

  // ------------------------------------------------------------------ patterns A–D, steps, chain
  buildPatternControls() {
    const box = document.getElementById("pat-buttons");
    box.replaceChildren(...NAMES.map((n) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = n; b.className = "pat"; b.title = `edit pattern ${n}`;
      b.setAttribute("aria-pressed", String(n === this.beat.edit));
      b.classList.toggle("used", n in this.beat.patterns);
      b.addEventListener("click", () => this.editPattern(n));
      return b;
    }));
    document.getElementById("steps").value = String(this.beat.steps);
    document.getElementById("chain").value = this.beat.chain.join(" ");
  }

  editPattern(n) { // a new pattern starts as a copy of the one being edited
    if (!(n in this.beat.patterns)) this.beat.patterns[n] = this.pattern.map((row) => [...row]);
    this.beat.edit = n;
    this.buildPatternControls(); this.buildGrid();
  }

  setSteps(n) { // 16 → 32 repeats each bar; 32 → 16 keeps the first half
    if (n !== 16 && n !== 32) return;
    for (const rows of Object.values(this.beat.patterns)) rows.forEach((row, k) => {
      rows[k] = n > row.length ? row.concat(row) : row.slice(0, n);
    });
    this.beat.steps = n; this.step %= n;
    this.buildGrid();
  }

  setChain(text) { // "A A B" → ["A", "A", "B"]; names without a pattern get one (a copy of the edited one)
    const chain = text.toUpperCase().split(/[\s,]+/).filter(Boolean);
    const bad = chain.find((c) => !NAMES.includes(c));
    if (bad || !chain.length || chain.length > 16) throw new Error(`chain: ${bad ? `"${bad}" is not one of A, B, C, D` : "1 to 16 patterns"}`);
    for (const c of chain) if (!(c in this.beat.patterns)) this.beat.patterns[c] = this.pattern.map((row) => [...row]);
    this.beat.chain = chain; this.chainPos %= chain.length;
    this.buildPatternControls();
  }

  gridKey(e, k, i) { // roving focus: arrows move between cells, space/enter toggles (the button's own click)
    const d = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
    if (!d) return;
    e.preventDefault();
    const n = this.beat.steps, nk = (k + d[0] + this.slots.length) % this.slots.length, ni = (i + d[1] + n) % n;
    this.cell(k, i).tabIndex = -1;
    const c = this.cell(nk, ni); c.tabIndex = 0; c.focus(); this.focus = [nk, ni];
  }

  clear() { this.pattern.forEach((row) => row.fill(0)); this.buildGrid(); }

  get bpm() { return Math.min(240, Math.max(40, Number(this.tempo.value) || 110)); }

  get playing() { return this.timer !== null; }

  start() {
    const a = audio();
    this.step = 0; this.chainPos = 0; this.next = a.currentTime + 0.06;
    this.timer = setInterval(() => this.tick(), 25);
  }

  stop() { clearInterval(this.timer); this.timer = null; this.grid.querySelectorAll(".now").forEach((c) => c.classList.remove("now")); }

  // Play step `step` of pattern `name`, the step's grid time being `t`: swing puts every second sixteenth late
  // by swing % of a triplet sixteenth. Returns when its hits sound.
  playStep(name, step, t) {
    const sixteenth = 60 / this.bpm / 4, rows = this.beat.patterns[name];
    const at = t + (step % 2 ? (Number(this.swing.value) / 100) * sixteenth / 3 : 0);
    this.slots.forEach((_, k) => { const v = rows[k][step]; if (v) this.hit(k, velocityGain(v), at); });
    return at;
  }

  // The chain played once through the page's own sequencer and mixer into an OfflineAudioContext (stereo, at the
  // sounds' rate, `tail` seconds after the last step): what the page plays, as a buffer.
  async bounce(tail = 2) {
    const sr = this.slots.find((s) => s.buffer)?.buffer.sampleRate || 44100;
    const sixteenth = 60 / this.bpm / 4, n = this.beat.chain.length * this.beat.steps;
    const off = new OfflineAudioContext(2, Math.ceil((n * sixteenth + tail) * sr), sr);
    const ringing = this.ringing;
    this.ringing = new Map();
    try {
      withContext(off, () => this.beat.chain.forEach((name, c) => {
        for (let i = 0; i < this.beat.steps; i++) this.playStep(name, i, (c * this.beat.steps + i) * sixteenth);
      }));
    } finally { this.ringing = ringing; }
    return off.startRendering();
  }

  tick() { // schedule every step that starts in the next 120 ms, on the audio clock
    const a = audio();
    const sixteenth = 60 / this.bpm / 4;
    while (this.next < a.currentTime + 0.12) {
      const step = this.step, name = this.beat.chain[this.chainPos];
      const t = this.playStep(name, step, this.next);
      setTimeout(() => this.showStep(step, name), Math.max(0, (t - a.currentTime) * 1000));
      this.next += sixteenth; this.step = (this.step + 1) % this.beat.steps;
      if (this.step === 0) this.chainPos = (this.chainPos + 1) % this.beat.chain.length;
    }
  }

  showStep(step, name) {
    if (!this.playing) return;
    this.grid.querySelectorAll(".now").forEach((c) => c.classList.remove("now"));
    document.getElementById("pat-now").textContent = `playing ${name}`;
    if (name !== this.beat.edit) return;
    this.grid.querySelectorAll(`button[data-i="${step}"]`).forEach((c) => c.classList.add("now"));
  }
}
