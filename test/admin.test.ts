import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startAdmin } from "../src/main/admin.ts";
import { startCluster, type ThreadCluster } from "../src/main/supervisor.ts";
import { kvNodes, tempDirs, within } from "./helpers.ts";

// Starts workers or OS processes: give it room on a loaded 2-core machine.
setDefaultTimeout(30_000);

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const SECRET = "admin-test-secret";
let cluster: ThreadCluster;
let admin: ReturnType<typeof startAdmin>;
const tmp = tempDirs("admin");

beforeAll(async () => {
  cluster = await startCluster({ system: FIXTURE, nodes: kvNodes(2), seed: 1, dataDir: tmp(), logLevel: "silent" });
  admin = startAdmin({ port: 0, secret: SECRET, cluster });
});
afterAll(async () => {
  admin.stop(true);
  await cluster.stop();
});

function call(method: string, path: string, body?: string, token: string | null = SECRET) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(new URL(path, admin.url), { method, headers, body });
}

describe("admin API", () => {
  test("requires the secret as a bearer token", async () => {
    expect((await call("GET", "/nodes", undefined, null)).status).toBe(401);
    expect((await call("GET", "/nodes", undefined, "wrong")).status).toBe(401);
    const ok = await call("GET", "/nodes");
    expect(ok.status).toBe(200);
    const { nodes } = (await ok.json()) as { nodes: Array<Record<string, unknown>> };
    expect(nodes.map((n) => [n.id, n.role, n.status])).toEqual([["n1", "kv", "running"], ["n2", "kv", "running"]]);
    expect(nodes[0]!.stats).toHaveProperty("sent");
    // Each node's clock error against true time (perfect clocks here).
    expect((nodes[0]!.stats as { clockErrorMs: number }).clockErrorMs).toBe(0);
  });

  test("crash and restart a node", async () => {
    await cluster.request("n2", { type: "put", key: "k", value: 1 });
    const crashed = await call("POST", "/nodes/n2/crash");
    expect(await crashed.json()).toEqual({ id: "n2", status: "crashed" });
    expect(await cluster.inspect("n2")).toBeNull();
    const restarted = await call("POST", "/nodes/n2/restart");
    expect(await restarted.json()).toEqual({ id: "n2", status: "running" });
    const r = await cluster.request<{ durable: unknown }>("n2", { type: "get", key: "k" });
    expect(r.durable).toBe(1);
    expect(((await cluster.inspect<{ incarnation: number }>("n2")) ?? { incarnation: -1 }).incarnation).toBe(1);
  });

  test("concurrent control calls on one node are serialised, each answering with the state it left", async () => {
    const answer = async (r: Promise<Response>) => (await r).json();
    const prompt = <T>(p: Promise<T>) => within(8000, p);
    await cluster.request("n2", { type: "put", key: "serial", value: 2 });
    const twice = await prompt(Promise.all([answer(call("POST", "/nodes/n2/restart")), answer(call("POST", "/nodes/n2/restart"))]));
    expect(twice).toEqual([{ id: "n2", status: "running" }, { id: "n2", status: "running" }]);
    const restarting = prompt(answer(call("POST", "/nodes/n2/restart")));
    await Bun.sleep(40);
    const crashed = await prompt(answer(call("POST", "/nodes/n2/crash")));
    expect([await restarting, crashed]).toEqual([{ id: "n2", status: "running" }, { id: "n2", status: "crashed" }]);
    expect(await prompt(answer(call("POST", "/nodes/n2/restart")))).toEqual({ id: "n2", status: "running" });
    expect(cluster.status("n2")).toBe("running");
    expect((await cluster.request<{ durable: unknown }>("n2", { type: "get", key: "serial" })).durable).toBe(2);
  });

  test("pause and resume", async () => {
    expect((await (await call("POST", "/nodes/n1/pause")).json()) as unknown).toEqual({ id: "n1", status: "paused" });
    expect((await (await call("POST", "/nodes/n1/resume")).json()) as unknown).toEqual({ id: "n1", status: "running" });
  });

  test("PUT /network validates and applies", async () => {
    const ok = await call("PUT", "/network", JSON.stringify({ latencyMs: 1, loss: 0.1, partitions: [{ from: ["n1"], to: ["n2"] }] }));
    expect(ok.status).toBe(200);
    expect(cluster.network().defaults.loss).toBe(0.1);
    expect(cluster.network().partitions).toHaveLength(1);
    const before = JSON.stringify(cluster.network());
    for (const bad of ["not json", JSON.stringify({ loss: 2 }), JSON.stringify({ partitions: [{ from: ["ghost"], to: ["n1"] }] }), JSON.stringify({ colour: "red" }), JSON.stringify([1])]) {
      const r = await call("PUT", "/network", bad);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message.length).toBeGreaterThan(5);
    }
    expect(JSON.stringify(cluster.network())).toBe(before);
    await call("PUT", "/network", JSON.stringify({ loss: 0, latencyMs: 0, partitions: [] }));
  });

  test("bad requests get 4xx JSON errors", async () => {
    expect((await call("POST", "/nodes/ghost/crash")).status).toBe(404);
    expect((await call("POST", "/nodes/n1/explode")).status).toBe(404);
    expect((await call("GET", "/nodes/n1/crash")).status).toBe(405);
    expect((await call("DELETE", "/nodes")).status).toBe(405);
    expect((await call("GET", "/nope")).status).toBe(404);
    const big = await call("PUT", "/network", "x".repeat(200_000));
    expect(big.status).toBe(413);
    expect(cluster.status("n1")).toBe("running");
  });

  test("GET /stats sums node counters", async () => {
    const s = (await (await call("GET", "/stats")).json()) as { nodes: number; running: number; messages: { sent: number } };
    expect(s.nodes).toBe(2);
    expect(s.running).toBe(2);
    expect(s.messages.sent).toBeGreaterThan(0);
  });
});
