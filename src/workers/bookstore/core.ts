import { E, LOG_BATCH, type Book, type CatalogOp, type LogEntry, type View, type WriteResult } from "./messages.ts";

/**
 * Catalog replication as a pure state machine (paxos' style): it takes a client write, a peer's
 * message or reply, a view from the front end, or a tick, and returns an `Out`: entries to append
 * to the recovery log and apply (durably, in one transaction, BEFORE anything else), messages to
 * send, and answers to give. It does no I/O; the catalog role is the shell around it.
 *
 * The scheme (primary-backup with views, the front end as the one view issuer):
 *  - A view {epoch, primary, members} says who sequences writes and who must hold each write
 *    before it is acknowledged. Only the front end creates views (durably, epoch + 1 each time);
 *    catalogs adopt any newer view they hear of, from the front end or from a primary.
 *  - The primary takes one write at a time: it gives it the next sequence number, sends it to every
 *    other member, and commits it (log + apply locally) once all of them hold it. A member that does
 *    not answer is dropped by asking the front end for a view without it; the write then commits
 *    with the members that remain. Members reject entries of an older epoch, so a deposed primary
 *    can never complete a write.
 *  - Every member holds every committed write, so reads may go to any member; the front end reads
 *    only from members of its own (newest) view.
 *  - A catalog outside the view resyncs: it pulls the primary's log after its own last entry (only
 *    what it missed), then asks to join; the primary admits it between two writes, so nothing slips
 *    past, by asking the front end for a view that includes it.
 *  - If the primary dies the front end promotes the lowest-numbered live member (it holds every
 *    committed write, plus perhaps the one in flight, which it then owns).
 *  - A restarted primary sequences nothing until it has pulled every other catalog's log past its
 *    own (a backup may hold the write it had in flight) and heard the front end's current view
 *    naming it primary; if the front end promotes a member first, it resyncs like anyone else. So
 *    a write sequenced but never committed is never given a second meaning: logs never fork, and
 *    every catalog's log is a prefix of the primary's plus at most the batch in flight.
 */

export interface CoreConfig {
  me: string;
  catalogs: readonly string[];
  /** The view issuer. */
  frontend: string;
  replicateTimeoutMs: number;
  pullEveryMs: number;
  maxQueue: number;
  /** Test hook: skip the stock check on buys. */
  oversell?: boolean;
}

export interface DurableState {
  view: View | null;
  last: number;
  books: Book[];
}

/** A pending client request, as the shell knows it. */
export type Token = number;

export type Job = { kind: "write"; token: Token; rid: string; op: CatalogOp } | { kind: "join"; token: Token; from: string; last: number };

export type PeerSend =
  | { to: string; msg: { type: "replicate"; view: View; entries: LogEntry[] } }
  | { to: string; msg: { type: "view_change"; epoch: number; primary: string; members: string[] } }
  | { to: string; msg: { type: "pull"; after: number } }
  | { to: string; msg: { type: "join"; last: number } };

export type Answer =
  | { token: Token; entry: LogEntry; duplicate: boolean }
  | { token: Token; error: { code: "unavailable" | "below_zero" | "not_found" | "not_primary" | "overloaded" | "behind"; text: string; last?: number } }
  | { token: Token; joined: View };

export interface Out {
  /** Newer view to persist. */
  view: View | null;
  /** To append to the log and apply, in order, before sending or answering. */
  entries: LogEntry[];
  /** Whole state to install (before `entries`): the joiner missed more than the primary's log keeps. */
  snapshot?: { books: Book[]; last: number };
  send: PeerSend[];
  answers: Answer[];
  events: string[];
}

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`catalog assertion failed: ${text}`);
}

const emptyOut = (): Out => ({ view: null, entries: [], send: [], answers: [], events: [] });

/** Applies one write to a book; a copy, or an error code. Pure: primary and backups get the same answer. */
export function evaluate(book: Book | undefined, op: CatalogOp, oversell = false): { book: Book } | { error: "unavailable" | "below_zero" | "not_found" } {
  if (!book) return { error: "not_found" };
  switch (op.k) {
    case "buy":
      if (book.quantity < 1 && !oversell) return { error: "unavailable" };
      return { book: { ...book, quantity: book.quantity - 1, version: book.version + 1 } };
    case "qty":
      if (book.quantity + op.delta < 0) return { error: "below_zero" };
      return { book: { ...book, quantity: book.quantity + op.delta, version: book.version + 1 } };
    case "cost":
      return { book: { ...book, cost: op.cost, version: book.version + 1 } };
  }
}

const resultOf = (b: Book): WriteResult => ({ item: b.item, quantity: b.quantity, cost: b.cost, version: b.version });

export type Mode = "primary" | "member" | "out" | "recovering";

/** What the primary is waiting on: a join, or a batch of writes sent to the members as one. */
type InFlight =
  | { kind: "join"; job: Extract<Job, { kind: "join" }>; waiting: Set<string>; since: number }
  | { kind: "batch"; jobs: Job[]; entries: LogEntry[]; answers: Answer[]; waiting: Set<string>; since: number };

/** Recently committed request ids kept in memory: the shell's durable dedupe lags one call behind. */
const RECENT = 1024;

export class CatalogCore {
  view: View | null;
  last: number;
  readonly books = new Map<number, Book>();
  private queue: Job[] = [];
  private inflight: InFlight | null = null;
  /**
   * A restarted primary: a backup may hold the write it had in flight (applied there, never
   * committed here), so before it sequences anything it pulls every other catalog's log past its
   * own. Meanwhile the front end may promote a member instead; either way no log forks.
   */
  private recovering: boolean;
  /** Peers a recovering primary has heard "nothing newer" from, and those it is waiting on. */
  private readonly checked = new Set<string>();
  private readonly awaiting = new Set<string>();
  /**
   * Whether the front end has told us its view since we started. A restarted primary leads only
   * then: its stored view may be stale (a view naming another primary may exist), and the front end
   * only ever sends its newest.
   */
  private heardFrontend = false;
  private readonly recent = new Map<string, LogEntry>();
  private nextPullAt = 0;
  private pulling = false;
  private syncStart: { last: number; at: number } | null = null;

  constructor(
    private readonly cfg: CoreConfig,
    durable: DurableState,
    /** The durable dedupe table: the entry that applied request id `rid`, if any. */
    private readonly dedupe: (rid: string) => LogEntry | undefined,
  ) {
    this.view = durable.view;
    this.last = durable.last;
    for (const b of durable.books) this.books.set(b.item, b);
    this.recovering = this.view !== null && this.view.primary === cfg.me;
    this.finishRecovery(emptyOut());
  }

  get mode(): Mode {
    if (!this.view) return "out";
    if (this.view.primary === this.cfg.me) return this.recovering ? "recovering" : "primary";
    return this.view.members.includes(this.cfg.me) ? "member" : "out";
  }

  get epoch(): number {
    return this.view?.epoch ?? 0;
  }

  get queued(): number {
    return this.queue.length + (this.inflight?.kind === "batch" ? this.inflight.jobs.length : this.inflight ? 1 : 0);
  }

  // ---- inputs ----

  /** A write from the front end or an order server. */
  submit(job: Job, now: number): Out {
    const out = emptyOut();
    if (this.mode !== "primary") {
      out.answers.push({ token: job.token, error: { code: "not_primary", text: E.notPrimary } });
      return out;
    }
    if (this.queue.length >= this.cfg.maxQueue) {
      out.answers.push({ token: job.token, error: { code: "overloaded", text: E.overloaded } });
      return out;
    }
    this.queue.push(job);
    this.pump(now, out);
    return out;
  }

  /** A view from the front end (heartbeat or view-change answer): always its newest. */
  onView(v: View, now: number): Out {
    const out = emptyOut();
    this.adopt(v, out);
    this.heardFrontend = true;
    this.finishRecovery(out);
    this.settle(now, out);
    return out;
  }

  /** A member's answer to `replicate` (null: no answer in time). */
  onReplicateReply(from: string, seq: number, r: { ok: boolean; epoch: number } | null, now: number): Out {
    const out = emptyOut();
    const f = this.inflight;
    if (f?.kind !== "batch" || f.entries[f.entries.length - 1]!.seq !== seq || this.mode !== "primary") return out;
    if (r?.ok) f.waiting.delete(from);
    else if (r && r.epoch > this.epoch) {
      // A newer view exists: we were deposed. The front end will tell us which.
      this.fail(out, "not_primary", E.notPrimary);
      out.events.push(`deposed: ${from} is at epoch ${r.epoch}`);
      return out;
    } else if (f.waiting.has(from)) {
      this.requestDrop(out);
    }
    this.settle(now, out);
    return out;
  }

  /** Backup side: entries from the primary of `view`. */
  onReplicate(view: View, entries: LogEntry[]): { out: Out; reply: { ok: boolean; epoch: number; last: number } } {
    const out = emptyOut();
    if (view.epoch < this.epoch) return { out, reply: { ok: false, epoch: this.epoch, last: this.last } };
    this.adopt(view, out);
    if (this.mode !== "member") return { out, reply: { ok: false, epoch: this.epoch, last: this.last } };
    for (const e of entries) {
      if (e.seq <= this.last) continue; // a resend: we hold it (logs never fork, see above)
      if (e.seq !== this.last + 1) return { out, reply: { ok: false, epoch: this.epoch, last: this.last } };
      this.apply(e, out);
    }
    return { out, reply: { ok: true, epoch: this.epoch, last: this.last } };
  }

  /** The answer to a `pull` (null: none): a joiner's from the primary, or a recovering primary's from a peer. */
  onPullReply(from: string, r: { entries: LogEntry[]; last: number; snapshot?: { books: Book[]; last: number } } | null, now: number): Out {
    const out = emptyOut();
    const recovering = this.mode === "recovering";
    if (recovering) this.awaiting.delete(from);
    else this.pulling = false;
    if (r === null || (!recovering && this.mode !== "out")) return out;
    if (r.snapshot && r.snapshot.last > this.last) {
      // We missed more than the peer's log keeps: take its whole state instead.
      for (const b of r.snapshot.books) this.books.set(b.item, b);
      this.last = r.snapshot.last;
      out.snapshot = { books: r.snapshot.books, last: r.snapshot.last };
      out.events.push(`behind ${from}'s log: took a snapshot at seq ${this.last}`);
    }
    for (const e of r.entries) {
      if (e.seq <= this.last) continue;
      assert(e.seq === this.last + 1, `pulled entry ${e.seq} after ${this.last}`);
      this.apply(e, out);
      if (recovering) out.events.push(`took seq ${e.seq} from ${from}: sequenced before the restart, never committed here`);
    }
    if (this.last < r.last) {
      this.nextPullAt = now; // more to fetch: ask again at once
      return out;
    }
    if (recovering) {
      this.checked.add(from);
      this.finishRecovery(out);
      return out;
    }
    out.send.push({ to: this.view!.primary, msg: { type: "join", last: this.last } });
    return out;
  }

  private finishRecovery(out: Out): void {
    if (!this.recovering || !this.heardFrontend || !this.cfg.catalogs.every((c) => c === this.cfg.me || this.checked.has(c))) return;
    this.recovering = false;
    out.events.push(`restarted as primary: no other catalog holds a newer write (last ${this.last}); leading`);
  }

  /** Joiner side: the primary admitted us (with the view that includes us), or said we are behind. */
  onJoinReply(r: { view?: View } | null, now: number): Out {
    const out = emptyOut();
    if (r?.view) {
      this.adopt(r.view, out);
      if (this.mode === "member" && this.syncStart) {
        out.events.push(`resynced ${this.last - this.syncStart.last} missed writes (seq ${this.syncStart.last + 1}..${this.last}) from ${r.view.primary} in ${now - this.syncStart.at} ms; serving`);
        this.syncStart = null;
      }
    }
    this.nextPullAt = now;
    return out;
  }

  tick(now: number): Out {
    const out = emptyOut();
    const f = this.inflight;
    if (f && now - f.since >= this.cfg.replicateTimeoutMs) {
      f.since = now;
      if (f.kind === "batch") this.requestDrop(out);
      else this.requestAdmit(f.job.from, out);
    }
    if (this.mode === "recovering" && now >= this.nextPullAt) {
      this.nextPullAt = now + this.cfg.pullEveryMs;
      for (const c of this.cfg.catalogs) {
        if (c === this.cfg.me || this.checked.has(c) || this.awaiting.has(c)) continue;
        this.awaiting.add(c);
        out.send.push({ to: c, msg: { type: "pull", after: this.last } });
      }
    }
    if (this.mode === "out" && this.view && !this.pulling && now >= this.nextPullAt) {
      this.syncStart ??= { last: this.last, at: now };
      this.pulling = true;
      this.nextPullAt = now + this.cfg.pullEveryMs;
      out.send.push({ to: this.view.primary, msg: { type: "pull", after: this.last } });
    }
    return out;
  }

  // ---- the primary's pipeline ----

  private pump(now: number, out: Out): void {
    while (!this.inflight && this.queue.length > 0 && this.mode === "primary") {
      const view = this.view!;
      const head = this.queue[0]!;
      if (head.kind === "join") {
        this.queue.shift();
        if (view.members.includes(head.from)) out.answers.push({ token: head.token, joined: view });
        else if (head.last !== this.last) out.answers.push({ token: head.token, error: { code: "behind", text: "behind the primary", last: this.last } });
        else {
          this.inflight = { kind: "join", job: head, waiting: new Set(), since: now };
          this.requestAdmit(head.from, out);
        }
        continue;
      }
      // Every write queued (up to a batch) goes out in one replicate: evaluated in order against a
      // scratch copy of the books; all answers wait for the batch to commit, refusals included
      // (a refusal may rest on an earlier write of the batch).
      const jobs: Job[] = [];
      const entries: LogEntry[] = [];
      const answers: Answer[] = [];
      const scratch = new Map<number, Book>();
      const inBatch = new Map<string, LogEntry>();
      while (this.queue.length > 0 && this.queue[0]!.kind === "write" && entries.length < LOG_BATCH) {
        const job = this.queue.shift() as Extract<Job, { kind: "write" }>;
        jobs.push(job);
        const seen = inBatch.get(job.rid) ?? this.recent.get(job.rid) ?? this.dedupe(job.rid);
        if (seen) {
          answers.push({ token: job.token, entry: seen, duplicate: true });
          continue;
        }
        const r = evaluate(scratch.get(job.op.item) ?? this.books.get(job.op.item), job.op, this.cfg.oversell);
        if ("error" in r) {
          const text = r.error === "unavailable" ? E.unavailable : r.error === "below_zero" ? E.belowZero : E.itemNotFound;
          answers.push({ token: job.token, error: { code: r.error, text } });
          continue;
        }
        const entry: LogEntry = { seq: this.last + 1 + entries.length, epoch: view.epoch, rid: job.rid, op: job.op, result: resultOf(r.book) };
        scratch.set(r.book.item, r.book);
        inBatch.set(job.rid, entry);
        entries.push(entry);
        answers.push({ token: job.token, entry, duplicate: false });
      }
      if (entries.length === 0) {
        out.answers.push(...answers);
        continue;
      }
      const others = view.members.filter((m) => m !== this.cfg.me);
      this.inflight = { kind: "batch", jobs, entries, answers, waiting: new Set(others), since: now };
      for (const m of others) out.send.push({ to: m, msg: { type: "replicate", view, entries } });
      this.settle(now, out);
    }
  }

  /** Completes what is in flight if nobody is left to wait for; then takes the next. */
  private settle(now: number, out: Out): void {
    const f = this.inflight;
    if (f && this.mode !== "primary") {
      this.fail(out, "not_primary", E.notPrimary);
      return;
    }
    if (!f) return this.pump(now, out);
    const members = new Set(this.view!.members);
    for (const w of [...f.waiting]) if (!members.has(w)) f.waiting.delete(w);
    if (f.kind === "join") {
      if (!members.has(f.job.from)) return;
      out.answers.push({ token: f.job.token, joined: this.view! });
      out.events.push(`admitted ${f.job.from} at seq ${this.last}`);
    } else {
      if (f.waiting.size > 0) return;
      for (const e of f.entries) this.apply(e, out);
      out.answers.push(...f.answers);
    }
    this.inflight = null;
    this.pump(now, out);
  }

  private requestDrop(out: Out): void {
    const f = this.inflight!;
    const members = this.view!.members.filter((m) => !f.waiting.has(m));
    out.send.push({ to: this.cfg.frontend, msg: { type: "view_change", epoch: this.epoch, primary: this.cfg.me, members } });
    out.events.push(`asking to drop ${[...f.waiting].join(",")} from view ${this.epoch}`);
  }

  private requestAdmit(joiner: string, out: Out): void {
    const members = [...this.view!.members, joiner].sort((a, b) => this.cfg.catalogs.indexOf(a) - this.cfg.catalogs.indexOf(b));
    out.send.push({ to: this.cfg.frontend, msg: { type: "view_change", epoch: this.epoch, primary: this.cfg.me, members } });
  }

  private fail(out: Out, code: "not_primary", text: string): void {
    const f = this.inflight;
    for (const j of f?.kind === "batch" ? f.jobs : f ? [f.job] : []) out.answers.push({ token: j.token, error: { code, text } });
    for (const j of this.queue) out.answers.push({ token: j.token, error: { code, text } });
    this.inflight = null;
    this.queue = [];
  }

  // ---- state ----

  private adopt(v: View, out: Out): void {
    if (v.epoch <= this.epoch) return;
    assert(v.members.includes(v.primary), "a view's primary is a member");
    const wasOut = this.mode === "out";
    this.view = v;
    out.view = v;
    // Replaced while recovering: resync like any other catalog instead.
    if (v.primary !== this.cfg.me) this.recovering = false;
    if (this.mode === "out" && !wasOut) {
      this.syncStart = null;
      out.events.push(`left the view at epoch ${v.epoch}: resyncing from ${v.primary} before serving`);
    }
  }

  private apply(e: LogEntry, out: Out): void {
    assert(e.seq === this.last + 1, `entry ${e.seq} applied after ${this.last}`);
    const r = evaluate(this.books.get(e.op.item), e.op, this.cfg.oversell);
    assert(!("error" in r), `entry ${e.seq} fails on apply`);
    assert(r.book.version === e.result.version && r.book.quantity === e.result.quantity, `entry ${e.seq} applies differently here`);
    this.books.set(r.book.item, r.book);
    this.last = e.seq;
    out.entries.push(e);
    this.recent.set(e.rid, e);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value!);
  }
}
