import { DRIVER_ID, ErrorCode, RpcError, defineRole, type Body, type Message } from "../runtime/types.ts";
import { EVENTS, MEDALS, TEAMS, asScore, asTally, type Event, type Medal, type Scores, type Team } from "./domain.ts";
import type { CacofonixConfig, CacofonixReport, CacofonixStop, CacofonixStopOk, IncrementMedalTally, MedalTallyOk, ScoreOk, SetScore } from "./messages.ts";

/** Points one random score update adds: scores only grow, like a match in progress. */
const MAX_POINTS_PER_UPDATE = 3;
/** Storage key of the durable report. */
const REPORT_KEY = "report";

function perMedal(): Record<Team, Record<Medal, number>> {
  return Object.fromEntries(TEAMS.map((t) => [t, { gold: 0, silver: 0, bronze: 0 }])) as Record<Team, Record<Medal, number>>;
}

/**
 * The bard, and the only writer: reports medals and scores to obelix with the password. `random`:
 * random teams, events and medals at random gaps up to rateMs. `testing`: every rateMs, Gaul wins a
 * gold and leads Stone Curling by one — predictable enough to check by eye on every tablet.
 * It counts from the standings obelix holds when a run starts.
 *
 * The nemesis may crash it too. Its report (what it attempted and what obelix acknowledged) is the
 * referee of obelix's tallies, so it is written to storage before each write is sent and after each
 * acknowledgement: a restart within a run carries on from it, and a write left in flight by the crash
 * stays in "attempted" (it may land later). A new run (incarnation 0) reads obelix's standings afresh.
 */
export const cacofonix = defineRole<CacofonixConfig>((node) => {
  const { obelix, password } = node.config;
  const mode = node.config.mode === "testing" ? "testing" : "random";
  const rateMs = typeof node.config.rateMs === "number" && node.config.rateMs > 0 ? node.config.rateMs : 500;
  const report: CacofonixReport = { mode, running: true, ready: false, begun: 0, updates: 0, failed: 0, attempted: perMedal(), acked: perMedal(), scoresSent: {}, lastScores: {} };
  // What cacofonix believes each event stands at; the next random update builds on it.
  const scores = new Map<Event, Scores>();
  let tick = 0;
  let loop: Promise<void> = Promise.resolve();
  /** Ends the gap before the next update early (on stop), so a long --rate never holds up a stop. */
  let wake: (() => void) | null = null;

  function save(): void {
    const { running: _r, ready: _w, ...durable } = report;
    node.storage.put(REPORT_KEY, durable);
  }

  function nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = node.setTimeout(ms, () => {
        wake = null;
        resolve();
      });
      wake = () => {
        node.clearTimer(t);
        wake = null;
        resolve();
      };
    });
  }

  async function increment(team: Team, medal: Medal): Promise<void> {
    report.attempted[team][medal]++;
    save();
    const body: IncrementMedalTally = { type: "increment_medal_tally", team, medal, password, write_id: node.uid() };
    const op = node.history.invoke("increment", 1, { key: `${team}/${medal}` });
    try {
      await node.request(obelix, body);
      op.ok();
    } catch (e) {
      if (e instanceof RpcError) op.error(e);
      throw e;
    }
    report.acked[team][medal]++;
    save();
  }

  async function setScore(event: Event, next: Scores): Promise<void> {
    report.scoresSent[event] = (report.scoresSent[event] ?? 0) + 1;
    report.lastScores[event] = next;
    scores.set(event, next);
    save();
    const body: SetScore = { type: "set_score", event, scores: next as Record<string, number>, password, write_id: node.uid() };
    await node.request(obelix, body);
  }

  async function update(): Promise<void> {
    if (mode === "testing") {
      tick++;
      const next = Object.fromEntries(TEAMS.map((t) => [t, t === "Gaul" ? tick : tick - 1])) as Scores;
      await Promise.all([increment("Gaul", "gold"), setScore("Stone Curling", next)]);
      return;
    }
    const r = node.random;
    if (r.chance(0.5)) {
      await increment(r.pick(TEAMS), r.pick(MEDALS));
    } else {
      const event = r.pick(EVENTS);
      const next: Scores = { ...(scores.get(event) ?? Object.fromEntries(TEAMS.map((t) => [t, 0]))) };
      const team = r.pick(TEAMS);
      next[team] = (next[team] ?? 0) + 1 + r.int(MAX_POINTS_PER_UPDATE);
      await setScore(event, next);
    }
  }

  /**
   * Start from obelix's standings, not from zero: tallies and scores outlive a run (they are durable),
   * and cacofonix, the only writer, can then account for every medal exactly.
   */
  async function readStandings(): Promise<boolean> {
    for (const team of TEAMS) {
      const t = asTally((await ask<MedalTallyOk>({ type: "get_medal_tally", team }, (r) => asTally(r.tally) !== undefined))?.tally);
      if (!t) return false;
      for (const m of MEDALS) report.attempted[t.team][m] = report.acked[t.team][m] = t[m];
    }
    for (const event of EVENTS) {
      const sc = asScore((await ask<ScoreOk>({ type: "get_score", event }, (r) => asScore(r.score) !== undefined))?.score);
      if (!sc) return false;
      if (Object.keys(sc.scores).length > 0) scores.set(sc.event, sc.scores);
    }
    tick = Math.max(0, Math.floor(scores.get("Stone Curling")?.Gaul ?? 0));
    return true;
  }

  /** A read, asked again (with backoff) until obelix gives a valid answer; undefined if cacofonix is stopped meanwhile. */
  async function ask<R extends Body>(body: Body, valid: (r: R) => boolean): Promise<R | undefined> {
    let retryMs = 100;
    while (report.running) {
      try {
        const r = await node.request<R>(obelix, body);
        if (valid(r)) return r;
        node.log.warn(`obelix answered "${body.type}" with something malformed; asking again`);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        node.log.debug(`cannot read the standings yet (${e.text}); retrying in ${retryMs} ms`);
      }
      await nap(retryMs);
      retryMs = Math.min(retryMs * 2, 2000);
    }
    return undefined;
  }

  /** After a crash within a run: carry on from the saved report. False if there is none (no write was sent yet). */
  function restore(): boolean {
    const saved = node.incarnation > 0 ? node.storage.get<Omit<CacofonixReport, "running" | "ready">>(REPORT_KEY) : undefined;
    if (!saved) return false;
    Object.assign(report, saved, { mode, running: report.running, ready: false });
    for (const [event, sc] of Object.entries(report.lastScores)) if (sc) scores.set(event as Event, sc);
    tick = Math.max(0, Math.floor(scores.get("Stone Curling")?.Gaul ?? 0));
    return true;
  }

  async function run(): Promise<void> {
    if (!restore()) {
      // Stopped before obelix answered: not ready, and nothing saved.
      if (!(await readStandings())) return;
      // Before any write: a restart finds the report and never reads standings that its own writes moved.
      save();
    }
    report.ready = true;
    while (report.running) {
      await nap(mode === "testing" ? rateMs : node.random.range(0, rateMs));
      if (!report.running) break;
      report.begun++;
      try {
        await update();
        report.updates++;
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        report.failed++;
        node.log.warn(`update refused or lost: ${e.text}`);
      }
      save();
    }
  }
  loop = run().catch((e) => node.log.error(`cacofonix failed: ${e instanceof Error ? e.message : String(e)}`));

  node.on<CacofonixStop>("cacofonix_stop", async (msg: Message<CacofonixStop>) => {
    if (msg.src !== DRIVER_ID) throw new RpcError(ErrorCode.Unauthorized, "only the driver may stop cacofonix");
    report.running = false;
    wake?.();
    // The write in flight settles (acked or failed) before the report, so the report is final.
    await loop;
    node.reply(msg, { type: "cacofonix_stop_ok", report } satisfies CacofonixStopOk);
  });

  return {
    inspect: () => ({ completed: report.updates, ...report }), // added fields first: see tablet.ts
    stop: () => {
      report.running = false;
      wake?.();
    },
  };
});
