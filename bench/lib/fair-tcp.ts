/**
 * The fair TCP baseline: what the node API does on a data link, minus the runtime. Each message is
 * encoded and decoded on its own with msgpackr (the wire's codec and options), messages sent in one
 * turn go out in one write, over one raw socket between two OS processes. The raw byte pipe in
 * transport.ts stays as the physical ceiling; this is the floor a runtime could actually reach.
 *
 * Framing: a 4-byte big-endian length, then one msgpack-encoded message.
 */
import { Packr } from "msgpackr";

export const packr = new Packr({ useRecords: false, moreTypes: false });

/** Node messages per write, as the node's data link caps a frame (links.ts MAX_FRAME_MESSAGES). */
export const BATCH = 4096;

export function encodeOne(msg: unknown): Uint8Array {
  const payload = packr.pack(msg);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** Concatenate encoded messages into one write. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Reassembles length-prefixed messages from a stream and decodes each one. */
export class MessageReader {
  private buf = new Uint8Array(0);
  push(chunk: Uint8Array, each: (msg: any) => void): void {
    let joined = chunk;
    if (this.buf.length > 0) {
      joined = new Uint8Array(this.buf.length + chunk.length);
      joined.set(this.buf);
      joined.set(chunk, this.buf.length);
    }
    const view = new DataView(joined.buffer, joined.byteOffset, joined.byteLength);
    let off = 0;
    while (joined.length - off >= 4) {
      const len = view.getUint32(off);
      if (joined.length - off - 4 < len) break;
      each(packr.unpack(joined.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    this.buf = off === joined.length ? new Uint8Array(0) : joined.slice(off);
  }
}

/** Write everything, waiting for drain when the socket's buffer is full. */
export function writeAll(sock: { write(b: Uint8Array): number }, chunks: Uint8Array[], onDrain: (fn: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const pump = () => {
      while (chunks.length > 0) {
        const c = chunks[0]!;
        const w = sock.write(c);
        if (w < c.length) {
          chunks[0] = c.subarray(Math.max(0, w));
          onDrain(pump);
          return;
        }
        chunks.shift();
      }
      resolve();
    };
    pump();
  });
}
