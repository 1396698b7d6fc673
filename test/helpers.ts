import type { Cluster } from "../src/driver/cluster.ts";
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster, type StartOptions, type ThreadCluster } from "../src/main/supervisor.ts";
import { Simulation, type SimOptions } from "../src/sim/simulator.ts";
import { defineRole, type NodeId, type NodeSpec, type Role } from "../src/workers/runtime/types.ts";

/** Temporary data directories for one test file, all removed after it: call once at the top of the file. */
export function tempDirs(name: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), `menhir-${name}-`));
    dirs.push(d);
    return d;
  };
}

/** Start a cluster on worker threads, run `fn` on it, and stop it whatever happens. */
export async function withThreads<T>(opts: StartOptions, fn: (c: ThreadCluster) => Promise<T>): Promise<T> {
  const c = await startCluster(opts);
  try {
    return await fn(c);
  } finally {
    await c.stop();
  }
}

/** `p`, or a rejection if it has not settled within `ms` (the timer is cleared either way: nothing fires later). */
export function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A TCP port that was free a moment ago (for a listener that must know its port before it binds). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

/** Run a driver function against a simulated cluster of the given roles. */
export async function simulate<T>(opts: Omit<SimOptions, "logLevel"> & { logLevel?: SimOptions["logLevel"] }, driver: (sim: Simulation) => Promise<T>): Promise<{ result: T; sim: Simulation }> {
  const sim = new Simulation({ logLevel: "silent", ...opts });
  const result = await sim.run(driver);
  return { result, sim };
}

/** A key-value node used by runtime tests: writes to storage and memory, answers reads from both. */
export const kvNode: Role = defineRole((node) => {
  const memory = new Map<string, unknown>();
  node.on("put", (m) => {
    node.storage.put(String(m.body.key), m.body.value);
    memory.set(String(m.body.key), m.body.value);
    node.reply(m, { type: "put_ok" });
  });
  node.on("get", (m) => {
    node.reply(m, { type: "get_ok", durable: node.storage.get(String(m.body.key)) ?? null, memory: memory.get(String(m.body.key)) ?? null });
  });
  node.on("boom", () => {
    throw new Error("deliberate");
  });
  node.on("slow", async (m) => {
    await node.sleep(Number(m.body.ms));
    node.reply(m, { type: "slow_ok" });
  });
  node.on("relay", async (m) => {
    const r = await node.request(String(m.body.to), m.body.inner as { type: string }, { timeoutMs: Number(m.body.timeoutMs ?? 1000) });
    node.reply(m, { type: "relay_ok", reply: r });
  });
  // Arrival order of numbered counts, to check a link's FIFO order.
  const seqs: number[] = [];
  node.on("count", (m) => {
    memory.set("count", Number(memory.get("count") ?? 0) + 1);
    if (typeof m.body.seq === "number") seqs.push(m.body.seq);
  });
  node.on("seqs", (m) => node.reply(m, { type: "seqs_ok", seqs }));
  node.on("blast", (m) => {
    // With `odd: k`, every k-th message carries a NaN (JSON does not carry it: such a message travels as an object).
    const odd = Number(m.body.odd ?? 0);
    for (let i = 0; i < Number(m.body.n); i++) node.send(String(m.body.to), odd > 0 && i % odd === 0 ? { type: "count", seq: i, nan: NaN } : { type: "count", seq: i });
    node.reply(m, { type: "blast_ok" });
  });
  // `n` fan-outs (sendMany) of numbered counts to `to`, from one kept list, as a node fans out to the same collection again and again.
  const fanLists = new Map<string, NodeId[]>();
  node.on("fan", (m) => {
    const to = (m.body.to as unknown[]).map(String);
    const key = to.join(",");
    if (!fanLists.has(key)) fanLists.set(key, to);
    for (let i = 0; i < Number(m.body.n); i++) node.sendMany(fanLists.get(key)!, { type: "count", seq: Number(m.body.from ?? 0) + i });
    node.reply(m, { type: "fan_ok" });
  });
  // Answers, then never runs another turn: its whole worker thread hangs.
  node.on("hang", (m) => {
    node.reply(m, { type: "hanging" });
    for (;;);
  });
  node.on("ping", (m) => node.reply(m, { type: "pong", at: node.now() }));
  // A node configured to greet a peer talks at once on start: links made during a (re)start must hold.
  if (typeof node.config.greet === "string") node.send(node.config.greet, { type: "count" });
  const hooks = { inspect: () => ({ count: memory.get("count") ?? 0, incarnation: node.incarnation }) };
  // A node configured with a slow restart takes that long to start again after a crash.
  const slow = Number(node.config.slowRestartMs ?? 0);
  return slow > 0 && node.incarnation > 0 ? node.sleep(slow).then(() => hooks) : hooks;
});

export function kvNodes(n: number): NodeSpec[] {
  return Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, role: "kv" }));
}

/** What the runner does when the nemesis stops, for tests that inject faults by hand: every node left crashed or paused comes back. */
export async function healAll(c: Cluster): Promise<void> {
  for (const { id } of c.nodes) {
    if (c.status(id) === "crashed") await c.restart(id);
    else if (c.status(id) === "paused") await c.resume(id);
  }
}

export interface HttpReplyOf {
  status: number;
  body: any;
  headers: Headers;
}

/** A JSON request to a node's HTTP handler in the simulator (a string body is sent as it is). */
export async function simHttp(c: Simulation, node: string, method: string, path: string, body?: unknown): Promise<HttpReplyOf> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
  const res = await c.fetch(node, new Request(`http://${node}.test${path}`, init));
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;

/**
 * Runs the CLI in its own process with no secret or password from the environment (unless `env`
 * gives one); a run that does not end within `limitMs` is killed and reported as hung (code null).
 */
export async function runCli(args: string[], limitMs = 20_000, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const p = Bun.spawn([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MENHIR_SECRET: "", MENHIR_OLYMPICS_PASSWORD: "", ...env } });
  let hung = false;
  const t = setTimeout(() => {
    hung = true;
    p.kill("SIGKILL");
  }, limitMs);
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  clearTimeout(t);
  return { code: hung ? null : code, out, err };
}
