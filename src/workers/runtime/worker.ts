/**
 * The worker-thread host of one node. It owns what node code may not touch: the MessagePorts to
 * peers, real timers, the sqlite file, the HTTP socket. The supervisor drives it over comlink
 * (control plane); node messages travel on direct MessageChannels (data plane).
 */
import * as Comlink from "comlink";
import hyperid from "hyperid";
import { join } from "node:path";
import { DRIVER_ID } from "../../driver/cluster.ts";
import { loadRoles } from "../registry.ts";
import { guardHttp } from "./http.ts";
import { Limits } from "./limits.ts";
import { defaultNetwork, isPerfect, plan, type NetworkSettings } from "./network.ts";
import { NodeRuntime, type Env, type NodeStats } from "./node.ts";
import { seededRandom } from "./random.ts";
import { SqliteStorage } from "./storage.ts";
import type { LogLevel, Message, NodeId, NodeSpec } from "./types.ts";

export interface WorkerInit {
  system: string;
  spec: NodeSpec;
  nodeIds: NodeId[];
  incarnation: number;
  seed: number;
  dataDir: string;
  logLevel: LogLevel;
  network: NetworkSettings;
}

/** What a worker asks of the supervisor. */
export interface SupervisorPort {
  /** A channel to dest; `remote` when it leads into the TCP bridge (messages then travel in batches). */
  requestLink(src: NodeId, dest: NodeId): Promise<{ port: MessagePort; remote: boolean } | null>;
  httpReady(id: NodeId, url: string): void;
}

/** A link to a peer: ready (remote links batch what one turn sends), being set up, or known down. */
/** Messages per batch to the bridge; a larger turn sends several batches. */
const MAX_BATCH = 1024;

type Link = { port: MessagePort; remote: boolean; batch: Message[] } | { backlog: Message[] } | { down: true };

class WorkerHost {
  private runtime!: NodeRuntime;
  private storage!: SqliteStorage;
  private supervisor!: Comlink.Remote<SupervisorPort>;
  private driverPort!: MessagePort;
  private readonly links = new Map<NodeId, Link>();
  private readonly extraPorts = new Set<MessagePort>();
  private net: NetworkSettings = defaultNetwork();
  private perfect = true;
  private netRng = seededRandom(0);
  private readonly fifo = new Map<NodeId, number>();
  private inFlight = 0;
  private server: ReturnType<typeof Bun.serve> | null = null;
  private id = "";
  private dropped = 0;

  async init(init: WorkerInit, supervisorPort: MessagePort, driverPort: MessagePort): Promise<void> {
    this.id = init.spec.id;
    this.supervisor = Comlink.wrap<SupervisorPort>(supervisorPort);
    this.driverPort = driverPort;
    driverPort.onmessage = (e) => this.receive(e.data);
    this.setNetwork(init.network);
    this.netRng = seededRandom(init.seed, `net:${init.spec.id}#${init.incarnation}`);
    const mode = init.spec.storage ?? "os";
    this.storage = new SqliteStorage(mode === "memory" ? null : join(init.dataDir, `${init.spec.id}.sqlite`), mode);
    const uid = hyperid({ urlSafe: true });
    const env: Env = {
      now: () => performance.timeOrigin + performance.now(),
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      transmit: (msg) => this.transmit(msg),
      storage: this.storage,
      emitLog: (level, node, text, fields) => {
        const t = new Date().toISOString().slice(11, 23);
        const line = `${t} ${node} ${level.toUpperCase()} ${text}${fields ? " " + JSON.stringify(fields) : ""}`;
        if (level === "error" || level === "warn") console.error(line);
        else console.log(line);
      },
      uid: () => uid(),
      serveHttp: (node, handler, opts) => {
        if (this.server) throw new Error(`${node} already serves HTTP`);
        const fetch = guardHttp(handler, opts, (e) => env.emitLog("error", node, `http handler failed: ${String(e)}`));
        this.server = Bun.serve({ port: opts.port, hostname: opts.hostname ?? "127.0.0.1", fetch, maxRequestBodySize: (opts.maxBodyBytes ?? 64 * 1024) + 1 });
        void this.supervisor.httpReady(node, this.server.url.toString());
      },
    };
    this.runtime = new NodeRuntime(
      { id: init.spec.id, role: init.spec.role, config: init.spec.config ?? {}, nodeIds: init.nodeIds, incarnation: init.incarnation, seed: init.seed, logLevel: init.logLevel },
      env,
    );
    const roles = await loadRoles(init.system);
    const role = roles[init.spec.role];
    if (!role) throw new Error(`system ${init.system} has no role "${init.spec.role}"`);
    await this.runtime.start(role);
  }

  private receive(data: unknown): void {
    // The bridge delivers batches; local peers single messages.
    if (Array.isArray(data)) {
      for (const m of data) this.receiveOne(m);
      return;
    }
    this.receiveOne(data);
  }

  private receiveOne(msg: unknown): void {
    // A port only ever carries messages for this node; anything else is refused inside deliver.
    if (typeof msg === "object" && msg !== null && (msg as Message).dest !== this.id) {
      this.dropped++;
      return;
    }
    this.runtime.deliver(msg);
  }

  private transmit(msg: Message): void {
    if (msg.dest === DRIVER_ID) {
      this.driverPort.postMessage(msg);
      return;
    }
    if (this.perfect) {
      this.post(msg);
      return;
    }
    const floor = Math.max(0, (this.fifo.get(msg.dest) ?? 0) - performance.now());
    const delays = plan(this.net, msg.src, msg.dest, this.netRng, floor);
    if (delays.length === 0) this.dropped++;
    for (const d of delays) {
      if (d <= 0) {
        this.post(msg);
        continue;
      }
      if (this.inFlight >= Limits.maxInFlight) {
        this.dropped++;
        continue;
      }
      this.fifo.set(msg.dest, Math.max(this.fifo.get(msg.dest) ?? 0, performance.now() + d));
      this.inFlight++;
      setTimeout(() => {
        this.inFlight--;
        this.post(msg);
      }, d);
    }
  }

  private post(msg: Message): void {
    const link = this.links.get(msg.dest);
    if (link && "port" in link) {
      if (!link.remote) {
        link.port.postMessage(msg);
        return;
      }
      // One port message (and one TCP frame) per turn instead of one per node message.
      const n = link.batch.push(msg);
      if (n === 1) queueMicrotask(() => this.flushBatch(link));
      else if (n >= MAX_BATCH) this.flushBatch(link);
      return;
    }
    if (link && "down" in link) {
      this.dropped++;
      return;
    }
    if (link && "backlog" in link) {
      if (link.backlog.length >= Limits.maxLinkBacklog) this.dropped++;
      else link.backlog.push(msg);
      return;
    }
    const backlog = [msg];
    this.links.set(msg.dest, { backlog });
    this.supervisor.requestLink(this.id, msg.dest).then(
      (got) => {
        const current = this.links.get(msg.dest);
        if (current && "port" in current) {
          // The peer opened a link to us meanwhile: use it, and keep this one only for receiving.
          if (got) this.adopt(msg.dest, got.port, got.remote, false);
          this.postAll(current, backlog);
          return;
        }
        if (!got) {
          this.dropped += backlog.length;
          this.links.set(msg.dest, { down: true });
          return;
        }
        this.postAll(this.adopt(msg.dest, got.port, got.remote, true), backlog);
      },
      () => this.links.delete(msg.dest),
    );
  }

  private flushBatch(link: { port: MessagePort; batch: Message[] }): void {
    const batch = link.batch.splice(0);
    if (batch.length > 0) link.port.postMessage(batch);
  }

  private postAll(link: { port: MessagePort; remote: boolean; batch: Message[] }, msgs: Message[]): void {
    if (link.remote) link.port.postMessage(msgs);
    else for (const m of msgs) link.port.postMessage(m);
  }

  private adopt(peer: NodeId, port: MessagePort, remote: boolean, asLink: boolean): { port: MessagePort; remote: boolean; batch: Message[] } {
    port.onmessage = (e) => this.receive(e.data);
    const link = { port, remote, batch: [] as Message[] };
    if (asLink) this.links.set(peer, link);
    else this.extraPorts.add(port);
    return link;
  }

  /** The supervisor hands us the far end of a channel a peer (or, with `remote`, the bridge for a remote peer) asked for. */
  acceptLink(peer: NodeId, port: MessagePort, remote = false): void {
    const current = this.links.get(peer);
    if (current && "port" in current) {
      this.adopt(peer, port, remote, false);
      return;
    }
    const link = this.adopt(peer, port, remote, true);
    if (current && "backlog" in current) this.postAll(link, current.backlog);
  }

  /** The peer crashed or restarted: forget its ports so the next send asks for a fresh link. */
  dropLink(peer: NodeId): void {
    const link = this.links.get(peer);
    if (link && "port" in link) link.port.close();
    this.links.delete(peer);
  }

  setNetwork(net: NetworkSettings): void {
    this.net = net;
    this.perfect = isPerfect(net);
  }

  pause(): void {
    this.runtime.pause();
  }

  resume(): void {
    this.runtime.resume();
  }

  stats(): NodeStats {
    const s = this.runtime.snapshotStats();
    return { ...s, refused: s.refused + this.dropped };
  }

  inspect(): unknown {
    return this.runtime.inspect();
  }

  async stop(): Promise<void> {
    try {
      await this.runtime.stop();
    } finally {
      this.server?.stop(true);
      this.storage.close();
    }
  }
}

export type WorkerApi = Pick<WorkerHost, "init" | "acceptLink" | "dropLink" | "setNetwork" | "pause" | "resume" | "stats" | "inspect" | "stop">;

Comlink.expose(new WorkerHost(), globalThis as unknown as Comlink.Endpoint);
