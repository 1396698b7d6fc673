import type { Cluster } from "../../driver/cluster.ts";
import type { Check, CommonOptions, RunControl, RunResult } from "../../driver/scenario.ts";
import { percentile } from "../../driver/stats.ts";
import { seededRandom } from "../runtime/random.ts";
import { ErrorCode, RpcError, type NodeId, type NodeSpec } from "../runtime/types.ts";
import { MEDALS, TEAMS, type Medal, type Team } from "./domain.ts";
import type { CacofonixConfig, CacofonixReport, CacofonixStopOk, IncrementMedalTallyOk, TabletConfig, TabletState } from "./messages.ts";
import { RAFFLE_EVERY, isWinner, samePrefix, type OrderEntry } from "./order.ts";
import type { RouterConfig } from "./router.ts";
import { CACOFONIX, divergence, randomInterests, resolvePassword, tabletIds, type ObelixSnapshot, type OlympicsOptions } from "./scenario.ts";
import { DB, SERVER, dispatcherIds, frontendIds, type DispatcherState, type FrontendState, type OrderTag, type TieredConfig } from "./tiered-messages.ts";

/**
 * The multi-tier Olympics (`--tiered`): dispatchers (leader election, load table, time daemon), front
 * ends (the client protocol, forwarding to the db, totally ordered with the raffle), the db (the
 * durable board and the sequencer), and the single-server clients behind a router. Same domain,
 * same clients, another topology.
 */

export { TIERED_OPTIONS } from "./tiered-options.ts";

export interface TieredOptions extends OlympicsOptions {
  dispatchers: number;
  frontends: number;
  syncMs: number;
  syncOutlierMs: number;
  syncDeltaMs: number;
  totalOrder: string;
  increments: number;
  heartbeatMs: number;
}


type Opts = TieredOptions & Pick<CommonOptions, "seed">;

function int(name: string, v: unknown, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}`);
  return n;
}

export function tieredConfig(o: Opts): TieredConfig {
  const dispatchers = dispatcherIds(int("dispatchers", o.dispatchers, 1, 20));
  const frontends = frontendIds(int("frontends", o.frontends, 1, 100));
  if (o.totalOrder !== "on" && o.totalOrder !== "off") throw new Error(`--total-order must be on or off; got ${JSON.stringify(o.totalOrder)}`);
  return {
    dispatchers,
    frontends,
    db: DB,
    synced: [...dispatchers, ...frontends, DB],
    syncMs: int("sync-ms", o.syncMs, 10, 3_600_000),
    syncOutlierMs: int("sync-outlier-ms", o.syncOutlierMs, 1, 3_600_000),
    totalOrder: o.totalOrder === "on",
    heartbeatMs: int("heartbeat-ms", o.heartbeatMs, 10, 60_000),
  };
}

export function tieredTopology(o: Opts): NodeSpec[] {
  const cfg = tieredConfig(o);
  int("sync-delta-ms", o.syncDeltaMs, 1, 3_600_000);
  int("increments", o.increments, 0, 100_000);
  const pull = int("pull", o.pull, 0, 10_000);
  const push = int("push", o.push, 0, 10_000);
  const rateMs = int("rate", o.rate, 1, 3_600_000);
  const pollMs = int("poll-ms", o.pollMs, 1, 3_600_000);
  const refreshMs = int("refresh-ms", o.refreshMs, 10, 3_600_000);
  const port = int("port", o.port, 0, 65535);
  if (o.mode !== "random" && o.mode !== "testing") throw new Error(`--mode must be random or testing; got ${JSON.stringify(o.mode)}`);
  const password = resolvePassword(o.password);
  const router: RouterConfig = { dispatchers: cfg.dispatchers, frontends: cfg.frontends, server: SERVER, renewMs: Math.max(cfg.heartbeatMs * 10, 500) };
  const r = seededRandom(o.seed, "olympics/interests");
  const ids = tabletIds({ pull, push });
  const tablet = (id: string, mode: "pull" | "push"): NodeSpec => {
    const interests = o.mode === "testing" ? { teams: ["Gaul"], events: ["Stone Curling"] } : randomInterests(r);
    return { id, role: "tiered-tablet", config: { obelix: SERVER, mode, pollMs, refreshMs, ...interests, ...router } satisfies TabletConfig & RouterConfig };
  };
  return [
    ...cfg.dispatchers.map((id) => ({ id, role: "dispatcher", config: { ...cfg, port: 0 } })),
    ...cfg.frontends.map((id, i) => ({ id, role: "frontend", config: { ...cfg, port: i === 0 ? port : 0 } })),
    { id: DB, role: "db", config: { ...cfg, password } },
    { id: CACOFONIX, role: "tiered-cacofonix", config: { obelix: SERVER, password, mode: o.mode, rateMs, ...router } satisfies CacofonixConfig & RouterConfig },
    ...ids.pull.map((id) => tablet(id, "pull")),
    ...ids.push.map((id) => tablet(id, "push")),
  ];
}

/** How often the driver tries a write without the password. */
const INTRUDER_EVERY_MS = 1000;

type Counts = Record<Team, Record<Medal, number>>;
const zero = (): Counts => Object.fromEntries(TEAMS.map((t) => [t, { gold: 0, silver: 0, bronze: 0 }])) as Counts;

interface Burst {
  sent: number;
  acked: number;
  retries: number;
  counts: Counts;
  badTags: string[];
  raffleWins: number;
  latencyMs: number[];
}

/**
 * The write-up's locking test, through the tiers: `n` increments at once, spread over the front
 * ends, each retried (same write id, next front end) until acknowledged: each must count once.
 */
async function burst(cluster: Cluster, frontends: NodeId[], n: number, password: string, stopBy: () => boolean): Promise<Burst> {
  const b: Burst = { sent: n, acked: 0, retries: 0, counts: zero(), badTags: [], raffleWins: 0, latencyMs: [] };
  const r = cluster.random.fork("olympics/burst");
  const jobs = Array.from({ length: n }, (_, i) => ({ i, team: r.pick(TEAMS), medal: r.pick(MEDALS) }));
  await Promise.all(
    jobs.map(async ({ i, team, medal }) => {
      const t0 = cluster.now();
      // The driver is a client here too: its increments go into the history beside the nodes' own,
      // or a tablet's read that counts them could not be explained. A job that gives up stays open (info).
      const record = (ev: "invoke" | "complete", fields: Record<string, unknown>) =>
        cluster.history?.add({ type: "history", ev, process: `burst-${i}`, incarnation: 0, n: 0, t: cluster.now(), ...fields });
      record("invoke", { f: "increment", value: 1, fields: { key: `${team}/${medal}` } });
      for (let attempt = 0; ; attempt++) {
        const fe = frontends[(i + attempt) % frontends.length]!;
        try {
          const reply = await cluster.request<IncrementMedalTallyOk & { order?: OrderTag }>(fe, { type: "increment_medal_tally", team, medal, password, write_id: `burst-${cluster.seed}-${i}` }, 2000);
          record("complete", { outcome: "ok" });
          b.acked++;
          b.counts[team][medal]++;
          b.latencyMs.push(cluster.now() - t0);
          const tag = reply.order;
          if (tag) {
            if (tag.raffle !== isWinner(tag.seq)) b.badTags.push(`#${tag.seq} raffle=${tag.raffle}`);
            if (tag.raffle) b.raffleWins++;
          }
          return;
        } catch (e) {
          if (e instanceof RpcError && e.definite && e.code !== ErrorCode.TemporarilyUnavailable && e.code !== ErrorCode.NodeNotFound) {
            record("complete", { outcome: "fail", fields: { error: e.text } });
            throw e;
          }
          if (stopBy() && attempt > 50) return;
          b.retries++;
          await cluster.sleep(Math.min(50 * 2 ** Math.min(attempt, 5), 1000));
        }
      }
    }),
  );
  return b;
}

type FrontendView = FrontendState & { order: OrderEntry[] };

export async function runTiered(cluster: Cluster, o: TieredOptions & CommonOptions, control: RunControl): Promise<RunResult> {
  const cfg = tieredConfig(o);
  const password = resolvePassword(o.password);
  const delta = Number(o.syncDeltaMs);
  const ids = tabletIds({ pull: Number(o.pull), push: Number(o.push) });
  const tablets = [...ids.pull, ...ids.push];
  const t0 = cluster.now();
  const electionMs = cfg.heartbeatMs * 4;
  // Clocks start up to --clock-skew apart: the check starts once the first rounds have run.
  const warmupMs = 3 * cfg.syncMs + electionMs;
  // A jump, a restart with a fresh clock, or a daemon failover may open a gap; it must close within this.
  const healMs = 3 * cfg.syncMs + 2 * electionMs;

  const clocks = { samples: 0, above: 0, worstMs: 0, longestAboveMs: 0, aboveSince: null as number | null, spreads: [] as number[] };
  const order = { samples: 0, violations: [] as string[] };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await cluster.sleep(Math.max(20, cfg.syncMs / 2));
      const now = cluster.now();
      const info = await cluster.info();
      const errs = info.filter((n) => cfg.synced.includes(n.id) && n.status === "running" && n.stats).map((n) => n.stats!.clockErrorMs);
      if (now - t0 >= warmupMs && errs.length >= 2) {
        const spread = Math.max(...errs) - Math.min(...errs);
        clocks.samples++;
        clocks.spreads.push(spread);
        clocks.worstMs = Math.max(clocks.worstMs, spread);
        // An excursion lasts from its first sample at or above δ to the first one below again.
        if (spread >= delta) {
          clocks.above++;
          clocks.aboveSince ??= now;
          clocks.longestAboveMs = Math.max(clocks.longestAboveMs, now - clocks.aboveSince);
        } else if (clocks.aboveSince !== null) {
          clocks.longestAboveMs = Math.max(clocks.longestAboveMs, now - clocks.aboveSince);
          clocks.aboveSince = null;
        }
      }
      if (cfg.totalOrder) {
        const chains: Array<[NodeId, number[]]> = [];
        for (const fe of cfg.frontends) {
          const s = await cluster.inspect<FrontendView>(fe);
          if (s) chains.push([fe, s.chain]);
        }
        order.samples++;
        for (let i = 1; i < chains.length; i++) {
          if (!samePrefix(chains[0]![1], chains[i]![1]) && order.violations.length < 10) order.violations.push(`${chains[0]![0]} and ${chains[i]![0]} diverge by ${((cluster.now() - t0) / 1000).toFixed(1)} s`);
        }
      }
    }
  })();

  // Writes without the password, through every front end, over messages and HTTP: the db must refuse each.
  const intruder = { attempts: 0, refused: 0, accepted: 0, unanswered: 0 };
  const intruding = (async () => {
    for (let i = 0; !control.stopping(); i++) {
      await cluster.sleep(INTRUDER_EVERY_MS);
      const fe = cfg.frontends[i % cfg.frontends.length]!;
      intruder.attempts += 2;
      try {
        await cluster.request(fe, { type: "increment_medal_tally", team: "Persia", medal: "bronze", password: `${password}-not`, write_id: `intruder-${cluster.seed}-${i}` }, 3000);
        intruder.accepted++;
      } catch (e) {
        if (e instanceof RpcError && e.code === ErrorCode.Unauthorized) intruder.refused++;
        else intruder.unanswered++;
      }
      try {
        const res = await cluster.fetch(fe, new Request(`http://${fe}/incrementMedalTally/Persia/bronze`, { method: "POST" }));
        if (res.status === 401 || res.status === 403) intruder.refused++;
        else if (res.ok) intruder.accepted++;
        else intruder.unanswered++;
      } catch {
        intruder.unanswered++;
      }
    }
  })();

  // The burst starts once a leader is elected and the front ends have joined.
  await cluster.sleep(Math.min(warmupMs, Math.max(500, (Number(o.duration) * 1000) / 4)));
  // Cacofonix counts from the standings it reads at start: the burst waits until it has read them, or its counts would include part of the burst.
  for (;;) {
    const c = await cluster.inspect<CacofonixReport>(CACOFONIX);
    if ((c && c.updates + c.failed > 0) || control.stopping()) break;
    await cluster.sleep(100);
  }
  const b = control.stopping() ? { ...(await burst(cluster, cfg.frontends, 0, password, control.stopping)), sent: Number(o.increments) } : await burst(cluster, cfg.frontends, Number(o.increments), password, control.stopping);
  await control.untilStopped();
  await intruding;

  let report: CacofonixReport | null = null;
  try {
    report = (await cluster.request<CacofonixStopOk>(CACOFONIX, { type: "cacofonix_stop" }, Number(o.rate) + 10_000)).report;
  } catch {
    report = await cluster.inspect<CacofonixReport>(CACOFONIX);
  }

  // Let everything settle: tablets converge, front ends catch up the order, clients rebalance.
  const deadline = cluster.now() + 3 * Math.max(Number(o.pollMs), Number(o.refreshMs)) + 5000;
  let board: (ObelixSnapshot & { order: { length: number } }) | null = null;
  let views = new Map<NodeId, FrontendView>();
  let leader: DispatcherState | null = null;
  let behind: string[] = [];
  let unbalanced = "";
  let tabletStates: TabletState[] = [];
  for (;;) {
    board = await cluster.inspect(DB);
    views = new Map();
    for (const fe of cfg.frontends) {
      const s = await cluster.inspect<FrontendView>(fe);
      if (s) views.set(fe, s);
    }
    const ds = (await Promise.all(cfg.dispatchers.map((d) => cluster.inspect<DispatcherState>(d)))).filter((d): d is DispatcherState => !!d && d.isLeader);
    leader = ds[ds.length - 1] ?? null;
    behind = [];
    tabletStates = [];
    for (const id of tablets) {
      const s = await cluster.inspect<TabletState>(id);
      if (s) tabletStates.push(s);
      if (!s) behind.push(`${id}: not answering`);
      else if (board) behind.push(...divergence(s, board).map((d) => `${id}: ${d}`));
    }
    if (cfg.totalOrder && board) for (const [fe, v] of views) if (v.delivered !== board.order.length) behind.push(`${fe}: delivered ${v.delivered} of ${board.order.length}`);
    const loads = leader ? Object.values(leader.loads) : [];
    unbalanced = !leader ? "no leader" : loads.length === 0 ? "no live front end" : Math.max(...loads) - Math.min(...loads) > 1 ? JSON.stringify(leader.loads) : "";
    if ((behind.length === 0 && !unbalanced && board) || cluster.now() >= deadline) break;
    await cluster.sleep(100);
  }
  sampling = false;
  await sampler;

  const checks: Record<string, Check> = {};
  const out: string[] = [];
  const lost: string[] = [];
  if (board && report) {
    for (const t of board.tallies) {
      for (const m of MEDALS) {
        const lo = report.acked[t.team][m] + b.counts[t.team][m];
        const hi = report.attempted[t.team][m] + b.counts[t.team][m];
        if (t[m] < lo) lost.push(`${t.team} ${m}: ${t[m]} < ${lo} acknowledged`);
        if (t[m] < lo || t[m] > hi) out.push(`${t.team} ${m}: ${t[m]} not in [${lo}, ${hi}]`);
      }
    }
  }
  checks[`exact counts after ${b.sent} concurrent increments through ${cfg.frontends.length} front ends`] = {
    ok: !!board && !!report && b.acked === b.sent && out.length === 0,
    detail:
      out.length === 0 && b.acked === b.sent
        ? `all ${b.acked} acknowledged (${b.retries} retries, same write ids) and counted once; cacofonix's writes within its acknowledged..attempted`
        : `${b.acked}/${b.sent} acknowledged; ${out.slice(0, 4).join("; ") || (board ? "cacofonix did not report" : "db down")}`,
  };
  checks["no acknowledged write lost"] = { ok: !!board && !!report && lost.length === 0, detail: lost.length === 0 ? "every acknowledged increment is in the db" : lost.slice(0, 4).join("; ") };
  checks["no write without the password took effect"] = {
    ok: intruder.accepted === 0 && out.length === 0,
    detail: `${intruder.refused} of ${intruder.attempts} unauthorized writes through the front ends refused, ${intruder.unanswered} unanswered, ${intruder.accepted} accepted`,
  };
  checks["load balance: front-end loads differ by at most one"] = { ok: !unbalanced, detail: unbalanced ? `leader's loads: ${unbalanced}` : `${leader!.leader}: ${JSON.stringify(leader!.loads)}` };
  checks[`clock difference below δ=${delta} ms after the first rounds`] = {
    ok: clocks.samples > 0 && clocks.longestAboveMs <= healMs,
    detail:
      clocks.samples === 0
        ? "no samples after the warm-up (run longer)"
        : `${clocks.samples - clocks.above}/${clocks.samples} samples below δ; p50 ${percentile(clocks.spreads, 50).toFixed(2)} ms, worst ${clocks.worstMs.toFixed(2)} ms; longest excursion ${clocks.longestAboveMs.toFixed(0)} ms (allowed ${healMs} ms after a jump, restart or failover)`,
  };
  if (cfg.totalOrder) {
    const orders = [...views.values()];
    const first = orders[0];
    const equal = !!first && orders.every((v) => v.chain.length === first.chain.length && v.chain[v.chain.length - 1] === first.chain[first.chain.length - 1]);
    checks["identical total order at every front end"] = {
      ok: order.violations.length === 0 && equal && views.size === cfg.frontends.length && !!board && first!.delivered === board.order.length,
      detail:
        order.violations.length > 0
          ? order.violations.slice(0, 3).join("; ")
          : `${views.size} front ends, ${first?.delivered ?? 0} requests in one order (sequencer: ${board?.order.length ?? "down"}); prefixes of one another in all ${order.samples} samples${equal ? ", equal at the end" : `; at the end: ${[...views].map(([k, v]) => `${k} ${v.delivered}`).join(", ")}`}`,
    };
    const wrong = orders.flatMap((v) => v.winners.filter((w, i) => w.seq !== (i + 1) * RAFFLE_EVERY).map((w) => `${w.seq}`));
    const sameWinners = orders.every((v) => JSON.stringify(v.winners) === JSON.stringify(first?.winners));
    const expected = Math.floor((first?.delivered ?? 0) / RAFFLE_EVERY);
    checks[`raffle winners are exactly every ${RAFFLE_EVERY}th request`] = {
      ok: wrong.length === 0 && sameWinners && b.badTags.length === 0 && !!first && first.winners.length === expected,
      detail: `${first?.winners.length ?? 0} winners (${expected} expected), the same at every front end: ${sameWinners}; ${b.raffleWins} winning replies in the burst${b.badTags.length ? `; wrong tags ${b.badTags.slice(0, 3).join(", ")}` : ""}`,
    };
  }
  checks["every tablet ended holding the db's values for its interests"] = { ok: behind.length === 0 || (!cfg.totalOrder && behind.every((x) => !x.includes("delivered"))), detail: behind.length === 0 ? `${tablets.length} tablets converged` : behind.slice(0, 4).join("; ") };
  const pushTablets = tabletStates.filter((t) => t.mode === "push");
  const pushed = pushTablets.reduce((a, t) => a + t.pushes, 0);
  const unexpected = tabletStates.reduce((a, t) => a + t.unexpectedPushes, 0);
  checks["pushes through the front ends reached only interested tablets"] = {
    ok: unexpected === 0 && (pushTablets.length === 0 || !report || report.updates === 0 || pushed > 0),
    detail: `${pushed} pushes reached ${pushTablets.length} push tablets; ${unexpected} about something a tablet never asked for`,
  };
  checks["cacofonix wrote"] = { ok: !!report && report.updates > 0, detail: report ? `${report.updates} updates, ${report.failed} failed` : "cacofonix did not answer" };

  return {
    checks,
    metrics: {
      burstP50Ms: percentile(b.latencyMs, 50),
      burstP99Ms: percentile(b.latencyMs, 99),
      burstRetries: b.retries,
      orderLength: board?.order.length ?? null,
      clockSpreadP50Ms: percentile(clocks.spreads, 50),
      clockSpreadWorstMs: clocks.worstMs,
      syncRounds: leader?.syncRounds ?? null,
      updates: report?.updates ?? null,
      pushes: pushed,
    },
  };
}
