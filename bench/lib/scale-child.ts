/**
 * One configuration of the scale benchmark, in its own process so memory is measured from a clean
 * start: start an echo cluster of N clients (+ 1 server), wait until every client has had a reply,
 * and print one JSON line. Args: <clients> <threads|0 for one per node> <dataDir>.
 */
import { ThreadCluster } from "../../src/main/supervisor.ts";
import { scenario } from "../../src/workers/echo/scenario.ts";

const [clientsArg, threadsArg, dataDir] = process.argv.slice(2);
const clients = Number(clientsArg);
const threads = Number(threadsArg) || undefined;
const nodes = scenario.topology({ clients, intervalMs: 1000 } as never);
Bun.gc(true);
const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const cluster = new ThreadCluster({ system: "echo", nodes, seed: 1, dataDir: dataDir!, fresh: true, logLevel: "error", threads });
await cluster.start();
const startedMs = performance.now() - t0;
// Serving: every client has had at least one reply.
const deadline = performance.now() + 300_000;
let answered = 0;
for (;;) {
  answered = 0;
  for (let i = 1; i <= clients; i++) {
    const s = await cluster.inspect<{ ok: number }>(`client-${i}`).catch(() => null);
    if (s && s.ok > 0) answered++;
  }
  if (answered === clients || performance.now() > deadline) break;
  await Bun.sleep(200);
}
const servingMs = performance.now() - t0;
Bun.gc(true);
const rss1 = process.memoryUsage().rss;
await cluster.stop();
console.log(JSON.stringify({ nodes: nodes.length, threads: threads ?? nodes.length, startedMs, servingMs, answered, clients, rssMb: rss1 / 2 ** 20, perNodeMb: (rss1 - rss0) / 2 ** 20 / nodes.length }));
process.exit(0);
