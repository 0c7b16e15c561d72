// The kit: slots (a voice each, rendered ahead so a hit never waits), pads played by mouse, keyboard and Web
// MIDI, and a 16-step sequencer with tempo and swing.

import { audio, makeBuffer, play, velocityGain } from "./audio.js";

const KEYS = ["Digit1", "Digit2", "Digit3", "Digit4", "Digit5", "Digit6", "Digit7", "Digit8", "Digit9", "Digit0", "Minus"];
const KEY_LABELS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-"];
const STEPS = 16;
const BEAT = { kick: [0, 7, 8], snare: [4, 12], clap: [12], hh_closed: [0, 2, 4, 6, 8, 10, 12, 14], hh_open: [14] };
// role → the roles whose ringing sounds it cuts (a hi-hat is one instrument), as neuraldrum.roles.CHOKES
const CHOKES = { hh_closed: ["hh_open"], hh_open: ["hh_open"] };

export class KitView {
  constructor(live, info, onError) {
    this.live = live; this.info = info; this.onError = onError;
    this.meta = {}; this.slots = []; this.pattern = []; this.selected = 0;
    this.pads = document.getElementById("pads"); this.grid = document.getElementById("seq");
    this.tempo = document.getElementById("tempo"); this.swing = document.getElementById("swing");
    this.timer = null; this.step = 0; this.focus = [0, 0];
    this.stats = { hits: 0, rendered: 0, hifi: 0, choked: 0 };
    this.ringing = new Map(); // role → sources that may still ring (for the choke)
  }

  // A slot's role: the class it is named after (a closed-hat sound in the "snare" slot plays as the snare, on the
  // snare's key, in no choke group), else its sound's class. The SFZ export and the MIDI renderer use the same rule.
  role(k) { const s = this.slots[k]; return this.info.classes.includes(s.name) ? s.name : s.voice.class; }

  load(kit) {
    this.meta = { name: kit.name || "kit", sample_rate: kit.sample_rate, model: kit.model || {}, info: kit.info || {} };
    const old = this.pattern;
    this.slots = kit.slots.map((s) => ({ name: s.name, note: s.note ?? null, voice: s.voice, buffer: null }));
    this.pattern = this.slots.map((s, k) => old[k] && old.length === this.slots.length ? old[k]
      : Array.from({ length: STEPS }, (_, i) => (BEAT[this.role(k)] || []).includes(i)));
    this.selected = Math.min(this.selected, this.slots.length - 1);
    this.buildPads(); this.buildGrid();
    return Promise.all(this.slots.map((_, k) => this.renderSlot(k)));
  }

  toDict() {
    return { format: "neuraldrum-kit", version: 1, ...this.meta,
      slots: this.slots.map((s) => ({ name: s.name, ...(s.note == null ? {} : { note: s.note }), voice: s.voice })) };
  }

  async renderSlot(k) {
    const s = this.slots[k], el = this.pads.children[k];
    el?.classList.add("loading");
    try {
      const r = await this.live.render(`slot${k}`, s.voice, "hifi"); // slots are rendered ahead: in hi-fi
      if (r) { s.buffer = makeBuffer(r.samples, r.header.sample_rate); s.length = r.samples.length; this.stats.rendered++;
        if (r.header.quality === "hifi") this.stats.hifi++; }
    } catch (e) { this.onError(`slot ${s.name}: ${e.message}`); }
    el?.classList.remove("loading");
  }

  setVoice(k, voice) { this.slots[k].voice = voice; this.updatePad(k); return this.renderSlot(k); }

  hit(k, gain = 1, when = 0) {
    const s = this.slots[k];
    if (!s || !s.buffer) return false;
    const t = when || audio().currentTime, role = this.role(k);
    for (const g of CHOKES[role] || []) {
      for (const src of this.ringing.get(g) || []) { src.choke(t); this.stats.choked++; }
      this.ringing.set(g, []);
    }
    const src = play(s.buffer, gain, t);
    if (Object.values(CHOKES).some((gs) => gs.includes(role))) {
      this.ringing.set(role, [...(this.ringing.get(role) || []), src]);
      src.addEventListener("ended", () => this.ringing.set(role, (this.ringing.get(role) || []).filter((x) => x !== src)));
    }
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
    if ((st & 0xf0) !== 0x90 || !vel) return false;
    const k = this.slots.findIndex((s) => s.note === note);
    return k >= 0 && this.hit(k, velocityGain(vel));
  }

  // ------------------------------------------------------------------ sequencer
  buildGrid() {
    const cells = [];
    this.slots.forEach((s, k) => {
      const lab = document.createElement("span"); lab.className = "lab"; lab.textContent = s.name;
      cells.push(lab);
      for (let i = 0; i < STEPS; i++) {
        const b = document.createElement("button");
        b.type = "button"; b.className = i % 4 === 0 ? "beat" : "";
        b.dataset.k = k; b.dataset.i = i; b.tabIndex = k === this.focus[0] && i === this.focus[1] ? 0 : -1;
        b.setAttribute("aria-label", `${s.name} step ${i + 1}`);
        b.setAttribute("aria-pressed", String(this.pattern[k][i]));
        b.addEventListener("click", () => this.toggle(k, i));
        b.addEventListener("keydown", (e) => this.gridKey(e, k, i));
        cells.push(b);
      }
    });
    this.grid.replaceChildren(...cells);
  }

  cell(k, i) { return this.grid.querySelector(`button[data-k="${k}"][data-i="${i}"]`); }

  toggle(k, i) {
    this.pattern[k][i] = !this.pattern[k][i];
    this.cell(k, i).setAttribute("aria-pressed", String(this.pattern[k][i]));
  }

  gridKey(e, k, i) { // roving focus: arrows move between cells, space/enter toggles (the button's own click)
    const d = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
    if (!d) return;
    e.preventDefault();
    const nk = (k + d[0] + this.slots.length) % this.slots.length, ni = (i + d[1] + STEPS) % STEPS;
    this.cell(k, i).tabIndex = -1;
    const c = this.cell(nk, ni); c.tabIndex = 0; c.focus(); this.focus = [nk, ni];
  }

  clear() { this.pattern.forEach((row) => row.fill(false)); this.buildGrid(); }

  get playing() { return this.timer !== null; }

  start() {
    const a = audio();
    this.step = 0; this.next = a.currentTime + 0.06;
    this.timer = setInterval(() => this.tick(), 25);
  }

  stop() { clearInterval(this.timer); this.timer = null; this.grid.querySelectorAll(".now").forEach((c) => c.classList.remove("now")); }

  tick() { // schedule every step that starts in the next 120 ms, on the audio clock
    const a = audio();
    const bpm = Math.min(240, Math.max(40, Number(this.tempo.value) || 110));
    const sixteenth = 60 / bpm / 4;
    while (this.next < a.currentTime + 0.12) {
      const swing = this.step % 2 ? (Number(this.swing.value) / 100) * sixteenth / 3 : 0;
      const t = this.next + swing, step = this.step;
      this.slots.forEach((_, k) => { if (this.pattern[k][step]) this.hit(k, 1, t); });
      setTimeout(() => this.showStep(step), Math.max(0, (t - a.currentTime) * 1000));
      this.next += sixteenth; this.step = (this.step + 1) % STEPS;
    }
  }

  showStep(step) {
    if (!this.playing) return;
    this.grid.querySelectorAll(".now").forEach((c) => c.classList.remove("now"));
    this.grid.querySelectorAll(`button[data-i="${step}"]`).forEach((c) => c.classList.add("now"));
  }
}
