import { DRIVER_ID, ErrorCode, RpcError, defineRole, type Message } from "../runtime/types.ts";
import { MEDALS, asScore, asTally, findEvent, findTeam, formatScore, formatTally, partitionNames, scoreKey, tallyKey, type Event, type Score, type Tally, type Team } from "./domain.ts";
import type { AppliedValue, MedalTallyOk, Register, RegisterOk, ScoreOk, ScoreUpdate, TabletConfig, TabletState, TallyUpdate } from "./messages.ts";

/** Latency samples kept per tablet; later ones are dropped (counts stay exact). */
const MAX_SAMPLES = 20_000;
/** First retry of a failed registration; doubles up to the refresh period. */
const FIRST_RETRY_MS = 100;

/**
 * A stone tablet: shows the tallies and scores it is interested in. A pull tablet polls obelix; a
 * push tablet registers and applies what obelix pushes. Either way it keeps, per item, the value
 * with the highest version it has seen, so late, duplicated or reordered messages never roll it back.
 */
export const tablet = defineRole<TabletConfig>((node) => {
  const cfg = node.config;
  const obelixId = cfg.obelix;
  const mode = cfg.mode === "pull" ? "pull" : "push";
  const pollMs = positive(cfg.pollMs, 500);
  const refreshMs = positive(cfg.refreshMs, 5000);
  const teamNames = partitionNames(Array.isArray(cfg.teams) ? cfg.teams : [], findTeam);
  const eventNames = partitionNames(Array.isArray(cfg.events) ? cfg.events : [], findEvent);

  // `applied` is kept flat (below) and built for inspect: a push adds three values to one array, not an object.
  const state: Omit<TabletState, "applied"> = {
    mode,
    teams: teamNames.valid,
    events: eventNames.valid,
    invalid: mode === "pull" ? [...teamNames.invalid, ...eventNames.invalid] : [],
    registered: false,
    tallies: {},
    scores: {},
    changes: 0,
    pushes: 0,
    unexpectedPushes: 0,
    stale: 0,
    refused: 0,
    polls: 0,
    pollErrors: 0,
    propagationMs: [],
    skipped: 0,
    requestMs: [],
  };
  if (state.invalid.length > 0) node.log.warn(`ignoring unknown names ${state.invalid.map((n) => JSON.stringify(n)).join(", ")}`);
  /**
   * When each new value was applied (TabletState.applied): key, version, time, one after another; at
   * most MAX_SAMPLES values. One array, not a column per field: each is an object and a store of its
   * own, cold when a thread's tablets take an update in turn, and with three a tablet's handling of a
   * push took 1.35–2.06 µs (median 1.38) against 1.04–1.37 (1.24) (bench/lib/fanout-profile.ts --rateMs 137, 5 interleaved runs).
   */
  const applied: Array<string | number> = [];
  let running = true;
  /** Registrations (push) or poll answers (pull) received: the driver's progress count. */
  let completed = 0;

  function sample(into: number[], v: number): void {
    if (into.length < MAX_SAMPLES) into.push(v);
  }

  function appliedValues(): AppliedValue[] {
    const out: AppliedValue[] = [];
    for (let i = 0; i < applied.length; i += 3) out.push({ key: applied[i] as string, version: applied[i + 1] as number, at: applied[i + 2] as number });
    return out;
  }

  // The log level is the node's for its life: read once, not on every push.
  const showChanges = node.log.enabled?.("info") ?? true;

  /**
   * Hold `next` in `table` (under `name`, recorded as `key`) if it is newer than the value held.
   * Every push runs this on a thread woken cold, so it is kept to what every push does, in one
   * function, with what only some pushes do (a stale value, the log line) in functions of their own.
   * Written with both kinds of value and the log line in it, JSC did not optimize it within a tablet's
   * benchmark: it waits until most of the places it profiles in a function have run (deliver in
   * runtime/node.ts says more; bench/push-pull.ts, beside the floor, has the figures).
   */
  function apply<V extends Tally | Score>(table: Partial<Record<string, V>>, name: string, key: string, next: V): void {
    const held = table[name];
    if (held !== undefined && held.version >= next.version) return notNewer(held, next);
    const now = node.now();
    if (held !== undefined) {
      state.skipped += next.version - held.version - 1;
      if (next.updatedAt !== null) sample(state.propagationMs, now - next.updatedAt);
    }
    table[name] = next;
    if (applied.length < 3 * MAX_SAMPLES) applied.push(key, next.version, now);
    state.changes++;
    if (showChanges) show(next);
  }
  // For the catch-up paths (registration, polls); a push handler calls apply itself, one call fewer per push.
  const applyTally = (t: Tally): void => apply(state.tallies, t.team, tallyKey(t.team), t);
  const applyScore = (s: Score): void => apply(state.scores, s.event, scoreKey(s.event), s);

  /** A value no newer than the one held: dropped, and counted as stale if older (a late or reordered copy). */
  function notNewer(held: Tally | Score, next: Tally | Score): void {
    if (held.version > next.version) state.stale++;
  }

  function show(v: Tally | Score): void {
    node.log.info("team" in v ? formatTally(v) : formatScore(v));
  }

  function refuse(msg: Message, why: string): void {
    state.refused++;
    node.log.warn(`refused "${msg.body.type}" from ${msg.src}: ${why}`);
  }

  /** A push the handler below does not apply: from a node other than obelix, malformed, or for an item this tablet did not ask for. */
  function pushNotApplied(msg: Message, valid: boolean, kind: string): void {
    if (msg.src !== obelixId) return refuse(msg, `only ${obelixId} pushes`);
    if (!valid) return refuse(msg, `not ${kind}`);
    state.pushes++;
    state.unexpectedPushes++;
  }

  // Each push handler is only what every push does (see apply); anything else is pushNotApplied's.
  node.on<TallyUpdate>("tally_update", (msg) => {
    const t = msg.src === obelixId ? asTally(msg.body.tally) : undefined;
    if (t === undefined || !state.teams.includes(t.team)) return pushNotApplied(msg, t !== undefined, "a medal tally");
    state.pushes++;
    apply(state.tallies, t.team, tallyKey(t.team), t);
  });
  node.on<ScoreUpdate>("score_update", (msg) => {
    const s = msg.src === obelixId ? asScore(msg.body.score) : undefined;
    if (s === undefined || !state.events.includes(s.event)) return pushNotApplied(msg, s !== undefined, "an event score");
    state.pushes++;
    apply(state.scores, s.event, scoreKey(s.event), s);
  });

  // Benchmarks measure a window after warm-up: the driver (only) clears the samples when it opens.
  node.on("tablet_reset_samples", (msg) => {
    if (msg.src !== DRIVER_ID) throw new RpcError(ErrorCode.Unauthorized, "only the driver may reset a tablet's samples");
    state.propagationMs = [];
    state.requestMs = [];
    state.skipped = 0;
    applied.length = 0;
    node.reply(msg, { type: "tablet_reset_samples_ok" });
  });

  async function register(): Promise<void> {
    const body: Register = { type: "register", tablet: node.id, teams: Array.isArray(cfg.teams) ? cfg.teams : [], events: Array.isArray(cfg.events) ? cfg.events : [] };
    const ok = await node.request<RegisterOk>(obelixId, body);
    if (!state.registered || ok.error) {
      state.invalid = [...(ok.invalid?.teams ?? []), ...(ok.invalid?.events ?? [])];
      if (ok.error) node.log.warn(ok.error);
    }
    state.registered = true;
    completed++;
    for (const v of Array.isArray(ok.tallies) ? ok.tallies : []) {
      const t = asTally(v);
      if (t && state.teams.includes(t.team)) applyTally(t);
    }
    for (const v of Array.isArray(ok.scores) ? ok.scores : []) {
      const s = asScore(v);
      if (s && state.events.includes(s.event)) applyScore(s);
    }
  }

  // Registering again every refreshMs is a lease: it heals pushes lost in the network and an obelix that lost us.
  async function pushLoop(): Promise<void> {
    let retryMs = FIRST_RETRY_MS;
    while (running) {
      try {
        await register();
        retryMs = FIRST_RETRY_MS;
        await node.sleep(refreshMs);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        node.log.debug(`registration failed (${e.text}); retrying in ${retryMs} ms`);
        await node.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, refreshMs);
      }
    }
  }

  async function timed<R>(body: { type: string; [k: string]: unknown }): Promise<R> {
    const t0 = node.now();
    const r = await node.request<R & { type: string }>(obelixId, body, { timeoutMs: Math.max(pollMs, 1000) });
    sample(state.requestMs, node.now() - t0);
    completed++;
    return r;
  }

  async function pollOnce(): Promise<void> {
    state.polls++;
    const asks: Promise<void>[] = [
      ...state.teams.map(async (team: Team) => {
        // One read per medal for the history: the tally is read at one instant, each count a projection of it.
        const reads = MEDALS.map((m) => node.history.invoke("read", null, { key: `${team}/${m}` }));
        let r: MedalTallyOk;
        try {
          r = await timed<MedalTallyOk>({ type: "get_medal_tally", team });
        } catch (e) {
          if (e instanceof RpcError) for (const op of reads) op.error(e);
          throw e;
        }
        const t = asTally(r.tally);
        if (t && t.team === team) applyTally(t);
        MEDALS.forEach((m, i) => (t && t.team === team ? reads[i]!.ok(t[m]) : reads[i]!.fail("malformed reply")));
      }),
      ...state.events.map(async (event: Event) => {
        const r = await timed<ScoreOk>({ type: "get_score", event });
        const s = asScore(r.score);
        if (s && s.event === event) applyScore(s);
      }),
    ];
    const results = await Promise.allSettled(asks);
    for (const r of results) {
      if (r.status === "rejected") {
        state.pollErrors++;
        if (!(r.reason instanceof RpcError)) throw r.reason;
      }
    }
  }

  // One poll at a time: a slow obelix gets fewer polls, never a growing pile of them.
  async function pullLoop(): Promise<void> {
    while (running) {
      const started = node.now();
      await pollOnce();
      await node.sleep(Math.max(0, pollMs - (node.now() - started)));
    }
  }

  async function main(): Promise<void> {
    await (mode === "pull" ? pullLoop() : pushLoop());
  }
  void main().catch((e) => node.log.error(`tablet loop failed: ${e instanceof Error ? e.message : String(e)}`));

  return {
    // The added fields come first: a copy of `state` that then gains a field takes a new shape made from
    // state's own, and JSC throws away the optimized push path that relies on that shape having no
    // successor (docs/architecture.md, "Hot paths stay optimized"; test/push-tier.test.ts).
    inspect: (): TabletState & { completed: number } => ({ applied: appliedValues(), completed, ...state }),
    stop: () => {
      running = false;
    },
  };
});

function positive(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : fallback;
}
