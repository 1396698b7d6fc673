/**
 * Turns CLI flags into validated options. Every bad flag gets a UsageError naming it and what it
 * accepts; nothing starts on bad input.
 */
import { randomBytes } from "node:crypto";
import { totalmem } from "node:os";
import { MAX_NODES, type CommonOptions, type NemesisKind, type Scenario } from "../driver/scenario.ts";
import { isIP } from "node:net";
import { NEMESIS_KINDS } from "../driver/nemesis.ts";
import type { NetworkPatch } from "../driver/cluster.ts";
import type { LatencyDistribution } from "../workers/runtime/network.ts";
import { MAX_DRIFT_PPM, withClocks } from "../workers/runtime/clock.ts";
import type { LogLevel, NodeId, NodeSpec } from "../workers/runtime/types.ts";
import type { Endpoint } from "./bridge.ts";

export { MAX_NODES };

export class UsageError extends Error {}

/** A run that cannot go on for a reason the operator can fix (a port in use, a host unreachable): one line, no stack. */
export class RunError extends Error {}

export interface MultiHost {
  host: string;
  listen: Endpoint;
  peers: Record<string, Endpoint>;
  placement: Record<NodeId, string>;
  driverHost: string;
}

export interface RunOptions extends CommonOptions {
  [system: string]: unknown;
  logLevel: LogLevel;
  network: NetworkPatch;
  dataDir: string;
  fresh: boolean;
  json: boolean;
  sim: boolean;
  seeds: [number, number] | null;
  secret: string;
  secretGenerated: boolean;
  /** System secret options that were generated because none was given: key in these options, flag, environment variable. */
  generatedSecrets: Array<{ key: string; flag: string; env: string }>;
  adminPort: number | null;
  /** Multi-host: seconds to wait for every peer host before the run fails. */
  connectTimeout: number;
  /** Where the admin API and dashboard listen: 127.0.0.1 unless told otherwise. */
  adminHost: string;
  /** Worker threads to pack this host's nodes into; null: one per node. */
  threads: number | null;
  /** With threads: pin each worker thread to a CPU of its own (ThreadCluster's StartOptions.pin). */
  pin: boolean;
  multiHost: MultiHost | null;
  /** Write the clients' history here (JSON Lines). */
  history: string | null;
  /** Write the history check as an HTML page here. */
  historyReport: string | null;
}

/**
 * Memory budgeted per worker thread. Measured RSS per thread: ~3.6 MiB for idle echo nodes (bench
 * scale, 1000 nodes), 8-10 MiB for stocks and paxos nodes under load (measured while every thread
 * still loaded msgpackr's native decoder and node:crypto, ~1.8 MiB it now loads only with a TCP
 * wire); the budget leaves room for queues and sqlite caches.
 */
export const THREAD_BUDGET_BYTES = 16 * 2 ** 20;

/** Worker threads this machine can hold: its memory, halved for everything else, over the per-thread budget. */
export function maxThreads(totalMemBytes: number): number {
  return Math.max(1, Math.floor(totalMemBytes / 2 / THREAD_BUDGET_BYTES));
}

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];
const DISTRIBUTIONS: readonly LatencyDistribution[] = ["constant", "uniform", "exponential"];

function num(name: string, v: unknown, o: { min?: number; max?: number; integer?: boolean } = {}): number {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  const what = `${o.integer ? "an integer" : "a number"}${o.min !== undefined ? ` >= ${o.min}` : ""}${o.max !== undefined ? ` and <= ${o.max}` : ""}`;
  if (!Number.isFinite(n) || (o.integer && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function str(name: string, v: unknown): string {
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} needs a value`);
  return v;
}

export function parseEndpoint(name: string, v: string): Endpoint {
  const m = /^(.*):(\d+)$/.exec(v);
  if (!m || m[1] === "") throw new UsageError(`--${name} must look like host:port, got "${v}"`);
  const port = num(name, m[2], { min: 0, max: 65535, integer: true });
  return { hostname: m[1]!.replace(/^\[(.*)\]$/, "$1"), port };
}

function list(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return items.flatMap((x) => String(x).split(",")).map((s) => s.trim()).filter((s) => s !== "");
}

/** Flags cac gives us (camelCased), plus system options. */
export type Flags = Record<string, unknown>;

export function parseOptions(
  system: string,
  scenario: Scenario,
  flags: Flags,
  env: Record<string, string | undefined> = process.env,
  machine: { totalMemBytes: number } = { totalMemBytes: totalmem() },
): { opts: RunOptions; nodes: NodeSpec[] } {
  const seed = flags.seed === undefined ? randomBytes(4).readUInt32BE() % 2 ** 31 : num("seed", flags.seed, { min: 0, max: 2 ** 53, integer: true });
  const sim = flags.sim === true;
  let seeds: [number, number] | null = null;
  if (flags.seeds !== undefined) {
    const m = /^(\d+)\.\.(\d+)$/.exec(String(flags.seeds));
    if (!m || Number(m[1]) > Number(m[2])) throw new UsageError(`--seeds must look like A..B with A <= B, got "${String(flags.seeds)}"`);
    seeds = [Number(m[1]), Number(m[2])];
    if (seeds[1] - seeds[0] > 100_000) throw new UsageError("--seeds covers at most 100000 seeds");
  }
  let duration = flags.duration === undefined ? Infinity : num("duration", flags.duration, { min: 0.001 });
  if ((sim || seeds) && !Number.isFinite(duration)) duration = 10;
  const logLevel = (flags.logLevel ?? (seeds ? "silent" : "warn")) as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got "${String(flags.logLevel)}"`);
  const nemesis = list(flags.nemesis) as NemesisKind[];
  for (const k of nemesis) if (!NEMESIS_KINDS.includes(k)) throw new UsageError(`--nemesis takes ${NEMESIS_KINDS.join(",")}; "${k}" is not one of them`);
  const distribution = (flags.latencyDist ?? "constant") as LatencyDistribution;
  if (!DISTRIBUTIONS.includes(distribution)) throw new UsageError(`--latency-dist must be one of ${DISTRIBUTIONS.join(", ")}`);
  const latency = flags.latency === undefined ? 0 : num("latency", flags.latency, { min: 0, max: 60_000 });
  const loss = flags.loss === undefined ? 0 : num("loss", flags.loss, { min: 0, max: 1 });
  const dup = flags.dup === undefined ? 0 : num("dup", flags.dup, { min: 0, max: 1 });
  const nemesisInterval = flags.nemesisInterval === undefined ? 5 : num("nemesis-interval", flags.nemesisInterval, { min: 0.01 });
  // The admin API (and its dashboard) is on by default, on 127.0.0.1 and a free port: never a clash.
  const adminPort = flags.adminPort === undefined ? 0 : num("admin-port", flags.adminPort, { min: 0, max: 65535, integer: true });
  const adminHost = flags.adminHost === undefined ? "127.0.0.1" : String(flags.adminHost);
  if (isIP(adminHost) === 0 && adminHost !== "localhost") throw new UsageError(`--admin-host must be an IP address (127.0.0.1, 0.0.0.0, ::1 …) or localhost, got "${adminHost}"`);
  const connectTimeout = flags.connectTimeout === undefined ? 60 : num("connect-timeout", flags.connectTimeout, { min: 0.1, max: 86_400 });
  const threads = flags.threads === undefined ? null : num("threads", flags.threads, { min: 1, max: 4096, integer: true });
  // cac makes `--no-pin` a `pin` flag that is true unless turned off; `--pin=x` would hand it a string.
  if (flags.pin !== undefined && typeof flags.pin !== "boolean") throw new UsageError(`--no-pin takes no value, got "${String(flags.pin)}"`);
  if (flags.pin === false && threads === null) throw new UsageError("--no-pin applies to packed threads: give --threads <n> too (one thread per node is never pinned)");
  const clockSkew = flags.clockSkew === undefined ? 0 : num("clock-skew", flags.clockSkew, { min: 0, max: 3_600_000 });
  const clockDrift = flags.clockDrift === undefined ? 0 : num("clock-drift", flags.clockDrift, { min: 0, max: MAX_DRIFT_PPM });

  const systemOpts: Record<string, unknown> = {};
  const generatedSecrets: RunOptions["generatedSecrets"] = [];
  for (const o of scenario.options) {
    const long = /--(?:no-)?([a-z0-9-]+)/.exec(o.flags)![1]!;
    const key = long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    let v = flags[key] ?? o.default;
    if (o.secret) {
      if (v !== undefined && (typeof v !== "string" || v === "")) throw new UsageError(`--${long} needs a value`);
      const from = v !== undefined ? `--${long}` : `$${o.secret.env}`;
      v ??= env[o.secret.env] || undefined;
      if (v === undefined) generatedSecrets.push({ key, flag: `--${long}`, env: o.secret.env });
      else if (String(v).length < 8) throw new UsageError(`${from} must be at least 8 characters`);
    }
    if ((typeof o.default === "number" || o.integer || o.max !== undefined) && v !== undefined) v = num(long, v, { min: o.min ?? 0, max: o.max, integer: o.integer });
    if (typeof o.default === "string" && typeof v === "number") v = String(v);
    systemOpts[key] = v;
  }

  if (flags.secret !== undefined && (typeof flags.secret !== "string" || flags.secret === "")) throw new UsageError("--secret needs a value");
  let secret = (flags.secret as string | undefined) ?? (env.MENHIR_SECRET || undefined);
  const secretGenerated = !secret;
  if (secret !== undefined && secret.length < 8) throw new UsageError("--secret must be at least 8 characters");

  let multiHost: MultiHost | null = null;
  const peerFlags = list(flags.peer);
  if (flags.host !== undefined || peerFlags.length > 0 || flags.place !== undefined) {
    if (sim || seeds) throw new UsageError("--sim runs the whole cluster in one thread; it does not take --host/--peer/--place");
    const host = str("host", flags.host);
    if (!/^[A-Za-z0-9_.-]+$/.test(host)) throw new UsageError(`--host must be a simple name, got "${host}"`);
    const listen = parseEndpoint("listen", str("listen", flags.listen));
    const peers: Record<string, Endpoint> = {};
    for (const p of peerFlags) {
      const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(p);
      if (!m) throw new UsageError(`--peer must look like name=host:port, got "${p}"`);
      if (m[1] === host) throw new UsageError(`--peer ${m[1]} is this host`);
      peers[m[1]!] = parseEndpoint("peer", m[2]!);
    }
    if (Object.keys(peers).length === 0) throw new UsageError("--host needs at least one --peer");
    if (secretGenerated) throw new UsageError("hosts authenticate each other with a shared secret: pass --secret or set MENHIR_SECRET on every host");
    // Each host builds its nodes' configuration itself: a secret generated on one would differ on another.
    const g = generatedSecrets[0];
    if (g) throw new UsageError(`every host must use the same ${g.flag}: pass it, or set ${g.env} on every host`);
    multiHost = { host, listen, peers, placement: {}, driverHost: "" };
  }
  secret ??= randomBytes(18).toString("base64url");
  for (const { key } of generatedSecrets) systemOpts[key] = sim || seeds ? simSecret(key, seed) : randomBytes(12).toString("base64url");

  const opts: RunOptions = {
    ...systemOpts,
    seed,
    duration,
    latency,
    loss,
    dup,
    nemesis,
    nemesisInterval,
    logLevel,
    clockSkew,
    clockDrift,
    network: { latencyMs: latency, distribution, loss, dup, reorder: flags.reorder === true },
    dataDir: flags.dataDir === undefined ? `data/${system}${multiHost ? `-${multiHost.host}` : ""}` : str("data-dir", flags.dataDir),
    fresh: flags.fresh === true,
    json: flags.json === true,
    sim,
    seeds,
    secret,
    secretGenerated,
    generatedSecrets,
    adminPort,
    connectTimeout,
    adminHost,
    threads,
    pin: flags.pin !== false,
    multiHost,
    history: flags.history === undefined ? null : str("history", flags.history),
    historyReport: flags.historyReport === undefined ? null : str("history-report", flags.historyReport),
  };
  if (seeds && (opts.history || opts.historyReport)) throw new UsageError("--history and --history-report record one run: use --sim --seed N (the --seeds table names the seeds to look at)");
  let nodes: NodeSpec[];
  try {
    nodes = topologyWithClocks(scenario, opts);
  } catch (e) {
    // A system that rejects its options says why; that is a usage error, not a crash.
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (nodes.length > MAX_NODES) throw new UsageError(`this cluster would have ${nodes.length} nodes; menhir runs at most ${MAX_NODES}`);
  if (multiHost) {
    const hosts = new Set([multiHost.host, ...Object.keys(multiHost.peers)]);
    for (const p of list(flags.place)) {
      const m = /^([^=]+)=(.+)$/.exec(p);
      if (!m) throw new UsageError(`--place must look like node=host,node=host; got "${p}"`);
      if (!nodes.some((n) => n.id === m[1])) throw new UsageError(`--place names node "${m[1]}", which this cluster does not have (nodes: ${nodes.map((n) => n.id).join(", ")})`);
      if (!hosts.has(m[2]!)) throw new UsageError(`--place puts ${m[1]} on "${m[2]}", which is neither --host nor a --peer`);
      multiHost.placement[m[1]!] = m[2]!;
    }
    multiHost.driverHost = flags.driverHost !== undefined ? str("driver-host", flags.driverHost) : [...hosts].sort()[0]!;
    if (!hosts.has(multiHost.driverHost)) throw new UsageError(`--driver-host "${multiHost.driverHost}" is neither --host nor a --peer`);
    // Unplaced nodes live with the driver.
    for (const n of nodes) multiHost.placement[n.id] ??= multiHost.driverHost;
  }
  if (!sim && !seeds) {
    // One worker thread per node (or --threads): refuse up front what this machine cannot hold.
    const local = multiHost ? nodes.filter((n) => multiHost.placement[n.id] === multiHost.host).length : nodes.length;
    const want = Math.min(threads ?? local, local);
    const can = maxThreads(machine.totalMemBytes);
    if (want > can) {
      const gib = (machine.totalMemBytes / 2 ** 30).toFixed(1);
      throw new UsageError(
        `${local} nodes on ${want} worker threads need about ${Math.ceil((want * THREAD_BUDGET_BYTES) / 2 ** 20)} MiB; this machine (${gib} GiB) holds at most ${can} threads: pack them with --threads <n> (n <= ${can}), or use --sim`,
      );
    }
  }
  return { opts, nodes };
}

/**
 * A generated secret in the simulator: nothing listens there, and it must follow from the seed so
 * that a replayed seed is the same run (message bodies feed the run's digest).
 */
function simSecret(key: string, seed: number): string {
  return `sim-${Bun.hash.wyhash(`${key}:${seed}`).toString(16)}`;
}

/** The options of one simulated seed: generated secrets follow the seed. */
export function forSeed(opts: RunOptions, seed: number): RunOptions {
  const out: RunOptions = { ...opts, seed };
  for (const { key } of opts.generatedSecrets) out[key] = simSecret(key, seed);
  return out;
}

/** The scenario's nodes, each with its clock offset and drift drawn from the seed (--clock-skew, --clock-drift). */
export function topologyWithClocks(scenario: Scenario, opts: RunOptions): NodeSpec[] {
  return withClocks(scenario.topology(opts), opts.seed, opts.clockSkew ?? 0, opts.clockDrift ?? 0);
}

/** The command that replays one simulated run: the same flags, this seed. */
export function replayCommand(argv: readonly string[], seed: number): string {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--seed" || a === "--seeds") {
      i++;
      continue;
    }
    if (a.startsWith("--seed=") || a.startsWith("--seeds=") || a === "--sim") continue;
    out.push(/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  }
  return `bun run cluster ${out.join(" ")} --sim --seed ${seed}`.replace(/\s+/g, " ");
}
