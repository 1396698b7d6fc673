import { ErrorCode, RpcError, defineRole, type Body, type Message, type NodeId } from "../runtime/types.ts";
import { EVENTS, TEAMS, asScore, asTally, findEvent, findTeam, partitionNames } from "./domain.ts";
import { MAX_HTTP_BODY_BYTES } from "./http.ts";
import type { GetMedalTally, GetScore, IncrementMedalTally, MedalTallyOk, Register, RegisterOk, ScoreOk, ScoreUpdate, SetScore, TallyUpdate } from "./messages.ts";
import { Delivery, asEntry, isWinner, type OrderEntry } from "./order.ts";
import { Subscriptions } from "./subscriptions.ts";
import { frontendHttp } from "./tiered-http.ts";
import type { FrontendAlive, FrontendState, OrderJoin, OrderJoinOk, OrderOk, OrderTag, Ordered, TieredConfig } from "./tiered-messages.ts";
import { followClock } from "./timesync.ts";

/** Tries of one forward to the db (the same write id each time, so a retry never counts twice). */
const DB_ATTEMPTS = 3;
/** Per try: all tries fit in a client's default request timeout, so a lost message costs a retry here, not a failed request there. */
const DB_TIMEOUT_MS = 300;
/** A client counts as this front end's for this many heartbeats after its last request. */
const CLIENT_HEARTBEATS = 10;
/** Longest a request waits for its turn in the total order before it is refused (definitely: nothing was done). */
const DELIVERY_WAIT_MS = 3000;
const MAX_CLIENTS = 10_000;
const MAX_WAITERS = 10_000;
const MAX_NAMES = 64;

/**
 * A front end: serves the tablets' reads and Cacofonix's writes with obelix's protocol (messages.ts
 * and http.ts), forwarding each to the db; fans the db's pushes out to its push tablets. With total
 * ordering on, every client request first gets its place in the order from the sequencer (order.ts,
 * on the db) and is served only once this front end has delivered everything before it; every
 * 100th wins the raffle, and its reply says so. Holds no scores: a front end that restarts rejoins
 * the group and catches up the order from the sequencer's log.
 */
export const frontend = defineRole<TieredConfig>((node) => {
  const cfg = node.config;
  const db = cfg.db;
  const clock = followClock(node, cfg.dispatchers);
  const delivery = new Delivery();
  const waiters = new Map<number, Array<() => void>>();
  const subscriptions = new Subscriptions(node.storage, node.nodeIds.length, node.incarnation === 0);
  const clients = new Map<NodeId, number>();
  const state = { requests: 0, forwarded: 0, dbRetries: 0, pushes: 0, joined: false, refused: 0 };
  let lastFetch = -Infinity;

  function seen(client: NodeId): void {
    if (!clients.has(client) && clients.size >= MAX_CLIENTS) return;
    clients.set(client, node.now());
  }

  function deliver(entries: readonly unknown[]): void {
    const valid = entries.map(asEntry).filter((e): e is OrderEntry => e !== undefined);
    for (const e of delivery.receive(valid)) {
      const ws = waiters.get(e.seq);
      waiters.delete(e.seq);
      for (const w of ws ?? []) w();
    }
    if (delivery.hasGap() && node.now() - lastFetch > cfg.heartbeatMs / 4) void join();
  }

  async function join(): Promise<void> {
    lastFetch = node.now();
    try {
      for (let page = 0; page < 100; page++) {
        const from = delivery.delivered.length;
        const r = await node.request<OrderJoinOk>(db, { type: "order_join", delivered: from } satisfies OrderJoin, { timeoutMs: cfg.heartbeatMs * 2 });
        state.joined = true;
        deliver(Array.isArray(r.entries) ? r.entries : []);
        if (delivery.delivered.length >= Number(r.length) || delivery.delivered.length === from) break;
      }
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
    }
  }

  function delivered(seq: number): Promise<void> {
    if (seq <= delivery.delivered.length) return Promise.resolve();
    if (waiters.size >= MAX_WAITERS) return Promise.reject(new RpcError(ErrorCode.Overloaded, `${node.id} has ${MAX_WAITERS} requests waiting for their turn`));
    return new Promise((resolve, reject) => {
      const list = waiters.get(seq) ?? waiters.set(seq, []).get(seq)!;
      let done = false;
      const timer = node.setTimeout(DELIVERY_WAIT_MS, () => {
        if (!done) reject(new RpcError(ErrorCode.TemporarilyUnavailable, `position ${seq} of the total order did not reach ${node.id} in time`));
      });
      list.push(() => {
        done = true;
        node.clearTimer(timer);
        resolve();
      });
    });
  }

  /** The request's place in the total order (same rid, same place), once every earlier one is delivered here. */
  async function ordered(client: NodeId, op: string, rid: string): Promise<OrderTag | undefined> {
    if (!cfg.totalOrder) return undefined;
    const ok = await toDb<OrderOk>({ type: "order", rid, client, op });
    const e = asEntry(ok.entry);
    if (!e) throw new RpcError(ErrorCode.Crash, "the sequencer answered with a malformed entry");
    deliver([e]);
    await delivered(e.seq);
    return { seq: e.seq, raffle: isWinner(e.seq) };
  }

  /** Forward to the db, again on a timeout: every write carries a write id, so the db applies it once. */
  async function toDb<R>(body: Body): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await node.request<R>(db, body, { timeoutMs: DB_TIMEOUT_MS });
        state.forwarded++;
        return r;
      } catch (e) {
        if (!(e instanceof RpcError) || e.definite || attempt >= DB_ATTEMPTS) throw e;
        state.dbRetries++;
      }
    }
  }

  function tagged<B extends Body>(reply: B, tag: OrderTag | undefined): B {
    return tag ? { ...reply, order: tag } : reply;
  }

  async function serve(client: NodeId, op: string, rid: string, work: () => Promise<Body>): Promise<Body> {
    state.requests++;
    seen(client);
    const tag = await ordered(client, op, rid);
    return tagged(await work(), tag);
  }

  const ridOf = (msg: Message) => (typeof msg.body.write_id === "string" ? `w:${msg.body.write_id}` : `${msg.src}/${node.id}#${node.incarnation}/${msg.body.msg_id}`);

  const api = {
    getMedalTally: (team: unknown, client = "http", rid = node.uid()) =>
      serve(client, `get_medal_tally/${String(team).slice(0, 50)}`, rid, () => toDb<MedalTallyOk>({ type: "get_medal_tally", team } as GetMedalTally)),
    getScore: (event: unknown, client = "http", rid = node.uid()) => serve(client, `get_score/${String(event).slice(0, 50)}`, rid, () => toDb<ScoreOk>({ type: "get_score", event } as GetScore)),
    incrementMedalTally: (team: unknown, medal: unknown, password: unknown, writeId?: unknown, client = "http") => {
      const wid = typeof writeId === "string" ? writeId : node.uid();
      return serve(client, `increment_medal_tally/${String(team).slice(0, 50)}/${String(medal).slice(0, 20)}`, `w:${wid}`, () =>
        toDb({ type: "increment_medal_tally", team, medal, password, write_id: wid } as IncrementMedalTally),
      );
    },
    setScore: (event: unknown, scores: unknown, password: unknown, writeId?: unknown, client = "http") => {
      const wid = typeof writeId === "string" ? writeId : node.uid();
      return serve(client, `set_score/${String(event).slice(0, 50)}`, `w:${wid}`, () => toDb({ type: "set_score", event, scores, password, write_id: wid } as SetScore));
    },
  };

  node.on<GetMedalTally>("get_medal_tally", async (msg) => node.reply(msg, await api.getMedalTally(msg.body.team, msg.src, ridOf(msg))));
  node.on<GetScore>("get_score", async (msg) => node.reply(msg, await api.getScore(msg.body.event, msg.src, ridOf(msg))));
  node.on<IncrementMedalTally>("increment_medal_tally", async (msg) => {
    const b = msg.body;
    node.reply(msg, await api.incrementMedalTally(b.team, b.medal, b.password, (b.write_id as string | undefined) ?? `${msg.src}/${node.id}#${node.incarnation}/${b.msg_id}`, msg.src));
  });
  node.on<SetScore>("set_score", async (msg) => {
    const b = msg.body;
    node.reply(msg, await api.setScore(b.event, b.scores, b.password, (b.write_id as string | undefined) ?? `${msg.src}/${node.id}#${node.incarnation}/${b.msg_id}`, msg.src));
  });

  node.on<Register>("register", async (msg) => {
    if (msg.body.tablet !== msg.src) throw new RpcError(ErrorCode.Unauthorized, `${msg.src} may register itself only`);
    const { teams, events } = msg.body;
    for (const [name, list] of [["events", events], ["teams", teams]] as const) {
      if (!Array.isArray(list)) throw new RpcError(ErrorCode.MalformedRequest, `${name} must be a list of names`);
      if (list.length > MAX_NAMES) throw new RpcError(ErrorCode.TooLarge, `${name} lists ${list.length} names; at most ${MAX_NAMES}`);
    }
    const t = partitionNames(teams, findTeam);
    const e = partitionNames(events, findEvent);
    const reply = await serve(msg.src, "register", ridOf(msg), async () => {
      if (!subscriptions.set(msg.src, { teams: t.valid, events: e.valid })) throw new RpcError(ErrorCode.Overloaded, `${node.id} has no room for another push tablet`);
      // The current values come with the registration, as from obelix: a (re)registering tablet catches up at once.
      const tallies = await Promise.all(t.valid.map(async (team) => asTally((await toDb<MedalTallyOk>({ type: "get_medal_tally", team })).tally)!));
      const scores = await Promise.all(e.valid.map(async (event) => asScore((await toDb<ScoreOk>({ type: "get_score", event })).score)!));
      const invalid = { teams: t.invalid, events: e.invalid };
      const bad = [...t.invalid, ...e.invalid];
      return {
        type: "register_ok",
        teams: t.valid,
        events: e.valid,
        invalid,
        ...(bad.length > 0 ? { error: `registered the valid names only; unknown: ${bad.map((n) => JSON.stringify(n)).join(", ")}` } : {}),
        tallies,
        scores,
      } satisfies RegisterOk;
    });
    node.reply(msg, reply);
  });

  // The db pushes every change to every front end; each passes it on to its own interested tablets.
  node.on<TallyUpdate>("tally_update", (msg) => {
    if (msg.src !== db) return void state.refused++;
    const t = asTally(msg.body.tally);
    if (!t) return void state.refused++;
    for (const tablet of subscriptions.teamSubscribers(t.team)) {
      node.send(tablet, { type: "tally_update", tally: t } satisfies TallyUpdate);
      state.pushes++;
    }
  });
  node.on<ScoreUpdate>("score_update", (msg) => {
    if (msg.src !== db) return void state.refused++;
    const s = asScore(msg.body.score);
    if (!s) return void state.refused++;
    for (const tablet of subscriptions.eventSubscribers(s.event)) {
      node.send(tablet, { type: "score_update", score: s } satisfies ScoreUpdate);
      state.pushes++;
    }
  });

  node.on<Ordered>("ordered", (msg) => {
    if (msg.src !== db || !Array.isArray(msg.body.entries)) return void state.refused++;
    deliver(msg.body.entries);
  });

  function liveClients(): NodeId[] {
    const since = node.now() - cfg.heartbeatMs * CLIENT_HEARTBEATS;
    for (const [c, at] of clients) if (at < since) clients.delete(c);
    return [...clients.keys()].filter((c) => node.nodeIds.includes(c));
  }

  node.setInterval(cfg.heartbeatMs, () => {
    const body: FrontendAlive = { type: "frontend_alive", clients: liveClients() };
    for (const d of cfg.dispatchers) node.send(d, body);
    if (cfg.totalOrder) void join();
  });
  // Registered with the db for every team and event, renewed like a tablet's lease.
  const registerAtDb = async () => {
    try {
      await node.request(db, { type: "register", tablet: node.id, teams: [...TEAMS], events: [...EVENTS] } satisfies Register);
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
    }
  };
  void registerAtDb();
  node.setInterval(Math.max(cfg.heartbeatMs * 10, 1000), registerAtDb);
  if (cfg.totalOrder) void join();

  // Over HTTP a front end answers as obelix does (the tally or score itself), plus where the request landed in the order.
  const value = (key: "tally" | "score") => async (p: Promise<Body>) => {
    const r = await p;
    return r.order ? { ...(r[key] as object), order: r.order } : r[key];
  };
  const httpApi = {
    getMedalTally: (team: unknown) => value("tally")(api.getMedalTally(team)),
    getScore: (event: unknown) => value("score")(api.getScore(event)),
    incrementMedalTally: (team: unknown, medal: unknown, password: unknown, writeId?: unknown) => value("tally")(api.incrementMedalTally(team, medal, password, writeId)),
    setScore: (event: unknown, scores: unknown, password: unknown, writeId?: unknown) => value("score")(api.setScore(event, scores, password, writeId)),
  };

  if (typeof cfg.port === "number") {
    node.serveHttp(
      frontendHttp(httpApi, {
        clock: () => ({ node: node.id, clock: node.now(), adjustments: clock.adjustments, lastRound: clock.lastRound }),
        raffle: () => ({ delivered: delivery.delivered.length, winners: delivery.winners() }),
      }),
      { port: cfg.port, maxBodyBytes: MAX_HTTP_BODY_BYTES },
    );
  }

  return {
    inspect: (): FrontendState & { clock: typeof clock; order: OrderEntry[] } => ({
      totalOrder: cfg.totalOrder,
      delivered: delivery.delivered.length,
      // Copies: a snapshot must not change under the driver (in the simulator inspect is not serialised).
      chain: [...delivery.chain],
      winners: delivery.winners(),
      clients: liveClients(),
      requests: state.requests,
      forwarded: state.forwarded,
      dbRetries: state.dbRetries,
      pushes: state.pushes,
      joined: state.joined,
      refused: state.refused,
      clock,
      order: [...delivery.delivered],
    }),
  };
});
