import { describe, expect, test } from "bun:test";
import { FrameDecoder, FrameError, MAX_FRAME_BYTES, encodeFrame } from "../src/workers/runtime/wire.ts";

/** A stream of frames: small ones around a large one, so splits land in headers, bodies and between frames. */
function stream(): { bytes: Uint8Array; values: unknown[] } {
  const values: unknown[] = [{ t: "a", n: 1 }, { t: "big", s: "y".repeat(70_000) }, { t: "b", list: [1, 2, 3] }, { t: "c" }];
  const parts = values.map((v) => encodeFrame(v));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return { bytes, values };
}

function decodeIn(bytes: Uint8Array, size: (i: number) => number): unknown[] {
  const d = new FrameDecoder();
  const out: unknown[] = [];
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = Math.max(1, size(i));
    // A copy per read, as a socket hands over fresh chunks.
    out.push(...d.push(bytes.slice(off, off + n)));
    off += n;
  }
  return out;
}

describe("FrameDecoder", () => {
  test("decodes the same frames whatever the read sizes (1 byte, 3 bytes, 4 KiB, uneven, whole)", () => {
    const { bytes, values } = stream();
    expect(decodeIn(bytes, () => 1)).toEqual(values);
    expect(decodeIn(bytes, () => 3)).toEqual(values);
    expect(decodeIn(bytes, () => 4096)).toEqual(values);
    expect(decodeIn(bytes, (i) => (i * 7919) % 5000)).toEqual(values);
    expect(decodeIn(bytes, () => bytes.length)).toEqual(values);
  });

  test("a frame is returned only once all of it has arrived, and only once", () => {
    const frame = encodeFrame({ t: "x", s: "z".repeat(10_000) });
    const d = new FrameDecoder();
    expect(d.push(frame.subarray(0, 2))).toEqual([]);
    expect(d.push(frame.subarray(2, 5000))).toEqual([]);
    expect(d.push(frame.subarray(5000, frame.length - 1))).toEqual([]);
    expect(d.push(frame.subarray(frame.length - 1))).toEqual([{ t: "x", s: "z".repeat(10_000) }]);
    expect(d.push(new Uint8Array(0))).toEqual([]);
  });

  test("an oversized length is refused as soon as its header is in, even split across reads", () => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
    const d = new FrameDecoder();
    expect(d.push(encodeFrame({ t: "ok" }))).toEqual([{ t: "ok" }]);
    expect(d.push(header.subarray(0, 1))).toEqual([]);
    expect(d.push(header.subarray(1, 3))).toEqual([]);
    expect(() => d.push(header.subarray(3))).toThrow(FrameError);
  });

  test("an oversized length behind a partial frame is refused once the partial frame's header is known", () => {
    const frame = encodeFrame({ t: "x", s: "q".repeat(1000) });
    const d = new FrameDecoder();
    expect(d.push(frame.subarray(0, 10))).toEqual([]);
    const bad = new Uint8Array(frame.length - 10 + 4);
    bad.set(frame.subarray(10));
    new DataView(bad.buffer).setUint32(frame.length - 10, MAX_FRAME_BYTES + 1);
    expect(() => d.push(bad)).toThrow(FrameError);
  });

  test("a length with its top bit set is read unsigned: refused as oversized, never taken as negative", () => {
    for (const header of [[0x80, 0, 0, 0], [0xff, 0xff, 0xff, 0xff], [0x80, 0, 0, 5, 1, 2, 3, 4, 5]]) {
      expect(() => new FrameDecoder().push(new Uint8Array(header))).toThrow(/exceeds/);
    }
  });

  test("frames are read from a chunk that starts part-way into its buffer", () => {
    const { bytes, values } = stream();
    const padded = new Uint8Array(bytes.length + 7);
    padded.set(bytes, 7);
    expect(new FrameDecoder().push(padded.subarray(7))).toEqual(values);
  });

  test("an empty or undecodable frame is refused", () => {
    expect(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 0]))).toThrow(FrameError);
    expect(() => new FrameDecoder().push(new Uint8Array([0, 0, 0, 1, 0x81]))).toThrow(FrameError);
  });

  test("a batch encoded as records is half the bytes and decodes to the same messages; each frame states its own shapes", () => {
    const batch = (n: number, k: string) => ({
      t: "msgs",
      ms: Array.from({ length: n }, (_, i) => ({ src: "a", dest: "b", body: { type: k, i, [`k${i % 7}`]: [i, { s: `v${i}` }], n: null } })),
    });
    const one = batch(4096, "one");
    const plain = encodeFrame(one);
    const records = encodeFrame(one, true);
    expect(records.length).toBeLessThan(plain.length * 0.6);
    // Two record frames whose shapes differ, a plain frame between them: in order, out of order, split anyhow.
    const other = batch(100, "two");
    const frames = [records, encodeFrame({ t: "c" }), encodeFrame(other, true)];
    const values = [one, { t: "c" }, other];
    const bytes = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    frames.reduce((off, f) => (bytes.set(f, off), off + f.length), 0);
    expect(decodeIn(bytes, () => bytes.length)).toEqual(values);
    expect(decodeIn(bytes, (i) => (i * 7919) % 5000)).toEqual(values);
    const d = new FrameDecoder();
    expect([...d.push(frames[2]!), ...d.push(frames[0]!)]).toEqual([other, one]);
  });
});
