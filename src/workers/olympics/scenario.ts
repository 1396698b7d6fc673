import type { Cluster } from "../../driver/cluster.ts";
import { MAX_NODES, type CommonOptions, type Scenario } from "../../driver/scenario.ts";
import { percentile } from "../../driver/stats.ts";
import { talliesModel } from "../../history/models.ts";
import { seededRandom } from "../runtime/random.ts";
import { ErrorCode, RpcError, type NodeSpec, type Random } from "../runtime/types.ts";
import { EVENTS, MEDALS, TEAMS, sameScore, sameTally, type Event, type Score, type Tally, type Team } from "./domain.ts";
import type { ScorekeeperStats } from "./scorekeeper.ts";
import type { CacofonixConfig, CacofonixReport, CacofonixStopOk, ObelixConfig, TabletConfig, TabletState } from "./messages.ts";
import { TIERED_OPTIONS } from "./tiered-options.ts";
import { runTiered, tieredTopology, type TieredOptions } from "./tiered-scenario.ts";

export const OBELIX = "obelix";
export const CACOFONIX = "cacofonix";
/** Where the CLI takes cacofonix's password from when --password is absent (else it generates one). */
export const PASSWORD_ENV = "MENHIR_OLYMPICS_PASSWORD";
/** A score value cacofonix never sets (its scores grow by a few points per update): finding it means an intruder wrote. */
const INTRUDER_SCORE = 999_999;
/** How often the scenario's intruder tries to write without the password. */
const INTRUDER_EVERY_MS = 1000;
/** A node's default request timeout (the runtime's), which cacofonix's writes use. */
const REQUEST_TIMEOUT_MS = 1000;

export interface OlympicsOptions extends Record<string, unknown> {
  pull: number;
  push: number;
  mode: string;
  rate: number;
  pollMs: number;
  refreshMs: number;
  port: number;
  password?: string;
  tiered?: boolean;
}

export interface ObelixSnapshot {
  tallies: Tally[];
  scores: Score[];
  subscriptions: Record<string, { teams: Team[]; events: Event[] }>;
  stats: ScorekeeperStats;
}

function count(name: string, v: unknown, min: number, max = 100_000): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}`);
  return n;
}

/**
 * The password the cluster uses. The CLI always supplies one (--password, $MENHIR_OLYMPICS_PASSWORD,
 * or a generated one it prints); there is no default that would let a reader of the docs write.
 */
export function resolvePassword(opt: unknown): string {
  if (typeof opt !== "string" || opt === "") throw new Error(`olympics needs a password: pass --password or set ${PASSWORD_ENV}`);
  return opt;
}

/** A non-empty random selection of teams and of events. */
export function randomInterests(r: Random): { teams: Team[]; events: Event[] } {
  const teams = r.shuffle(TEAMS).slice(0, 1 + r.int(TEAMS.length));
  const events = r.shuffle(EVENTS).slice(0, 1 + r.int(EVENTS.length));
  return { teams: TEAMS.filter((t) => teams.includes(t)), events: EVENTS.filter((e) => events.includes(e)) };
}

export function tabletIds(o: { pull: number; push: number }): { pull: string[]; push: string[] } {
  const ids = (n: number, from: number) => Array.from({ length: n }, (_, i) => `tablet-${from + i}`);
  return { pull: ids(o.pull, 1), push: ids(o.push, o.pull + 1) };
}

export function olympicsTopology(o: OlympicsOptions & Pick<CommonOptions, "seed">): NodeSpec[] {
  const pull = count("pull", o.pull, 0);
  const push = count("push", o.push, 0);
  const rateMs = count("rate", o.rate, 1, 3_600_000);
  const pollMs = count("poll-ms", o.pollMs, 1, 3_600_000);
  const refreshMs = count("refresh-ms", o.refreshMs, 10, 3_600_000);
  const port = count("port", o.port, 0, 65535);
  if (o.mode !== "random" && o.mode !== "testing") throw new Error(`--mode must be random or testing; got ${JSON.stringify(o.mode)}`);
  const password = resolvePassword(o.password);
  const r = seededRandom(o.seed, "olympics/interests");
  const ids = tabletIds({ pull, push });
  const tablet = (id: string, mode: "pull" | "push"): NodeSpec => {
    const interests = o.mode === "testing" ? { teams: ["Gaul"], events: ["Stone Curling"] } : randomInterests(r);
    return { id, role: "tablet", config: { obelix: OBELIX, mode, pollMs, refreshMs, ...interests } satisfies TabletConfig };
  };
  return [
    { id: OBELIX, role: "obelix", config: { password, port } satisfies ObelixConfig },
    { id: CACOFONIX, role: "cacofonix", config: { obelix: OBELIX, password, mode: o.mode, rateMs } satisfies CacofonixConfig },
    ...ids.pull.map((id) => tablet(id, "pull")),
    ...ids.push.map((id) => tablet(id, "push")),
  ];
}

/** Which interests of a tablet differ from obelix's values; empty when it has converged. */
export function divergence(tablet: TabletState, board: ObelixSnapshot): string[] {
  const out: string[] = [];
  for (const team of tablet.teams) {
    const truth = board.tallies.find((t) => t.team === team);
    if (!sameTally(tablet.tallies[team], truth)) out.push(`${team} (holds v${tablet.tallies[team]?.version ?? "-"}, obelix v${truth?.version})`);
  }
  for (const event of tablet.events) {
    const truth = board.scores.find((s) => s.event === event);
    if (!sameScore(tablet.scores[event], truth)) out.push(`${event} (holds v${tablet.scores[event]?.version ?? "-"}, obelix v${truth?.version})`);
  }
  return out;
}

interface IntruderTally {
  attempts: number;
  refused: number;
  /** No answer (obelix down or the request lost): neither refused nor accepted. */
  unanswered: number;
  accepted: number;
}

/** Writes without the password, over messages and HTTP, with none and with a wrong one: each must be refused. */
async function intrude(cluster: Cluster, password: string, t: IntruderTally): Promise<void> {
  const wrong = password + "-not";
  const attempts: Array<() => Promise<"refused" | "accepted">> = [
    async () => rpc(cluster.request(OBELIX, { type: "increment_medal_tally", team: "Persia", medal: "bronze", password: wrong })),
    async () => rpc(cluster.request(OBELIX, { type: "set_score", event: "Stone Skating", scores: { Persia: INTRUDER_SCORE } })),
    async () => http(await cluster.fetch(OBELIX, new Request("http://obelix/incrementMedalTally/Persia/bronze", { method: "POST" }))),
    async () =>
      http(
        await cluster.fetch(
          OBELIX,
          new Request("http://obelix/setScore/Stone%20Skating", { method: "POST", headers: { authorization: `Bearer ${wrong}` }, body: JSON.stringify({ Persia: INTRUDER_SCORE }) }),
        ),
      ),
  ];
  for (const attempt of attempts) {
    t.attempts++;
    try {
      t[await attempt()]++;
    } catch {
      t.unanswered++;
    }
  }
}

async function rpc(p: Promise<unknown>): Promise<"refused" | "accepted"> {
  try {
    await p;
    return "accepted";
  } catch (e) {
    if (e instanceof RpcError && e.code === ErrorCode.Unauthorized) return "refused";
    throw e;
  }
}

function http(res: Response): "refused" | "accepted" {
  if (res.status === 401 || res.status === 403) return "refused";
  if (res.ok) return "accepted";
  throw new Error(`HTTP ${res.status}`);
}

async function inspectTablets(cluster: Cluster, ids: string[]): Promise<Map<string, TabletState>> {
  const out = new Map<string, TabletState>();
  for (const id of ids) {
    const s = await cluster.inspect<TabletState>(id);
    if (s) out.set(id, s);
  }
  return out;
}

export const scenario: Scenario<OlympicsOptions> = {
  name: "olympics",
  description: "Obelix keeps the Olympic tallies and scores, Cacofonix writes them, stone tablets pull or are pushed every change",
  options: [
    { flags: "--pull <n>", description: "Tablets that poll obelix", default: 2, integer: true, max: MAX_NODES },
    { flags: "--push <n>", description: "Tablets obelix pushes every change to", default: 2, integer: true, max: MAX_NODES },
    { flags: "--mode <mode>", description: "Cacofonix: random, or testing (Gaul wins a gold and leads Stone Curling by one every --rate ms)", default: "random" },
    { flags: "--rate <ms>", description: "Cacofonix: the largest gap between updates (random) or the period (testing)", default: 500, integer: true, min: 1, max: 3_600_000 },
    { flags: "--poll-ms <ms>", description: "Gap between a pull tablet's polls", default: 500, integer: true, min: 1, max: 3_600_000 },
    { flags: "--refresh-ms <ms>", description: "Gap between a push tablet's registrations (heals lost pushes)", default: 3000, integer: true, min: 10, max: 3_600_000 },
    { flags: "--port <port>", description: "obelix's HTTP port (0: a free one)", default: 0, integer: true, max: 65535 },
    { flags: "--password <password>", description: `Cacofonix's password, 8 characters or more (default: $${PASSWORD_ENV}, else a random one, printed at start)`, secret: { env: PASSWORD_ENV } },
    ...TIERED_OPTIONS,
  ],
  // One system, two topologies: --tiered runs the multi-tier one (tiered-scenario.ts).
  topology: (o) => (o.tiered ? tieredTopology(o as TieredOptions & typeof o) : olympicsTopology(o)),
  // Cacofonix writes at least every --rate ms, a pull tablet polls every --poll-ms; after a heal, one
  // request in flight may time out (1 s) first. Push tablets only renew a lease every --refresh-ms:
  // "every tablet ended holding obelix's final values" is their progress check.
  clients: (o) => [
    { id: CACOFONIX, withinMs: Number(o.rate) + REQUEST_TIMEOUT_MS + 1000 },
    ...tabletIds({ pull: Number(o.pull), push: Number(o.push) }).pull.map((id) => ({ id, withinMs: 2 * Number(o.pollMs) + Math.max(Number(o.pollMs), REQUEST_TIMEOUT_MS) + 1000 })),
  ],
  historyModel: () => talliesModel(),
  async run(cluster, o, control) {
    if (o.tiered) return runTiered(cluster, o as TieredOptions & typeof o, control);
    const password = resolvePassword(o.password);
    const ids = tabletIds({ pull: Number(o.pull), push: Number(o.push) });
    const all = [...ids.pull, ...ids.push];
    const url = cluster.httpUrl(OBELIX);
    if (url) cluster.log.info(`obelix serves HTTP at ${url} (try: curl ${url.replace(/\/$/, "")}/getMedalTally/Gaul)`);

    const intruder: IntruderTally = { attempts: 0, refused: 0, unanswered: 0, accepted: 0 };
    const intruding = (async () => {
      while (!control.stopping()) {
        await intrude(cluster, password, intruder);
        await cluster.sleep(INTRUDER_EVERY_MS);
      }
    })();
    await control.untilStopped();
    await intruding;

    let report: CacofonixReport | null = null;
    try {
      report = (await cluster.request<CacofonixStopOk>(CACOFONIX, { type: "cacofonix_stop" }, Number(o.rate) + 5000)).report;
    } catch {
      report = await cluster.inspect<CacofonixReport>(CACOFONIX);
    }

    // Give pulls a few polls and pushes a registration round to catch up, and stop as soon as all have.
    const deadline = cluster.now() + 3 * Math.max(Number(o.pollMs), Number(o.refreshMs)) + 2000;
    let board: ObelixSnapshot | null = null;
    let tablets = new Map<string, TabletState>();
    let behind: string[] = [];
    for (;;) {
      board = await cluster.inspect<ObelixSnapshot>(OBELIX);
      tablets = await inspectTablets(cluster, all);
      behind = board ? [...tablets].flatMap(([id, s]) => divergence(s, board!).map((d) => `${id}: ${d}`)) : ["obelix is down"];
      if ((behind.length === 0 && tablets.size === all.length) || cluster.now() >= deadline) break;
      await cluster.sleep(100);
    }

    const states = [...tablets.values()];
    const push = states.filter((s) => s.mode === "push");
    const pull = states.filter((s) => s.mode === "pull");
    const outOfBounds: string[] = [];
    if (board && report) {
      for (const t of board.tallies) {
        for (const m of MEDALS) {
          const lo = report.acked[t.team][m];
          const hi = report.attempted[t.team][m];
          if (t[m] < lo || t[m] > hi) outOfBounds.push(`${t.team} ${m}: ${t[m]} not in [${lo}, ${hi}]`);
        }
      }
    }
    const intruderScores = board ? board.scores.filter((s) => Object.values(s.scores).includes(INTRUDER_SCORE)).map((s) => s.event) : [];
    const unexpected = states.reduce((a, s) => a + s.unexpectedPushes, 0);
    if (board) for (const line of [...board.tallies.map((t) => `${t.team}: ${t.gold}/${t.silver}/${t.bronze}`), ...board.scores.map((s) => `${s.event}: ${JSON.stringify(s.scores)}`)]) cluster.log.info(`final ${line}`);

    return {
      checks: {
        "every tablet ended holding obelix's final values for its interests": {
          ok: !!board && tablets.size === all.length && behind.length === 0,
          detail: behind.length === 0 ? `${tablets.size}/${all.length} tablets converged` : `${tablets.size}/${all.length} tablets answered; behind: ${behind.slice(0, 5).join("; ")}${behind.length > 5 ? ` (+${behind.length - 5})` : ""}`,
        },
        "no write without the password took effect": {
          ok: intruder.accepted === 0 && intruderScores.length === 0 && outOfBounds.length === 0 && !!board && !!report,
          detail: `${intruder.refused} of ${intruder.attempts} unauthorized writes refused, ${intruder.unanswered} unanswered, ${intruder.accepted} accepted${intruderScores.length ? `; intruder scores in ${intruderScores.join(", ")}` : ""}`,
        },
        "tallies are exactly cacofonix's writes": {
          ok: !!board && !!report && outOfBounds.length === 0,
          detail: outOfBounds.length === 0 ? `every medal count between cacofonix's acknowledged and attempted increments` : outOfBounds.slice(0, 5).join("; "),
        },
        "pushes reached only interested tablets": { ok: unexpected === 0, detail: `${unexpected} pushes about something a tablet never asked for` },
        // Only updates that came due count: with a long --rate a short run may end before the first.
        "cacofonix wrote": {
          ok: !!report && report.ready && (report.updates > 0 || report.begun === 0),
          detail: !report
            ? "cacofonix did not answer"
            : !report.ready
              ? "cacofonix never read obelix's standings"
              : report.begun === 0
                ? `no update was due yet (gaps up to --rate ${o.rate} ms)`
                : `${report.updates} updates, ${report.failed} failed`,
        },
      },
      metrics: {
        updates: report?.updates ?? null,
        pushes: board?.stats.pushes ?? null,
        pushPropagationP50Ms: percentile(push.flatMap((s) => s.propagationMs), 50),
        pushPropagationP99Ms: percentile(push.flatMap((s) => s.propagationMs), 99),
        pullPropagationP50Ms: percentile(pull.flatMap((s) => s.propagationMs), 50),
        pullPropagationP99Ms: percentile(pull.flatMap((s) => s.propagationMs), 99),
        pullRequestP50Ms: percentile(pull.flatMap((s) => s.requestMs), 50),
        pullRequestP99Ms: percentile(pull.flatMap((s) => s.requestMs), 99),
        unauthorizedWrites: intruder.attempts,
      },
    };
  },
};
