/**
 * Where a commit's work goes, in one thread: the bench consensus cluster and load (nodesFor) run by
 * the deterministic simulator, so `bun --cpu-prof` sees
 * the replicas, the clients and the runtime together (it cannot see into worker threads). Prints the
 * messages and structured-clone bytes per commit, by message type and by sender role.
 *
 *   bun bench/consensus-profile.ts [--f 1] [--seconds 2] [--durable] [--count]
 *   bun --cpu-prof --cpu-prof-dir /tmp/prof bench/consensus-profile.ts
 *
 * CPU time here includes the simulator's own work per delivery (an event, a trace hash of the body):
 * read a profile by function and leave out src/sim/. Cross-thread costs (postMessage and structured
 * clone) do not appear in a profile; the bytes per commit stand in for them.
 */
import { serialize } from "bun:jsc";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Simulation } from "../src/sim/simulator.ts";
import type { ClientSnapshot, ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { roles } from "../src/workers/paxos/roles.ts";
import { replicaIds } from "../src/workers/paxos/scenario.ts";
import { CLIENTS, PIPELINE, nodesFor } from "./consensus.ts";
import type { Message } from "../src/workers/runtime/types.ts";

const { values } = parseArgs({
  options: {
    f: { type: "string", default: "1" },
    seconds: { type: "string", default: "2" },
    durable: { type: "boolean", default: false },
    /** Count messages and their bytes (serializing each costs about as much as the rest: off for a CPU figure). */
    count: { type: "boolean", default: false },
  },
});
const f = Number(values.f);
const seconds = Number(values.seconds);
// The bench's own cluster, batching on (PX_* environment variables change its load, as there).
const nodes = nodesFor({ f, batching: true, durable: values.durable, clients: CLIENTS, pipeline: PIPELINE });
const roleOf = new Map(nodes.map((n) => [n.id, n.role] as const));
roleOf.set("driver", "driver");

const sim = new Simulation({ seed: 1, nodes, roles, network: { latencyMs: 0.05 }, logLevel: "error" });
const byType = new Map<string, { n: number; bytes: number }>();
const byRole = new Map<string, { n: number; bytes: number }>();
let counting = false;
const count = (m: Map<string, { n: number; bytes: number }>, k: string, bytes: number) => {
  const e = m.get(k) ?? { n: 0, bytes: 0 };
  e.n++;
  e.bytes += bytes;
  m.set(k, e);
};
// Count every message a node hands to the network or to the driver (history events included).
const simAny = sim as unknown as { deliver(msg: Message): void; driverCalls: { settle(msg: Message): void } };
const deliver = simAny.deliver.bind(sim);
simAny.deliver = (msg: Message) => {
  if (counting && values.count && msg.src !== "driver") {
    const bytes = serialize(msg).byteLength;
    count(byType, String(msg.body.type), bytes);
    count(byRole, `${roleOf.get(msg.src)} -> ${roleOf.get(msg.dest)}`, bytes);
  }
  deliver(msg);
};
const settle = simAny.driverCalls.settle.bind(simAny.driverCalls);
simAny.driverCalls.settle = (msg: Message) => {
  if (counting && values.count && msg.body.type === "history") {
    const bytes = serialize(msg).byteLength;
    count(byType, "history", bytes);
    count(byRole, `${roleOf.get(msg.src)} -> driver`, bytes);
  }
  settle(msg);
};

const dir = mkdtempSync(join(tmpdir(), "menhir-paxos-profile-"));
try {
  const out = await sim.run(async (c) => {
    await c.sleep(300);
    const acked = async () => (await Promise.all(nodes.filter((n) => n.role === "client").map((n) => c.inspect<ClientSnapshot>(n.id)))).reduce((s, x) => s + (x?.acked ?? 0), 0);
    const a0 = await acked();
    counting = true;
    const w0 = performance.now();
    const cpu0 = process.cpuUsage();
    await c.sleep(seconds * 1000);
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - w0;
    counting = false;
    const a1 = await acked();
    const reps = (await Promise.all(replicaIds(f).map((id) => c.inspect<ReplicaSnapshot>(id)))).filter((s): s is ReplicaSnapshot => s !== null);
    return { commits: a1 - a0, wall, cpuMs: (cpu.user + cpu.system) / 1000, reps };
  });
  const per = (x: number) => +(x / out.commits).toFixed(4);
  console.log(`f=${f} ${values.durable ? "durable" : "memory"}: ${out.commits} commits in ${seconds} simulated s; ${out.wall.toFixed(0)} ms wall, ${out.cpuMs.toFixed(0)} ms CPU in one thread = ${((out.cpuMs * 1000) / out.commits).toFixed(2)} us CPU per commit (simulator included)`);
  const leader = out.reps.find((r) => r.role === "leader");
  if (leader) console.log(`leader ${leader.id}: commit ${leader.commit}, ops ${leader.opsExecuted} => ${(leader.opsExecuted / Math.max(1, leader.commit)).toFixed(1)} ops per slot overall`);
  const table = (m: Map<string, { n: number; bytes: number }>) =>
    console.table(
      Object.fromEntries(
        [...m]
          .sort((a, b) => b[1].n - a[1].n)
          .map(([k, v]) => [k, { messages: v.n, "msgs/commit": per(v.n), "bytes/commit": per(v.bytes), "bytes/msg": Math.round(v.bytes / v.n) }]),
      ),
    );
  if (values.count) {
    table(byType);
    table(byRole);
    const all = [...byType.values()].reduce((s, v) => ({ n: s.n + v.n, bytes: s.bytes + v.bytes }), { n: 0, bytes: 0 });
    console.log(`all: ${per(all.n)} messages and ${per(all.bytes)} bytes per commit`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
