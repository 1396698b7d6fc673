/**
 * `bun run cluster [system] [options]`: start a cluster on worker threads (optionally split over
 * hosts by TCP bridges), or run it in the deterministic simulator with --sim.
 */
import cac from "cac";
import cliProgress from "cli-progress";
import { formatSummary, runScenario, type Summary } from "../driver/run.ts";
import type { Scenario } from "../driver/scenario.ts";
import { Simulation } from "../sim/simulator.ts";
import { DEFAULT_SYSTEM, SYSTEMS, loadRoles, loadScenario } from "../workers/registry.ts";
import type { NodeSpec } from "../workers/runtime/types.ts";
import { startAdmin } from "./admin.ts";
import { LiveRun, dashboardLine } from "./dashboard/index.ts";
import { TcpBridge } from "./bridge.ts";
import { UsageError, parseOptions, replayCommand, type Flags, type RunOptions } from "./options.ts";
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
  ["--nemesis <kinds>", "Faults to inject: kill,partition,loss,pause"],
  ["--nemesis-interval <s>", "Seconds between fault injections and heals (default 5)"],
  ["--data-dir <dir>", "Where nodes keep durable storage (default data/<system>)"],
  ["--fresh", "Wipe the data dir first"],
  ["--log-level <level>", "debug | info | warn | error | silent (default warn)"],
  ["--sim", "Run in the deterministic simulator (virtual time; --duration in simulated seconds)"],
  ["--seeds <A..B>", "Simulate every seed from A to B and report the failing ones"],
  ["--threads <n>", "Pack this host's nodes into n worker threads (default: one per node; a crash in a shared thread drops only that node)"],
  ["--admin-port <port>", "Serve the admin API and the live dashboard on 127.0.0.1:<port> (default 0: a free port, printed at start)"],
  ["--admin-host <addr>", "Address the admin API and dashboard listen on (default 127.0.0.1; 0.0.0.0 opens them to the network, still behind the token)"],
  ["--secret <secret>", "Shared secret for bridges and the admin API (or MENHIR_SECRET)"],
  ["--host <name>", "Multi-host: this process's host name"],
  ["--listen <addr>", "Multi-host: where this host listens, host:port"],
  ["--peer <name=addr>", "Multi-host: another host, name=host:port (repeatable)"],
  ["--place <list>", "Multi-host: where nodes live, node=host,node=host"],
  ["--driver-host <name>", "Multi-host: the host that runs the workload and checks (default: first by name)"],
];

function printSummary(s: Summary, json: boolean): void {
  console.log(formatSummary(s));
  if (json) console.log(JSON.stringify(s));
}

async function runSim(system: string, scenario: Scenario, opts: RunOptions, nodes: NodeSpec[], seed: number, quiet = false): Promise<Summary & Record<string, unknown>> {
  const roles = await loadRoles(system);
  const sim = new Simulation({ seed, nodes, roles, network: opts.network, logLevel: opts.logLevel, logSink: quiet ? () => {} : undefined });
  const t0 = performance.now();
  const summary = await sim.run((c) => runScenario(c, scenario, { ...opts, seed }));
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
      s = await runSim(system, scenario, opts, scenario.topology({ ...opts, seed }), seed, opts.logLevel === "silent");
    } catch (e) {
      s = { system, mode: "sim", seed, ok: false, checks: { "simulation ran": false }, details: { "simulation ran": String(e) }, metrics: {}, nemesis: [] };
    }
    if (!s.ok) failing.push({ seed, failed: Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => n).join("; "), replay: replayCommand(process.argv.slice(2), seed) });
    bar.increment(1, { failing: failing.length });
  }
  bar.stop();
  console.log(`${b - a + 1} seeds, ${failing.length} failing`);
  if (failing.length > 0) {
    console.log("seed  failed checks  replay");
    for (const f of failing) console.log(`${f.seed}  ${f.failed}  ${f.replay}`);
  }
  if (opts.json) console.log(JSON.stringify({ system, seeds: [a, b], ok: failing.length === 0, failing }));
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
  });
  let bridge: TcpBridge | null = null;
  let stopRequested!: () => void;
  const stop = new Promise<void>((r) => (stopRequested = r));
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

  if (mh) {
    bridge = new TcpBridge({ host: mh.host, listen: mh.listen, peers: mh.peers, secret: opts.secret, log: cluster.log }, cluster);
    cluster.attachBridge(bridge);
    bridge.onShutdown = () => stopRequested();
    bridge.start();
    console.log(`menhir: host ${mh.host} listening on ${mh.listen.hostname}:${bridge.port}; driver host ${mh.driverHost}`);
  }
  const liveRun = new LiveRun(cluster, system);
  let admin: ReturnType<typeof startAdmin> | null = null;
  if (opts.adminPort !== null) {
    admin = startAdmin({ port: opts.adminPort, hostname: opts.adminHost, secret: opts.secret, cluster: liveRun.adminCluster, extraStats: () => (bridge ? { bridge: bridge.counters } : {}), extra: liveRun.routes });
    console.log(dashboardLine(admin.url, opts.secret, opts.secretGenerated));
  }
  await cluster.start();
  const local = nodes.filter((n) => cluster.isLocal(n.id));
  console.log(`menhir: ${system} cluster up: ${local.length} of ${nodes.length} nodes on worker threads here (seed ${opts.seed}, data dir ${opts.dataDir})`);
  for (const n of local) {
    const url = cluster.httpUrl(n.id);
    if (url) console.log(`menhir: ${n.id} serves HTTP at ${url}`);
  }
  if (admin) {
    console.log(`menhir: admin API at ${admin.url}${opts.secretGenerated ? ` (bearer token: ${opts.secret})` : " (bearer token: the --secret)"}`);
  }

  let code = 0;
  if (!mh || mh.driverHost === mh.host) {
    if (mh && bridge) {
      const t0 = Date.now();
      while (bridge.connectedHosts().length < Object.keys(mh.peers).length) {
        if (Date.now() - t0 > 60_000) throw new Error(`hosts not connected after 60 s: ${Object.keys(mh.peers).filter((h) => !bridge!.connectedHosts().includes(h)).join(", ")}`);
        await Bun.sleep(100);
      }
      // A control round trip comes back on the peer's own dial: both directions are up.
      for (const h of Object.keys(mh.peers)) {
        while (!(await bridge.control(h, "info").then(() => true, () => false))) await Bun.sleep(100);
      }
    }
    if (!Number.isFinite(opts.duration)) console.log("menhir: running until Ctrl-C");
    liveRun.start(process.stderr);
    const summary = await runScenario(liveRun.runCluster, scenario, opts, stop);
    liveRun.finish(summary);
    printSummary(summary, opts.json);
    code = summary.ok || !Number.isFinite(opts.duration) ? 0 : 1;
    await bridge?.shutdownPeers();
  } else {
    console.log(`menhir: serving nodes for driver host ${mh.driverHost} until it finishes or Ctrl-C`);
    liveRun.start(process.stderr);
    await stop;
  }
  await liveRun.stop();
  admin?.stop(true);
  await cluster.stop();
  bridge?.close();
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

async function buildCli() {
  const cli = cac("cluster");
  const scenarios = await Promise.all(Object.keys(SYSTEMS).map(async (name) => [name, await loadScenario(name)] as const));
  const register = (cmdName: string, system: string, scenario: Scenario, desc: string) => {
    const cmd = cli.command(cmdName, desc);
    for (const o of scenario.options) cmd.option(o.flags, o.description, o.default === undefined ? undefined : { default: o.default });
    for (const [f, d] of COMMON) cmd.option(f, d);
    cmd.action(async (flags: Flags) => {
      let code: number;
      try {
        code = await main(system, flags);
      } catch (e) {
        if (e instanceof UsageError) {
          console.error(`error: ${e.message}\n(see: bun run cluster ${system} --help)`);
          code = 2;
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
  cli.help();
  return cli;
}

const cli = await buildCli();
try {
  cli.parse(process.argv, { run: false });
  await cli.runMatchedCommand();
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}\n(see: bun run cluster --help)`);
  process.exit(2);
}
