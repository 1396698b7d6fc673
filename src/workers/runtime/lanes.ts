/**
 * Lanes: with nodes packed into worker threads (`--threads`), one MessageChannel per pair of
 * threads carries every message between their nodes, a turn's worth at a time. Per-node ports would
 * make a fan-out from one node to 250 nodes of another thread 250 posts, and the receiving thread
 * pay one event per message (several µs each, more than parsing and handling the message); a lane
 * makes it one post and one event.
 *
 * A lane keeps what per-node ports gave (raft's "term on every message"): every entry carries the
 * sender's incarnation and the incarnation of the destination the sender believes live. The
 * receiving thread delivers an entry only to that incarnation of the destination; an entry from a
 * sender incarnation known dead is dropped, and one from a newer incarnation than known announces
 * it. The sending thread keeps, per node, its incarnation and whether it is up (from the
 * supervisor's peerUp/peerDown, and from entries received), and drops a message for a node known
 * down. One lane per pair of threads is FIFO, so each pair of nodes is: a node in another thread
 * of this process is always reached over the lane, never over a port of its own.
 *
 * On the lane, a post is the batch: consecutive entries JSON carries exactly are one JSON text (an
 * array of `[srcInc, destInc, message]`: one parse for the whole run costs about half of what a
 * text per entry does), and an entry JSON does not carry exactly is posted as the entry itself,
 * in its place. A batch of one text is posted as the bare string.
 *
 * A fan-out (sendMany) to several nodes of one thread is one multicast entry in the run,
 * `[srcInc, src, [destInc, dest, destInc, dest, ...], body]`: the body's text once, not once per
 * destination (at 250 destinations the per-destination texts made the sender build, join and post
 * ~75 KB and the receiver parse it). The receiving thread checks and delivers each destination as
 * it would its own entry, in the list's order and in the entry's place in the lane, each with its
 * own copy of the body. A multicast counts one entry per destination against the batch bounds.
 *
 * A fan-out planned once (pushMany) names its list by number after its first time on a lane: the
 * receiving thread parsed about 0.4 µs per recipient before its first delivery (100 µs at 250
 * recipients, every update, for a list that never changes). The first multicast of a share carries
 * its list and a slot, `[srcInc, src, [destInc, dest, ...], body, slot]`, and the receiving end
 * keeps the parsed list there; later ones are `[srcInc, src, slot, body]`. Both ends of a new
 * channel start with no lists and a lane is FIFO, so they agree on every slot. At most
 * Limits.maxLaneLists per lane; the sender reuses the oldest slot past that. A post refused whole
 * may have defined lists no one read, so the receiving end then forgets every list: an entry naming
 * one is refused, never delivered to recipients its sender did not mean.
 */
import { assert } from "./assert.ts";
import { cloneMessage } from "./clone.ts";
import { Limits } from "./limits.ts";
import type { Message, NodeId } from "./types.ts";

/** Where a node of this process lives and which of its incarnations the supervisor last knew of. */
export interface LanePeer {
  group: number;
  incarnation: number;
  up: boolean;
}

/** What this thread knows of a node of the process: a LanePeer, and its id as JSON text (a multicast names it so). */
interface Peer extends LanePeer {
  readonly quoted: string;
}

/** An entry as it travels: the sender's incarnation, the destination's, the message. */
type Entry = [srcInc: number, destInc: number, msg: Message];
/** A fan-out's entries for one thread still being filled (see the header); `key` names the fan-out. */
interface Multicast {
  key: object;
  src: NodeId;
  srcInc: number;
  /** destInc, then "dest" as JSON text, per destination, in order (joined with commas once, at its close). */
  dests: Array<number | string>;
  body: string;
  /** A whole planned share: the slot that names its list at the far end (-1: the list goes inline), and whether this entry defines it. */
  slot: number;
  defines: boolean;
}
/** One lane's share of a fan-out plan: its recipients as a multicast names them, joined once. */
interface LaneShare {
  lane: Lane;
  /** `destInc,"dest"` for each recipient on this lane, in order, joined with commas. */
  dests: string;
  /** The same, unjoined (a share that would overrun the lane's batch bounds goes recipient by recipient). */
  pairs: Array<number | string>;
  /** The length of the recipients' quoted ids, as queueShared counts them. */
  chars: number;
  /** The slot the lane's far end keeps this list in, or -1 (not sent yet, or its slot reused since). */
  slot: number;
}

/** What a fan-out to one list of nodes does on the lanes, worked out once and kept while `version` holds. */
interface FanOutPlan {
  version: number;
  /** The recipients no lane reaches (this thread's, or no thread's of this process), in order. */
  rest: readonly NodeId[];
  /** Recipients known down: their copies are dropped. */
  down: number;
  shares: LaneShare[];
}

/** A post on a lane: JSON texts of entry arrays and entries, in order (or one bare text). */
type LaneBatch = Array<string | Entry> | string;

/** A node hosted in this thread, as a lane delivers to it. */
export interface LaneTarget {
  readonly incarnation: number;
  receive(msg: Message): void;
  /** An entry for this node that was not delivered (another incarnation's, or from a dead sender). */
  refuseFromLane(): void;
}

interface Lane {
  readonly port: MessagePort;
  /** Sending: the share whose list the far end keeps in each slot, and the slot to reuse next. */
  readonly owners: Array<LaneShare | undefined>;
  nextSlot: number;
  /** Receiving: the lists the far end defined, by slot (each as parsed, checked entry by entry at every delivery). */
  readonly kept: Array<unknown[] | undefined>;
  /** Entries of the current JSON run, each `[srcInc,destInc,<message text>]`. */
  run: string[];
  parts: Array<string | Entry>;
  /** The multicast being filled, the last entry of the run when not null. */
  multi: Multicast | null;
  /** Entries waiting in run and parts, and the length of the texts among them. */
  count: number;
  chars: number;
}

/** Fan-out plans a thread keeps (see WorkerLanes.plans); past it they are all dropped and made again as needed. */
const FANOUT_PLANS = 16;

export class WorkerLanes {
  private self = -1;
  /** Every node of this process in another thread, and the incarnation believed current; empty until the first lane. */
  private readonly peers = new Map<NodeId, Peer>();
  private readonly lanes = new Map<number, Lane>();
  /** Entries refused for their shape, batches over the bound, entries for nodes not hosted here. */
  refused = 0;
  /**
   * Fan-out plans by recipient list. A node sends the same list again and again (NodeRuntime keeps
   * it), and looking its 500 recipients up one by one before the posts, the thread just woken,
   * delayed the other thread's start by more than the posts took. A plan holds while nothing it
   * read has changed: `version` moves whenever a lane or a node's incarnation or state does.
   */
  private readonly plans = new Map<readonly NodeId[], FanOutPlan>();
  private version = 0;

  constructor(private readonly hosted: (id: NodeId) => LaneTarget | undefined) {}

  /**
   * The lane to thread `other` (replacing an earlier one, whose far end has ended). `placement` names
   * every node of this process; the first lane adopts it, later ones keep what this thread has learnt.
   */
  connect(self: number, other: number, port: MessagePort, placement: Record<NodeId, LanePeer>): void {
    assert(self >= 0 && other >= 0 && self !== other, `a lane from thread ${self} to ${other}`);
    assert(this.self === -1 || this.self === self, `thread ${this.self} given a lane as thread ${self}`);
    if (this.self === -1) {
      this.self = self;
      for (const [id, p] of Object.entries(placement)) this.peers.set(id, { ...p, quoted: JSON.stringify(id) });
    }
    this.lanes.get(other)?.port.close();
    const lane: Lane = { port, owners: [], nextSlot: 0, kept: [], run: [], parts: [], multi: null, count: 0, chars: 0 };
    port.onmessage = (e) => this.receive(lane, other, e.data);
    port.addEventListener("close", () => {
      if (this.lanes.get(other) !== lane) return;
      this.lanes.delete(other);
      this.version++;
    });
    this.lanes.set(other, lane);
    this.version++;
  }

  /** True when dest is a node of this process in another thread: it is reached over a lane or not at all. */
  routes(dest: NodeId): boolean {
    const p = this.peers.get(dest);
    return p !== undefined && p.group !== this.self;
  }

  /** The incarnation of dest a message may be addressed to, or null when dest is known down (or its thread has no lane). */
  target(dest: NodeId): number | null {
    const p = this.peers.get(dest);
    assert(p !== undefined && p.group !== this.self, `${dest} is not reached over a lane`);
    return p.up && this.lanes.has(p.group) ? p.incarnation : null;
  }

  /** Queue a message for dest's lane; `text` is its JSON text, or null to post the message itself. */
  push(msg: Message, srcInc: number, destInc: number, text: string | null): void {
    const lane = this.lanes.get(this.peers.get(msg.dest)!.group);
    assert(lane !== undefined, `no lane to ${msg.dest}`);
    closeMulticast(lane);
    if (text !== null) {
      lane.run.push(`[${srcInc},${destInc},${text}]`);
      lane.chars += text.length;
    } else {
      closeRun(lane);
      // Copied now, as a port's postMessage would: the sender may change the body before the batch is posted.
      lane.parts.push([srcInc, destInc, cloneMessage(msg)]);
    }
    this.counted(lane);
  }

  /**
   * Queue one destination of a fan-out: `key` names the fan-out (its body, whose JSON text is
   * `body`); consecutive destinations of one fan-out on one lane become one multicast entry.
   */
  pushShared(key: object, src: NodeId, srcInc: number, dest: NodeId, destInc: number, body: string): void {
    const p = this.peers.get(dest)!;
    const lane = this.lanes.get(p.group);
    assert(lane !== undefined, `no lane to ${dest}`);
    this.queueShared(lane, key, src, srcInc, p.quoted, destInc, body);
  }

  /**
   * A whole fan-out's recipients in other threads, queued as pushShared queues each: the ones no
   * lane reaches (nodes of this thread, or of no thread of this process) are returned in order, for
   * the caller to send another way; `down` counts those known down, whose copies are dropped here.
   * `text` gives the body's JSON text, asked for only if some recipient is reached over a lane; if
   * JSON does not carry the body (null), nothing is queued and the answer is null. `dests` never
   * changes once given (Env.transmitMany): what it does on the lanes is planned once (`plans`).
   */
  pushMany(key: object, src: NodeId, srcInc: number, dests: readonly NodeId[], text: () => string | null): { rest: readonly NodeId[]; down: number } | null {
    let plan = this.plans.get(dests);
    if (plan === undefined || plan.version !== this.version) {
      plan = this.plan(dests);
      if (!this.plans.has(dests) && this.plans.size >= FANOUT_PLANS) this.plans.clear();
      this.plans.set(dests, plan);
    }
    if (plan.shares.length > 0) {
      const body = text();
      if (body === null) return null;
      for (const share of plan.shares) this.queueShare(share, key, src, srcInc, body);
    }
    return { rest: plan.rest, down: plan.down };
  }

  private plan(dests: readonly NodeId[]): FanOutPlan {
    const rest: NodeId[] = [];
    let down = 0;
    const shares = new Map<Lane, LaneShare>();
    for (const dest of dests) {
      const p = this.peers.get(dest);
      if (p === undefined || p.group === this.self) {
        rest.push(dest);
        continue;
      }
      const lane = p.up ? this.lanes.get(p.group) : undefined;
      if (lane === undefined) {
        down++;
        continue;
      }
      let share = shares.get(lane);
      if (share === undefined) shares.set(lane, (share = { lane, dests: "", pairs: [], chars: 0, slot: -1 }));
      share.pairs.push(p.incarnation, p.quoted);
      share.chars += p.quoted.length;
    }
    for (const share of shares.values()) share.dests = share.pairs.join(",");
    return { version: this.version, rest, down, shares: [...shares.values()] };
  }

  /** A lane's share of a fan-out: one multicast entry, as queueShared would make it recipient by recipient. */
  private queueShare(share: LaneShare, key: object, src: NodeId, srcInc: number, body: string): void {
    const lane = share.lane;
    const m = lane.multi;
    const joins = joinable(m, key, src, srcInc);
    const chars = share.chars + (joins ? 0 : body.length);
    const count = share.pairs.length >> 1;
    if (lane.count + count >= Limits.maxLaneBatch || lane.chars + chars >= Limits.maxLaneBatchChars) {
      // Past a batch bound: recipient by recipient, so the batch is cut where queueShared cuts it.
      for (let i = 0; i < share.pairs.length; i += 2) this.queueShared(lane, key, src, srcInc, share.pairs[i + 1] as string, share.pairs[i] as number, body);
      return;
    }
    if (joins) m.dests.push(share.dests);
    else {
      closeMulticast(lane);
      const defines = share.slot < 0;
      if (defines) {
        share.slot = lane.nextSlot;
        lane.nextSlot = (share.slot + 1) % Limits.maxLaneLists;
        const old = lane.owners[share.slot];
        if (old !== undefined) old.slot = -1;
        lane.owners[share.slot] = share;
      }
      lane.multi = { key, src, srcInc, dests: [share.dests], body, slot: share.slot, defines };
    }
    lane.chars += chars;
    this.counted(lane, count);
  }

  /** `q`: the destination's id as JSON text. */
  private queueShared(lane: Lane, key: object, src: NodeId, srcInc: number, q: string, destInc: number, body: string): void {
    const m = lane.multi;
    if (joinable(m, key, src, srcInc)) m.dests.push(destInc, q);
    else {
      closeMulticast(lane);
      lane.multi = { key, src, srcInc, dests: [destInc, q], body, slot: -1, defines: false };
      lane.chars += body.length;
    }
    lane.chars += q.length;
    this.counted(lane);
  }

  /** `n` more entries queued on lane: the first of a batch schedules its post; one that reaches a bound posts it now. */
  private counted(lane: Lane, n = 1): void {
    const first = lane.count === 0;
    lane.count += n;
    if (first) queueMicrotask(() => this.flush(lane));
    else if (lane.count >= Limits.maxLaneBatch || lane.chars >= Limits.maxLaneBatchChars) this.flush(lane);
  }

  /** Post every lane's batch now (a fan-out's, before its sender copies it for its own thread), not at the end of the turn. */
  readonly flushAll = (): void => {
    for (const lane of this.lanes.values()) this.flush(lane);
  };

  private flush(lane: Lane): void {
    if (lane.count === 0) return;
    closeRun(lane);
    const parts = lane.parts;
    lane.parts = [];
    lane.count = 0;
    lane.chars = 0;
    lane.port.postMessage(parts.length === 1 && typeof parts[0] === "string" ? parts[0] : parts);
  }

  /** `incarnation` of a node started (from the supervisor, or seen on an entry): messages go to it. */
  peerUp(id: NodeId, incarnation: number): void {
    const p = this.peers.get(id);
    // An incarnation known to have died stays dead (an announcement can arrive after its crash's).
    if (!p || incarnation < p.incarnation || (incarnation === p.incarnation && !p.up)) return;
    if (p.incarnation !== incarnation || !p.up) this.version++;
    p.incarnation = incarnation;
    p.up = true;
  }

  /** `incarnation` of a node died: messages for it are dropped at send until a newer one is up. */
  peerDown(id: NodeId, incarnation: number): void {
    const p = this.peers.get(id);
    if (!p || incarnation < p.incarnation) return;
    if (p.incarnation !== incarnation || p.up) this.version++;
    p.incarnation = incarnation;
    p.up = false;
  }

  /** One post from thread `from` on lane: every entry is checked and delivered on its own. */
  private receive(lane: Lane, from: number, data: unknown): void {
    const parts: unknown[] | null = typeof data === "string" ? [data] : Array.isArray(data) ? data : null;
    if (parts === null || parts.length > Limits.maxLaneBatch) return this.refuseWhole(lane);
    let budget = Limits.maxLaneBatch;
    for (const part of parts) {
      if (typeof part !== "string") {
        if (--budget < 0) return this.refuseWhole(lane);
        this.entry(from, part);
        continue;
      }
      let entries: unknown;
      try {
        entries = JSON.parse(part);
      } catch {
        entries = null;
      }
      const cost = Array.isArray(entries) ? runCost(entries, lane.kept) : Infinity;
      if (cost > budget) {
        this.refuseWhole(lane);
        continue;
      }
      budget -= cost;
      for (const e of entries as unknown[]) {
        if (isMulticast(e)) this.multicast(lane, from, e);
        else this.entry(from, e);
      }
    }
  }

  /** A post, or a run of it, refused whole: it may have defined lists no one read, so every list the lane keeps is forgotten (see the header). */
  private refuseWhole(lane: Lane): void {
    this.refused++;
    lane.kept.length = 0;
  }

  /** A multicast entry: each destination checked and delivered as its own entry would be, each with its own copy of the body. */
  private multicast(lane: Lane, from: number, e: unknown[]): void {
    const [srcInc, src, list, body, slot] = e;
    let dests: unknown = list;
    if (e.length === 5) {
      // A list kept for later entries, checked (below) at every use as an inline list is; its length
      // is bounded already, by the run's cost. Anything but a list leaves the slot empty.
      if (!isSlot(slot)) return void this.refused++;
      lane.kept[slot] = Array.isArray(list) ? list : undefined;
    } else if (typeof list === "number") dests = isSlot(list) ? lane.kept[list] : undefined;
    if (!isIncarnation(srcInc) || typeof src !== "string" || !Array.isArray(dests) || dests.length === 0 || dests.length % 2 !== 0) return void this.refused++;
    if (typeof body !== "object" || body === null || Array.isArray(body)) return void this.refused++;
    const live = this.senderLive(from, src, srcInc);
    if (live === null) return void this.refused++;
    const last = dests.length - 2;
    for (let i = 0; i < dests.length; i += 2) {
      const destInc = dests[i];
      const dest = dests[i + 1];
      const target = typeof dest === "string" ? this.hosted(dest) : undefined;
      if (!isIncarnation(destInc) || target === undefined) {
        this.refused++;
        continue;
      }
      if (!this.admits(target, destInc, live)) continue;
      // The parsed body is left untouched until the last destination, which gets it; every other gets
      // a copy of it, so no recipient sees what another's handler changed.
      hand(target, { src, dest: dest as NodeId, body: (i === last ? body : cloneMessage(body)) as Message["body"] });
    }
  }

  private entry(from: number, e: unknown): void {
    if (!Array.isArray(e) || e.length !== 3 || !isIncarnation(e[0]) || !isIncarnation(e[1])) return void this.refused++;
    const msg = e[2] as Message | null;
    if (typeof msg !== "object" || msg === null || typeof msg.src !== "string" || typeof msg.dest !== "string") return void this.refused++;
    const target = this.hosted(msg.dest);
    if (target === undefined) return void this.refused++;
    const live = this.senderLive(from, msg.src, e[0]);
    if (live === null) return void this.refused++;
    if (this.admits(target, e[1], live)) hand(target, msg);
  }

  /**
   * Whether the sender incarnation an entry names is live (a newer one than known announces itself);
   * null when the sender is not a node of the thread at the lane's far end, the only ones a lane carries.
   */
  private senderLive(from: number, src: NodeId, srcInc: number): boolean | null {
    const sender = this.peers.get(src);
    if (sender === undefined || sender.group !== from) return null;
    if (srcInc > sender.incarnation) this.peerUp(src, srcInc);
    return srcInc === sender.incarnation && sender.up;
  }

  /** An entry reaches target only from a live sender and for the incarnation it names; else it is counted as refused there. */
  private admits(target: LaneTarget, destInc: unknown, live: boolean): boolean {
    if (live && target.incarnation === destInc) return true;
    target.refuseFromLane();
    return false;
  }
}

/** Deliver one entry's message: whatever throws costs this entry only (the runtime already keeps a handler's failure to itself). */
function hand(target: LaneTarget, msg: Message): void {
  try {
    target.receive(msg);
  } catch {
    target.refuseFromLane();
  }
}

function isMulticast(e: unknown): e is unknown[] {
  return Array.isArray(e) && (e.length === 4 || e.length === 5);
}

function isSlot(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < Limits.maxLaneLists;
}

/**
 * Entries a parsed run counts against a post's bound: one per destination of a multicast, whether
 * its list is inline or kept (defined earlier, or earlier in this run: `defined` follows the run).
 */
function runCost(entries: unknown[], kept: ReadonlyArray<unknown[] | undefined>): number {
  let n = 0;
  let defined: Map<number, number> | null = null;
  for (const e of entries) {
    if (!isMulticast(e)) {
      n++;
      continue;
    }
    const list = e[2];
    let c = 1;
    if (Array.isArray(list)) {
      c = Math.max(1, list.length >> 1);
      if (e.length === 5 && isSlot(e[4])) (defined ??= new Map()).set(e[4], c);
    } else if (isSlot(list)) c = defined?.get(list) ?? Math.max(1, (kept[list]?.length ?? 0) >> 1);
    n += c;
  }
  return n;
}

/** Whether a fan-out's next recipients may join multicast m: the same fan-out, and a list that goes inline. */
function joinable(m: Multicast | null, key: object, src: NodeId, srcInc: number): m is Multicast {
  return m !== null && m.slot < 0 && m.key === key && m.src === src && m.srcInc === srcInc;
}

function closeMulticast(lane: Lane): void {
  const m = lane.multi;
  if (m === null) return;
  lane.multi = null;
  const src = JSON.stringify(m.src);
  if (m.slot < 0) lane.run.push(`[${m.srcInc},${src},[${m.dests.join(",")}],${m.body}]`);
  else if (m.defines) lane.run.push(`[${m.srcInc},${src},[${m.dests.join(",")}],${m.body},${m.slot}]`);
  else lane.run.push(`[${m.srcInc},${src},${m.slot},${m.body}]`);
}

function closeRun(lane: Lane): void {
  closeMulticast(lane);
  if (lane.run.length === 0) return;
  lane.parts.push(`[${lane.run.join(",")}]`);
  lane.run = [];
}

function isIncarnation(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
