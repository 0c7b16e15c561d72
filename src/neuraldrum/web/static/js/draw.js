// Pictures: the waveform, a spectrogram (STFT computed here), the latent map.

export const COLOURS = ["#e6553a", "#f0a43a", "#e3d04a", "#7cc35a", "#3fb68b", "#4fb3d9", "#5b7fe0",
                        "#9a6be0", "#d66bc0", "#c98f6b", "#a0a8b8"];

function fit(canvas) {
  // draw at the canvas's on-screen size × device pixel ratio, so lines stay sharp
  const r = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  return [canvas.getContext("2d"), w, h, dpr];
}

export function drawWave(canvas, x) {
  const [g, w, h] = fit(canvas);
  g.clearRect(0, 0, w, h);
  g.strokeStyle = "#343946";
  g.beginPath(); g.moveTo(0, h / 2); g.lineTo(w, h / 2); g.stroke();
  if (!x || !x.length) return;
  g.fillStyle = "#f0a43a";
  const per = x.length / w;
  for (let i = 0; i < w; i++) {
    let lo = 1, hi = -1;
    const a = Math.floor(i * per), b = Math.min(x.length, Math.floor((i + 1) * per) + 1);
    for (let k = a; k < b; k++) { if (x[k] < lo) lo = x[k]; if (x[k] > hi) hi = x[k]; }
    g.fillRect(i, (1 - hi) * h / 2, 1, Math.max(1, (hi - lo) * h / 2));
  }
}

function fft(re, im) { // in place, radix 2; re.length a power of two
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = -2 * Math.PI / len, wr = Math.cos(ang), wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1, ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k, b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
        [cr, ci] = [cr * wr - ci * wi, cr * wi + ci * wr];
      }
    }
  }
}

function heat(t) { // 0..1 → a dark-to-bright colour ramp
  const r = Math.min(255, Math.max(0, 255 * (1.3 * t - 0.05)));
  const g = Math.min(255, Math.max(0, 255 * t ** 2.2));
  const b = Math.min(255, Math.max(0, 255 * (0.5 - Math.abs(t - 0.3)) * 1.2 + 255 * Math.max(0, t - 0.9) * 5));
  return [r, g, b];
}

// Log-magnitude STFT (Hann 512, hop 128), frequency on a log axis from 40 Hz to Nyquist, 80 dB range.
export function drawSpectrogram(canvas, x, sampleRate) {
  const [g, w, h] = fit(canvas);
  g.fillStyle = "#111318"; g.fillRect(0, 0, w, h);
  if (!x || x.length < 512) return;
  const N = 512, hop = 128, frames = Math.floor((x.length - N) / hop) + 1, bins = N / 2 + 1;
  const win = Float32Array.from({ length: N }, (_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / N));
  const db = new Float32Array(frames * bins);
  let top = -200;
  const re = new Float32Array(N), im = new Float32Array(N);
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < N; i++) { re[i] = x[f * hop + i] * win[i]; im[i] = 0; }
    fft(re, im);
    for (let k = 0; k < bins; k++) {
      const v = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-12);
      db[f * bins + k] = v; if (v > top) top = v;
    }
  }
  const img = g.createImageData(w, h);
  const fmin = 40, fmax = sampleRate / 2, ratio = Math.log(fmax / fmin);
  const rowBin = Array.from({ length: h }, (_, y) => Math.min(bins - 1,
    Math.round(fmin * Math.exp(ratio * (1 - y / (h - 1))) / fmax * (bins - 1))));
  for (let xPix = 0; xPix < w; xPix++) {
    const f = Math.min(frames - 1, Math.floor(xPix / w * frames));
    for (let y = 0; y < h; y++) {
      const t = Math.max(0, Math.min(1, (db[f * bins + rowBin[y]] - top + 80) / 80));
      const [r, gg, b] = heat(t), o = (y * w + xPix) * 4;
      img.data[o] = r; img.data[o + 1] = gg; img.data[o + 2] = b; img.data[o + 3] = 255;
    }
  }
  g.putImageData(img, 0, 0);
  g.font = `${Math.round(h / 11)}px sans-serif`;
  for (const hz of [100, 1000, 10000]) {
    const y = (1 - Math.log(hz / fmin) / ratio) * (h - 1), label = hz >= 1000 ? `${hz / 1000} kHz` : `${hz} Hz`;
    g.fillStyle = "rgba(0,0,0,.6)"; g.fillRect(2, y - h / 11 - 2, g.measureText(label).width + 6, h / 11 + 4);
    g.fillStyle = "#e6e8ee"; g.fillText(label, 5, y - 2);
  }
}

// The latent map. points: [{x, y, class, label, mine}] (only those to show); current: [x, y] or null; hover: index
// into points or -1; slots: [{x, y, name}] (the kit's sounds); colour: one colour for the density shading (a class's)
// or null (all classes: neutral). Under the dots, a density shading (a smoothed 2-D histogram of the points) shows
// where the sounds crowd; outside the view's window nothing is drawn.
export function drawMap(canvas, view, points, classes, current, hover, slots = [], colour = null) {
  const [g, w, h, dpr] = fit(canvas);
  g.fillStyle = "#111318"; g.fillRect(0, 0, w, h);
  drawDensity(g, w, h, view, points, colour);
  const r = 3 * dpr;
  points.forEach((p, i) => {
    const q = view.toPixel(p.x, p.y, w, h);
    if (!q) return;
    const [px, py] = q;
    g.globalAlpha = p.mine ? 1 : 0.8;
    g.fillStyle = COLOURS[classes.indexOf(p.class) % COLOURS.length];
    g.beginPath(); g.arc(px, py, p.mine ? r * 1.6 : r, 0, 2 * Math.PI); g.fill();
    if (p.mine || i === hover) {
      g.strokeStyle = "#fff"; g.lineWidth = dpr; g.beginPath(); g.arc(px, py, r * 2.2, 0, 2 * Math.PI); g.stroke();
    }
  });
  g.globalAlpha = 1;
  g.font = `${Math.round(10 * dpr)}px sans-serif`;
  for (const s of slots) { // the kit's slots: white squares, named
    const q = view.toPixel(s.x, s.y, w, h);
    if (!q) continue;
    g.strokeStyle = "#fff"; g.lineWidth = 1.5 * dpr; g.strokeRect(q[0] - 4 * dpr, q[1] - 4 * dpr, 8 * dpr, 8 * dpr);
    g.fillStyle = "rgba(255,255,255,.85)"; g.fillText(s.name, q[0] + 6 * dpr, q[1] - 5 * dpr);
  }
  const q = current && view.toPixel(current[0], current[1], w, h);
  if (q) {
    const [px, py] = q;
    g.strokeStyle = "#ffd866"; g.lineWidth = 2 * dpr;
    g.beginPath(); g.arc(px, py, 7 * dpr, 0, 2 * Math.PI); g.stroke();
    g.beginPath(); g.moveTo(px - 11 * dpr, py); g.lineTo(px + 11 * dpr, py);
    g.moveTo(px, py - 11 * dpr); g.lineTo(px, py + 11 * dpr); g.stroke();
  }
}

function drawDensity(g, w, h, view, points, colour) {
  const cols = 60, rows = Math.max(1, Math.round(cols * h / w)), grid = new Float32Array(cols * rows);
  for (const p of points) {
    const q = view.toPixel(p.x, p.y, w, h);
    if (!q) continue;
    grid[Math.min(rows - 1, Math.floor(q[1] / h * rows)) * cols + Math.min(cols - 1, Math.floor(q[0] / w * cols))] += 1;
  }
  let d = grid;
  for (let pass = 0; pass < 3; pass++) { // three box blurs ≈ a Gaussian
    const o = new Float32Array(cols * rows);
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) {
      let s = 0, n = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy >= 0 && yy < rows && xx >= 0 && xx < cols) { s += d[yy * cols + xx]; n++; }
      }
      o[y * cols + x] = s / n;
    }
    d = o;
  }
  const top = d.reduce((a, b) => Math.max(a, b), 0);
  if (!top) return;
  const [cr, cg, cb] = colour ? [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16)) : [150, 160, 190];
  const small = document.createElement("canvas"); // one pixel a cell, scaled up smoothly
  small.width = cols; small.height = rows;
  const sg = small.getContext("2d"), img = sg.createImageData(cols, rows);
  for (let k = 0; k < cols * rows; k++) {
    img.data[4 * k] = cr; img.data[4 * k + 1] = cg; img.data[4 * k + 2] = cb;
    img.data[4 * k + 3] = Math.round(255 * 0.55 * Math.sqrt(d[k] / top));
  }
  sg.putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true; g.imageSmoothingQuality = "high";
  g.drawImage(small, 0, 0, w, h);
}

// Map coordinates ↔ canvas pixels: the points' bounds with a margin, then a zoom (1 = all) and a pan. toPixel gives
// null for a point outside the window.
export class MapView {
  constructor(bounds) { this.set(bounds); }
  set([x0, y0, x1, y1]) {
    const mx = (x1 - x0) * 0.06 || 1, my = (y1 - y0) * 0.06 || 1;
    this.full = [x0 - mx, y0 - my, x1 + mx, y1 + my];
    this.reset();
  }
  reset() { this.b = [...this.full]; }
  get zoom() { return (this.full[2] - this.full[0]) / (this.b[2] - this.b[0]); }
  toPixel(x, y, w, h) {
    const [x0, y0, x1, y1] = this.b;
    const u = (x - x0) / (x1 - x0), v = (y - y0) / (y1 - y0);
    return u < 0 || u > 1 || v < 0 || v > 1 ? null : [u * w, (1 - v) * h];
  }
  fromPixel(px, py, w, h) {
    const [x0, y0, x1, y1] = this.b;
    return [x0 + (px / w) * (x1 - x0), y0 + (1 - py / h) * (y1 - y0)];
  }
  zoomAt(f, px, py, w, h) { // f > 1 zooms in, keeping the point under (px, py) in place; at most 40×, at least all
    const [cx, cy] = this.fromPixel(px, py, w, h);
    const z = Math.min(40, Math.max(1, this.zoom * f)) / this.zoom;
    const [x0, y0, x1, y1] = this.b;
    this.b = [cx - (cx - x0) / z, cy - (cy - y0) / z, cx + (x1 - cx) / z, cy + (y1 - cy) / z];
    if (this.zoom <= 1.0001) this.reset();
  }
  pan(dpx, dpy, w, h) { // drag by (dpx, dpy) pixels
    const [x0, y0, x1, y1] = this.b, dx = -dpx / w * (x1 - x0), dy = dpy / h * (y1 - y0);
    this.b = [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
  }
}
