/**
 * The floor under `bench consensus`: the same threads (a leader, 2f followers, the client threads),
 * the same messages with the same payloads in the same pattern, encoded and decoded as the runtime
 * does, and nothing else (see raw-paxos-worker.ts). Commits/s and CPU per commit of the whole
 * process, measured like the bench's rows.
 */
import type { RawPaxosInit } from "./raw-paxos-worker.ts";

export interface RawPaxosLoad {
  f: number;
  clients: number;
  pipeline: number;
  clientBatch: number;
  slotBatch: number;
  window: number;
  textChars: number;
}

export interface RawPaxosResult {
  commitsPerSec: number;
  cpuUsPerCommit: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function rawPaxos(load: RawPaxosLoad, warmupMs: number, measureMs: number): Promise<RawPaxosResult> {
  const n = 2 * load.f + 1;
  const ids = [...Array.from({ length: load.clients }, (_, i) => `client-${i + 1}`), "replica-0", ...Array.from({ length: n - 1 }, (_, i) => `replica-${i + 1}`)];
  const leaderPorts: MessagePort[] = [];
  const inits: RawPaxosInit[] = [];
  const base = { clients: load.clients, pipeline: load.pipeline, clientBatch: load.clientBatch, slotBatch: load.slotBatch, window: load.window, f: load.f, textChars: load.textChars };
  for (let i = 0; i < load.clients; i++) {
    const ch = new MessageChannel();
    leaderPorts.push(ch.port1);
    inits.push({ ...base, role: "client", id: ids[i]!, ports: [ch.port2], peers: ["replica-0"] });
  }
  for (let k = 1; k < n; k++) {
    const ch = new MessageChannel();
    leaderPorts.push(ch.port1);
    inits.push({ ...base, role: "follower", id: `replica-${k}`, ports: [ch.port2], peers: ["replica-0"] });
  }
  inits.push({ ...base, role: "leader", id: "replica-0", ports: leaderPorts, peers: [...ids.slice(0, load.clients), ...ids.slice(load.clients + 1)] });
  const workers = inits.map(() => new Worker(new URL("./raw-paxos-worker.ts", import.meta.url).href));
  try {
    await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<void>((resolve, reject) => {
            w.onmessage = () => resolve();
            w.onerror = (e) => reject(new Error(`raw pipeline thread ${inits[i]!.id}: ${e.message}`));
            w.postMessage(inits[i], inits[i]!.ports);
          }),
      ),
    );
    const clientWorkers = workers.filter((_, i) => inits[i]!.role === "client");
    const acked = async () =>
      (
        await Promise.all(
          clientWorkers.map(
            (w) =>
              new Promise<number>((resolve) => {
                w.onmessage = (e: MessageEvent) => resolve((e.data as { acked: number }).acked);
                w.postMessage("acked");
              }),
          ),
        )
      ).reduce((s, x) => s + x, 0);
    for (const w of clientWorkers) w.postMessage("start");
    await sleep(warmupMs);
    const a0 = await acked();
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    await sleep(measureMs);
    const a1 = await acked();
    const u = process.cpuUsage(u0);
    const dt = (performance.now() - t0) / 1000;
    return { commitsPerSec: Math.round((a1 - a0) / dt), cpuUsPerCommit: +((u.user + u.system) / Math.max(1, a1 - a0)).toFixed(2) };
  } finally {
    for (const w of workers) w.terminate();
  }
}

if (import.meta.main) {
  const f = Number(process.argv[2] ?? 1);
  for (let r = 0; r < 3; r++) console.log(await rawPaxos({ f, clients: 3, pipeline: 8, clientBatch: 64, slotBatch: 1024, window: 4, textChars: 24 }, 400, 1000));
}
