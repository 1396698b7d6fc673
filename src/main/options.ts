/**
 * Turns CLI flags into validated options. Every bad flag gets a UsageError naming it and what it
 * accepts; nothing starts on bad input.
 */
import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type { CommonOptions, NemesisKind, Scenario } from "../driver/scenario.ts";
import { NEMESIS_KINDS } from "../driver/nemesis.ts";
import type { NetworkPatch } from "../driver/cluster.ts";
import type { LatencyDistribution } from "../workers/runtime/network.ts";
import type { LogLevel, NodeId, NodeSpec } from "../workers/runtime/types.ts";
import type { Endpoint } from "./bridge.ts";

export class UsageError extends Error {}

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
  adminPort: number | null;
  /** Where the admin API and dashboard listen: 127.0.0.1 unless told otherwise. */
  adminHost: string;
  /** Worker threads to pack this host's nodes into; null: one per node. */
  threads: number | null;
  multiHost: MultiHost | null;
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

export function parseOptions(system: string, scenario: Scenario, flags: Flags, env: Record<string, string | undefined> = process.env): { opts: RunOptions; nodes: NodeSpec[] } {
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
  const threads = flags.threads === undefined ? null : num("threads", flags.threads, { min: 1, max: 4096, integer: true });

  const systemOpts: Record<string, unknown> = {};
  for (const o of scenario.options) {
    const long = /--(?:no-)?([a-z0-9-]+)/.exec(o.flags)![1]!;
    const key = long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    let v = flags[key] ?? o.default;
    if (typeof o.default === "number" && v !== undefined) v = num(long, v, { min: 0 });
    if (typeof o.default === "string" && typeof v === "number") v = String(v);
    systemOpts[key] = v;
  }

  let secret = (flags.secret as string | undefined) ?? (env.MENHIR_SECRET || undefined);
  const secretGenerated = !secret;
  if (secret !== undefined && typeof secret !== "string") throw new UsageError("--secret needs a value");
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
    multiHost = { host, listen, peers, placement: {}, driverHost: "" };
  }
  secret ??= randomBytes(18).toString("base64url");

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
    network: { latencyMs: latency, distribution, loss, dup, reorder: flags.reorder === true },
    dataDir: String(flags.dataDir ?? `data/${system}${multiHost ? `-${multiHost.host}` : ""}`),
    fresh: flags.fresh === true,
    json: flags.json === true,
    sim,
    seeds,
    secret,
    secretGenerated,
    adminPort,
    adminHost,
    threads,
    multiHost,
  };
  let nodes: NodeSpec[];
  try {
    nodes = scenario.topology(opts);
  } catch (e) {
    // A system that rejects its options says why; that is a usage error, not a crash.
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
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
  return { opts, nodes };
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
