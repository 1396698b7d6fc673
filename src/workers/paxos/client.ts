import { assert } from "../runtime/assert.ts";
import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
import { encodeOp, joinOps, type ChatOk, type ChatRedirect, type ClientSnapshot, type Op, type PaxosClientConfig } from "./messages.ts";

const MAX_LATENCY_SAMPLES = 20_000;
const MAX_ACKED_IDS = 2_000_000;
/** Wait before retrying when no replica knows a leader (an election is under way). */
const NO_LEADER_BACKOFF_MS = 20;
/** Acknowledged ids written to storage together: a crash loses at most this many from the history (they go unobserved; none counts as lost). */
const ACKED_CHUNK = 64;

/**
 * A chat client: sends messages with unique ids to the leader, `pipeline` at a time (1: one after
 * another, as the source does). On a timeout it retries the same message (same id and seq) at the
 * next replica; on a redirect it goes to the leader named. Every message is retried until acknowledged.
 *
 * The nemesis may crash a client too. Each boot is a new session at the replicas (a restarted client
 * counts its seqs from 0 again: under the old session the replicas would skip its new messages as
 * retries of old ones), and the history of acknowledged ids outlives a crash within a run, since the
 * checks judge what clients observed. Messages in flight at the crash are indefinite: never retried.
 */
export const paxosClient = defineRole<PaxosClientConfig>((node) => {
  const cfg = node.config;
  const replicas = cfg.replicas;
  const lanes = Math.max(1, Math.min(1024, Math.floor(cfg.pipeline || 1)));
  let leader = 0;
  const runs = new SeqRuns();
  const batch = Math.max(1, Math.min(1024, Math.floor(cfg.batch ?? 1)));
  let running = true;
  let lastAckAt = -1;
  let seen = 0;
  const state: ClientSnapshot = { sent: 0, acked: 0, refused: 0, retries: 0, redirects: 0, timeouts: 0, latenciesMs: [], ackedIds: [], stopped: false, inflight: 0, maxGapMs: 0 };
  const boots = (node.storage.get<number>("boots") ?? 0) + 1;
  node.storage.put("boots", boots);
  const session = `${node.id}#${boots}`;
  let chunk: string[] = [];
  let chunks = 0;
  if (cfg.recordAcked) {
    const saved = node.storage.scan<string[]>({ prefix: "acked/" });
    // Incarnation 0 is a new run: the history of an earlier run over the same storage is not this run's.
    if (node.incarnation === 0) node.storage.transaction(() => saved.forEach(([k]) => node.storage.delete(k)));
    else for (const [, ids] of saved) state.ackedIds.push(...ids);
    chunks = node.incarnation === 0 ? 0 : saved.length;
    state.acked = state.sent = state.ackedIds.length;
  }
  function flushAcked(): void {
    if (chunk.length === 0) return;
    node.storage.put(seqKey("acked/", chunks++), chunk);
    chunk = [];
  }
  const filler = ".".repeat(Math.max(0, Math.min(1000, cfg.textChars)));
  const text = (seq: number) => {
    const base = `hello #${seq} `;
    return base.length >= cfg.textChars ? base.slice(0, cfg.textChars) : base + filler.slice(base.length);
  };

  function record(latency: number): void {
    seen++;
    if (state.latenciesMs.length < MAX_LATENCY_SAMPLES) state.latenciesMs.push(latency);
    else {
      const j = node.random.int(seen);
      if (j < MAX_LATENCY_SAMPLES) state.latenciesMs[j] = latency;
    }
  }

  /** Send messages `seqs` (one request: a run of consecutive seqs) until they are acknowledged, retrying at other replicas. */
  async function send(seqs: number[]): Promise<void> {
    const ids: string[] = new Array(seqs.length);
    for (let i = 0; i < seqs.length; i++) ids[i] = node.uid();
    // One history operation per message: acknowledged (ok), refused (fail), or still open at the end
    // (info); the request's messages start and end together, so they are recorded as one group.
    const recs = node.history.invokeGroup("send", ids, { seq: seqs });
    const t0 = node.now();
    state.sent += seqs.length;
    state.inflight += seqs.length;
    let first = true;
    while (running) {
      if (!first) state.retries++;
      first = false;
      // A fresh body per send: bodies may be shared with the receiver (simulator), never mutate one.
      // A batch goes encoded, built field by field (no op object per message on the way).
      const low = runs.lowWater();
      let body: { type: string; [k: string]: unknown };
      if (seqs.length === 1) body = { type: "chat", op: { id: ids[0]!, c: session, s: seqs[0]!, lw: low, t: text(seqs[0]!) } satisfies Op };
      else {
        const parts: string[] = new Array(seqs.length);
        for (let i = 0; i < seqs.length; i++) parts[i] = encodeOp(ids[i]!, session, seqs[i]!, low, text(seqs[i]!));
        body = { type: "chat_batch", ops: joinOps(parts) };
      }
      const target = replicas[leader]!;
      try {
        const r = await node.request<ChatOk | ChatRedirect>(target, body, { timeoutMs: cfg.timeoutMs });
        if (r.type === "chat_ok" || r.type === "chat_batch_ok") {
          const now = node.now();
          if (lastAckAt >= 0 && now - lastAckAt > state.maxGapMs) state.maxGapMs = now - lastAckAt;
          lastAckAt = now;
          state.acked += seqs.length;
          recs.ok();
          record(now - t0);
          if (cfg.recordAcked) {
            for (const id of ids)
              if (state.ackedIds.length < MAX_ACKED_IDS) {
                state.ackedIds.push(id);
                chunk.push(id);
              }
            if (chunk.length >= ACKED_CHUNK) flushAcked();
          }
          break;
        }
        state.redirects++;
        const rd = r as ChatRedirect;
        node.log.debug(`seq ${seqs[0]} to ${target}: redirect ${rd.reason} to ${rd.leader}`);
        const hinted = rd.leader === null ? -1 : replicas.indexOf(rd.leader);
        if (rd.reason === "not_leader" && hinted >= 0 && hinted !== leader) leader = hinted;
        else {
          if (rd.reason === "not_leader" && hinted < 0) leader = (leader + 1) % replicas.length;
          await node.sleep(NO_LEADER_BACKOFF_MS);
        }
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        if (e.code === ErrorCode.MalformedRequest || e.code === ErrorCode.TooLarge) {
          // Definite and permanent: retrying the same request cannot help.
          state.refused++;
          recs.fail(e.text);
          node.log.error(`messages ${seqs[0]}..${seqs[seqs.length - 1]} refused: ${e.text}`);
          break;
        }
        state.timeouts++;
        node.log.debug(`seq ${seqs[0]} to ${target}: ${e.text}`);
        leader = (leader + 1) % replicas.length;
      }
    }
    runs.done(seqs[0]!);
    state.inflight -= seqs.length;
  }

  async function lane(): Promise<void> {
    while (running && (!cfg.maxMessages || runs.next < cfg.maxMessages)) {
      const n = cfg.maxMessages ? Math.min(batch, cfg.maxMessages - runs.next) : batch;
      const seqs: number[] = new Array(n);
      const start = runs.take(n);
      for (let i = 0; i < n; i++) seqs[i] = start + i;
      await send(seqs);
      if (cfg.intervalMs > 0) await node.sleep(cfg.intervalMs);
    }
  }
  for (let i = 0; i < lanes; i++) void lane();

  node.on("client_reset_stats", (msg) => {
    state.latenciesMs = [];
    seen = 0;
    state.maxGapMs = 0;
    node.reply(msg, { type: "client_reset_stats_ok", acked: state.acked });
  });

  node.on("client_stop", (msg) => {
    running = false;
    state.stopped = true;
    flushAcked();
    node.reply(msg, { type: "client_stop_ok", sent: state.sent, acked: state.acked });
  });

  return {
    inspect: () => ({ completed: state.acked, ...state }), // added fields first: see olympics/tablet.ts
    stop: () => {
      running = false;
      flushAcked();
    },
  };
});

/**
 * A client's seqs, handed out in runs (one per request, [start, start + n)) in order, so the runs
 * tile 0..next: the low water (smallest seq not yet acknowledged) moves a run at a time. Per
 * request, not per message: a set of every open seq cost 128 set operations per request of 64.
 */
export class SeqRuns {
  /** The next seq to hand out. */
  next = 0;
  private lw = 0;
  /** Where each run the low water has not passed yet ends, by its start. */
  private readonly runEnd = new Map<number, number>();
  /** Starts of the runs not yet acknowledged. */
  private readonly open = new Set<number>();

  /** A new run of n seqs (n >= 1), open until done(start); returns its start. */
  take(n: number): number {
    assert(Number.isSafeInteger(n) && n >= 1, `a run of ${n} seqs`);
    const start = this.next;
    this.next += n;
    this.runEnd.set(start, this.next);
    this.open.add(start);
    return start;
  }

  /** The run starting at start is acknowledged (or will never be sent again). */
  done(start: number): void {
    assert(this.open.delete(start), `run ${start} is open`);
  }

  /** The smallest seq of a run still open (next when none is): amortized O(1) per run. */
  lowWater(): number {
    while (this.lw < this.next && !this.open.has(this.lw)) {
      const end = this.runEnd.get(this.lw)!;
      this.runEnd.delete(this.lw);
      this.lw = end;
    }
    return this.lw;
  }
}
