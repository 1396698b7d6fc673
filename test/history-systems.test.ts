/**
 * Histories judge systems by what clients saw. A deliberately broken stocks front end — it keeps its
 * own lookup cache and drops a stock from it only some time after acknowledging a trade of that
 * stock — passes every check that reads node state, yet its clients' history is not linearizable
 * (a lookup that starts after a trade was acknowledged still sees the old quantity). The correct
 * system under the same seeds and faults is linearizable, and a failing seed replays exactly.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScenario, type HistoryOutcome } from "../src/driver/run.ts";
import { readHistoryFile, writeHistoryFile } from "../src/history/jsonl.ts";
import { checkLinearizable } from "../src/history/linearizable.ts";
import { stocksModel } from "../src/history/models.ts";
import { renderHistoryReport, renderTotalOrderReport } from "../src/history/report.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { roles as echoRoles } from "../src/workers/echo/roles.ts";
import { scenario as echoScenario } from "../src/workers/echo/scenario.ts";
import { defineRole, type Body, type Handler, type Message, type NodeContext } from "../src/workers/runtime/types.ts";
import { roles as paxosRoles } from "../src/workers/paxos/roles.ts";
import { scenario as paxosScenario } from "../src/workers/paxos/scenario.ts";
import { roles as stocksRoles } from "../src/workers/stocks/roles.ts";
import { scenario as stocksScenario } from "../src/workers/stocks/scenario.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

/** The planted bug: a second cache in front of the real front end, invalidated 30 ms after the trade is acknowledged. */
const staleFrontend = defineRole((node: NodeContext<any>) => {
  const cached = new Map<string, Body>();
  let inner: Handler | undefined;
  const stockOf = (m: Message): string | undefined => /^\/stocks\/([^/?]+)$/.exec(String(m.body.path))?.[1];
  const ctx: NodeContext<any> = {
    ...node,
    on(type: string, h: Handler<any>) {
      if (type === "http") inner = h;
      else node.on(type, h);
    },
    reply(req: Message, body: Body) {
      node.reply(req, body);
      const name = stockOf(req);
      if (req.body.type === "http" && req.body.method === "GET" && name && body.status === 200) cached.set(name, body);
      if (req.body.type === "http" && req.body.method === "POST") {
        const traded = (JSON.parse(String(req.body.body)) as { name: string }).name;
        node.setTimeout(30, () => {
          cached.delete(traded);
        });
      }
    },
  };
  const hooks = stocksRoles.frontend(ctx);
  node.on("http", (msg) => {
    const name = stockOf(msg);
    const hit = msg.body.method === "GET" && name ? cached.get(name) : undefined;
    if (hit) node.reply(msg, hit);
    else return inner!(msg);
  });
  return hooks;
});

const opts = { seed: 0, duration: 3, latency: 0, loss: 0, dup: 0, nemesis: ["kill" as const], nemesisInterval: 1, logLevel: "silent", clients: 4, intervalMs: 5, port: 0, initialQuantity: 30, maxQuantity: 10, p: 0.5, replicas: 3, cacheSize: 100, cache: true };

async function runStocks(seed: number, broken: boolean) {
  const roles = broken ? { ...stocksRoles, frontend: staleFrontend } : stocksRoles;
  const o = { ...opts, seed };
  const sim = new Simulation({ seed, nodes: stocksScenario.topology(o), roles, network: { latencyMs: 1, distribution: "exponential" }, logLevel: "silent" });
  let history: HistoryOutcome | undefined;
  const summary = await sim.run((c) => runScenario(c, stocksScenario, o, undefined, (h) => (history = h)));
  return { summary, history: history!, digest: sim.stats().digest };
}

describe("stocks histories", () => {
  test("a front end that acknowledges before invalidating its cache is caught by the history, not by the node-state checks; the correct one is linearizable", async () => {
    const seeds = [1, 2];
    let caught: { seed: number; digest: string; detail: string } | undefined;
    for (const seed of seeds) {
      const good = await runStocks(seed, false);
      expect(good.summary.checks.linearizable).toBe(true);
      expect(good.summary.ok).toBe(true);
      expect(good.history.check!.ops).toBeGreaterThan(100);

      const bad = await runStocks(seed, true);
      // Every check that reads what nodes hold still passes: only the history sees the lie.
      for (const [name, ok] of Object.entries(bad.summary.checks)) if (name !== "linearizable") expect([name, ok]).toEqual([name, true]);
      if (!bad.summary.checks.linearizable && !caught) caught = { seed, digest: bad.digest, detail: bad.summary.details.linearizable! };
    }
    expect(caught).toBeDefined();
    expect(caught!.detail).toMatch(/lookup .* cannot be linearized/);

    // The seed replays: same trace, same verdict, same witness.
    const again = await runStocks(caught!.seed, true);
    expect(again.digest).toBe(caught!.digest);
    const witness = (d: string) => d.replace(/, \d+ ms\)$/, ")");
    expect(witness(again.summary.details.linearizable!)).toBe(witness(caught!.detail));

    // The history survives its file format, and the report shows the failing window.
    const file = join(mkdtempSync(join(tmpdir(), "menhir-hist-")), "h.jsonl");
    await writeHistoryFile(file, again.history.ops);
    const read = await readHistoryFile(file);
    const check = checkLinearizable(read, stocksModel({ initialQuantity: opts.initialQuantity }));
    expect(check.verdict).toBe("not linearizable");
    const html = renderHistoryReport(read, check);
    const f = check.failures[0]!;
    expect(html).toContain(`Key ${f.key}: not linearizable`);
    expect(html).toContain(`model state before the window: ${f.stateBefore}`);
    expect(html).toContain(`>${f.stuck.process}</text>`);
  }, 120_000);
});

describe("echo histories", () => {
  test("every reply is recorded with its payload, on virtual time", async () => {
    const o = { seed: 5, duration: 2, latency: 0, loss: 0, dup: 0, nemesis: ["kill" as const], nemesisInterval: 0.5, logLevel: "silent", clients: 2, intervalMs: 10 };
    const sim = new Simulation({ seed: 5, nodes: echoScenario.topology(o), roles: echoRoles, network: { latencyMs: 1 }, logLevel: "silent" });
    let history: HistoryOutcome | undefined;
    const summary = await sim.run((c) => runScenario(c, echoScenario, o, undefined, (h) => (history = h)));
    expect(summary.checks.linearizable).toBe(true);
    const ops = history!.ops;
    expect(new Set(ops.map((op) => op.process))).toEqual(new Set(["client-1", "client-2"]));
    expect(ops.filter((op) => op.type === "ok").every((op) => op.value === op.sent)).toBe(true);
    // The server was killed: some requests timed out and are indefinite.
    expect(ops.some((op) => op.type === "info" && op.code === 0)).toBe(true);
    for (const op of ops) expect(op.completeMs === null || op.completeMs >= op.invokeMs).toBe(true);
  });
});

/** The planted bug: a replica that acknowledges a chat message on arrival, before it is chosen (or even if it is not the leader). */
const eagerReplica = defineRole((node: NodeContext<any>) => {
  const acked = new WeakSet<Message>();
  const ctx: NodeContext<any> = {
    ...node,
    on(type: string, h: Handler<any>) {
      if (type !== "chat") return node.on(type, h);
      node.on(type, (msg) => {
        node.reply(msg, { type: "chat_ok" });
        acked.add(msg);
        return h(msg);
      });
    },
    reply(req: Message, body: Body) {
      if (!acked.has(req)) node.reply(req, body);
    },
  };
  return paxosRoles.replica(ctx);
});

describe("paxos histories", () => {
  test("a replica that acknowledges before the message is chosen breaks the total order the history shows; the correct one keeps it", async () => {
    const run = async (broken: boolean) => {
      const o = { seed: 3, duration: 3, latency: 0, loss: 0, dup: 0, nemesis: ["kill" as const], nemesisInterval: 0.5, logLevel: "silent", f: 1, clients: 2, intervalMs: 5 };
      const roles = broken ? { ...paxosRoles, replica: eagerReplica } : paxosRoles;
      const sim = new Simulation({ seed: 3, nodes: paxosScenario.topology(o as never), roles, network: { latencyMs: 1 }, logLevel: "silent" });
      let history: HistoryOutcome | undefined;
      const summary = await sim.run((c) => runScenario(c, paxosScenario, o as never, undefined, (h) => (history = h)));
      return { ...summary, history: history! };
    };
    const good = await run(false);
    expect(good.checks["total order"]).toBe(true);
    const bad = await run(true);
    expect(bad.checks["total order"]).toBe(false);
    expect(bad.details["total order"]).toMatch(/missing: .* was acknowledged at .* but is not in the log/);
    // The report names the problems and draws the sends they are about.
    const to = bad.history.totalOrder!;
    expect(to.ok).toBe(false);
    const html = renderTotalOrderReport(bad.history.ops, to);
    expect(html).toContain("total order violated");
    expect(html).toContain(to.problems[0]!.replace(/'/g, "&#39;"));
    expect(to.witnesses.length).toBeGreaterThan(0);
    expect(html).toContain(`>${to.witnesses[0]!.process}</text>`);
  }, 60_000);
});
