/**
 * The fair TCP baseline: what the node API does on a data link, minus the runtime. Each message is
 * encoded and decoded on its own with msgpackr (the wire's codec and options), messages sent in one
 * turn go out in one write, over one raw socket between two OS processes. The raw byte pipe in
 * transport.ts stays as the physical ceiling; this is the floor a runtime could actually reach.
 *
 * Framing: a 4-byte big-endian length, then one msgpack-encoded message.
 */
import { Packr } from "msgpackr";
// Lengths by hand, as the wire writes them: a DataView over a small fresh array makes the engine
// materialize its ArrayBuffer (0.2–0.35 µs each time), which a floor should not pay.
import { readLength, writeLength } from "../../src/workers/runtime/wire.ts";

export const packr = new Packr({ useRecords: false, moreTypes: false });
/** The records variant packs a turn's batch whole, as a data link does (wire.ts recordPackr). */
const recordPackr = new Packr({ useRecords: true, moreTypes: false });

/** Node messages per write, as the node's data link caps a frame (links.ts MAX_FRAME_MESSAGES). */
export const BATCH = 4096;

/**
 * Appends length-prefixed messages to one growing buffer, each encoded on its own. Encoding straight
 * into the batch (one copy of msgpackr's output, no per-message buffer or DataView) is what makes
 * this the fastest honest per-message encoder: allocating a buffer per message cost ~3× the pack.
 */
export class BatchWriter {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  private off = 0;
  count = 0;

  add(msg: unknown): void {
    const payload = packr.pack(msg);
    const need = this.off + 4 + payload.length;
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.max(need, this.buf.length * 2));
      grown.set(this.buf.subarray(0, this.off));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.view.setUint32(this.off, payload.length);
    this.buf.set(payload, this.off + 4);
    this.off = need;
    this.count++;
  }

  /** The batch so far, as one write; the writer starts a new one. */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.off);
    this.buf = new Uint8Array(this.buf.length);
    this.view = new DataView(this.buf.buffer);
    this.off = 0;
    this.count = 0;
    return out;
  }
}

/**
 * The records variant of the fair baseline: a turn's messages are collected and packed as one
 * msgpackr records array (each shape's keys once, as the node's data link packs a batch of 64 or
 * more), one length prefix per batch. Still no runtime: what a node costs over the same encoding.
 */
export class RecordBatchWriter {
  private ms: unknown[] = [];
  get count(): number {
    return this.ms.length;
  }
  add(msg: unknown): void {
    this.ms.push(msg);
  }
  take(): Uint8Array {
    const payload = recordPackr.pack(this.ms);
    this.ms = [];
    const out = new Uint8Array(4 + payload.length);
    writeLength(out, 0, payload.length);
    out.set(payload, 4);
    return out;
  }
}

/** One message alone (a ping or a pong): exactly its bytes. */
export function encodeOne(msg: unknown): Uint8Array {
  const payload = packr.pack(msg);
  const out = new Uint8Array(4 + payload.length);
  writeLength(out, 0, payload.length);
  out.set(payload, 4);
  return out;
}

/**
 * Reassembles length-prefixed messages from a stream and decodes each one; chunks are joined only
 * when a message straddles them. (Asking msgpackr to read a byte range of the chunk instead of a
 * subarray per message measured slower, 0.8 vs 0.56 µs a message.)
 */
export class MessageReader {
  private buf = new Uint8Array(0);
  push(chunk: Uint8Array, each: (msg: any) => void): void {
    let joined = chunk;
    if (this.buf.length > 0) {
      joined = new Uint8Array(this.buf.length + chunk.length);
      joined.set(this.buf);
      joined.set(chunk, this.buf.length);
    }
    let off = 0;
    while (joined.length - off >= 4) {
      const len = readLength(joined, off);
      if (joined.length - off - 4 < len) break;
      // A message, or a records batch of them (RecordBatchWriter).
      const v = packr.unpack(joined.subarray(off + 4, off + 4 + len));
      if (Array.isArray(v)) for (const m of v) each(m);
      else each(v);
      off += 4 + len;
    }
    this.buf = off === joined.length ? EMPTY : joined.slice(off);
  }
}

const EMPTY = new Uint8Array(0);

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
