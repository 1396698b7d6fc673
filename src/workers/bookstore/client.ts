import { seqKey } from "../runtime/keys.ts";
import { RpcError, defineRole } from "../runtime/types.ts";
import { BOOKS, E, TOPICS, isIndex, malformed, type ClientConfig } from "./messages.ts";

/** Above the front end's own give-up times, so a slow write ends in an answer, not in silence. */
export const REQUEST_TIMEOUT_MS = 4000;
/**
 * Reads are idempotent: one lost message costs a short wait and another try, not a whole write
 * timeout (above the front end's read give-up: one try per live catalog, 500 ms each).
 */
const READ_TIMEOUT_MS = 1500;
const READ_ATTEMPTS = 3;
/** The longest one operation waits for its answer. */
export const MAX_OP_MS = Math.max(REQUEST_TIMEOUT_MS, READ_ATTEMPTS * READ_TIMEOUT_MS);
/** Operations a client records; past this it issues only reads, unrecorded (and says so). */
export const MAX_HISTORY = 100_000;
/** Records per `history` answer: one (a list, seven books) is under 1.5 KiB, so a page stays far below the 1 MiB message limit. */
export const HISTORY_PAGE = 256;

export type OpType = "ok" | "fail" | "info";
export type OpF = "list" | "search" | "lookup" | "quantity" | "buy" | "update_cost" | "update_quantity";
export const OP_FS: readonly OpF[] = ["list", "search", "lookup", "quantity", "buy", "update_cost", "update_quantity"];
export const isWriteF = (f: OpF) => f === "buy" || f === "update_cost" || f === "update_quantity";

/**
 * One completed operation, as a client saw it. `ok`: it surely happened; `fail`: it surely did not;
 * `info`: no definite answer (timeout, crash, "outcome unknown"): it may have happened, at any time
 * after `invokeMs` (`completeMs` is when the client stopped waiting, not a bound on the effect).
 * `process` is one sequential thread of operations: a client's boot is a new process, and so is
 * what follows an `info` in the same boot (the open operation may still take effect), as in Jepsen.
 */
export interface HistoryOp {
  process: string;
  type: OpType;
  f: OpF;
  value: Record<string, unknown>;
  invokeMs: number;
  completeMs: number;
}

/** What `inspect` shows: counts only (the history itself is read with `history` messages, from storage). */
export interface ClientState {
  process: string;
  boots: number;
  /** Operations recorded durably, over every boot of this run. */
  recorded: number;
  /** Operations the system answered with a status below 500 (the run's progress count), every boot of this run. */
  completed: number;
  /** The history reached MAX_HISTORY: no writes since, reads unrecorded. */
  truncated: boolean;
  /** Writes found open at boot (in flight when the client crashed), recorded as `info`. */
  recovered: number;
  statuses: Record<string, number>;
  running: boolean;
}

interface HttpOk {
  status: number;
  body: { data?: any; error?: { message?: string } };
}

/** One operation in the run's history (`node.history`): one record, or one per book for a list. */
interface Recorded {
  ok(reply: Record<string, unknown>): void;
  fail(error: string): void;
  info(error: string): void;
}

/** What the run's history (`node.history`, judged by the bookstore model) records at invocation: a write's argument. */
function invokeValue(f: OpF, args: Record<string, unknown>): unknown {
  if (f === "update_quantity") return args.delta;
  if (f === "update_cost") return args.cost;
  if (f === "search") return args.topic;
  return null;
}

/** What a 200 showed, in the shape the bookstore model reads (src/history/models.ts). */
function observed(f: OpF, v: Record<string, unknown>): unknown {
  switch (f) {
    case "lookup":
      return { quantity: v.quantity, cost: v.cost };
    case "quantity":
      return v.quantity;
    case "update_quantity":
      return { delta: v.delta, quantity: v.quantity };
    case "update_cost":
      return v.cost;
    case "buy":
      return { order: v.order };
    case "search":
      return Array.isArray(v.books) ? v.books.map((b: { item?: unknown }) => b.item) : null;
    case "list":
      return null;
  }
}

/** 503s that the front end gives only when it sent nothing anywhere: definite failures. */
const NOTHING_SENT: ReadonlySet<string> = new Set([E.noCatalog, E.noOrderServer]);

/** The error of a write a client's crash left without an answer. */
export const CRASHED_BEFORE_ANSWER = "client crashed before an answer";
/** The error of a write still waiting for its answer when the history was read. */
export const NO_ANSWER_YET = "no answer yet";

const doneKey = (n: number) => seqKey("h/", n);
const openKey = (n: number) => seqKey("i/", n);

/**
 * A shopper: lists, searches, looks up, buys and restocks, through `http` messages to the front end
 * (node code opens no sockets) that it routes exactly like real HTTP. Every operation lands in the
 * history with its outcome and its invoke/complete times (the node's clock).
 *
 * The nemesis may crash, pause or cut off a client too, and the checks judge what clients observed,
 * so the history lives in the node's storage: a write's invocation is stored before it is sent (a
 * crash leaves it open, and the next boot records it as `info`: it may have happened), and every
 * completion is stored before it is counted. Each boot is a new session at the front end (which
 * remembers answers by sender, session and message id, and message ids restart with the node).
 * A new run (incarnation 0) starts from an empty history.
 */
export const client = defineRole<ClientConfig>((node) => {
  const { frontend, intervalMs, writeP } = node.config;
  const db = node.storage;
  const boots = (db.get<number>("boots") ?? 0) + 1;
  db.put("boots", boots);
  const session = `${node.id}#${boots}`;

  if (node.incarnation === 0) {
    db.transaction(() => {
      for (const prefix of ["h/", "i/"]) for (const [k] of db.scan({ prefix })) db.delete(k);
      db.delete("meta/completed");
    });
  }
  // Writes in flight at the crash: no answer will ever come to this client. Each becomes `info`.
  const open = db.scan<Omit<HistoryOp, "type" | "completeMs">>({ prefix: "i/" });
  const bootMs = node.now();
  db.transaction(() => {
    for (const [k, inv] of open) {
      const n = Number(k.slice(2));
      if (db.get(doneKey(n)) === undefined) db.put(doneKey(n), { ...inv, type: "info", value: { ...inv.value, error: CRASHED_BEFORE_ANSWER }, completeMs: bootMs } satisfies HistoryOp);
      db.delete(k);
    }
  });
  const last = db.scan({ prefix: "h/", reverse: true, limit: 1 })[0];
  let next = last ? Number(last[0].slice(2)) + 1 : 0;
  const state: ClientState = { process: session, boots, recorded: next, completed: db.get<number>("meta/completed") ?? 0, truncated: next >= MAX_HISTORY, recovered: open.length, statuses: {}, running: true };
  let infos = 0;
  if (open.length > 0) node.log.info(`${open.length} write(s) in flight at the last crash recorded as indefinite`);

  /**
   * Opens `f` in the run's history, keyed by item. A list reads every book at once: it is recorded
   * as one `list` read per book (same invocation and completion), so the model judges each book's
   * quantity and cost in it like a lookup's; a book missing from a list that answered is recorded
   * with value null, which no model state explains.
   */
  function record(f: OpF, args: Record<string, unknown>): Recorded {
    if (f !== "list") {
      const h = node.history.invoke(f, invokeValue(f, args), "item" in args ? { key: String(args.item) } : undefined);
      return { ok: (reply) => h.ok(observed(f, reply)), fail: (e) => h.fail(e), info: (e) => h.info(e) };
    }
    const hs = BOOKS.map((b) => [b.item, node.history.invoke("list", null, { key: String(b.item) })] as const);
    return {
      ok(reply) {
        const books = Array.isArray(reply.books) ? (reply.books as Array<{ item?: unknown; quantity?: unknown; cost?: unknown }>) : [];
        for (const [item, h] of hs) {
          const b = books.find((x) => x.item === item);
          h.ok(b ? { quantity: b.quantity, cost: b.cost } : null);
        }
      },
      fail: (e) => hs.forEach(([, h]) => h.fail(e)),
      info: (e) => hs.forEach(([, h]) => h.info(e)),
    };
  }

  /** One request to the front end; a read is tried again when it gets no answer at all. */
  async function ask(write: boolean, method: string, path: string, body: unknown): Promise<HttpOk> {
    const msg = { type: "http", session, method, path, body: body === undefined ? undefined : JSON.stringify(body) };
    for (let attempt = 1; ; attempt++) {
      try {
        return await node.request<HttpOk>(frontend, msg, { timeoutMs: write ? REQUEST_TIMEOUT_MS : READ_TIMEOUT_MS });
      } catch (e) {
        if (write || attempt >= READ_ATTEMPTS || !(e instanceof RpcError) || e.definite) throw e;
      }
    }
  }

  async function op(f: OpF, method: string, path: string, args: Record<string, unknown>, body?: unknown): Promise<void> {
    const write = isWriteF(f);
    const recording = next < MAX_HISTORY;
    if (!recording) state.truncated = true;
    // A write nobody records would make the final quantities unaccountable: none once the history is full.
    if (write && !recording) return;
    const n = next;
    if (recording) next++;
    const proc = state.process;
    const invokeMs = node.now();
    const h = record(f, args);
    // Only writes: a read lost in a crash constrains nothing, a write may still take effect.
    if (write) db.put(openKey(n), { process: proc, f, value: args, invokeMs });
    let type: OpType;
    let value: Record<string, unknown> = { ...args };
    let progressed = false;
    try {
      const r = await ask(write, method, path, body);
      state.statuses[r.status] = (state.statuses[r.status] ?? 0) + 1;
      progressed = r.status < 500;
      if (r.status === 200) {
        type = "ok";
        const data = r.body?.data;
        value = { ...value, ...(Array.isArray(data) ? { books: data } : typeof data === "object" && data !== null ? data : {}) };
        h.ok(value);
      } else {
        const message = r.body?.error?.message ?? "";
        value.error = `${r.status} ${message}`;
        type = r.status === 503 && write && !NOTHING_SENT.has(message) ? "info" : "fail";
        // The front end's text alone: a model matches it ("item is unavailable").
        if (type === "info") h.info(message || `status ${r.status}`);
        else h.fail(message || `status ${r.status}`);
      }
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      type = "info";
      value.error = e.text;
      h.info(e.text);
    }
    const rec: HistoryOp = { process: proc, type, f, value, invokeMs, completeMs: node.now() };
    if (type === "info") state.process = `${session}.${++infos}`;
    if (recording || progressed) {
      // Durable before it is counted: what the checks (and the progress count) rely on survives a crash.
      const completed = state.completed + (progressed ? 1 : 0);
      db.transaction(() => {
        if (recording) db.put(doneKey(n), rec);
        if (write) db.delete(openKey(n));
        if (progressed) db.put("meta/completed", completed);
      });
      state.completed = completed;
      if (recording) state.recorded = n + 1;
    }
  }

  async function step(): Promise<void> {
    const item = node.random.pick(BOOKS).item;
    const roll = node.random.next();
    if (roll < writeP) {
      const w = node.random.next();
      if (w < 0.6) return op("buy", "POST", `/buy/${item}`, { item });
      if (w < 0.8) {
        const delta = 1 + node.random.int(5);
        return op("update_quantity", "POST", `/update_quantity/${item}`, { item, delta }, { delta });
      }
      if (w < 0.9) {
        const delta = -(1 + node.random.int(3));
        return op("update_quantity", "POST", `/update_q/${item}/${delta}`, { item, delta });
      }
      const cost = 1 + node.random.int(100);
      return op("update_cost", "POST", `/update_cost/${item}`, { item, cost }, { cost });
    }
    const r = node.random.next();
    if (r < 0.45) return op("lookup", "GET", `/lookup/${item}`, { item });
    if (r < 0.8) return op("quantity", "GET", `/get_quantity/${item}`, { item });
    if (r < 0.93) {
      const topic = node.random.pick(TOPICS);
      return op("search", "GET", `/search/${topic}`, { topic });
    }
    return op("list", "GET", "/list", {});
  }

  const loop = (async () => {
    while (state.running) {
      await step();
      await node.sleep(intervalMs);
    }
  })();

  node.on("finish", async (msg) => {
    state.running = false;
    await loop;
    node.reply(msg, { type: "finish_ok", recorded: state.recorded });
  });

  /**
   * The history from record `from` on, a page at a time, straight from storage (every boot of this
   * run). `next` is where the following page starts, or null after the last. The last page also
   * carries writes still open (a `finish` not yet answered), as `info`.
   */
  node.on("history", (msg) => {
    const from = msg.body.from;
    if (!isIndex(from)) throw malformed("history needs from ≥ 0");
    const page = db.scan<HistoryOp>({ start: doneKey(from), end: "h/\uffff", limit: HISTORY_PAGE });
    const ops = page.map(([, o]) => o);
    const more = page.length === HISTORY_PAGE;
    if (!more) {
      const now = node.now();
      for (const [, inv] of db.scan<Omit<HistoryOp, "type" | "completeMs">>({ prefix: "i/", limit: HISTORY_PAGE })) ops.push({ ...inv, type: "info", value: { ...inv.value, error: NO_ANSWER_YET }, completeMs: now });
    }
    node.reply(msg, { type: "history_ok", ops, next: more ? Number(page[page.length - 1]![0].slice(2)) + 1 : null, truncated: state.truncated });
  });

  return {
    inspect: () => ({ ...state, statuses: { ...state.statuses } }),
    stop: () => {
      state.running = false;
    },
  };
});
