/**
 * A node's links to its peers, made on first use. A node in the same worker thread is handed a
 * copy of the message; a local peer in another worker is reached over a direct MessageChannel (as
 * JSON text when that carries the message exactly: see port-codec.ts) or, with packed threads, over
 * the lane its thread shares with ours (lanes.ts); a peer on another host over this node's own TCP connection to that peer's data
 * endpoint (msgpack frames, one frame per turn's worth of messages). A link being set up holds a
 * bounded backlog; a peer found down is retried after a short pause — messages meanwhile are
 * dropped, as they would be to a crashed node.
 *
 * Every port link knows the incarnation of the peer at its far end (raft's "term on every
 * message", applied to links): a grant, an offered port or a drop for an incarnation older than one
 * already known to have died or started is stale and ignored; a port whose partner's thread ends
 * closes, and the link with it. A peer announced up clears a "down" mark at once.
 */
import { assert } from "./assert.ts";
import { cloneMessage } from "./clone.ts";
import { Limits } from "./limits.ts";
import type { WorkerLanes } from "./lanes.ts";
import { fromLink, toLink, toPort, type SharedBody } from "./port-codec.ts";
import type { Body, Message, NodeId } from "./types.ts";
import { RECORDS_MIN_MESSAGES, wireDial, type Endpoint, type WireConn, type WireOptions } from "./wire.ts";

/** How the supervisor answers a request for a link: a port to the given incarnation of the peer, or where to dial it. */
export type LinkGrant = { port: MessagePort; incarnation: number } | { wire: Endpoint };

/** Node messages per frame on a data link (a receiver refuses more). */
export const MAX_FRAME_MESSAGES = Limits.maxFrameMessages;
const DOWN_RETRY_MS = Limits.linkDownRetryMs;

/** A fan-out's recipients that `postMany` hands on: those in this thread (with their hand-offs) and the rest, worked out once per list while `version` holds. */
interface LocalPlan {
  version: number;
  nearIds: NodeId[];
  near: Array<(msg: Message) => void>;
  far: NodeId[];
}

/** Recipient lists whose LocalPlan a node keeps; past it they are all dropped and made again as needed. */
const LOCAL_PLANS = 16;

type Link =
  | { kind: "port"; port: MessagePort; incarnation: number }
  | { kind: "wire"; conn: WireConn; batch: Message[] }
  | { kind: "pending"; backlog: Message[] }
  | { kind: "down"; until: number };

export interface LinksHost {
  readonly id: NodeId;
  /** With packed threads: the lanes that reach every node of this process in another thread (lanes.ts), and this node's incarnation. */
  readonly packed?: { readonly lanes: WorkerLanes; readonly incarnation: number };
  grant(dest: NodeId): Promise<LinkGrant | null>;
  /** Delivery to a node in the same worker thread, if dest is one. */
  colocated(dest: NodeId): ((msg: Message) => void) | undefined;
  /** Optional: a number that changes whenever colocated's answers may (a node of this thread started or ended); with it, fan-outs plan their hand-offs in this thread once per list. */
  hostedVersion?(): number;
  /** Whatever arrives on a MessageChannel this node holds. */
  receive(data: unknown): void;
  /** A frame on a TCP data link (dialed or accepted): validate and deliver, or throw to close it. */
  wireFrame(conn: WireConn, frame: Record<string, unknown>): void;
  /** For dialing remote peers: this host's wire identity. */
  readonly wire: Pick<WireOptions, "host" | "secret" | "peers" | "onReject"> | null;
  now(): number;
}

export class Links {
  private readonly links = new Map<NodeId, Link>();
  /** Extra receive-only ports (a peer opened a link to us while ours was being set up). */
  private readonly extra = new Set<MessagePort>();
  /** Per peer, the oldest incarnation that may still be alive (older ones are known dead). */
  private readonly alive = new Map<NodeId, number>();
  /**
   * Fan-out lists' own-thread hand-offs, by list (the same array each time: Env.transmitMany). Looked
   * up and queued recipient by recipient (a map lookup and two objects each, cold), 250 of them held
   * back every tablet of the sender's thread, and took most of obelix's fan-out.
   */
  private readonly localPlans = new Map<readonly NodeId[], LocalPlan>();
  dropped = 0;

  constructor(private readonly host: LinksHost) {}

  /** `shared`: msg's body is one sent to many nodes in this turn, encoded once for all of them. */
  post(msg: Message, shared?: SharedBody): void {
    const near = this.host.colocated(msg.dest);
    if (near) {
      // Same thread: no port, but still a copy (nodes share no memory) and still asynchronous. A
      // fan-out's copies are made at the end of its call, after its posts to other threads.
      if (shared) return shared.local(near, msg);
      const copy = cloneMessage(msg);
      queueMicrotask(() => near(copy));
      return;
    }
    const packed = this.host.packed;
    if (packed?.lanes.routes(msg.dest)) return this.postLane(packed.lanes, packed.incarnation, msg, shared);
    const link = this.links.get(msg.dest);
    switch (link?.kind) {
      case "port":
        // The far end reads a body's text as from this node to that peer (fromLink): a link carries only its own node's messages.
        assert(msg.src === this.host.id, `${this.host.id}: posting a message from ${msg.src}`);
        link.port.postMessage(shared ? shared.toLink(msg) : toLink(msg));
        return;
      case "wire":
        if (link.batch.push(msg) === 1) queueMicrotask(() => this.flush(link));
        else if (link.batch.length >= MAX_FRAME_MESSAGES) this.flush(link);
        return;
      case "pending":
        if (link.backlog.length >= Limits.maxLinkBacklog) this.dropped++;
        else link.backlog.push(msg);
        return;
      case "down":
        if (this.host.now() < link.until) {
          this.dropped++;
          return;
        }
        break;
    }
    this.open(msg.dest, [msg]);
  }

  /**
   * A fan-out (sendMany) of one body to every node of `dests`: the recipients in other threads of
   * this process first, their lanes posted as soon as they are filled, then the rest as post would
   * take each. The other threads start on their share before this one makes its own copies; only
   * the order between recipients changes (each recipient's messages keep theirs).
   */
  postMany(src: NodeId, dests: readonly NodeId[], body: Body, shared: SharedBody): void {
    const packed = this.host.packed;
    assert(src === this.host.id, "a fan-out posted for another node");
    const queued = packed?.lanes.pushMany(shared, src, packed.incarnation, dests, () => shared.bodyText());
    if (packed && queued) {
      this.dropped += queued.down;
      packed.lanes.flushAll();
    }
    const rest = queued?.rest ?? dests;
    const version = this.host.hostedVersion?.();
    if (version === undefined) {
      for (const dest of rest) this.post({ src, dest, body }, shared);
      return;
    }
    let plan = this.localPlans.get(rest);
    if (plan === undefined || plan.version !== version) {
      plan = this.planLocal(rest, version);
      if (!this.localPlans.has(rest) && this.localPlans.size >= LOCAL_PLANS) this.localPlans.clear();
      this.localPlans.set(rest, plan);
    }
    if (plan.near.length > 0) shared.localMany(src, plan.nearIds, plan.near);
    for (const dest of plan.far) this.post({ src, dest, body }, shared);
  }

  private planLocal(dests: readonly NodeId[], version: number): LocalPlan {
    const plan: LocalPlan = { version, nearIds: [], near: [], far: [] };
    for (const dest of dests) {
      const near = this.host.colocated(dest);
      if (near === undefined) plan.far.push(dest);
      else {
        plan.nearIds.push(dest);
        plan.near.push(near);
      }
    }
    return plan;
  }

  /** To a node in another thread of this process: onto that thread's lane, addressed to the incarnation believed live. */
  private postLane(lanes: WorkerLanes, incarnation: number, msg: Message, shared: SharedBody | undefined): void {
    assert(msg.src === this.host.id, `${this.host.id}: posting a message from ${msg.src}`);
    const destInc = lanes.target(msg.dest);
    if (destInc === null) {
      this.dropped++;
      return;
    }
    const text = shared?.bodyText();
    if (shared && typeof text === "string") {
      // One multicast entry per lane for the whole fan-out: the body's text once (lanes.ts).
      lanes.pushShared(shared, msg.src, incarnation, msg.dest, destInc, text);
      shared.queued(lanes.flushAll);
      return;
    }
    const data = toPort(msg);
    lanes.push(msg, incarnation, destInc, typeof data === "string" ? data : null);
  }

  private floor(peer: NodeId): number {
    return this.alive.get(peer) ?? 0;
  }

  private open(dest: NodeId, backlog: Message[]): void {
    assert(dest !== this.host.id, `${dest}: a link to itself`);
    assert(this.links.get(dest)?.kind !== "pending", `${this.host.id}: a second link to ${dest} while one is being set up`);
    const pending: Link = { kind: "pending", backlog };
    this.links.set(dest, pending);
    const isCurrent = () => this.links.get(dest) === pending;
    const asked = this.floor(dest);
    this.host.grant(dest).then(
      async (grant) => {
        if (grant && "port" in grant && grant.incarnation < this.floor(dest)) {
          // A grant to an incarnation that has died since: stale. The next send asks again.
          grant.port.close();
          if (isCurrent()) this.lose(dest, backlog.length);
          return;
        }
        if (!isCurrent()) {
          // The peer's own link to us arrived meanwhile, became ours and took the backlog (or the
          // peer was dropped): keep this channel for receiving only.
          if (grant && "port" in grant) this.adoptExtra(dest, grant.port);
          return;
        }
        // "Down" answered before the peer was announced up again is stale: ask again at the next send.
        if (!grant) return this.floor(dest) > asked ? this.lose(dest, backlog.length) : this.markDown(dest, backlog.length);
        if ("port" in grant) {
          this.setPort(dest, grant.port, grant.incarnation);
          for (const m of backlog) grant.port.postMessage(toLink(m));
          return;
        }
        const wire = this.host.wire;
        if (!wire) return this.markDown(dest, backlog.length);
        let ready!: () => void;
        const handshake = new Promise<void>((r) => (ready = r));
        const conn = await wireDial(grant.wire, {
          ...wire,
          onFrame: (c, f) => this.host.wireFrame(c, f),
          onReady: () => ready(),
          onClose: (c) => {
            const l = this.links.get(dest);
            if (l?.kind === "wire" && l.conn === c) this.links.delete(dest);
            else if (isCurrent()) this.markDown(dest, backlog.length);
          },
        }).catch(() => null);
        if (!conn) return isCurrent() && this.markDown(dest, backlog.length);
        await handshake;
        if (!isCurrent()) return conn.close();
        const link: Link = { kind: "wire", conn, batch: backlog };
        this.links.set(dest, link);
        this.flush(link);
      },
      () => isCurrent() && this.markDown(dest, backlog.length),
    );
  }

  /** A port link to `incarnation` of `peer`; it ends when the port closes (the partner's thread ended). */
  private setPort(peer: NodeId, port: MessagePort, incarnation: number): void {
    assert(incarnation >= this.floor(peer), `${this.host.id}: a link to ${peer}#${incarnation}, known dead`);
    const link: Link = { kind: "port", port, incarnation };
    port.onmessage = (e) => this.host.receive(fromLink(e.data, peer, this.host.id));
    port.addEventListener("close", () => {
      if (this.links.get(peer) === link) this.links.delete(peer);
    });
    this.links.set(peer, link);
  }

  /** Forget a link being set up without marking the peer down: the next send asks again. */
  private lose(dest: NodeId, lost: number): void {
    this.dropped += lost;
    this.links.delete(dest);
  }

  private markDown(dest: NodeId, lost: number): void {
    this.dropped += lost;
    this.links.set(dest, { kind: "down", until: this.host.now() + DOWN_RETRY_MS });
  }

  private flush(link: { conn: WireConn; batch: Message[] }): void {
    const batch = link.batch;
    if (batch.length === 0) return;
    link.batch = [];
    this.sendBatch(link.conn, batch);
  }

  /** A batch too large for one frame is split in halves until each fits; a lone oversized message is dropped. */
  private sendBatch(conn: WireConn, ms: Message[]): void {
    if (conn.send({ t: "msgs", ms }, ms.length >= RECORDS_MIN_MESSAGES)) return;
    if (ms.length === 1 || !conn.ready) {
      this.dropped += ms.length;
      return;
    }
    const mid = ms.length >> 1;
    this.sendBatch(conn, ms.slice(0, mid));
    this.sendBatch(conn, ms.slice(mid));
  }

  private adoptExtra(peer: NodeId, port: MessagePort): void {
    port.onmessage = (e) => this.host.receive(fromLink(e.data, peer, this.host.id));
    this.extra.add(port);
  }

  /** The supervisor hands us the far end of a channel that `incarnation` of a local peer asked for. */
  accept(peer: NodeId, incarnation: number, port: MessagePort): void {
    if (incarnation < this.floor(peer)) {
      port.close();
      return;
    }
    this.peerUp(peer, incarnation);
    const current = this.links.get(peer);
    if (current?.kind === "port" || current?.kind === "wire") {
      this.adoptExtra(peer, port);
      return;
    }
    this.setPort(peer, port, incarnation);
    if (current?.kind === "pending") for (const m of current.backlog) port.postMessage(toLink(m));
  }

  /** `incarnation` of a peer is up: links to older ones are stale, and a "down" mark is lifted. */
  peerUp(peer: NodeId, incarnation: number): void {
    if (incarnation < this.floor(peer)) return;
    this.alive.set(peer, incarnation);
    const link = this.links.get(peer);
    if (link?.kind === "down" || (link?.kind === "port" && link.incarnation < incarnation)) this.drop(peer);
  }

  /**
   * A peer on another host dialed us: answer on the same connection (one socket per pair, so TCP
   * acknowledgements ride on replies) unless we already have a link to it.
   */
  adoptWire(peer: NodeId, conn: WireConn): void {
    const current = this.links.get(peer);
    if (current?.kind === "port" || current?.kind === "wire") return;
    const link: Link = { kind: "wire", conn, batch: current?.kind === "pending" ? current.backlog : [] };
    this.links.set(peer, link);
    this.flush(link);
  }

  /** A data connection closed: links that used it are gone; the next send asks again. */
  wireClosed(conn: WireConn): void {
    for (const [peer, link] of this.links) if (link.kind === "wire" && link.conn === conn) this.links.delete(peer);
  }

  /** `incarnation` of a local peer died: forget links to it (not to a newer one) so the next send asks afresh. */
  peerDown(peer: NodeId, incarnation: number): void {
    if (incarnation < this.floor(peer) - 1) return;
    this.alive.set(peer, Math.max(this.floor(peer), incarnation + 1));
    const link = this.links.get(peer);
    if (link?.kind === "port" && link.incarnation > incarnation) return;
    this.drop(peer);
  }

  private drop(peer: NodeId): void {
    const link = this.links.get(peer);
    if (link?.kind === "pending") this.dropped += link.backlog.length;
    if (link?.kind === "port") link.port.close();
    if (link?.kind === "wire") link.conn.close();
    this.links.delete(peer);
  }

  close(): void {
    for (const peer of [...this.links.keys()]) this.drop(peer);
    for (const p of this.extra) p.close();
  }
}
