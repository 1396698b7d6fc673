import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
import { CatalogCore, type Answer, type Out, type PeerSend, type Token } from "./core.ts";
import { BOOKS, E, PULL_BATCH, isEntries, isIndex, isItem, isOp, isRequestId, isView, malformed, parseTopic, type Book, type CatalogConfig, type LogEntry, type ReadQuery, type View } from "./messages.ts";

const REPLICATE_TIMEOUT_MS = 300;
const PULL_TIMEOUT_MS = 1000;
const PULL_EVERY_MS = 200;
const TICK_MS = 50;
const INVALIDATE_TIMEOUT_MS = 200;
const INVALIDATE_ATTEMPTS = 4;
/** Writes queued at the primary before it refuses more. */
const MAX_QUEUE = 1000;
/** Recovery-log entries kept (and request ids remembered): a joiner further behind gets a snapshot. */
export const LOG_KEEP = 100_000;

const bookKey = (item: number) => seqKey("b/", item);
const entryKey = (seq: number) => seqKey("e/", seq);
const dedupKey = (rid: string) => `d/${rid}`;

/**
 * A catalog replica: the books in durable storage plus a recovery log of every write, replicated
 * by the pure core in core.ts (read it for the scheme). This shell persists what the core says
 * before it sends or answers anything, pushes cache invalidations to the front end before a write
 * is acknowledged, and serves reads and log pulls straight from storage.
 */
export const catalog = defineRole<CatalogConfig>((node) => {
  const { catalogs, frontend, bug } = node.config;
  const logKeep = node.config.logKeep ?? LOG_KEEP;
  const db = node.storage;

  db.transaction(() => {
    for (const b of BOOKS) if (db.get(bookKey(b.item)) === undefined) db.put(bookKey(b.item), b);
    // The catalog outlives a run: what this run starts from (its first boot's books, before it
    // serves anything) is what the checks account for the run's writes from.
    if (node.incarnation === 0) db.put("meta/runStart", { last: db.get<number>("meta/last") ?? 0, quantities: db.scan<Book>({ prefix: "b/" }).map(([, b]) => [b.item, b.quantity]) });
  });
  const runStart = db.get<{ last: number; quantities: Array<[number, number]> }>("meta/runStart") ?? null;
  const core = new CatalogCore(
    { me: node.id, catalogs, frontend, replicateTimeoutMs: REPLICATE_TIMEOUT_MS, pullEveryMs: PULL_EVERY_MS, maxQueue: MAX_QUEUE, oversell: bug === "oversell" },
    {
      view: db.get<View>("meta/view") ?? null,
      last: db.get<number>("meta/last") ?? 0,
      books: db.scan<Book>({ prefix: "b/" }).map(([, b]) => b),
    },
    (rid) => {
      const seq = db.get<number>(dedupKey(rid));
      return seq === undefined ? undefined : db.get<LogEntry>(entryKey(seq));
    },
  );
  node.log.info("catalog up", { mode: core.mode, last: core.last, epoch: core.epoch });

  const served = { reads: 0, writes: 0, pulls: 0 };
  let nextToken = 1;
  const pending = new Map<Token, (a: Answer) => void>();

  /** Durable first (one transaction), then messages, then answers. */
  function handle(out: Out): void {
    if (out.view || out.entries.length > 0 || out.snapshot) {
      db.transaction(() => {
        if (out.view) db.put("meta/view", out.view);
        if (out.snapshot) for (const b of out.snapshot.books) db.put(bookKey(b.item), b);
        for (const e of out.entries) {
          db.put(entryKey(e.seq), e);
          db.put(dedupKey(e.rid), e.seq);
          db.put(bookKey(e.result.item), { ...core.books.get(e.result.item)!, ...e.result });
          if (e.seq > logKeep) {
            const old = db.get<LogEntry>(entryKey(e.seq - logKeep));
            if (old) {
              db.delete(entryKey(old.seq));
              db.delete(dedupKey(old.rid));
            }
          }
        }
        db.put("meta/last", core.last);
      });
    }
    for (const ev of out.events) node.log.info(ev, { epoch: core.epoch, last: core.last });
    for (const s of out.send) dispatch(s);
    for (const a of out.answers) {
      const resolve = pending.get(a.token);
      pending.delete(a.token);
      resolve?.(a);
    }
  }

  function dispatch(s: PeerSend): void {
    const m = s.msg;
    switch (m.type) {
      case "replicate": {
        const seq = m.entries[m.entries.length - 1]!.seq;
        node.request<{ ok: boolean; epoch: number }>(s.to, m, { timeoutMs: REPLICATE_TIMEOUT_MS }).then(
          (r) => handle(core.onReplicateReply(s.to, seq, { ok: r.ok === true, epoch: isIndex(r.epoch) ? r.epoch : 0 }, node.now())),
          () => handle(core.onReplicateReply(s.to, seq, null, node.now())),
        );
        return;
      }
      case "view_change":
        node.request<{ view: unknown }>(s.to, m, { timeoutMs: REPLICATE_TIMEOUT_MS }).then(
          (r) => {
            if (isView(r.view, catalogs)) handle(core.onView(r.view, node.now()));
          },
          () => {}, // the tick asks again
        );
        return;
      case "pull":
        node.request<{ entries: unknown; last: unknown; snapshot?: { books: Book[]; last: number } }>(s.to, m, { timeoutMs: PULL_TIMEOUT_MS }).then(
          (r) => {
            const snapLast = isIndex(r.snapshot?.last) ? r.snapshot!.last : undefined;
            const first = (snapLast !== undefined && snapLast > core.last ? snapLast : m.after) + 1;
            const ok = isIndex(r.last) && isEntries(r.entries, first, PULL_BATCH);
            handle(core.onPullReply(s.to, ok ? { entries: r.entries as LogEntry[], last: r.last as number, snapshot: snapLast !== undefined ? r.snapshot : undefined } : null, node.now()));
          },
          () => handle(core.onPullReply(s.to, null, node.now())),
        );
        return;
      case "join":
        node.request<{ view?: unknown }>(s.to, m, { timeoutMs: PULL_TIMEOUT_MS }).then(
          (r) => handle(core.onJoinReply(isView(r.view, catalogs) ? { view: r.view } : null, node.now())),
          () => handle(core.onJoinReply(null, node.now())),
        );
        return;
    }
  }

  function submit(job: { kind: "write"; rid: string; op: LogEntry["op"] } | { kind: "join"; from: string; last: number }): Promise<Answer> {
    const token = nextToken++;
    const p = new Promise<Answer>((resolve) => pending.set(token, resolve));
    handle(core.submit({ ...job, token }, node.now()));
    return p;
  }

  const invalidate = async (e: LogEntry): Promise<boolean> => {
    const body = { type: "invalidate", item: e.result.item, version: e.result.version, seq: e.seq, epoch: e.epoch };
    for (let i = 0; i < INVALIDATE_ATTEMPTS; i++) {
      try {
        await node.request(frontend, body, { timeoutMs: INVALIDATE_TIMEOUT_MS });
        return true;
      } catch (err) {
        if (err instanceof RpcError && err.definite) return false;
      }
    }
    return false;
  };

  node.on("write", async (msg) => {
    const { rid, op } = msg.body;
    if (!isRequestId(rid)) throw malformed("write needs a request id");
    if (!isOp(op)) throw malformed("write needs a valid op");
    const a = await submit({ kind: "write", rid, op });
    if ("error" in a) {
      const code = { unavailable: ErrorCode.PreconditionFailed, below_zero: ErrorCode.PreconditionFailed, not_found: ErrorCode.KeyDoesNotExist, overloaded: ErrorCode.Overloaded }[a.error.code as string] ?? ErrorCode.TemporarilyUnavailable;
      throw new RpcError(code, a.error.text);
    }
    if (!("entry" in a)) throw new Error("write answered with a join");
    served.writes++;
    // Durable on every member; caches must forget the old value before anyone hears "done". A
    // duplicate pushes again: the first attempt may have died before pushing.
    if (bug !== "no-invalidate" && !(await invalidate(a.entry))) throw new RpcError(ErrorCode.Timeout, "front end did not confirm the invalidation");
    node.reply(msg, { type: "write_ok", seq: a.entry.seq, result: a.entry.result, duplicate: a.duplicate });
  });

  node.on("replicate", (msg) => {
    const { view, entries } = msg.body;
    if (!isView(view, catalogs) || !Array.isArray(entries) || entries.length === 0 || !isEntries(entries, (entries[0] as LogEntry)?.seq)) throw malformed("malformed replicate");
    const { out, reply } = core.onReplicate(view, entries);
    handle(out);
    node.reply(msg, { type: "replicate_ok", ...reply });
  });

  node.on("pull", (msg) => {
    const after = msg.body.after;
    if (!isIndex(after)) throw malformed("pull needs after ≥ 0");
    served.pulls++;
    const first = db.scan<LogEntry>({ prefix: "e/", limit: 1 })[0]?.[1].seq ?? core.last + 1;
    if (after + 1 < first && after < core.last) {
      const books = db.scan<Book>({ prefix: "b/" }).map(([, b]) => b);
      return node.reply(msg, { type: "pull_ok", entries: [], last: core.last, snapshot: { books, last: core.last } });
    }
    const entries = after >= core.last ? [] : db.scan<LogEntry>({ start: entryKey(after + 1), end: "e/\uffff", limit: PULL_BATCH }).map(([, e]) => e);
    node.reply(msg, { type: "pull_ok", entries, last: core.last });
  });

  node.on("join", async (msg) => {
    const last = msg.body.last;
    if (!isIndex(last) || !catalogs.includes(msg.src)) throw malformed("join needs a catalog and its last seq");
    const a = await submit({ kind: "join", from: msg.src, last });
    if ("joined" in a) return node.reply(msg, { type: "join_ok", view: a.joined });
    throw new RpcError(ErrorCode.TemporarilyUnavailable, "error" in a ? a.error.text : "join failed");
  });

  node.on("hb", (msg) => {
    const view = msg.body.view;
    if (view !== undefined && view !== null) {
      if (!isView(view, catalogs)) throw malformed("hb carries a malformed view");
      handle(core.onView(view, node.now()));
    }
    node.reply(msg, { type: "hb_ok", epoch: core.epoch, mode: core.mode, last: core.last });
  });

  node.on("read", (msg) => {
    const q = msg.body.query as ReadQuery | undefined;
    const epoch = msg.body.epoch;
    if (typeof q !== "object" || q === null) throw malformed("read needs a query");
    // Reads are routed by the front end's (newest) view; refuse one only when we know we are outside it.
    if (isIndex(epoch) && core.epoch >= epoch && core.mode === "out") throw new RpcError(ErrorCode.TemporarilyUnavailable, E.notMember);
    served.reads++;
    const base = { type: "read_ok", seq: core.last };
    switch (q.what) {
      case "lookup":
      case "quantity": {
        const b = isItem(q.item) ? core.books.get(q.item) : undefined;
        if (!b) throw new RpcError(ErrorCode.KeyDoesNotExist, E.itemNotFound);
        return node.reply(msg, { ...base, book: b });
      }
      case "search": {
        const topic = typeof q.topic === "string" ? parseTopic(q.topic) : undefined;
        if (!topic) throw new RpcError(ErrorCode.KeyDoesNotExist, "unknown topic");
        return node.reply(msg, { ...base, books: [...core.books.values()].filter((b) => b.topic === topic).map((b) => ({ item: b.item, title: b.title })) });
      }
      case "list":
        return node.reply(msg, { ...base, books: [...core.books.values()] });
      default:
        throw malformed("unknown read");
    }
  });

  node.setInterval(TICK_MS, () => handle(core.tick(node.now())));

  const digest = () => {
    let h = 0x811c9dc5;
    for (const b of [...core.books.values()].sort((a, b) => a.item - b.item)) {
      const s = `${b.item}|${b.cost}|${b.quantity}|${b.version};`;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    }
    return `${core.last}:${(h >>> 0).toString(16).padStart(8, "0")}`;
  };

  return {
    inspect: () => ({ mode: core.mode, epoch: core.epoch, view: core.view, last: core.last, queued: core.queued, served: { ...served }, digest: digest(), books: [...core.books.values()], runStart }),
  };
});
