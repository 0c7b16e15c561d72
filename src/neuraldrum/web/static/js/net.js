// The server's API: JSON over HTTP, and the live WebSocket (render requests → binary sounds).

export async function api(path, body, raw = false) {
  const init = body === undefined ? {} : raw
    ? { method: "POST", body, headers: { "content-type": "application/octet-stream" } }
    : { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } };
  const r = await fetch(path, init);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const type = r.headers.get("content-type") || "";
  return type.includes("application/json") ? r.json() : r.blob();
}

// A binary sound message: uint32 LE header length h, h bytes of JSON, then the samples (4-byte aligned):
// int16 LE times header.scale when header.format is "s16", else float32 LE.
export function unpackSound(buf) {
  const h = new DataView(buf).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, h)));
  if (header.format !== "s16") return { header, samples: new Float32Array(buf, 4 + h) };
  const q = new Int16Array(buf, 4 + h), samples = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) samples[i] = q[i] * header.scale;
  return { header, samples };
}

// The live connection. render(stream, voice, quality) → Promise of {header, samples, ms} (ms: send → sound here),
// or null when the server dropped it for a newer request of the same stream, or when a newer request's sound has
// already been handed out (a stale sound never replaces a fresher one). A sound newer than the last one handed out
// is always handed out, even while still newer requests are on their way: during a pad drag the player hears every
// sound the server made, not only the newest request's. (quality "hifi": header.quality says whether the server
// had it.) Reconnects on its own.
export class Live {
  constructor(onStatus) {
    this.onStatus = onStatus;
    this.nextId = 1;
    this.waiting = new Map(); // id → {resolve, reject, t0}
    this.handed = new Map(); // stream → id of the newest sound handed out
    this.connect();
  }
  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.ready = new Promise((ok) => {
      this.ws = new WebSocket(url);
      this.ws.binaryType = "arraybuffer";
      this.ws.onopen = () => { this.onStatus("connected", true); ok(); };
      this.ws.onclose = () => {
        this.onStatus("disconnected: reconnecting…", false);
        for (const w of this.waiting.values()) w.reject(new Error("connection lost"));
        this.waiting.clear();
        setTimeout(() => this.connect(), 1000);
      };
      this.ws.onmessage = (ev) => this.receive(ev.data);
    });
  }
  receive(data) {
    if (typeof data !== "string") {
      const s = unpackSound(data);
      const w = this.waiting.get(s.header.id);
      if (!w) return;
      this.waiting.delete(s.header.id);
      w.resolve({ ...s, ms: performance.now() - w.t0 });
      return;
    }
    const m = JSON.parse(data);
    const w = this.waiting.get(m.id);
    if (m.type === "error" && !w) { this.onStatus(`server: ${m.message}`, true, true); return; }
    if (!w) return;
    this.waiting.delete(m.id);
    if (m.type === "superseded") w.resolve(null);
    else if (m.type === "error") w.reject(new Error(m.message));
  }
  async render(stream, voice, quality = "live") {
    await this.ready;
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error("not connected to the server (reconnecting…)");
    const id = this.nextId++;
    const p = new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject, t0: performance.now() }));
    this.ws.send(JSON.stringify({ type: "render", id, stream, voice, ...(quality === "live" ? {} : { quality }) }));
    const r = await p;
    // replies can come out of order (a cached sound overtakes an older request): never go back to an older one
    if (!r || (this.handed.get(stream) || 0) > id) return null;
    this.handed.set(stream, id);
    return r;
  }
}
