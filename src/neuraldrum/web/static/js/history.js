// Undo/redo of sound changes, and the favourites strip's storage. A snapshot is {voice, label}: the voice dict the
// controls describe (main.js voice()) and what the "start" line says.

// A gesture is one step: a change after STILL_MS without one (a drag, a run of slider moves, a click) starts a new
// step, so undo goes back to where the last gesture began.
export class History {
  constructor(stillMs = 400) {
    this.stillMs = stillMs; this.back = []; this.ahead = []; this.latest = null; this.last = -Infinity;
  }

  start(snap) { this.latest = snap; } // the sound before any change

  changed(now, snap) {
    if (this.latest && now - this.last > this.stillMs) { this.back.push(this.latest); this.ahead = []; }
    this.latest = snap; this.last = now;
  }

  undo() { return this.step(this.back, this.ahead); }
  redo() { return this.step(this.ahead, this.back); }

  step(from, to) {
    if (!from.length) return null;
    to.push(this.latest); this.latest = from.pop(); this.last = -Infinity;
    return this.latest;
  }
}

const KEY = "neuraldrum.favourites", MAX_FAVOURITES = 32;

export function loadFavourites() {
  try {
    const f = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(f) ? f.filter((x) => x && typeof x.voice === "object" && typeof x.label === "string").slice(0, MAX_FAVOURITES) : [];
  } catch (e) { return []; }
}

export function saveFavourites(favs) {
  try { localStorage.setItem(KEY, JSON.stringify(favs.slice(-MAX_FAVOURITES))); } catch (e) { /* storage full or off */ }
}
