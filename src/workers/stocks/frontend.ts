import { ErrorCode, RpcError, defineRole, type Body } from "../runtime/types.ts";
import { VersionedLru } from "../shared/cache.ts";
import { serveRouter } from "../shared/http.ts";
import { fail, messageBody, ok, route, stockData, type HttpReply, type StocksApi } from "./http.ts";
import {
  E,
  isIndex,
  isName,
  type FrontendConfig,
  type GetOrderOk,
  type HealthOk,
  type HttpMsg,
  type Invalidate,
  type LookupOk,
  type PlaceOrderOk,
  type Stock,
} from "./messages.ts";

const HEALTH_TIMEOUT_MS = 250;
/** Long enough for a new leader to pull what it lacks from its peers. */
const SET_LEADER_TIMEOUT_MS = 3000;
/** Covers the leader's catalog call and replication to a follower that is about to time out. */
const LEADER_TIMEOUT_MS = 1500;
/** After this long a trade or order query gives up with 503 (the client may retry). */
const GIVE_UP_MS = 6000;
const CATALOG_TIMEOUT_MS = 1000;
const ATTEMPTS = 8;
const WATCH_MS = 500;
const BOOT_WAIT_MS = 2000;
const BACKOFF_MS = 50;
const RETRY_AFTER_S = "1";
/** Catalog round trips remembered for the miss-cost figure (a ring). */
const RTT_SAMPLES = 1024;

/**
 * The frontend: REST API, lookup cache, and the choice of order leader (the highest-numbered
 * replica that answers a health check). Trades carry a request id made here, once per HTTP
 * request, and every retry reuses it so the catalog and the replicas can recognise it.
 */
export const frontend = defineRole<FrontendConfig>((node) => {
  const { catalog, replicas, port } = node.config;
  const cache = new VersionedLru<Stock>(node.config.cache === false ? 0 : node.config.cacheSize);
  let leader: string | undefined;
  let electing: Promise<string | undefined> | null = null;
  let everLed = false;
  const bootDeadline = node.now() + BOOT_WAIT_MS;
  let epoch = node.storage.get<number>("meta/epoch") ?? 0;
  const served: Record<string, number> = {};
  const catalogRttMs: number[] = [];
  let rttNext = 0;

  // ---- leader choice ----

  async function elect(): Promise<string | undefined> {
    const health = await Promise.all(replicas.map((r) => node.request<HealthOk>(r, { type: "health" }, { timeoutMs: HEALTH_TIMEOUT_MS }).catch(() => null)));
    for (const h of health) if (h && isIndex(h.epoch)) epoch = Math.max(epoch, h.epoch);
    const ready = replicas.filter((_, i) => health[i]?.ready === true);
    // On a cold start replicas finish recovering at slightly different times; give the highest a
    // moment rather than crowning whichever was quickest. Later elections do not wait: failover first.
    const highestAnswering = replicas.findLastIndex((_, i) => health[i] !== null);
    if (!everLed && node.now() < bootDeadline && highestAnswering >= 0 && health[highestAnswering]?.ready !== true) return undefined;
    // Highest id first: replicas are listed order-1..order-R.
    for (const candidate of ready.reverse()) {
      epoch++;
      // Persisted so a restarted frontend never hands out an epoch twice.
      node.storage.put("meta/epoch", epoch);
      try {
        await node.request(candidate, { type: "set_leader", leader: candidate, epoch }, { timeoutMs: SET_LEADER_TIMEOUT_MS });
      } catch (e) {
        node.log.warn("leader candidate refused", { candidate, error: String(e) });
        continue;
      }
      for (const r of replicas) if (r !== candidate) node.send(r, { type: "set_leader", leader: candidate, epoch });
      node.log.info("order leader chosen", { leader: candidate, epoch });
      everLed = true;
      return candidate;
    }
    return undefined;
  }

  function currentLeader(): Promise<string | undefined> {
    if (leader) return Promise.resolve(leader);
    electing ??= elect().then(
      (l) => ((leader = l), (electing = null), l),
      () => ((electing = null), undefined),
    );
    return electing;
  }

  const passThrough = (e: RpcError) =>
    e.code === ErrorCode.KeyDoesNotExist || e.code === ErrorCode.PreconditionFailed || e.code === ErrorCode.MalformedRequest || e.code === ErrorCode.Overloaded;

  /** Send to the leader; on a dead or deposed leader, choose again and retry the same body. */
  async function toLeader<R extends Body>(body: Body): Promise<R> {
    let last = "no order replica answers";
    const deadline = node.now() + GIVE_UP_MS;
    for (let i = 0; i < ATTEMPTS && node.now() < deadline; i++) {
      const l = await currentLeader();
      if (l === undefined) {
        await node.sleep(BACKOFF_MS * 2 ** Math.min(i, 4));
        continue;
      }
      try {
        return await node.request<R>(l, body, { timeoutMs: LEADER_TIMEOUT_MS });
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (passThrough(e)) throw e;
        last = e.text;
        // The catalog is down, not the leader: keep the leader and try again shortly.
        if (e.text !== E.catalogUnavailable && leader === l) leader = undefined;
        await node.sleep(BACKOFF_MS * 2 ** Math.min(i, 4));
      }
    }
    throw new RpcError(ErrorCode.TemporarilyUnavailable, last);
  }

  function unavailable(text: string): HttpReply {
    const known: string[] = [E.catalogUnavailable, E.overloaded];
    return fail(503, known.includes(text) ? text : "no order replica available", { "Retry-After": RETRY_AFTER_S });
  }

  // ---- the API ----

  const api: StocksApi = {
    async lookup(name) {
      served.lookup = (served.lookup ?? 0) + 1;
      const hit = cache.get(name);
      if (hit) return ok(stockData(hit));
      const ticket = cache.ticket();
      const t0 = node.now();
      try {
        const r = await node.request<LookupOk>(catalog, { type: "lookup", name }, { timeoutMs: CATALOG_TIMEOUT_MS });
        catalogRttMs[rttNext++ % RTT_SAMPLES] = node.now() - t0;
        cache.fill(name, r.stock, r.version, ticket);
        return ok(stockData(r.stock));
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.stockNotFound);
        return fail(503, E.catalogUnavailable, { "Retry-After": RETRY_AFTER_S });
      }
    },

    async trade({ name, type, quantity }) {
      served.trade = (served.trade ?? 0) + 1;
      const requestId = node.uid();
      try {
        const r = await toLeader<PlaceOrderOk>({ type: "place_order", requestId, name, tradeType: type, quantity });
        // The catalog already pushed this; doing it again here keeps "read your own trade" even
        // if that push was lost.
        cache.invalidate(name, isIndex(r.version) ? r.version : undefined);
        return ok({ transaction_number: r.number });
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.stockNotFound);
        if (e.code === ErrorCode.PreconditionFailed) return fail(409, E.notEnoughStock);
        if (e.code === ErrorCode.MalformedRequest) return fail(400, e.text);
        return unavailable(e.text);
      }
    },

    async orderQuery(number) {
      served.orderQuery = (served.orderQuery ?? 0) + 1;
      try {
        const r = await toLeader<GetOrderOk>({ type: "get_order", number });
        return ok(r.order);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.orderNotFound);
        return unavailable(e.text);
      }
    },
  };

  // One router, two doors: real HTTP (serveHttp, threaded mode) and `http` messages from client
  // nodes, which may not open sockets. Both reach `route` with the same method, path and body.
  serveRouter(node, port, (method, path, body) => route(api, method, path, body));

  node.on<HttpMsg>("http", async (msg) => {
    const { method, path } = msg.body;
    if (typeof method !== "string" || typeof path !== "string" || path.length > 2048) {
      return node.reply(msg, { type: "http_ok", ...fail(400, "malformed request") });
    }
    const r = await route(api, method, path, messageBody(msg.body.body));
    node.reply(msg, { type: "http_ok", status: r.status, body: r.body, headers: r.headers });
  });

  node.on<Invalidate>("invalidate", (msg) => {
    const { name, version } = msg.body;
    if (!isName(name) || !isIndex(version)) throw new RpcError(ErrorCode.MalformedRequest, "invalidate needs a name and a version");
    cache.invalidate(name, version);
    node.reply(msg, { type: "invalidate_ok" });
  });

  // Choose a leader now rather than on the first trade, and keep checking it between trades so a
  // dead leader is usually replaced before a client's request has to wait for it.
  void currentLeader();
  let watchMisses = 0;
  node.setInterval(WATCH_MS, async () => {
    if (electing) return;
    const l = leader;
    if (l === undefined) return void currentLeader();
    const h = await node.request<HealthOk>(l, { type: "health" }, { timeoutMs: HEALTH_TIMEOUT_MS }).catch(() => null);
    // An answer saying it no longer leads is final; silence must repeat (one lost message is not a death).
    if (h === null && ++watchMisses < 2) return;
    watchMisses = 0;
    if (h?.leading !== true && leader === l) {
      node.log.info("order leader stopped answering", { leader: l });
      leader = undefined;
      void currentLeader();
    }
  });

  return {
    inspect: () => {
      const rtt = catalogRttMs.slice().sort((a, b) => a - b);
      const catalogRttP50Ms = rtt.length ? rtt[Math.floor((rtt.length - 1) / 2)]! : null;
      return { leader, epoch, cache: { size: cache.size, hits: cache.hits, misses: cache.misses }, catalogRttP50Ms, served };
    },
  };
});
