// WebAudio: turn received samples into buffers and play them, now or at a scheduled time.

let ctx = null;

export function audio() {
  if (!ctx) ctx = new AudioContext({ latencyHint: "interactive" });
  if (ctx.state === "suspended" && !(ctx instanceof OfflineAudioContext)) ctx.resume();
  return ctx;
}

// Play into `c` (an OfflineAudioContext: a bounce) while `fn` schedules; the live context comes back after.
export function withContext(c, fn) {
  const live = ctx;
  ctx = c;
  try { return fn(); } finally { ctx = live; }
}

export function makeBuffer(samples, sampleRate) {
  const b = audio().createBuffer(1, samples.length, sampleRate);
  b.copyToChannel(samples, 0);
  return b;
}

export const CHOKE_FADE_S = 0.003; // a choked sound fades out over 3 ms (no click), as the MIDI renderer's mixer

// The pan law, as the MIDI renderer's (neuraldrum render --kit kit.json): equal power, 0 dB at the centre. Left and
// right gains are √2·cos θ and √2·sin θ, θ = (pan + 1)·π/4: a StereoPannerNode (cos θ, sin θ for a mono buffer)
// after a √2 gain. A centred sound plays at its level on both sides; hard left is +3 dB on the left only.
export const PAN_MAKEUP = Math.SQRT2;

// Play a buffer at `when` (AudioContext time; now when 0) with linear gain and a stereo pan (-1 left … 1 right).
// Returns the source node (its gain and pan nodes as .gainNode, .panNode); its choke(t) fades it out from time t
// over CHOKE_FADE_S and stops it.
export function play(buffer, gain = 1, when = 0, pan = 0) {
  const a = audio();
  const src = a.createBufferSource();
  src.buffer = buffer;
  const g = a.createGain(), p = a.createStereoPanner(), mk = a.createGain();
  g.gain.value = gain; p.pan.value = pan; mk.gain.value = PAN_MAKEUP;
  src.connect(g).connect(p).connect(mk).connect(a.destination);
  src.gainNode = g; src.panNode = p;
  const t0 = when || a.currentTime;
  src.start(t0);
  src.choke = (t) => {
    t = Math.max(t, t0);
    g.gain.setValueAtTime(gain, t); g.gain.linearRampToValueAtTime(0, t + CHOKE_FADE_S);
    try { src.stop(t + CHOKE_FADE_S); } catch (e) { /* already stopped */ }
  };
  return src;
}

// One voice that cuts itself off: the preview of a pad drag plays only its newest sound.
export class Mono {
  constructor() { this.src = null; }
  play(buffer, gain = 1) {
    if (this.src) {
      try { this.src.stop(); } catch (e) { /* already ended */ }
    }
    this.src = play(buffer, gain);
    return this.src;
  }
}

// MIDI velocity → gain, the SFZ default curve (amp_veltrack 100): (v / 127)².
export const velocityGain = (v) => (v / 127) ** 2;

// Mono float samples → a 16-bit PCM WAV file (as the server writes them: clipped to [-1, 1], × 32767, rounded).
export function wavBlob(samples, sampleRate) {
  const n = samples.length, buf = new ArrayBuffer(44 + 2 * n), v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, sampleRate, true);
  v.setUint32(28, 2 * sampleRate, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, Math.round(32767 * Math.max(-1, Math.min(1, samples[i] || 0))), true);
  return new Blob([buf], { type: "audio/wav" });
}

export function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}
