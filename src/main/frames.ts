import { Packr } from "msgpackr";
import { Limits } from "../workers/runtime/limits.ts";

/** A TCP frame is a 4-byte big-endian length and a msgpack payload; larger frames are refused. */
export const MAX_FRAME_BYTES = Limits.maxMessageBytes + 64 * 1024;

const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeFrame(value: unknown): Uint8Array {
  const payload = packr.pack(value);
  if (payload.length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

export class FrameError extends Error {}

/** Reassembles frames from a byte stream. Throws FrameError on an oversized or undecodable frame. */
export class FrameDecoder {
  private buf = new Uint8Array(0);

  push(chunk: Uint8Array): unknown[] {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    const out: unknown[] = [];
    let off = 0;
    while (joined.length - off >= 4) {
      const len = new DataView(joined.buffer, joined.byteOffset + off, 4).getUint32(0);
      if (len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (len === 0) throw new FrameError("empty frame");
      if (joined.length - off - 4 < len) break;
      try {
        out.push(packr.unpack(joined.subarray(off + 4, off + 4 + len)));
      } catch (e) {
        throw new FrameError(`undecodable frame: ${e instanceof Error ? e.message : String(e)}`);
      }
      off += 4 + len;
    }
    this.buf = joined.slice(off);
    return out;
  }
}
