import { ErrorCode, RpcError, type NodeContext, type NodeId } from "../runtime/types.ts";
import { Board } from "./board.ts";
import { EVENTS, TEAMS, findEvent, findTeam, itemKey, parseEvent, parseMedal, parseScores, parseTeam, partitionNames, type Score, type Tally } from "./domain.ts";
import type { AppliedValue, RegisterOk, ScoreUpdate, TallyUpdate } from "./messages.ts";
import { Subscriptions } from "./subscriptions.ts";
import { WriteLog, parseWriteId } from "./writelog.ts";

/** Longest list of names one registration may carry: there are 5 teams and 4 events, so anything near this is junk. */
const MAX_NAMES = 64;
/** Writes remembered by id: far more than can be in flight or retried at once. */
const WRITE_LOG_CAPACITY = 10_000;
const MAX_FAN_OUT_SAMPLES = 1000;
const MAX_RECENT_UPDATES = 5000;
/** Passwords longer than this are refused without comparing (bounds the work an attacker can cause). */
const MAX_PASSWORD_CHARS = 1024;

export interface ScorekeeperStats {
  reads: number;
  writes: number;
  /** Copies of writes already applied (network duplicates, retries): answered, not applied again. */
  duplicateWrites: number;
  refusedWrites: number;
  registrations: number;
  pushes: number;
  /** How long each update's fan-out kept obelix busy (the latest ones). */
  fanOutMs: number[];
  /** The latest updates: item (itemKey), version, and obelix's clock when applied. */
  recentUpdates: AppliedValue[];
}

/**
 * obelix's operations, whatever the transport (node messages or HTTP): validation, the password,
 * the durable board, and the push fan-out. Every input is untrusted; every refusal is an RpcError
 * thrown before anything changes.
 */
export class Scorekeeper {
  readonly board: Board;
  readonly subscriptions: Subscriptions;
  readonly stats: ScorekeeperStats = { reads: 0, writes: 0, duplicateWrites: 0, refusedWrites: 0, registrations: 0, pushes: 0, fanOutMs: [], recentUpdates: [] };
  private readonly writeLog: WriteLog;

  constructor(
    private readonly node: NodeContext,
    private readonly password: string | undefined,
  ) {
    this.board = new Board(node.storage);
    this.subscriptions = new Subscriptions(node.storage, node.nodeIds.length, node.incarnation === 0);
    this.writeLog = new WriteLog(node.storage, WRITE_LOG_CAPACITY);
  }

  getMedalTally(team: unknown): Tally {
    const t = parseTeam(team);
    this.stats.reads++;
    return this.board.tally(t);
  }

  getScore(event: unknown): Score {
    const e = parseEvent(event);
    this.stats.reads++;
    return this.board.score(e);
  }

  /** `writeId` (optional): a copy of a write already applied gets the first result and changes nothing. */
  incrementMedalTally(team: unknown, medal: unknown, password: unknown, writeId?: unknown): Tally {
    this.authorize(password);
    const t = parseTeam(team);
    const m = parseMedal(medal);
    const id = parseWriteId(writeId);
    const op = `increment/${t}/${m}`;
    const earlier = id === undefined ? undefined : this.writeLog.lookup(id, op);
    if (earlier !== undefined) {
      this.stats.duplicateWrites++;
      return earlier as Tally;
    }
    const tally = this.board.increment(t, m, this.node.now(), (next) => id !== undefined && this.writeLog.record(id, op, next));
    this.applied(tally);
    this.fanOut(this.subscriptions.teamSubscribers(t), { type: "tally_update", tally } satisfies TallyUpdate);
    return tally;
  }

  setScore(event: unknown, scores: unknown, password: unknown, writeId?: unknown): Score {
    this.authorize(password);
    const e = parseEvent(event);
    const s = parseScores(scores);
    const id = parseWriteId(writeId);
    const op = `set/${e}/${JSON.stringify(TEAMS.map((t) => s[t] ?? null))}`;
    const earlier = id === undefined ? undefined : this.writeLog.lookup(id, op);
    if (earlier !== undefined) {
      this.stats.duplicateWrites++;
      return earlier as Score;
    }
    const score = this.board.setScores(e, s, this.node.now(), (next) => id !== undefined && this.writeLog.record(id, op, next));
    this.applied(score);
    this.fanOut(this.subscriptions.eventSubscribers(e), { type: "score_update", score } satisfies ScoreUpdate);
    return score;
  }

  register(tablet: unknown, events: unknown, teams: unknown): RegisterOk {
    if (typeof tablet !== "string" || !this.node.nodeIds.includes(tablet) || tablet === this.node.id) {
      throw new RpcError(ErrorCode.MalformedRequest, `tablet must be the id of another node of this cluster; got ${JSON.stringify(tablet)?.slice(0, 100)}`);
    }
    for (const [name, list] of [["events", events], ["teams", teams]] as const) {
      if (!Array.isArray(list)) throw new RpcError(ErrorCode.MalformedRequest, `${name} must be a list of names`);
      if (list.length > MAX_NAMES) throw new RpcError(ErrorCode.TooLarge, `${name} lists ${list.length} names; at most ${MAX_NAMES}`);
    }
    const t = partitionNames(teams, findTeam);
    const e = partitionNames(events, findEvent);
    if (!this.subscriptions.set(tablet, { teams: t.valid, events: e.valid })) {
      throw new RpcError(ErrorCode.Overloaded, `obelix already has ${this.subscriptions.size} registered tablets`);
    }
    this.stats.registrations++;
    const problems: string[] = [];
    if (t.invalid.length > 0) problems.push(`unknown teams ${t.invalid.map((n) => JSON.stringify(n)).join(", ")} (valid teams: ${TEAMS.join(", ")})`);
    if (e.invalid.length > 0) problems.push(`unknown events ${e.invalid.map((n) => JSON.stringify(n)).join(", ")} (valid events: ${EVENTS.join(", ")})`);
    return {
      type: "register_ok",
      teams: t.valid,
      events: e.valid,
      invalid: { teams: t.invalid, events: e.invalid },
      ...(problems.length > 0 ? { error: `registered the valid names only; ${problems.join("; ")}` } : {}),
      tallies: t.valid.map((x) => this.board.tally(x)),
      scores: e.valid.map((x) => this.board.score(x)),
    };
  }

  private applied(v: Tally | Score): void {
    this.stats.writes++;
    if (this.stats.recentUpdates.length >= MAX_RECENT_UPDATES) this.stats.recentUpdates.shift();
    this.stats.recentUpdates.push({ key: itemKey(v), version: v.version, at: v.updatedAt! });
  }

  private authorize(password: unknown): void {
    if (this.password === undefined || this.password === "") {
      this.stats.refusedWrites++;
      throw new RpcError(ErrorCode.Unauthorized, "obelix has no password configured, so it refuses every write");
    }
    if (typeof password !== "string" || password === "") {
      this.stats.refusedWrites++;
      throw new RpcError(ErrorCode.Unauthorized, "missing password: only Cacofonix may write");
    }
    if (password.length > MAX_PASSWORD_CHARS || !constantTimeEqual(password, this.password)) {
      this.stats.refusedWrites++;
      throw new RpcError(ErrorCode.Unauthorized, "wrong password: only Cacofonix may write");
    }
  }

  /** One send per interested tablet, none awaited: the last tablet does not wait on the first one's round trip. The body is encoded once for all. */
  private fanOut(tablets: ReadonlySet<NodeId>, body: TallyUpdate | ScoreUpdate): void {
    if (tablets.size === 0) return;
    const t0 = this.node.now();
    try {
      this.node.sendMany(tablets, body);
      this.stats.pushes += tablets.size;
    } catch (e) {
      this.node.log.warn(`push to ${tablets.size} tablets failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const ms = this.node.now() - t0;
    if (this.stats.fanOutMs.length >= MAX_FAN_OUT_SAMPLES) this.stats.fanOutMs.shift();
    this.stats.fanOutMs.push(ms);
  }
}

/** Compares every character whatever the first difference, so the reply time does not leak how much of a guess was right. */
function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  return diff === 0;
}
