import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScenario } from "../src/driver/run.ts";
import type { Scenario } from "../src/driver/scenario.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { awaitQuiet, bookstoreTopology, catalogIds, orderIds, readCatalogLog, readOrders, scenario, type CatalogView } from "../src/workers/bookstore/scenario.ts";

const dataDir = mkdtempSync(join(tmpdir(), "menhir-bookstore-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const C = catalogIds(2);
const O = orderIds(2);

async function http(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; allow: string | null }> {
  const res = await fetch(new URL(path, base), { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } });
  return { status: res.status, body: await res.json(), allow: res.headers.get("allow") };
}

test("threads: real HTTP; a catalog and an order server die under load, nothing acknowledged is lost, the catalog resyncs what it missed", async () => {
  const c = await startCluster({ system: "bookstore", nodes: bookstoreTopology({ clients: 0, port: 0 }), seed: 5, dataDir, fresh: true, logLevel: "silent" });
  try {
    const base = c.httpUrl("frontend")!;
    expect(base).toMatch(/^http:\/\//);
    expect((await http(base, "GET", "/lookup/4")).body.data).toMatchObject({ title: "Cooking for the Impatient Graduate Student", cost: 2, quantity: 10 });
    const crawler = await http(base, "GET", "/buy/1");
    expect([crawler.status, crawler.allow]).toEqual([405, "POST"]);
    expect((await fetch(new URL("/buy/", base), { method: "POST", body: "x".repeat(70_000) })).status).toBe(413);

    const acked: number[] = [];
    let unknown = 0;
    let stop = false;
    const shoppers = Promise.all(
      [1, 2, 3].map(async (item) => {
        while (!stop) {
          const r = await http(base, "POST", `/buy/${item}`);
          if (r.status === 200) acked.push(r.body.data.order);
          else unknown++;
        }
      }),
    );
    await c.sleep(300);
    await c.crash("catalog-2");
    await c.sleep(400);
    await c.crash("order-1");
    await c.sleep(400);
    await c.restart("order-1");
    await c.restart("catalog-2");
    await c.sleep(400);
    stop = true;
    await shoppers;

    const { quiet, views } = await awaitQuiet(c, C, O, 10_000);
    expect(quiet).toBe(true);
    expect(views[0]!.view!.digest).toBe(views[1]!.view!.digest);
    const orders = (await Promise.all(O.map((o) => readOrders(c, o)))).flat();
    for (const n of acked) expect(orders.filter((o) => o.number === n).length).toBe(1);
    expect(orders.length).toBeLessThanOrEqual(acked.length + unknown);
    const log = await readCatalogLog(c, "catalog-2");
    expect(new Set(log.filter((e) => e.op.k === "buy").map((e) => e.rid))).toEqual(new Set(orders.map((o) => o.requestId)));
    const books = (await c.inspect<CatalogView>("catalog-2"))!.books;
    expect(301 - books.filter((b) => b.item <= 3).reduce((a, b) => a + b.quantity, 0)).toBe(orders.length);
    expect((await http(base, "GET", "/get_quantity/1")).body.data.quantity).toBe(books[0]!.quantity);
  } finally {
    await c.stop();
  }
}, 60_000);

test("threads: the nemesis kills, pauses and cuts off any node while a client is crashed again and again mid-write; every check holds", async () => {
  const opts = { clients: 2, writeP: 0.8, port: 0, seed: 9, duration: 4, latency: 0, loss: 0, dup: 0, nemesis: ["kill", "partition", "pause"], nemesisInterval: 0.4, logLevel: "silent" } as never;
  let crashes = 0;
  const crashing: Scenario<any> = {
    ...scenario,
    async run(c, o, control) {
      const loop = (async () => {
        while (!control.stopping()) {
          await c.sleep(500);
          if (control.stopping() || c.status("client-1") !== "running") continue;
          await c.crash("client-1");
          await c.restart("client-1");
          crashes++;
        }
      })();
      const r = await scenario.run(c, o, control);
      await loop;
      return r;
    },
  };
  const c = await startCluster({ system: "bookstore", nodes: scenario.topology(opts), seed: 9, dataDir, fresh: true, logLevel: "silent" });
  try {
    const s = await runScenario(c, crashing, opts);
    expect(crashes).toBeGreaterThan(3);
    expect(s.nemesis.filter((e) => e.action === "inject").length).toBeGreaterThan(3);
    expect(Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`)).toEqual([]);
  } finally {
    await c.stop();
  }
}, 60_000);

test("threads: a second run over the same durable catalog (no --fresh) passes every check: it counts from where the run began", async () => {
  const dir = join(dataDir, "second-run");
  const opts = { clients: 2, writeP: 0.6, port: 0, seed: 11, duration: 2, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent" } as never;
  for (const round of [1, 2]) {
    const c = await startCluster({ system: "bookstore", nodes: scenario.topology(opts), seed: 11, dataDir: dir, fresh: round === 1, logLevel: "silent" });
    try {
      const s = await runScenario(c, scenario, opts);
      expect({ round, failing: Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`) }).toEqual({ round, failing: [] });
    } finally {
      await c.stop();
    }
  }
}, 60_000);
