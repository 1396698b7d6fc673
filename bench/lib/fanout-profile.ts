/**
 * The olympics push fan-out with every node on the main thread, so a CPU profiler sees it all
 * (`bun --cpu-prof` does not see worker threads). It builds what a packed worker thread builds for
 * each node — a NodeSlot, memory storage, Links — from the same runtime modules, and splits the
 * nodes into `--groups` the way `--threads` does (round-robin): nodes of one group reach each other
 * in-thread, nodes of different groups over a MessageChannel (both ends on this thread, so the
 * profile holds the sender's and the receiver's halves of a cross-thread message).
 *
 *   bun --cpu-prof --cpu-prof-dir=/tmp/prof bench/lib/fanout-profile.ts --tablets 500 --groups 2
 *
 * It prints, per update: obelix's fan-out time and the time until the last tablet applied it, both
 * divided by the number of tablets (the serial cost per tablet per update on one thread).
 *
 * Groups reach each other as packed threads do, over one lane per pair of groups (lanes.ts);
 * `--lanes 0` gives every pair of nodes its own MessageChannel instead, as thread-per-node mode does.
 */
import { roles } from "../../src/workers/olympics/roles.ts";
import type { CacofonixConfig, ObelixConfig, TabletConfig, TabletState } from "../../src/workers/olympics/messages.ts";
import type { ObelixSnapshot } from "../../src/workers/olympics/scenario.ts";
import { WorkerLanes, type LanePeer } from "../../src/workers/runtime/lanes.ts";
import { Links } from "../../src/workers/runtime/links.ts";
import { LinkPlanner, defaultNetwork } from "../../src/workers/runtime/network.ts";
import { seededRandom } from "../../src/workers/runtime/random.ts";
import { NodeSlot, type SlotHost } from "../../src/workers/runtime/slot.ts";
import { MemoryStorage } from "../../src/workers/runtime/memory-storage.ts";
import { realNow } from "../../src/workers/runtime/real-clock.ts";
import type { Message, NodeId, NodeSpec, Role } from "../../src/workers/runtime/types.ts";
import { summarize } from "../../src/driver/stats.ts";

const PASSWORD = "bench-password";

interface Options {
  tablets: number;
  groups: number;
  updates: number;
  rateMs: number;
  lanes: number;
}

function parse(argv: string[]): Options {
  const o: Options = { tablets: 500, groups: 2, updates: 200, rateMs: 20, lanes: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!.replace(/^--/, "") as keyof Options;
    const v = Number(argv[i + 1]);
    if (!(k in o) || !Number.isInteger(v) || v < (k === "lanes" ? 0 : 1)) throw new Error(`usage: --tablets N --groups G --updates U --rateMs MS --lanes 0|1 (got ${argv[i]} ${argv[i + 1]})`);
    o[k] = v;
  }
  return o;
}

function topology(o: Options): NodeSpec[] {
  return [
    { id: "obelix", role: "obelix", storage: "memory", config: { password: PASSWORD } satisfies ObelixConfig },
    { id: "cacofonix", role: "cacofonix", storage: "memory", config: { obelix: "obelix", password: PASSWORD, mode: "testing", rateMs: o.rateMs } satisfies CacofonixConfig },
    ...Array.from({ length: o.tablets }, (_, i) => ({
      id: `tablet-${i + 1}`,
      role: "tablet",
      storage: "memory" as const,
      config: { obelix: "obelix", mode: "push", teams: ["Gaul"], events: [], pollMs: 1000, refreshMs: 600_000 } satisfies TabletConfig,
    })),
  ];
}

/** Time tablets spent handling pushes (runtime dispatch and the tablet's handler), after warm-up. */
const receiveMs = { ms: 0, n: 0 };

/** One node as a packed worker holds it (worker.ts's NodeHost, minus HTTP, TCP and the control plane). */
class Host {
  readonly incarnation = 0;
  readonly slot: NodeSlot;
  readonly links: Links;
  constructor(
    readonly spec: NodeSpec,
    readonly group: number,
    nodeIds: NodeId[],
    hosts: Map<NodeId, Host>,
    lanes: WorkerLanes | null,
  ) {
    const net = defaultNetwork();
    const host: SlotHost = {
      now: realNow,
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      network: () => net,
      deliver: (msg, _delayed, shared) => this.links.post(msg, shared),
      deliverMany: (src, dests, body, shared) => this.links.postMany(src, dests, body, shared),
      toDriver: () => {},
      emitLog: (level, node, text) => level === "error" && console.error(`${node}: ${text}`),
      serveHttp: () => {
        throw new Error("no HTTP here");
      },
    };
    this.links = new Links({
      id: spec.id,
      packed: lanes ? { lanes, incarnation: 0 } : undefined,
      grant: async (dest) => {
        const peer = hosts.get(dest)!;
        const ch = new MessageChannel();
        peer.links.accept(spec.id, 0, ch.port2);
        return { port: ch.port1, incarnation: 0 };
      },
      colocated: (dest) => {
        const peer = hosts.get(dest);
        return peer && peer.group === this.group ? (msg: Message) => peer.receive(msg) : undefined;
      },
      // Which node is in which group never changes here.
      hostedVersion: () => 0,
      receive: (data) => this.receive(data),
      wireFrame: () => {
        throw new Error("no wire here");
      },
      wire: null,
      now: () => performance.now(),
    });
    this.slot = new NodeSlot(spec, { nodeIds, seed: 1, logLevel: "error" }, host, new LinkPlanner(seededRandom(1, `net:${spec.id}#0`)), () => crypto.randomUUID());
    this.slot.boot(new MemoryStorage(), 0);
  }

  refuseFromLane(): void {
    throw new Error(`${this.spec.id}: a lane entry refused`);
  }

  receive(msg: unknown): void {
    if (typeof msg === "object" && msg !== null && (msg as Message).dest !== this.spec.id) return;
    const t0 = performance.now();
    this.slot.receive(msg);
    if ((msg as Message).body?.type === "tally_update") {
      receiveMs.ms += performance.now() - t0;
      receiveMs.n++;
    }
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const specs = topology(o);
  const nodeIds = specs.map((s) => s.id);
  const hosts = new Map<NodeId, Host>();
  const lanes = o.lanes === 1 && o.groups > 1 ? Array.from({ length: o.groups }, (_, g) => new WorkerLanes((id) => (hosts.get(id)?.group === g ? hosts.get(id) : undefined))) : null;
  if (lanes) {
    const placement: Record<NodeId, LanePeer> = Object.fromEntries(specs.map((s, i) => [s.id, { group: i % o.groups, incarnation: 0, up: true }]));
    for (let a = 0; a < o.groups; a++)
      for (let b = a + 1; b < o.groups; b++) {
        const ch = new MessageChannel();
        lanes[a]!.connect(a, b, ch.port1, placement);
        lanes[b]!.connect(b, a, ch.port2, placement);
      }
  }
  specs.forEach((s, i) => hosts.set(s.id, new Host(s, i % o.groups, nodeIds, hosts, lanes?.[i % o.groups] ?? null)));
  const all = [...hosts.values()];
  // Tablets first, then the writer: every tablet registers before the first update.
  for (const h of all) if (h.spec.role !== "cacofonix") await h.slot.start(roles[h.spec.role as keyof typeof roles] as Role);
  const tablets = all.filter((h) => h.spec.role === "tablet");
  while (tablets.some((h) => !(h.slot.runtime!.inspect() as TabletState).registered)) await Bun.sleep(10);
  const t0 = performance.now();
  setTimeout(() => Object.assign(receiveMs, { ms: 0, n: 0 }), o.rateMs * 20);
  await hosts.get("cacofonix")!.slot.start(roles.cacofonix as Role);
  const obelix = hosts.get("obelix")!.slot.runtime!;
  const snap = () => obelix.inspect() as ObelixSnapshot;
  // Each look copies every subscription (Object.fromEntries over all tablets): look a few times a second, not every update, so the profile is the fan-out's.
  const lookMs = Math.max(o.rateMs, 250);
  // CPU time over a window after warm-up: robust on a loaded machine, where wall-clock per operation is not.
  const warm = Math.min(40, o.updates >> 2);
  while (snap().stats.recentUpdates.length < warm) await Bun.sleep(lookMs);
  const cpu0 = process.cpuUsage();
  const from = snap().stats.recentUpdates.length;
  while (snap().stats.recentUpdates.length < o.updates) await Bun.sleep(lookMs);
  const cpu1 = process.cpuUsage(cpu0);
  const cpuUpdates = snap().stats.recentUpdates.length - from;
  await Bun.sleep(50);
  const elapsed = performance.now() - t0;
  const s = snap();
  const updates = s.stats.recentUpdates.filter((u) => u.key === "tally/Gaul");
  // Skip the first updates (JIT warm-up).
  const measured = updates.slice(Math.min(20, updates.length >> 2));
  const lastApply: number[] = [];
  const p50: number[] = [];
  const states = tablets.map((h) => h.slot.runtime!.inspect() as TabletState);
  const byVersion = states.map((st) => new Map(st.applied.filter((a) => a.key === "tally/Gaul").map((a) => [a.version, a.at])));
  for (const u of measured) {
    const at = byVersion.map((m) => m.get(u.version) ?? NaN).filter((x) => !Number.isNaN(x));
    if (at.length < tablets.length) continue;
    lastApply.push(Math.max(...at) - u.at);
    p50.push(summarize(at.map((x) => x - u.at)).p50);
  }
  const fan = summarize(s.stats.fanOutMs.slice(-measured.length));
  const last = summarize(lastApply);
  const prop = summarize(p50);
  const us = (ms: number) => ((ms * 1000) / o.tablets).toFixed(2);
  const cpu = process.cpuUsage();
  console.log(`${o.tablets} tablets in ${o.groups} group(s)${lanes ? " (lanes)" : ""}, ${measured.length} updates measured (${elapsed.toFixed(0)} ms, process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms)`);
  console.log(`CPU per tablet per update (whole process, ${cpuUpdates} updates after warm-up): ${((cpu1.user + cpu1.system) / cpuUpdates / o.tablets).toFixed(2)} µs`);
  console.log(`obelix fan-out p50      ${fan.p50.toFixed(3)} ms = ${us(fan.p50)} µs per tablet`);
  console.log(`last tablet applied p50 ${last.p50.toFixed(3)} ms = ${us(last.p50)} µs per tablet (fan-out plus every tablet's receive and apply, all on this thread)`);
  console.log(`a tablet's handling of one push (runtime dispatch + handler), mean ${((receiveMs.ms * 1000) / Math.max(1, receiveMs.n)).toFixed(2)} µs over ${receiveMs.n}`);
  console.log(`propagation p50 (median of per-update medians) ${prop.p50.toFixed(3)} ms`);
  for (const h of all) h.slot.crash();
  process.exit(0);
}

await main();
