/**
 * What the dashboard shows of each system: a compact panel built on the driver from the nodes'
 * inspect() snapshots (and a few read-only requests), and the actions a page may ask for.
 *
 * To add a system's panel: add an entry to VIEWS here with a `digest` that returns
 * JSON-able data, and a renderer with the same name in page/panels.ts. Systems without an entry get
 * the generic panel (every node's role and status) and still have the graph, charts and timeline.
 */
import type { Cluster, NodeInfo } from "../../driver/cluster.ts";
import type { NodeId } from "../../workers/runtime/types.ts";

export interface PanelDigest {
  /** The node currently leading, if the system has one: changes go on the timeline. */
  leader?: string | null;
  /** Data for the page's renderer of this system; JSON-able and small (it is sent several times a second). */
  panel: unknown;
}

/** A request the page may make on a system (POST /systems/<system>/<action> with a JSON body). */
export type SystemAction = (cluster: Cluster, body: unknown) => Promise<unknown>;

export interface SystemView {
  /** Roles whose requests are the workload: their rate and latency are the run's ops/s and p50/p99. */
  clientRoles: string[];
  digest(cluster: Cluster, nodes: readonly NodeInfo[]): Promise<PanelDigest>;
  actions?: Record<string, SystemAction>;
}

/** A bad request from the page: answered 400, changes nothing. */
export class ActionError extends Error {}

const up = (nodes: readonly NodeInfo[], role: string) => nodes.filter((n) => n.role === role && n.status === "running");

async function inspectAll<T>(cluster: Cluster, ids: readonly NodeId[]): Promise<Map<NodeId, T>> {
  const out = new Map<NodeId, T>();
  const snaps = await Promise.all(ids.map((id) => cluster.inspect<T>(id).catch(() => null)));
  ids.forEach((id, i) => {
    const s = snaps[i];
    if (s !== null && s !== undefined) out.set(id, s);
  });
  return out;
}

// ---- echo ----

const echo: SystemView = {
  clientRoles: ["client"],
  async digest(cluster, nodes) {
    const server = await cluster.inspect<{ served: number }>("server").catch(() => null);
    // Per client from the runtime's own counters (no inspect: a client's snapshot carries thousands of samples).
    const clients = nodes
      .filter((n) => n.role === "client")
      .map((n) => ({ id: n.id, status: n.status, answered: n.stats?.repliesOk ?? 0, pending: n.stats?.pendingRequests ?? 0, lastMs: n.stats?.recentLatencyMs.at(-1) ?? null }));
    return { panel: { served: server?.served ?? null, clients } };
  },
};

// ---- olympics ----

interface Tally { team: string; gold: number; silver: number; bronze: number; version: number }
interface Score { event: string; scores: Record<string, number>; version: number }
interface TabletLike { mode: "push" | "pull"; tallies: Record<string, Tally>; scores: Record<string, Score>; changes: number }
/** Tablets inspected per digest: their snapshots carry sample arrays, so a big run shows a few. */
const MAX_TABLETS_SHOWN = 12;

interface DispatcherSnap { leader: string; isLeader: boolean; loads: Record<string, number>; syncRounds: number }
interface RaffleWinner { seq: number; origin: string; client: string; op: string }
/** Raffle winners sent to the page (the newest): one per 100 ordered writes, so a long run has many. */
const WINNERS_SHOWN = 10;

/** The tiered topology's extras: who leads the dispatchers, front-end loads, clocks, the raffle. */
async function tieredDigest(cluster: Cluster, nodes: readonly NodeInfo[]) {
  const dispatcherIds = nodes.filter((n) => n.role === "dispatcher").map((n) => n.id);
  const frontendIds = nodes.filter((n) => n.role === "frontend").map((n) => n.id);
  const ds = await inspectAll<DispatcherSnap>(cluster, up(nodes, "dispatcher").map((n) => n.id));
  const leading = [...ds].find(([, d]) => d.isLeader);
  const leader = leading?.[0] ?? [...ds.values()].find((d) => d.leader)?.leader ?? null;
  // Loads as the leading dispatcher assigns them (clients registered per live front end).
  const loads = leading?.[1].loads ?? {};
  // Every front end delivers the same total order, so one live front end's raffle is the raffle.
  // Read over its HTTP route, not inspect: its snapshot carries the whole delivered order.
  let raffle: { delivered: number; winners: RaffleWinner[] } | null = null;
  for (const fe of up(nodes, "frontend")) {
    try {
      const res = await cluster.fetch(fe.id, new Request("http://node/raffle"));
      if (!res.ok) continue;
      const r = (await res.json()) as { delivered: number; winners: RaffleWinner[] };
      raffle = { delivered: r.delivered, winners: r.winners.slice(-WINNERS_SHOWN).reverse().map((w) => ({ seq: w.seq, origin: w.origin, client: w.client, op: w.op })) };
      break;
    } catch {
      // Not serving HTTP (crashed a moment ago): ask the next one.
    }
  }
  const synced = new Set([...dispatcherIds, ...frontendIds, ...nodes.filter((n) => n.role === "db").map((n) => n.id)]);
  return {
    leader,
    tiered: {
      leader,
      dispatchers: dispatcherIds.map((id) => {
        const d = ds.get(id);
        return d ? { id, leader: d.isLeader, syncRounds: d.syncRounds } : { id, down: true };
      }),
      frontends: frontendIds.map((id) => ({ id, status: nodes.find((n) => n.id === id)?.status ?? "down", load: loads[id] ?? null })),
      clocks: nodes.map((n) => ({ id: n.id, synced: synced.has(n.id), status: n.status, errorMs: n.status === "running" && n.stats ? n.stats.clockErrorMs : null })),
      raffle,
    },
  };
}

const olympics: SystemView = {
  clientRoles: ["cacofonix", "tablet", "tiered-cacofonix", "tiered-tablet"],
  async digest(cluster, nodes) {
    // The tiered topology keeps the board in the db node; tablets run as "tiered-tablet".
    const isTiered = nodes.some((n) => n.role === "db");
    const boardNode = isTiered ? "db" : "obelix";
    const tabletRole = isTiered ? "tiered-tablet" : "tablet";
    const board = await cluster.inspect<{ tallies: Tally[]; scores: Score[] }>(boardNode).catch(() => null);
    const caco = await cluster.inspect<{ updates: number; failed: number; mode: string }>("cacofonix").catch(() => null);
    const tabletIds = up(nodes, tabletRole).slice(0, MAX_TABLETS_SHOWN).map((n) => n.id);
    const tablets = await inspectAll<TabletLike>(cluster, tabletIds);
    const versionOf = new Map<string, number>();
    for (const t of board?.tallies ?? []) versionOf.set(`t:${t.team}`, t.version);
    for (const s of board?.scores ?? []) versionOf.set(`s:${s.event}`, s.version);
    const tabletRows = [...tablets].map(([id, t]) => {
      // Staleness: how many versions behind the board this tablet's items are, summed.
      let behind = 0;
      for (const [team, v] of Object.entries(t.tallies ?? {})) behind += Math.max(0, (versionOf.get(`t:${team}`) ?? 0) - v.version);
      for (const [event, v] of Object.entries(t.scores ?? {})) behind += Math.max(0, (versionOf.get(`s:${event}`) ?? 0) - v.version);
      return { id, mode: t.mode, changes: t.changes, items: Object.keys(t.tallies ?? {}).length + Object.keys(t.scores ?? {}).length, behind };
    });
    const tiered = isTiered ? await tieredDigest(cluster, nodes) : null;
    return {
      ...(tiered ? { leader: tiered.leader } : {}),
      panel: {
        board: boardNode,
        tallies: board?.tallies ?? null,
        scores: board?.scores ?? null,
        cacofonix: caco ? { updates: caco.updates, failed: caco.failed, mode: caco.mode } : null,
        tablets: tabletRows,
        tabletsTotal: nodes.filter((n) => n.role === tabletRole).length,
        tiered: tiered?.tiered ?? null,
      },
    };
  },
};

// ---- bookstore ----

interface BookRow { item: number; title: string; topic: string; cost: number; quantity: number; version: number }
interface BookView { epoch: number; primary: string; members: string[] }
interface CatalogSnap { mode: string; epoch: number; last: number; served: { reads: number; writes: number; pulls: number }; books: BookRow[] }
interface FrontSnap { view: BookView | null; cache: { size: number; hits: number; misses: number }; served: Record<string, number> }
interface OrderSnap { orders: number; pending: number; served: { buys: number; queries: number } }

const bookstore: SystemView = {
  clientRoles: ["client"],
  async digest(cluster, nodes) {
    const front = await cluster.inspect<FrontSnap>("frontend").catch(() => null);
    const catalogIds = nodes.filter((n) => n.role === "catalog").map((n) => n.id);
    const orderIds = nodes.filter((n) => n.role === "order").map((n) => n.id);
    const cats = await inspectAll<CatalogSnap>(cluster, up(nodes, "catalog").map((n) => n.id));
    const ords = await inspectAll<OrderSnap>(cluster, up(nodes, "order").map((n) => n.id));
    const view = front?.view ?? null;
    // The front end issues the views, so its view names the primary; a catalog's own mode says the same once it has heard it.
    const primary = view?.primary ?? [...cats].find(([, c]) => c.mode === "primary")?.[0] ?? null;
    // Books as the primary holds them (every acknowledged write is there), else the most advanced live replica.
    let source: [NodeId, CatalogSnap] | undefined = primary && cats.has(primary) ? [primary, cats.get(primary)!] : undefined;
    if (!source) for (const e of cats) if (!source || e[1].last > source[1].last) source = e;
    const routed = front?.served ?? {};
    return {
      leader: primary,
      panel: {
        primary,
        epoch: view?.epoch ?? null,
        members: view?.members ?? [],
        booksFrom: source?.[0] ?? null,
        books: (source?.[1].books ?? []).map((b) => ({ item: b.item, title: b.title, topic: b.topic, cost: b.cost, quantity: b.quantity, version: b.version })),
        cache: front?.cache ?? null,
        requests: Object.fromEntries(Object.entries(routed).filter(([k]) => !k.includes(":"))),
        catalogs: catalogIds.map((id) => {
          const c = cats.get(id);
          const base = { id, routedReads: routed[`read:${id}`] ?? 0 };
          return c ? { ...base, mode: c.mode, last: c.last, reads: c.served.reads, writes: c.served.writes, pulls: c.served.pulls } : { ...base, mode: "down" };
        }),
        orders: orderIds.map((id) => {
          const o = ords.get(id);
          const base = { id, routedBuys: routed[`buy:${id}`] ?? 0 };
          return o ? { ...base, up: true, log: o.orders, pending: o.pending, buys: o.served.buys, queries: o.served.queries } : { ...base, up: false };
        }),
      },
    };
  },
};

// ---- stocks ----

interface StockRow { name: string; price: number; quantity: number; version: number }
interface Order { number: number; name: string; type: string; quantity: number; epoch: number }
const ORDERS_SHOWN = 12;

const stocks: SystemView = {
  clientRoles: ["client"],
  async digest(cluster, nodes) {
    const front = await cluster.inspect<{ leader?: string; epoch?: number; cache: { size: number; hits: number; misses: number } }>("frontend").catch(() => null);
    const catalog = await cluster.inspect<{ trades: number; lookups: number; stocks: Array<StockRow | null> }>("catalog").catch(() => null);
    const replicaIds = nodes.filter((n) => n.role === "replica").map((n) => n.id);
    const reps = await inspectAll<{ state: string; epoch: number; leader: string | null; last: number }>(cluster, up(nodes, "replica").map((n) => n.id));
    const leader = [...reps].find(([, r]) => r.state === "leader")?.[0] ?? front?.leader ?? null;
    let orders: Order[] = [];
    const lr = leader ? reps.get(leader) : undefined;
    if (leader && lr) {
      const r = await cluster.request<{ entries: Order[] }>(leader, { type: "log_tail", after: Math.max(-1, lr.last - ORDERS_SHOWN), limit: ORDERS_SHOWN }, 1000).catch(() => null);
      orders = (r?.entries ?? []).slice().reverse();
    }
    return {
      leader,
      panel: {
        stocks: (catalog?.stocks ?? []).filter((s): s is StockRow => s !== null),
        trades: catalog?.trades ?? null,
        lookups: catalog?.lookups ?? null,
        cache: front?.cache ?? null,
        leader,
        replicas: replicaIds.map((id) => ({ id, ...(reps.get(id) ?? { state: "down" }) })),
        orders,
      },
    };
  },
};

// ---- paxos ----

interface ReplicaSnap { role: string; ballot: number; leader: string | null; commit: number; nextSlot: number; noops: number; elections: number; skipSlots: number[] }
type ChatOp = { id: string; c: string; s: number; t: string };
const SLOTS_SHOWN = 24;
const MAX_CHAT_CHARS = 280;
const CHAT_ATTEMPTS = 6;
/** One session per driver process: sequence numbers must never repeat within a session. */
const chatSession = `dashboard-${Date.now().toString(36)}`;
let chatSeq = 0;

/** Slots searched back from the commit point for a message just committed (a busy log moves fast). */
const FIND_SLOTS = 8 * 1024;

/** The committed slot holding op `id`, read back from `replica`'s log; null if not found in the last FIND_SLOTS. */
async function findSlot(cluster: Cluster, replica: NodeId, id: string): Promise<number | null> {
  const head = await cluster.request<{ commit: number }>(replica, { type: "log_read", from: 1, limit: 1 }, 2000);
  for (let to = head.commit; to >= 1 && head.commit - to < FIND_SLOTS; to -= 1024) {
    const from = Math.max(1, to - 1023);
    const r = await cluster.request<{ entries: Array<[number, ChatOp[] | null]> }>(replica, { type: "log_read", from, limit: to - from + 1 }, 2000);
    for (const [slot, v] of r.entries) if (v?.some((o) => o.id === id)) return slot;
  }
  return null;
}

function paxosLeader(reps: Map<NodeId, ReplicaSnap>): string | null {
  for (const [id, r] of reps) if (r.role === "leader") return id;
  for (const r of reps.values()) if (r.leader) return r.leader;
  return null;
}

const paxos: SystemView = {
  clientRoles: ["client"],
  async digest(cluster, nodes) {
    const replicaIds = nodes.filter((n) => n.role === "replica").map((n) => n.id);
    const reps = await inspectAll<ReplicaSnap>(cluster, up(nodes, "replica").map((n) => n.id));
    const leader = paxosLeader(reps);
    // The log as the most advanced live replica knows it; slots past its commit are in flight.
    let best: [NodeId, ReplicaSnap] | undefined;
    for (const e of reps) if (!best || e[1].commit > best[1].commit) best = e;
    let slots: Array<{ slot: number; ops: Array<{ c: string; t: string }> | null }> = [];
    if (best) {
      const from = Math.max(1, best[1].commit - SLOTS_SHOWN + 1);
      const r = await cluster.request<{ entries: Array<[number, ChatOp[] | null]> }>(best[0], { type: "log_read", from, limit: SLOTS_SHOWN }, 1000).catch(() => null);
      slots = (r?.entries ?? []).map(([slot, v]) => ({ slot, ops: v === null ? null : v.slice(0, 4).map((o) => ({ c: o.c, t: o.t.slice(0, 80) })), more: v === null ? 0 : Math.max(0, v.length - 4) }));
    }
    return {
      leader,
      panel: {
        leader,
        ballot: best?.[1].ballot ?? null,
        commit: best?.[1].commit ?? 0,
        nextSlot: leader ? reps.get(leader)?.nextSlot ?? null : null,
        replicas: replicaIds.map((id) => {
          const r = reps.get(id);
          return r ? { id, role: r.role, ballot: r.ballot, commit: r.commit, nextSlot: r.nextSlot, noops: r.noops, elections: r.elections } : { id, role: "down" };
        }),
        slots,
        session: chatSession,
      },
    };
  },
  actions: {
    /** Send one chat message through the log; resolves once a leader has executed it. */
    async chat(cluster, body) {
      const text = (body as { text?: unknown } | null)?.text;
      if (typeof text !== "string" || text.trim().length === 0) throw new ActionError("text must be a non-empty string");
      if (text.length > MAX_CHAT_CHARS) throw new ActionError(`text must be at most ${MAX_CHAT_CHARS} characters`);
      if (/[\u009e\u009f]/.test(text)) throw new ActionError("text must not contain U+009E or U+009F");
      const seq = chatSeq++;
      const op = { id: `${chatSession}:${seq}`, c: chatSession, s: seq, lw: seq, t: text };
      const replicas = cluster.nodes.filter((n) => n.role === "replica").map((n) => n.id);
      let target: string = replicas.find((id) => cluster.status(id) === "running") ?? replicas[0]!;
      // The page is a client too: its message goes into the history (as a paxos client's would), or
      // the total-order check would find a message in the log that no client sent.
      const record = (ev: "invoke" | "complete", fields: Record<string, unknown>) =>
        cluster.history?.add({ type: "history", ev, process: chatSession, incarnation: 0, n: seq, t: cluster.now(), ...fields });
      record("invoke", { f: "send", value: op.id, fields: { seq } });
      // Short attempts: the whole action stays well inside the HTTP server's 10 s idle timeout.
      for (let attempt = 0; attempt < CHAT_ATTEMPTS; attempt++) {
        const r = await cluster.request<{ type: string; leader?: string | null }>(target, { type: "chat", op }, 1000).catch((e: Error) => ({ type: "error", text: e.message, leader: null }));
        if (r.type === "chat_ok") {
          record("complete", { outcome: "ok" });
          // Acknowledged means executed at the leader: its log has it in a committed slot.
          const slot = await findSlot(cluster, target, op.id).catch(() => null);
          return { committed: true, id: op.id, via: target, slot, text };
        }
        // Redirected or no answer: same op (same id and seq, so it is applied once) to the leader named, or the next replica.
        const next = r.leader && replicas.includes(r.leader) && r.leader !== target ? r.leader : replicas[(replicas.indexOf(target) + 1) % replicas.length]!;
        target = next;
        if (!r.leader) await cluster.sleep(100);
      }
      throw new Error(`no replica accepted the message after ${CHAT_ATTEMPTS} attempts (is a majority up?)`);
    },
  },
};

export const VIEWS: Record<string, SystemView> = { echo, olympics, stocks, paxos, bookstore };

/** Every node up or not, for systems without a view of their own. */
export const GENERIC_VIEW: SystemView = {
  clientRoles: [],
  async digest(_cluster, nodes) {
    return { panel: { nodes: nodes.map((n) => ({ id: n.id, role: n.role, status: n.status })) } };
  },
};
