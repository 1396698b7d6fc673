/**
 * Packed worker threads pinned one per CPU (src/workers/runtime/cpu-affinity.ts), checked as the
 * operating system sees the threads (/proc), not as the cluster reports them.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { startCluster } from "../src/main/supervisor.ts";
import { scenario } from "../src/workers/echo/scenario.ts";
import { allowedCpus, cpusForThreads, pinPlan, pinThread } from "../src/workers/runtime/cpu-affinity.ts";
import { tempDirs } from "./helpers.ts";

setDefaultTimeout(60_000);
const tmp = tempDirs("cpu-affinity");

/** This process's threads as the OS lists them: id, name, and the CPUs each may run on. */
function threads(): Array<{ tid: string; comm: string; cpus: string }> {
  return readdirSync("/proc/self/task").flatMap((tid) => {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
      const cpus = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/self/task/${tid}/status`, "utf8"))![1]!;
      return [{ tid, comm, cpus }];
    } catch {
      return []; // a thread that ended while listed
    }
  });
}

const cpus = allowedCpus();
/** The CPUs this process may use (none where they cannot be known: the tests that need them are skipped). */
const cpuList = typeof cpus === "string" ? [] : cpus;
const canPin = process.platform === "linux" && existsSync("/proc/self/task") && cpuList.length >= 2;
/** The CPU list as /proc writes it, for a set of consecutive CPUs or a single one. */
const listed = (cs: number[]) => (cs.length === 1 ? String(cs[0]) : cs.every((c, i) => i === 0 || c === cs[i - 1]! + 1) ? `${cs[0]}-${cs.at(-1)}` : cs.join(","));

describe("pinning packed threads", () => {
  test("the plan gives each thread a CPU of its own, in order, and none when threads outnumber CPUs", () => {
    expect(pinPlan(2, [0, 1])).toEqual([0, 1]);
    expect(pinPlan(2, [3, 5, 7])).toEqual([3, 5]);
    expect(pinPlan(3, [0, 1])).toBeNull();
    expect(pinPlan(0, [0, 1])).toBeNull();
    // Over this thread's own CPUs: the first ones, or why there are too few.
    if (cpuList.length > 0) {
      expect(cpusForThreads(1)).toEqual(cpuList.slice(0, 1));
      expect(cpusForThreads(cpuList.length + 1)).toBe(`${cpuList.length + 1} threads, ${cpuList.length} CPUs`);
    } else expect(cpusForThreads(1)).toBe(cpus as string);
  });

  test("a CPU that does not exist is refused with a reason, and the thread's CPUs do not change", () => {
    const before = allowedCpus();
    expect(pinThread(-1)).toMatch(/no CPU -1/);
    expect(pinThread(1.5)).toMatch(/no CPU 1.5/);
    expect(allowedCpus()).toEqual(before);
  });

  test.skipIf(!canPin)("each packed thread runs on its own CPU; --no-pin leaves them on every CPU; the collector's shared helpers stay free", async () => {
    const opts = { clients: 4, intervalMs: 10, seed: 1, duration: 1, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent" } as never;
    const nodes = scenario.topology(opts);
    const run = async (pin: boolean) => {
      const before = new Set(threads().map((t) => t.tid));
      const cluster = await startCluster({ system: "echo", nodes, seed: 1, dataDir: tmp(), fresh: true, logLevel: "silent", threads: 2, pin });
      try {
        const started = threads().filter((t) => !before.has(t.tid) && t.comm === "Worker");
        return { cluster, workers: started.map((t) => t.cpus).sort(), helpers: threads().filter((t) => t.comm === "HeapHelper").map((t) => t.cpus) };
      } finally {
        await cluster.stop();
      }
    };
    const pinned = await run(true);
    expect(pinned.cluster.pinnedCpus).toEqual(cpuList.slice(0, 2));
    expect(pinned.cluster.pinNote).toBeNull();
    expect(pinned.workers).toEqual(cpuList.slice(0, 2).map(String).sort());
    for (const h of pinned.helpers) expect(h).toBe(listed(cpuList));

    const free = await run(false);
    expect(free.cluster.pinnedCpus).toBeNull();
    expect(free.workers).toEqual([listed(cpuList), listed(cpuList)]);
  });

  test.skipIf(!canPin)("more packed threads than CPUs: none is pinned, and the cluster says why", async () => {
    const opts = { clients: cpuList.length + 1, intervalMs: 10, seed: 1, duration: 1, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent" } as never;
    const cluster = await startCluster({ system: "echo", nodes: scenario.topology(opts), seed: 1, dataDir: tmp(), fresh: true, logLevel: "silent", threads: cpuList.length + 1 });
    try {
      expect(cluster.pinnedCpus).toBeNull();
      expect(cluster.pinNote).toBe(`not pinned: ${cpuList.length + 1} threads, ${cpuList.length} CPUs`);
    } finally {
      await cluster.stop();
    }
  });
});
