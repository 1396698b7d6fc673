/**
 * Scale: how long a cluster takes to start and how much memory each node costs, for 10, 100 and
 * 1000 nodes, one worker thread per node against all nodes packed into 2 threads (--threads 2).
 * Each configuration runs in a fresh process (memory from a clean start); the workload is echo,
 * each client sending once a second, so the figures are about the runtime, not the load.
 * "serving" = until every client has had a reply.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lineChart, writeSvg } from "./lib/plot.ts";
import { printTable, progress, runChild, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";

export interface ScaleRow {
  nodes: number;
  layout: "thread per node" | "packed";
  threads: number;
  startedMs: number;
  servingMs: number;
  rssMb: number;
  perNodeMb: number;
  /** Clients that had a reply by the end (should be all). */
  answered: number;
}

/** A configuration has this long to start and serve (1000 threads on a busy 2-core machine: minutes). */
const CHILD_TIMEOUT_MS = 15 * 60_000;

async function one(clients: number, packed: boolean, dataDir: string): Promise<ScaleRow> {
  const what = `${clients + 1} nodes ${packed ? "packed" : "thread per node"}`;
  const j = await runChild<Omit<ScaleRow, "layout">>("./scale-child.ts", [String(clients), packed ? "2" : "0", dataDir], CHILD_TIMEOUT_MS).catch((e: unknown) => {
    throw new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  });
  return { nodes: j.nodes, layout: packed ? "packed" : "thread per node", threads: j.threads, startedMs: j.startedMs, servingMs: j.servingMs, rssMb: j.rssMb, perNodeMb: j.perNodeMb, answered: j.answered };
}

export const bench: Bench = {
  name: "scale",
  description: "start-up time and memory per node for 10, 100, 1000 nodes: thread per node vs packed into 2 threads",
  async run(o: BenchOptions) {
    const sizes = o.quick ? [9, 99] : [9, 99, 999];
    const rows: ScaleRow[] = [];
    const failed: Array<{ stage: string; error: string }> = [];
    const dir = mkdtempSync(join(tmpdir(), "menhir-scale-"));
    const bar = progress("scale", sizes.length * 2);
    try {
      for (const n of sizes) {
        for (const packed of [true, false]) {
          bar.tick(`${n + 1} nodes ${packed ? "packed" : "thread per node"}`);
          try {
            rows.push(await one(n, packed, join(dir, `${n}-${packed}`)));
          } catch (e) {
            failed.push({ stage: `${n + 1} nodes ${packed ? "packed" : "thread per node"}`, error: e instanceof Error ? e.message : String(e) });
          }
        }
      }
    } finally {
      bar.done();
      rmSync(dir, { recursive: true, force: true });
    }
    printTable(rows.map((r) => ({ nodes: r.nodes, layout: r.layout, threads: r.threads, "started s": r.startedMs / 1000, "serving s": r.servingMs / 1000, "RSS MB": r.rssMb, "MB/node": r.perNodeMb, answered: `${r.answered}/${r.nodes - 1}` })));
    for (const f of failed) console.log(`FAILED ${f.stage}: ${f.error}`);
    if (o.json) writeJson(o.json, { rows, failed });
    const plot = join(o.resultsDir, "scale.svg");
    await writeSvg(
      plot,
      lineChart({
        title: "Start-up until every client is served, against cluster size",
        rows: rows.map((r) => ({ nodes: r.nodes, seconds: r.servingMs / 1000, series: r.layout })),
        x: "nodes",
        y: "seconds",
        series: "series",
        xLog: true,
        yLog: true,
      }),
    );
    const mem = join(o.resultsDir, "scale-memory.svg");
    await writeSvg(mem, lineChart({ title: "Memory per node (RSS growth / nodes)", rows: rows.map((r) => ({ nodes: r.nodes, mb: r.perNodeMb, series: r.layout })), x: "nodes", y: "mb", series: "series", xLog: true, yTitle: "MB per node" }));
    console.log(`plots: ${plot}, ${mem}`);
    return { rows, failed };
  },
};
