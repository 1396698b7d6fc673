/**
 * A third floor for push-pull, for finding where push's time goes: a bare worker holding one real
 * tablet node (NodeSlot, NodeRuntime, the tablet role, memory storage, Links), fed the floor's raw
 * posts on a port accepted as its link from obelix. This is the receiving side of push with none of
 * obelix's runtime, and none of the worker host's control plane. It answers "collect" with the
 * tablet's own propagation samples (TabletState.propagationMs), so rawFanOut reads it as it reads
 * raw-tablet.ts. Run it by hand; the bench does not:
 *
 *   bun bench/lib/push-pull-child.ts '{"floor":true,"tablets":500,"updates":219,"warm":400,"worker":"node"}'
 *
 * Its registration is answered here, at once and empty, as obelix would answer it: the tablet's
 * start then runs as in the system, and its deliver sees a reply. That matters to JSC: a deliver
 * that never saw a reply kept its reply path unprofiled and stayed in the baseline tier for all
 * 650 pushes of a run (BUN_JSC_reportCompileTimes=1), where in the system it is optimized; the
 * floor then read ~10% slow (bench/push-pull.ts, beside the floor). It also answers "counts" with
 * the tablet's own counters, for the tests.
 */
import { roles } from "../../src/workers/olympics/roles.ts";
import type { RegisterOk, TabletConfig, TabletState } from "../../src/workers/olympics/messages.ts";
import { Links } from "../../src/workers/runtime/links.ts";
import { LinkPlanner, defaultNetwork } from "../../src/workers/runtime/network.ts";
import { seededRandom } from "../../src/workers/runtime/random.ts";
import { realNow } from "../../src/workers/runtime/real-clock.ts";
import { NodeSlot, type SlotHost } from "../../src/workers/runtime/slot.ts";
import { MemoryStorage } from "../../src/workers/runtime/memory-storage.ts";
import { DRIVER_ID, type Message, type NodeSpec, type Role } from "../../src/workers/runtime/types.ts";

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

const spec: NodeSpec = {
  id: "tablet-1",
  role: "tablet",
  storage: "memory",
  config: { obelix: "obelix", mode: "push", teams: ["Gaul"], events: [], pollMs: 1000, refreshMs: 600_000 } satisfies TabletConfig,
};
const net = defaultNetwork();
let links: Links | null = null;
const host: SlotHost = {
  now: realNow,
  setTimer: (ms, fn) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  network: () => net,
  deliver: (msg, _delayed, shared) => {
    if (msg.dest === "obelix" && msg.body.type === "register") queueMicrotask(() => slot.receive({ src: "obelix", dest: spec.id, body: registered(msg.body.msg_id) }));
    else links?.post(msg, shared);
  },
  toDriver: () => {},
  emitLog: () => {},
  serveHttp: () => {
    throw new Error("no HTTP here");
  },
};
/** obelix's answer to a registration for nothing it has yet (RegisterOk). */
const registered = (msgId: unknown): RegisterOk => ({ type: "register_ok", in_reply_to: msgId, teams: [], events: [], invalid: { teams: [], events: [] }, tallies: [], scores: [] });
const slot = new NodeSlot(spec, { nodeIds: ["obelix", "cacofonix", spec.id], seed: 1, logLevel: "error" }, host, new LinkPlanner(seededRandom(1, `net:${spec.id}#1`)), () => crypto.randomUUID());
links = new Links({
  id: spec.id,
  packed: undefined,
  grant: () => new Promise(() => {}),
  colocated: () => undefined,
  // As the worker host's receive: a link carries only messages for this node.
  receive: (msg) => {
    if (typeof msg === "object" && msg !== null && (msg as Message).dest !== spec.id) return;
    slot.receive(msg);
  },
  wireFrame: () => {},
  wire: null,
  now: () => performance.now(),
});
slot.boot(new MemoryStorage(), 1);
await slot.start(roles.tablet as Role);

self.onmessage = (e: MessageEvent) => {
  const runtime = slot.runtime!;
  if (e.data === "collect") {
    self.postMessage((runtime.inspect() as TabletState).propagationMs);
    runtime.deliver({ src: DRIVER_ID, dest: spec.id, body: { type: "tablet_reset_samples" } });
    return;
  }
  if (e.data === "counts") {
    const { registered, pushes, unexpectedPushes, changes, stale } = runtime.inspect() as TabletState;
    self.postMessage({ registered, pushes, unexpectedPushes, changes, stale });
    return;
  }
  links!.accept("obelix", 1, (e.data as { port: MessagePort }).port);
  self.postMessage("ready");
};
