import { ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
import { VersionedLru } from "../shared/cache.ts";
import { fail, messageBody, ok, serveRouter, type HttpReply } from "../shared/http.ts";
import { route, type BookstoreApi } from "./http.ts";
import { E, MAX_REQUEST_ID_LENGTH, isIndex, isItem, isView, malformed, type Book, type FrontendConfig, type ReadQuery, type Topic, type View, type WriteResult } from "./messages.ts";

/** Silent heartbeats before a replica counts as down. */
const DOWN_AFTER_MISSES = 3;
/** "Never waits on a dead one longer than one request timeout." */
const READ_TIMEOUT_MS = 500;
const WRITE_TIMEOUT_MS = 1000;
/** A write (cost, quantity) gives up after this long and answers "outcome unknown". */
const WRITE_GIVE_UP_MS = 3000;
/** Over the order server's own answer time (1500 ms). */
const BUY_TIMEOUT_MS = 2500;
const BACKOFF_MS = 50;
const RETRY_AFTER = { "Retry-After": "1" };
/** `http` messages remembered to answer a duplicate delivery (a duplicate arrives within moments). */
const MAX_REMEMBERED_HTTP = 10_000;

interface Health {
  misses: number;
  mode?: string;
  last?: number;
}

type CachedRead = { book: Book } | { books: Array<{ item: number; title: string }> };

/**
 * The front end: REST API, read cache, load balancing, and the issuer of catalog views (read
 * core.ts for the scheme). It heartbeats every catalog and order server; a heartbeat carries the
 * current view, and its answer says whether the replica is up. Reads go round-robin over the live
 * members of the view, buys round-robin over the live order servers.
 */
export const frontend = defineRole<FrontendConfig>((node) => {
  const { catalogs, orders, port, heartbeatMs } = node.config;
  const db = node.storage;
  const cache = new VersionedLru<CachedRead>(node.config.cache === false ? 0 : node.config.cacheSize);
  let view: View = db.get<View>("meta/view") ?? { epoch: 1, primary: catalogs[0]!, members: [...catalogs] };
  db.put("meta/view", view);
  const health = new Map<string, Health>([...catalogs, ...orders].map((id) => [id, { misses: 0 }]));
  const served: Record<string, number> = {};
  let rrCatalog = 0;
  let rrOrder = 0;

  const alive = (id: string) => (health.get(id)?.misses ?? DOWN_AFTER_MISSES) < DOWN_AFTER_MISSES;
  const count = (k: string) => (served[k] = (served[k] ?? 0) + 1);

  function install(v: View, why: string): void {
    if (v.primary !== view.primary) cache.clear(); // the new primary may hold a write the old one never confirmed
    view = v;
    // Durable before anyone hears of it: a restarted front end never issues an epoch twice.
    db.put("meta/view", v);
    node.log.info(`catalog view ${v.epoch}: primary ${v.primary}, members ${v.members.join(",")} (${why})`);
    for (const c of catalogs) node.send(c, { type: "hb", view });
  }

  // ---- heartbeats and view changes ----

  async function heartbeat(): Promise<void> {
    const ids = [...catalogs, ...orders];
    const replies = await Promise.all(ids.map((id) => node.request<{ mode?: string; last?: number }>(id, { type: "hb", view }, { timeoutMs: Math.max(2 * heartbeatMs, 100) }).catch(() => null)));
    ids.forEach((id, i) => {
      const h = health.get(id)!;
      const r = replies[i];
      if (r === null || r === undefined) h.misses++;
      else {
        h.misses = 0;
        h.mode = typeof r.mode === "string" ? r.mode : undefined;
        h.last = isIndex(r.last) ? r.last : undefined;
      }
    });
    const p = health.get(view.primary)!;
    if (alive(view.primary) && p.mode !== "recovering") return;
    // The primary is gone (or restarted and must not lead): promote the lowest-numbered live member.
    const live = view.members.filter((m) => m !== view.primary && health.get(m)!.misses === 0 && health.get(m)!.mode === "member");
    if (live.length === 0) return;
    install({ epoch: view.epoch + 1, primary: live[0]!, members: live }, `${view.primary} ${alive(view.primary) ? "restarted" : "stopped answering"}`);
  }
  node.setInterval(heartbeatMs, heartbeat);

  node.on("view_change", (msg) => {
    const { epoch, primary, members } = msg.body;
    const next = { epoch: view.epoch + 1, primary, members };
    if (!isIndex(epoch) || !isView(next, catalogs)) throw malformed("view_change needs an epoch, a primary and members");
    // Only the current primary may change its own view, and only the view it knows (compare-and-set).
    if (epoch !== view.epoch || msg.src !== view.primary || primary !== view.primary) return node.reply(msg, { type: "view_change_ok", view });
    install(next, `asked by ${msg.src}`);
    node.reply(msg, { type: "view_change_ok", view });
  });

  node.on("invalidate", (msg) => {
    const { item, version } = msg.body;
    if (!isItem(item) || !isIndex(version)) throw malformed("invalidate needs an item and a version");
    cache.invalidate(`book:${item}`, version);
    node.reply(msg, { type: "invalidate_ok" });
  });

  // ---- reads ----

  /**
   * The highest version of each book any read has returned. A backup applies a write as soon as it
   * holds it, a moment before the primary commits it; a read that saw it there must not be followed
   * by one that does not, so an older answer is not given out (another member, or the same one a
   * moment later, has it). Bounded by the number of books.
   */
  const readFloor = new Map<number, number>();
  const fresh = (books: Book[]) => books.every((b) => b.version >= (readFloor.get(b.item) ?? 0));
  const raise = (books: Book[]) => {
    for (const b of books) if (b.version > (readFloor.get(b.item) ?? 0)) readFloor.set(b.item, b.version);
  };

  /**
   * Round-robin over live members; each tried for at most one timeout. An answer `fresh` refuses
   * (older than a read already returned) sends the read on to the next member, and around again
   * for at most one more read timeout.
   */
  async function read<R>(query: ReadQuery, books: (r: R) => Book[] = () => []): Promise<R | HttpReply> {
    const deadline = node.now() + READ_TIMEOUT_MS;
    const start = rrCatalog++;
    const tried = new Set<string>();
    for (let i = 0; ; i++) {
      const members = view.members.filter(alive);
      const untried = members.filter((m) => !tried.has(m));
      // Every live member gets one try; only the rounds after that (waiting for a fresh answer) are bounded.
      if (members.length === 0 || (untried.length === 0 && node.now() >= deadline)) break;
      const pool = untried.length > 0 ? untried : members;
      const target = pool[(start + i) % pool.length]!;
      tried.add(target);
      try {
        const r = await node.request<R>(target, { type: "read", query, epoch: view.epoch }, { timeoutMs: READ_TIMEOUT_MS });
        count(`read:${target}`);
        const bs = books(r);
        if (fresh(bs)) {
          raise(bs);
          return r;
        }
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, e.text);
      }
      if (untried.length <= 1) await node.sleep(BACKOFF_MS / 5);
    }
    return fail(503, E.noCatalog, RETRY_AFTER);
  }
  const isReply = (r: unknown): r is HttpReply => typeof r === "object" && r !== null && "status" in r;

  async function book(item: number): Promise<Book | HttpReply> {
    const key = `book:${item}`;
    const hit = cache.get(key);
    if (hit && "book" in hit && fresh([hit.book])) return hit.book;
    const ticket = cache.ticket();
    const r = await read<{ book: Book }>({ what: "lookup", item }, (x) => [x.book]);
    if (isReply(r)) return r;
    cache.fill(key, { book: r.book }, r.book.version, ticket);
    return r.book;
  }

  // ---- writes ----

  async function catalogWrite(op: { k: "cost"; item: number; cost: number } | { k: "qty"; item: number; delta: number }): Promise<WriteResult | HttpReply> {
    const rid = node.uid();
    const deadline = node.now() + WRITE_GIVE_UP_MS;
    let sent = false;
    for (let i = 0; node.now() < deadline; i++) {
      const primary = view.primary;
      if (alive(primary)) {
        try {
          sent = true;
          const r = await node.request<{ result: WriteResult }>(primary, { type: "write", rid, op }, { timeoutMs: WRITE_TIMEOUT_MS });
          cache.invalidate(`book:${op.item}`, r.result.version);
          return r.result;
        } catch (e) {
          if (!(e instanceof RpcError)) throw e;
          if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.itemNotFound);
          if (e.code === ErrorCode.PreconditionFailed) return fail(409, e.text);
          if (e.code === ErrorCode.MalformedRequest) return fail(400, e.text);
        }
      }
      await node.sleep(BACKOFF_MS * 2 ** Math.min(i, 4));
    }
    return fail(503, sent ? E.outcomeUnknown : E.noCatalog, RETRY_AFTER);
  }

  const known = (item: number) => item >= 1 && item <= 1e9;

  const api: BookstoreApi = {
    async list() {
      count("list");
      const r = await read<{ books: Book[] }>({ what: "list" }, (x) => x.books);
      if (isReply(r)) return r;
      return ok(r.books.map((b) => ({ item: b.item, title: b.title, topic: b.topic, cost: b.cost, quantity: b.quantity, version: b.version })));
    },
    async search(topic: Topic) {
      count("search");
      const key = `search:${topic}`;
      const hit = cache.get(key);
      if (hit && "books" in hit) return ok(hit.books);
      const ticket = cache.ticket();
      const r = await read<{ books: Array<{ item: number; title: string }> }>({ what: "search", topic });
      if (isReply(r)) return r;
      // Titles and topics never change: a search result stays true forever.
      cache.fill(key, { books: r.books }, 0, ticket);
      return ok(r.books);
    },
    async lookup(item) {
      count("lookup");
      if (!known(item)) return fail(404, E.itemNotFound);
      const b = await book(item);
      if (isReply(b)) return b;
      return ok({ item: b.item, title: b.title, topic: b.topic, cost: b.cost, quantity: b.quantity, version: b.version });
    },
    async quantity(item) {
      count("quantity");
      if (!known(item)) return fail(404, E.itemNotFound);
      const b = await book(item);
      if (isReply(b)) return b;
      return ok({ item: b.item, quantity: b.quantity, version: b.version });
    },
    async buy(item) {
      count("buy");
      if (!known(item)) return fail(404, E.itemNotFound);
      const live = orders.filter(alive);
      if (live.length === 0) return fail(503, E.noOrderServer, RETRY_AFTER);
      const target = live[rrOrder++ % live.length]!;
      const rid = node.uid();
      try {
        // One server per buy: its durable pending mark is what makes a retry safe, so never switch.
        const r = await node.request<{ number: number; version: number }>(target, { type: "buy", rid, item }, { timeoutMs: BUY_TIMEOUT_MS });
        count(`buy:${target}`);
        return ok({ order: r.number, item, version: r.version });
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        // A definite "no" is served too: a sold-out book must not make a balanced pair look lopsided.
        if (e.code === ErrorCode.PreconditionFailed || e.code === ErrorCode.KeyDoesNotExist) count(`buy:${target}`);
        if (e.code === ErrorCode.PreconditionFailed) return fail(409, E.unavailable);
        if (e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.itemNotFound);
        if (e.code === ErrorCode.Overloaded) return fail(503, e.text, RETRY_AFTER);
        return fail(503, E.outcomeUnknown, RETRY_AFTER);
      }
    },
    async updateCost(item, cost) {
      count("update_cost");
      if (!known(item)) return fail(404, E.itemNotFound);
      const r = await catalogWrite({ k: "cost", item, cost });
      return isReply(r) ? r : ok({ item: r.item, cost: r.cost, version: r.version });
    },
    async updateQuantity(item, delta) {
      count("update_quantity");
      if (!known(item)) return fail(404, E.itemNotFound);
      const r = await catalogWrite({ k: "qty", item, delta });
      return isReply(r) ? r : ok({ item: r.item, quantity: r.quantity, version: r.version });
    },
    async order(number) {
      count("order");
      if (number < 1) return fail(404, E.orderNotFound);
      const target = orders[(number - 1) % orders.length]!;
      if (!alive(target)) return fail(503, E.noOrderServer, RETRY_AFTER);
      try {
        const r = await node.request<{ order: unknown }>(target, { type: "get_order", number }, { timeoutMs: READ_TIMEOUT_MS * 2 });
        return ok(r.order);
      } catch (e) {
        if (e instanceof RpcError && e.code === ErrorCode.KeyDoesNotExist) return fail(404, E.orderNotFound);
        return fail(503, E.noOrderServer, RETRY_AFTER);
      }
    },
  };

  // One router, two doors: real HTTP and `http` messages from client nodes (which open no sockets).
  serveRouter(node, port, (method, path, body) => route(api, method, path, body));

  // A network that duplicates messages must not buy a book twice: a repeated (sender, session,
  // msg_id) gets the first request's answer. (Real HTTP over TCP is never duplicated.) Message ids
  // restart with their node, so a sender that may restart names its boot (`session`): a restarted
  // client's first request is not a duplicate of its previous life's.
  const recentHttp = new Map<string, Promise<HttpReply>>();
  node.on("http", async (msg) => {
    const { method, path, session } = msg.body;
    if (typeof method !== "string" || typeof path !== "string" || path.length > 2048) return node.reply(msg, { type: "http_ok", ...fail(400, "malformed request") });
    if (session !== undefined && (typeof session !== "string" || session.length > MAX_REQUEST_ID_LENGTH)) return node.reply(msg, { type: "http_ok", ...fail(400, "malformed session") });
    const key = `${msg.src}/${session ?? ""}/${msg.body.msg_id}`;
    let p = recentHttp.get(key);
    if (!p) {
      p = route(api, method, path, messageBody(msg.body.body));
      recentHttp.set(key, p);
      if (recentHttp.size > MAX_REMEMBERED_HTTP) recentHttp.delete(recentHttp.keys().next().value!);
    }
    const r = await p;
    node.reply(msg, { type: "http_ok", status: r.status, body: r.body, headers: r.headers });
  });

  return {
    inspect: () => ({ view, health: Object.fromEntries([...health].map(([k, h]) => [k, { ...h }])), cache: { size: cache.size, hits: cache.hits, misses: cache.misses }, served: { ...served } }),
  };
});
