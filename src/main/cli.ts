/**
 * `bun run cluster [system] [options]`: start a cluster on worker threads (optionally split over
 * hosts by TCP bridges), or run it in the deterministic simulator with --sim.
 */
import cac from "cac";
import cliProgress from "cli-progress";
import { describeNemesisExcludes, escapedErrors, formatSummary, runScenario, withEscapedCheck, type HistoryOutcome, type Summary } from "../driver/run.ts";
import { writeHistoryFile } from "../history/jsonl.ts";
import { renderHistoryReport, renderTotalOrderReport } from "../history/report.ts";
import type { Scenario } from "../driver/scenario.ts";
import { Simulation } from "../sim/simulator.ts";
import { DEFAULT_SYSTEM, SYSTEMS, loadRoles, loadScenario } from "../workers/registry.ts";
import type { NodeSpec } from "../workers/runtime/types.ts";
import { startAdmin } from "./admin.ts";
import { LiveRun, dashboardLine } from "./dashboard/index.ts";
import { TcpBridge } from "./bridge.ts";
import { RunError, UsageError, forSeed, parseOptions, replayCommand, topologyWithClocks, type Flags, type RunOptions } from "./options.ts";
import { ThreadCluster } from "./supervisor.ts";

const COMMON: Array<[string, string, unknown?]> = [
  ["--seed <n>", "Seed for every random choice (default: random, printed)"],
  ["--duration <s>", "Run the workload this long, then check and exit 0 (all passed) or 1"],
  ["--json", "Print the summary as one JSON object on the last line"],
  ["--latency <ms>", "Mean one-way message latency"],
  ["--latency-dist <d>", "constant | uniform | exponential"],
  ["--loss <p>", "Message loss probability"],
  ["--dup <p>", "Message duplication probability"],
  ["--reorder", "Let random latency reorder messages on a link"],
  ["--nemesis <kinds>", "Faults to inject: kill,partition,loss,pause,clock"],
  ["--nemesis-interval <s>", "Seconds between fault injections and heals (default 5)"],
  ["--clock-skew <ms>", "Largest initial clock offset of a node, drawn from the seed (also the clock nemesis' largest jump)"],
  ["--clock-drift <ppm>", "Largest clock drift of a node in ppm, drawn from the seed"],
  ["--data-dir <dir>", "Where nodes keep durable storage (default data/<system>)"],
  ["--fresh", "Wipe the data dir first"],
  ["--log-level <level>", "debug | info | warn | error | silent (default warn)"],
  ["--sim", "Run in the deterministic simulator (virtual time; --duration in simulated seconds)"],
  ["--seeds <A..B>", "Simulate every seed from A to B and report the failing ones"],
  ["--history <file>", "Write every client operation as JSON Lines (format in the README)"],
  ["--history-report <file>", "Write the history check as a self-contained HTML page (the failing window, if any)"],
  ["--threads <n>", "Pack this host's nodes into n worker threads (default: one per node; a crash in a shared thread drops only that node)"],
  ["--no-pin", "With --threads: leave the worker threads unpinned (by default, on Linux, each is pinned to a CPU of its own when there are no more threads than CPUs and every node runs in this process)"],
  ["--admin-port <port>", "Serve the admin API and the live dashboard on 127.0.0.1:<port> (default 0: a free port, printed at start)"],
  ["--admin-host <addr>", "Address the admin API and dashboard listen on (default 127.0.0.1; 0.0.0.0 opens them to the network, still behind the token)"],
  ["--secret <secret>", "Shared secret for bridges and the admin API (or MENHIR_SECRET)"],
  ["--host <name>", "Multi-host: this process's host name"],
  ["--listen <addr>", "Multi-host: where this host listens, host:port"],
  ["--peer <name=addr>", "Multi-host: another host, name=host:port (repeatable)"],
  ["--place <list>", "Multi-host: where nodes live, node=host,node=host"],
  ["--driver-host <name>", "Multi-host: the host that runs the workload and checks (default: first by name)"],
  ["--connect-timeout <s>", "Multi-host: the run fails if a peer host is not connected within this many seconds (default 60)"],
];

/** --history / --history-report: the files a run's history goes to, if asked for. */
async function writeHistory(opts: RunOptions, scenario: Scenario, h: HistoryOutcome | undefined): Promise<void> {
  if (!h) return;
  if (opts.history) {
    await writeHistoryFile(opts.history, h.ops);
    console.log(`  history: ${h.ops.length} operations written to ${opts.history}`);
  }
  if (opts.historyReport && h.totalOrder) {
    await Bun.write(opts.historyReport, renderTotalOrderReport(h.ops, h.totalOrder, { title: `${scenario.name}, seed ${opts.seed}: total order` }));
    console.log(`  history report: total order ${h.totalOrder.ok ? "holds" : "violated"}, written to ${opts.historyReport}`);
  } else if (opts.historyReport) {
    if (!h.check) {
      console.log(`  history report: ${scenario.name} has no history check; not written`);
      return;
    }
    await Bun.write(opts.historyReport, renderHistoryReport(h.ops, h.check, { title: `${scenario.name}, seed ${opts.seed}: ${h.check.verdict}`, partition: scenario.historyModel?.(opts).partition }));
    console.log(`  history report: ${h.check.verdict}, written to ${opts.historyReport}`);
  }
}

function printSummary(s: Summary, json: boolean): void {
  console.log(formatSummary(s));
  if (json) console.log(JSON.stringify(s));
}

async function runSim(system: string, scenario: Scenario, opts: RunOptions, nodes: NodeSpec[], seed: number, quiet = false): Promise<Summary & Record<string, unknown>> {
  const roles = await loadRoles(system);
  const sim = new Simulation({ seed, nodes, roles, network: opts.network, logLevel: opts.logLevel, logSink: quiet ? () => {} : undefined });
  const t0 = performance.now();
  let history: HistoryOutcome | undefined;
  const escaped = await escapedErrors(() => sim.run((c) => runScenario(c, scenario, forSeed(opts, seed), undefined, (h) => (history = h))));
  const summary = withEscapedCheck(escaped.value, escaped.errors);
  await writeHistory(forSeed(opts, seed), scenario, history);
  const st = sim.stats();
  return { ...summary, simSeconds: st.simSeconds, wallSeconds: +((performance.now() - t0) / 1000).toFixed(3), delivered: st.delivered, dropped: st.dropped, digest: st.digest };
}

async function runSeeds(system: string, scenario: Scenario, opts: RunOptions): Promise<number> {
  const [a, b] = opts.seeds!;
  const bar = new cliProgress.SingleBar({ format: "seeds [{bar}] {value}/{total} failing: {failing}", stream: process.stderr }, cliProgress.Presets.shades_classic);
  bar.start(b - a + 1, 0, { failing: 0 });
  const failing: Array<{ seed: number; failed: string; replay: string }> = [];
  for (let seed = a; seed <= b; seed++) {
    let s: Summary;
    try {
      s = await runSim(system, scenario, opts, topologyWithClocks(scenario, forSeed(opts, seed)), seed, opts.logLevel === "silent");
    } catch (e) {
      s = { system, mode: "sim", seed, ok: false, checks: { "simulation ran": false }, details: { "simulation ran": String(e) }, metrics: {}, nemesis: [] };
    }
    if (!s.ok) failing.push({ seed, failed: Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => n).join("; "), replay: replayCommand(process.argv.slice(2), seed) });
    bar.increment(1, { failing: failing.length });
  }
  bar.stop();
  console.log(`${b - a + 1} seeds, ${failing.length} failing`);
  const nonLinearizable = failing.filter((f) => f.failed.split("; ").includes("linearizable")).map((f) => f.seed);
  if (nonLinearizable.length > 0) console.log(`non-linearizable histories: seeds ${nonLinearizable.join(", ")}`);
  if (failing.length > 0) {
    console.log("seed  failed checks  replay");
    for (const f of failing) console.log(`${f.seed}  ${f.failed}  ${f.replay}`);
  }
  if (opts.json) console.log(JSON.stringify({ system, seeds: [a, b], ok: failing.length === 0, failing, nonLinearizable }));
  return failing.length === 0 ? 0 : 1;
}

async function runThreads(system: string, scenario: Scenario, opts: RunOptions, nodes: NodeSpec[]): Promise<number> {
  const mh = opts.multiHost;
  const cluster = new ThreadCluster({
    system,
    nodes,
    seed: opts.seed,
    dataDir: opts.dataDir,
    fresh: opts.fresh,
    network: opts.network,
    logLevel: opts.logLevel,
    host: mh?.host,
    placement: mh?.placement,
    driverHost: mh?.driverHost,
    wire: mh ? { secret: opts.secret, listenHostname: mh.listen.hostname, peerHosts: Object.keys(mh.peers) } : undefined,
    threads: opts.threads ?? undefined,
    pin: opts.pin,
  });
  let bridge: TcpBridge | null = null;
  let stopRequested!: () => void;
  let stopping = false;
  const stop = new Promise<void>((r) => (stopRequested = r)).then(() => void (stopping = true));
  let firstSignalAt = 0;
  const onSignal = (sig: string) => {
    // Under `bun run`, one Ctrl-C arrives twice at once: the terminal signals the whole process
    // group and bun forwards its own copy. Only a second press, later, forces.
    if (firstSignalAt > 0) {
      if (Date.now() - firstSignalAt < 1000) return;
      process.exit(130);
    }
    firstSignalAt = Date.now();
    console.error(`\n${sig}: stopping the cluster cleanly (again to force)`);
    stopRequested();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  // Ports first: one that is taken ends the run before any thread starts.
  const liveRun = new LiveRun(cluster, system);
  let admin: ReturnType<typeof startAdmin> | null = null;
  if (opts.adminPort !== null) {
    try {
      admin = startAdmin({ port: opts.adminPort, hostname: opts.adminHost, secret: opts.secret, cluster: liveRun.adminCluster, extraStats: () => (bridge ? { bridge: bridge.counters } : {}), extra: liveRun.routes });
    } catch (e) {
      throw new RunError(`--admin-port ${opts.adminPort}: cannot serve the admin API on ${opts.adminHost}:${opts.adminPort} (${errorText(e)})`);
    }
    console.log(dashboardLine(admin.url, opts.secret, opts.secretGenerated));
  }
  try {
    if (mh) {
      bridge = new TcpBridge({ host: mh.host, listen: mh.listen, peers: mh.peers, secret: opts.secret, log: cluster.log }, cluster);
      cluster.attachBridge(bridge);
      bridge.onShutdown = () => stopRequested();
      try {
        bridge.start();
      } catch (e) {
        throw new RunError(`--listen ${mh.listen.hostname}:${mh.listen.port}: cannot listen there (${errorText(e)}; is the port in use?)`);
      }
      console.log(`menhir: host ${mh.host} listening on ${mh.listen.hostname}:${bridge.port}; driver host ${mh.driverHost}`);
    }
    // Hosts connect before any node starts: a node's first messages to a peer on another host must
    // not be lost because the bridge to that host was still coming up.
    if (mh && bridge) await awaitPeers(bridge, Object.keys(mh.peers), opts.connectTimeout, () => stopping);
    try {
      await cluster.start();
    } catch (e) {
      throw new RunError(errorText(e));
    }
    return await runStarted(system, scenario, opts, nodes, cluster, bridge, admin, liveRun, stop, () => stopping);
  } finally {
    await liveRun.stop();
    admin?.stop(true);
    await cluster.stop();
    bridge?.close();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Waits (bounded by --connect-timeout) until every peer host is connected both ways, or the run is
 * told to stop (Ctrl-C, or the driver host already finished and said so).
 */
async function awaitPeers(bridge: TcpBridge, peers: string[], timeoutS: number, stopping: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutS * 1000;
  const missing = () => peers.filter((h) => !bridge.connectedHosts().includes(h));
  const fail = (what: string[]) => new RunError(`peer hosts not connected within --connect-timeout ${timeoutS} s: ${what.map((h) => `${h} at ${bridge.endpointOf(h)!.hostname}:${bridge.endpointOf(h)!.port}`).join(", ")}`);
  while (missing().length > 0 && !stopping()) {
    if (Date.now() >= deadline) throw fail(missing());
    await Bun.sleep(100);
  }
  // A control round trip comes back on the peer's own dial: both directions are up.
  for (const h of peers) {
    while (!stopping() && !(await bridge.control(h, "info").then(() => true, () => false))) {
      if (Date.now() >= deadline) throw fail([h]);
      await Bun.sleep(100);
    }
  }
}

async function runStarted(
  system: string,
  scenario: Scenario,
  opts: RunOptions,
  nodes: NodeSpec[],
  cluster: ThreadCluster,
  bridge: TcpBridge | null,
  admin: ReturnType<typeof startAdmin> | null,
  liveRun: LiveRun,
  stop: Promise<void>,
  stopping: () => boolean,
): Promise<number> {
  const mh = opts.multiHost;
  const local = nodes.filter((n) => cluster.isLocal(n.id));
  console.log(`menhir: ${system} cluster up: ${local.length} of ${nodes.length} nodes on worker threads here (seed ${opts.seed}, data dir ${opts.dataDir})`);
  if (opts.threads !== null) console.log(`menhir: ${cluster.pinnedCpus && !cluster.pinNote ? `worker threads pinned to CPUs ${cluster.pinnedCpus.join(", ")} (--no-pin leaves them free)` : `worker threads ${cluster.pinNote ?? "not pinned (--no-pin)"}`}`);
  for (const n of local) {
    const url = cluster.httpUrl(n.id);
    if (url) console.log(`menhir: ${n.id} serves HTTP at ${url}`);
  }
  for (const g of opts.generatedSecrets) console.log(`menhir: ${system} ${g.flag.slice(2)}: ${String(opts[g.key])} (generated; choose one with ${g.flag} or ${g.env})`);
  if (admin) console.log(`menhir: admin API at ${admin.url}${opts.secretGenerated ? ` (bearer token: ${opts.secret})` : " (bearer token: the --secret)"}`);

  let code = 0;
  if (!mh || mh.driverHost === mh.host) {
    if (!Number.isFinite(opts.duration)) console.log("menhir: running until Ctrl-C");
    let history: HistoryOutcome | undefined;
    liveRun.start(process.stderr);
    const summary = await runScenario(liveRun.runCluster, scenario, opts, stop, (h) => (history = h));
    liveRun.finish(summary);
    printSummary(summary, opts.json);
    await writeHistory(opts, scenario, history);
    code = summary.ok || !Number.isFinite(opts.duration) ? 0 : 1;
    await bridge?.shutdownPeers();
  } else {
    console.log(`menhir: serving nodes for driver host ${mh.driverHost} until it finishes or Ctrl-C`);
    liveRun.start(process.stderr);
    await stop;
  }
  return code;
}

async function main(system: string, flags: Flags): Promise<number> {
  const scenario = await loadScenario(system);
  const { opts, nodes } = parseOptions(system, scenario, flags);
  if (opts.seeds) return runSeeds(system, scenario, opts);
  if (opts.sim) {
    const s = await runSim(system, scenario, opts, nodes, opts.seed);
    printSummary(s, false);
    console.log(`  simulated ${s.simSeconds} s in ${s.wallSeconds} s wall; ${s.delivered} messages delivered; digest ${s.digest}`);
    if (!s.ok) console.log(`  replay: ${replayCommand(process.argv.slice(2), opts.seed)}`);
    if (opts.json) console.log(JSON.stringify(s));
    return s.ok ? 0 : 1;
  }
  return runThreads(system, scenario, opts, nodes);
}

/** Flag values exactly as typed, by camelCased name (repeated flags: every value). */
let typedValues: Flags = {};

/**
 * Two fixes to the parser's view of argv. `--seed -1` would reach it as the short flag `-1`: glue a
 * negative number to the flag that takes a value (`--seed=-1`) so the range check can say what is
 * wrong with it. And the parser turns anything that looks like a number into one (`--secret
 * 12345678901234567890` loses digits, `--data-dir ''` becomes 0): keep every value as typed, for
 * parseOptions to check.
 */
function prepareArgv(argv: string[], cli: ReturnType<typeof cac>): { argv: string[]; typed: Flags } {
  const takesValue = new Set<string>();
  for (const c of cli.commands) for (const o of c.options) if (/[<[]/.test(o.rawName)) for (const m of o.rawName.matchAll(/--?([\w-]+)/g)) takesValue.add(m[0]!);
  const out: string[] = [];
  const typed: Record<string, string | string[]> = {};
  const keep = (flag: string, value: string) => {
    const key = flag.replace(/^--/, "").replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const old = typed[key];
    typed[key] = old === undefined ? value : [...(Array.isArray(old) ? old : [old]), value];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0 && takesValue.has(a.slice(0, eq))) {
      keep(a.slice(0, eq), a.slice(eq + 1));
      out.push(a);
    } else if (takesValue.has(a) && next !== undefined && (!next.startsWith("-") || /^-(\d|\.\d|Infinity$)/.test(next))) {
      keep(a, next);
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return { argv: out, typed };
}

async function buildCli() {
  const cli = cac("cluster");
  const scenarios = await Promise.all(Object.keys(SYSTEMS).map(async (name) => [name, await loadScenario(name)] as const));
  const register = (cmdName: string, system: string, scenario: Scenario, desc: string) => {
    const cmd = cli.command(cmdName, desc);
    for (const o of scenario.options) {
      const range = o.integer || o.max !== undefined ? ` [${o.integer ? "integer " : ""}${o.min ?? 0}..${o.max ?? "∞"}]` : "";
      cmd.option(o.flags, o.description + range, o.default === undefined ? undefined : { default: o.default });
    }
    for (const [f, d] of COMMON) cmd.option(f, f === "--nemesis <kinds>" ? `${d}; hits any node${describeNemesisExcludes(scenario) ? ` but: ${describeNemesisExcludes(scenario)}` : ""}` : d);
    cmd.action(async (...args: unknown[]) => {
      const flags = { ...(args.at(-1) as Flags), ...typedValues };
      let code: number;
      try {
        // cac hands the default command any word it did not recognise as a command: a typo, not stocks.
        if (cli.args.length > 0) {
          throw cmdName === ""
            ? new UsageError(`unknown system "${cli.args[0]}" (systems: ${Object.keys(SYSTEMS).join(", ")})`)
            : new UsageError(`unexpected argument "${cli.args[0]}": options start with --`);
        }
        code = await main(system, flags);
      } catch (e) {
        if (e instanceof UsageError) {
          console.error(`error: ${e.message}\n(see: bun run cluster${cmdName === "" ? "" : ` ${cmdName}`} --help)`);
          code = 2;
        } else if (e instanceof RunError) {
          console.error(`error: ${e.message}`);
          code = 1;
        } else {
          console.error(e instanceof Error ? e.stack ?? e.message : String(e));
          code = 1;
        }
      }
      process.exit(code);
    });
  };
  for (const [name, scenario] of scenarios) register(name, name, scenario, scenario.description);
  const def = scenarios.find(([n]) => n === DEFAULT_SYSTEM)!;
  register("", DEFAULT_SYSTEM, def[1], `Run the default system (${DEFAULT_SYSTEM})`);
  // cac shows a `--no-x` flag as "(default: true)": the default is x on, which the flag turns off.
  cli.help((sections) => sections.map((s) => ({ ...s, body: s.body.replace(/^(\s+--no-\S+.*?)\s*\(default: true\)$/gm, "$1") })));
  return cli;
}

const cli = await buildCli();
try {
  const prepared = prepareArgv(process.argv, cli);
  typedValues = prepared.typed;
  cli.parse(prepared.argv, { run: false });
  await cli.runMatchedCommand();
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}\n(see: bun run cluster --help)`);
  process.exit(2);
}
