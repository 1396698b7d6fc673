/**
 * The wire between hosts: length-prefixed msgpack frames over TCP, opened by a mutual
 * challenge–response on a shared secret (the secret never crosses the wire). The same code carries
 * the hosts' control bridge (main thread) and node-to-node data links (worker threads).
 *
 * Handshake: the listener sends {challenge, host, nonce}; the dialer answers {auth, host, nonce,
 * proof = HMAC(secret, "dialer|<listener nonce>|<dialer>|<listener>")}; the listener checks it and
 * answers {welcome, proof = HMAC(secret, "listener|<dialer nonce>|<listener>|<dialer>")}.
 * A connection that fails the handshake, sends an oversized or undecodable frame, or breaks a rule
 * of the layer above is closed and reported; nothing else is affected.
 */
import type { Socket, TCPSocketListener } from "bun";
import { Packr, withNativeExtractor } from "./msgpack.ts";
import { Limits } from "./limits.ts";

/** A frame is a 4-byte big-endian length and a msgpack payload; larger frames are refused. */
export const MAX_FRAME_BYTES = Limits.maxFrameBytes;

const packr = new Packr({ useRecords: false, moreTypes: false });
/**
 * For frames of many like-shaped objects (a data link's batch): msgpackr records, where a frame
 * states each object shape (its keys) once and every object of that shape carries only its values.
 * A frame is self-contained — msgpackr starts every pack and unpack with no shapes — and any
 * decoder reads it (the one above included: records are part of msgpackr's format, not an option
 * of the reader). For a batch of 4096 small node messages (measured, bun 1.4): half the bytes
 * (24 against 49 a message), a third less to pack, and 40% less to unpack, since a plain map makes
 * msgpackr read every key of every message (and above ~180 bytes it skips its key cache). Below a
 * few dozen objects it loses: each shape read more than twice compiles a reader, once per frame.
 */
const recordPackr = new Packr({ useRecords: true, moreTypes: false });

/** Data-link frames with at least this many messages are encoded as records (see recordPackr). */
export const RECORDS_MIN_MESSAGES = 64;

export function encodeFrame(value: unknown, records = false): Uint8Array {
  const payload = (records ? recordPackr : packr).pack(value);
  if (payload.length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = new Uint8Array(4 + payload.length);
  writeLength(out, 0, payload.length);
  out.set(payload, 4);
  return out;
}

/*
 * The 4-byte length is read and written byte by byte, not through a DataView: a DataView needs the
 * array's `.buffer`, which for a small fresh Uint8Array makes the engine materialize an ArrayBuffer
 * (measured 0.33 µs an encode and 0.2 µs a read, against ~0.01 µs by hand; a round trip on a data
 * link pays two of each).
 */
export function writeLength(buf: Uint8Array, off: number, len: number): void {
  buf[off] = len >>> 24;
  buf[off + 1] = (len >>> 16) & 0xff;
  buf[off + 2] = (len >>> 8) & 0xff;
  buf[off + 3] = len & 0xff;
}

export function readLength(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export class FrameError extends Error {}

/**
 * Reassembles frames from a byte stream. Throws FrameError on an oversized or undecodable frame.
 * A frame split over many reads is held as a list of chunks and joined once, when all of it is
 * there: joining on every read copied the partial frame again each time (quadratic: 34 ms for
 * one largest-size frame arriving in 4 KiB reads). A length is checked as soon as its 4 bytes
 * are in, so an oversized frame is refused before its body is buffered.
 */
export class FrameDecoder {
  private parts: Uint8Array[] = [];
  private have = 0;
  /** Bytes of the partial frame (header included) once its header is known, else 0. */
  private need = 0;

  push(chunk: Uint8Array): unknown[] {
    let joined = chunk;
    if (this.have > 0) {
      this.parts.push(chunk);
      this.have += chunk.length;
      if (this.need === 0 && this.have >= 4) {
        if (this.parts[0]!.length < 4) this.parts = [this.join()];
        this.need = 4 + frameLength(this.parts[0]!, 0);
      }
      if (this.need === 0 || this.have < this.need) return [];
      joined = this.join();
    }
    const out: unknown[] = [];
    let off = 0;
    let need = 0;
    while (joined.length - off >= 4) {
      const len = frameLength(joined, off);
      if (joined.length - off - 4 < len) {
        need = 4 + len;
        break;
      }
      try {
        out.push(packr.unpack(joined.subarray(off + 4, off + 4 + len)));
      } catch (e) {
        throw new FrameError(`undecodable frame: ${e instanceof Error ? e.message : String(e)}`);
      }
      off += 4 + len;
    }
    // The rest is copied once: the reader may reuse the chunk it handed us.
    const rest = joined.length - off;
    this.parts = rest === 0 ? [] : [joined.slice(off)];
    this.have = rest;
    this.need = need;
    return out;
  }

  private join(): Uint8Array {
    if (this.parts.length === 1) return this.parts[0]!;
    const out = new Uint8Array(this.have);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    this.parts = [out];
    return out;
  }
}

/** The payload length in the header at `off`; throws FrameError if no frame may be that long. */
function frameLength(buf: Uint8Array, off: number): number {
  const len = readLength(buf, off);
  if (len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
  if (len === 0) throw new FrameError("empty frame");
  return len;
}

/**
 * node:crypto, loaded on the first handshake: about 1 MB in every worker thread that imports it,
 * and a thread-per-node cluster on one host never opens a wire.
 */
let cryptoModule: typeof import("node:crypto") | null = null;
const crypto = () => (cryptoModule ??= import.meta.require("node:crypto") as typeof import("node:crypto"));

export function nonce(): string {
  return crypto().randomBytes(16).toString("hex");
}

export function proof(secret: string, role: "dialer" | "listener", theirNonce: string, myHost: string, theirHost: string): string {
  return crypto().createHmac("sha256", secret).update(`${role}|${theirNonce}|${myHost}|${theirHost}`).digest("hex");
}

export function proofMatches(expected: string, given: unknown): boolean {
  if (typeof given !== "string" || given.length !== expected.length) return false;
  return crypto().timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}

export interface Endpoint {
  hostname: string;
  port: number;
}

export interface WireOptions {
  /** This side's host name. */
  host: string;
  secret: string;
  /** Host names allowed at the other end. */
  peers: ReadonlySet<string>;
  handshakeTimeoutMs?: number;
  /** A frame after the handshake. Throwing closes the connection with the error's message. */
  onFrame(conn: WireConn, frame: Record<string, unknown>): void;
  onReady?(conn: WireConn): void;
  onClose?(conn: WireConn): void;
  /** A connection refused or closed for a reason (log it). */
  onReject?(conn: WireConn, why: string): void;
}

/** One framed, authenticated TCP connection. Writes made in one turn go out in one syscall. */
export class WireConn {
  /** The authenticated host at the other end; null until the handshake completes. */
  peerHost: string | null = null;
  private readonly decoder = new FrameDecoder();
  private readonly myNonce = nonce();
  private challengedBy: string | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private unsent: Uint8Array | null = null;
  private flushScheduled = false;
  private closed = false;
  private gone = false;

  constructor(
    private readonly socket: Socket<WireConn>,
    private readonly opts: WireOptions,
    readonly dialed: boolean,
  ) {
    socket.setNoDelay?.(true);
    this.timer = setTimeout(() => this.close("handshake timed out"), opts.handshakeTimeoutMs ?? Limits.handshakeTimeoutMs);
    if (!dialed) this.write({ t: "challenge", host: opts.host, nonce: this.myNonce });
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress;
  }

  get ready(): boolean {
    return this.peerHost !== null && !this.closed;
  }

  /** Queue a frame (`records`: see recordPackr); false if it was refused (not ready, too large, or the buffer bound is reached). */
  send(frame: unknown, records = false): boolean {
    if (!this.ready) return false;
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame, records);
    } catch {
      return false;
    }
    return this.write(bytes);
  }

  private write(frameOrBytes: unknown): boolean {
    const bytes = frameOrBytes instanceof Uint8Array ? frameOrBytes : encodeFrame(frameOrBytes);
    if (this.closed || this.pendingBytes + bytes.length > Limits.maxBridgeBufferBytes) return false;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  /** Write what is queued; called again on drain when the kernel buffer was full. */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    for (;;) {
      let chunk: Uint8Array;
      if (this.unsent) {
        chunk = this.unsent;
        this.unsent = null;
      } else {
        if (this.pending.length === 0) return;
        chunk = this.pending.length === 1 ? this.pending[0]! : concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
      }
      const n = this.socket.write(chunk);
      if (n < chunk.length) {
        this.unsent = chunk.subarray(Math.max(n, 0));
        return;
      }
    }
  }

  close(why?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (why) this.opts.onReject?.(this, why);
    this.socket.end();
  }

  /** Socket closed under us. */
  closedBySocket(): void {
    if (this.gone) return;
    this.gone = true;
    this.closed = true;
    clearTimeout(this.timer);
    this.opts.onClose?.(this);
  }

  onData(chunk: Uint8Array): void {
    let frames: unknown[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.close(e instanceof FrameError ? e.message : "bad frame");
      return;
    }
    for (const f of frames) {
      if (this.closed) return;
      if (typeof f !== "object" || f === null || typeof (f as { t?: unknown }).t !== "string") {
        this.close("frame is not an object with a type");
        return;
      }
      const frame = f as Record<string, unknown>;
      try {
        if (this.peerHost === null) this.handshake(frame);
        else this.opts.onFrame(this, frame);
      } catch (e) {
        this.close(e instanceof Error ? e.message : String(e));
      }
    }
  }

  private handshake(frame: Record<string, unknown>): void {
    const { secret, host, peers } = this.opts;
    if (!this.dialed) {
      if (frame.t !== "auth" || typeof frame.host !== "string" || typeof frame.nonce !== "string") throw new Error("expected an auth frame");
      if (!peers.has(frame.host)) throw new Error(`unknown host "${frame.host}"`);
      if (!proofMatches(proof(secret, "dialer", this.myNonce, frame.host, host), frame.proof)) throw new Error(`host "${frame.host}" failed the handshake (wrong secret?)`);
      this.write({ t: "welcome", proof: proof(secret, "listener", frame.nonce, host, frame.host) });
      this.authenticated(frame.host);
      return;
    }
    if (frame.t === "challenge" && this.challengedBy === null) {
      if (typeof frame.nonce !== "string" || typeof frame.host !== "string" || !peers.has(frame.host)) throw new Error("bad challenge");
      this.challengedBy = frame.host;
      this.write({ t: "auth", host, nonce: this.myNonce, proof: proof(secret, "dialer", frame.nonce, host, frame.host) });
      return;
    }
    if (frame.t === "welcome" && this.challengedBy !== null) {
      if (!proofMatches(proof(secret, "listener", this.myNonce, this.challengedBy, host), frame.proof)) throw new Error(`host "${this.challengedBy}" failed the handshake (wrong secret?)`);
      this.authenticated(this.challengedBy);
      return;
    }
    throw new Error(`unexpected "${String(frame.t)}" during the handshake`);
  }

  private authenticated(peer: string): void {
    clearTimeout(this.timer);
    this.peerHost = peer;
    this.opts.onReady?.(this);
  }
}

function handlers(opts: WireOptions, dialed: boolean) {
  return {
    open(s: Socket<WireConn>) {
      s.data = new WireConn(s, opts, dialed);
    },
    data: (s: Socket<WireConn>, chunk: Uint8Array) => s.data.onData(chunk),
    drain: (s: Socket<WireConn>) => s.data.flush(),
    close: (s: Socket<WireConn>) => s.data?.closedBySocket(),
    error: () => {},
  };
}

export function wireListen(at: Endpoint, opts: WireOptions): TCPSocketListener<WireConn> {
  void withNativeExtractor();
  return Bun.listen<WireConn>({ hostname: at.hostname, port: at.port, socket: handlers(opts, false) });
}

/** Dial a peer; resolves with the connection once TCP is up (opts.onReady fires after the handshake). */
export async function wireDial(to: Endpoint, opts: WireOptions): Promise<WireConn> {
  await withNativeExtractor();
  const s = await Bun.connect<WireConn>({ hostname: to.hostname, port: to.port, socket: handlers(opts, true) });
  return s.data;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
