import { describe, expect, test } from "bun:test";
import { AssertionError } from "../src/workers/runtime/assert.ts";
import { LinkPlanner, applyNetworkPatch, defaultNetwork, parseNetworkPatch } from "../src/workers/runtime/network.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { NodeSlot, type SlotHost } from "../src/workers/runtime/slot.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import { defineRole, type Message } from "../src/workers/runtime/types.ts";

/** The host core both the worker host and the simulator use, driven by hand. */
function harness(latencyMs = 0, opts: { loss?: number; deliverMany?: SlotHost["deliverMany"] } = {}) {
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const delivered: Array<{ msg: Message; delayed: boolean }> = [];
  const toDriver: Message[] = [];
  let now = 0;
  const net = applyNetworkPatch(defaultNetwork(), parseNetworkPatch({ latencyMs, loss: opts.loss ?? 0 }, ["a", "b"]));
  const host: SlotHost = {
    now: () => now,
    setTimer: (ms, fn) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return t;
    },
    clearTimer: (h) => ((h as { cancelled: boolean }).cancelled = true),
    network: () => net,
    deliver: (msg, delayed) => void delivered.push({ msg, delayed }),
    ...(opts.deliverMany ? { deliverMany: opts.deliverMany } : {}),
    toDriver: (msg) => void toDriver.push(msg),
    emitLog: () => {},
    serveHttp: () => {},
  };
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers.splice(0)) {
      if (t.cancelled) continue;
      if (t.at <= now) t.fn();
      else timers.push(t);
    }
  };
  const slot = new NodeSlot({ id: "a", role: "r" }, { nodeIds: ["a", "b"], seed: 1, logLevel: "silent" }, host, new LinkPlanner(seededRandom(1, "net")), (inc) => `a-${inc}`);
  return { slot, delivered, toDriver, advance };
}

const talker = defineRole((n) => {
  n.on("go", () => n.send("b", { type: "hello" }));
  n.setInterval(10, () => n.send("b", { type: "tick" }));
});

describe("NodeSlot", () => {
  test("a fan-out goes to the host whole on a perfect network, and message by message (faults planned for each) otherwise; each link counts it", async () => {
    for (const loss of [0, 1]) {
      const whole: Array<{ src: string; dests: readonly string[]; type: unknown }> = [];
      const { slot, delivered } = harness(0, { loss, deliverMany: (src, dests, body) => void whole.push({ src, dests: [...dests], type: body.type }) });
      const storage = new SqliteStorage(null, "memory");
      slot.boot(storage);
      await slot.start(defineRole((n) => n.on("go", () => n.sendMany(["b", "b"], { type: "fan" }))));
      slot.receive({ src: "b", dest: "a", body: { type: "go" } });
      if (loss === 0) {
        expect(whole).toEqual([{ src: "a", dests: ["b", "b"], type: "fan" }]);
        expect([delivered.length, slot.dropped]).toEqual([0, 0]);
        expect(slot.linkCountsSnapshot()).toEqual({ b: [2, 0] });
      } else {
        expect(whole).toEqual([]);
        expect([delivered.length, slot.dropped]).toEqual([0, 2]);
        expect(slot.linkCountsSnapshot()).toEqual({ b: [2, 2] });
      }
      slot.crash();
      storage.close();
    }
  });

  test("each link's count of fan-outs handed over whole is exact, however many lists a node sends to and however often", async () => {
    const { slot } = harness(0, { deliverMany: () => {} });
    const storage = new SqliteStorage(null, "memory");
    slot.boot(storage);
    const lists = Array.from({ length: 10 }, (_, i) => Array<string>(i + 2).fill("b"));
    const again = ["b", "b", "b"];
    await slot.start(
      defineRole((n) => {
        n.on("go", () => {
          // Ten lists, more than the runtime remembers and the slot counts whole: both forget and settle.
          for (let k = 0; k < 20; k++) n.sendMany(lists[k % 10]!, { type: "fan" });
          for (let k = 0; k < 5; k++) n.sendMany(again, { type: "fan" });
        });
      }),
    );
    slot.receive({ src: "b", dest: "a", body: { type: "go" } });
    expect(slot.linkCountsSnapshot()).toEqual({ b: [145, 0] });
    slot.receive({ src: "b", dest: "a", body: { type: "go" } });
    expect(slot.linkCountsSnapshot()).toEqual({ b: [290, 0] });
    slot.crash();
    storage.close();
  });

  test("transitions are asserted: only crashed → running → paused → running → crashed, incarnations only grow", async () => {
    const { slot } = harness();
    const storage = new SqliteStorage(null, "memory");
    expect(() => slot.crash()).toThrow(AssertionError);
    expect(() => slot.pause()).toThrow(AssertionError);
    slot.boot(storage);
    expect([slot.status, slot.incarnation]).toEqual(["running", 0]);
    expect(() => slot.boot(storage)).toThrow(AssertionError);
    expect(() => slot.resume()).toThrow(AssertionError);
    slot.pause();
    expect(() => slot.pause()).toThrow(AssertionError);
    slot.resume();
    slot.crash();
    expect(() => slot.boot(storage, 0)).toThrow(/incarnation 0 after 0/);
    slot.boot(storage, 5);
    expect([slot.status, slot.incarnation]).toEqual(["running", 5]);
  });

  test("a crash takes the node's timers and its messages still in flight with it; a crashed node drops what arrives", async () => {
    const { slot, delivered, advance } = harness(50);
    slot.boot(new SqliteStorage(null, "memory"));
    await slot.start(talker);
    slot.receive({ src: "b", dest: "a", body: { type: "go" } });
    advance(10); // one tick sent; hello and tick both 50 ms away
    expect(delivered).toEqual([]);
    slot.crash();
    advance(1000);
    expect(delivered).toEqual([]);
    expect(slot.dropped).toBe(2);
    expect(slot.receive({ src: "b", dest: "a", body: { type: "go" } })).toBe(false);
    expect(slot.dropped).toBe(3);
  });

  test("messages for the driver skip the network; others arrive after the planned latency, marked delayed", async () => {
    const { slot, delivered, toDriver, advance } = harness(50);
    slot.boot(new SqliteStorage(null, "memory"));
    await slot.start(defineRole((n) => n.on("go", (m) => (n.reply(m, { type: "go_ok" }), n.send("b", { type: "hello" })))));
    slot.receive({ src: "driver", dest: "a", body: { type: "go", msg_id: 1 } });
    expect(toDriver.map((m) => m.body.type)).toEqual(["go_ok"]);
    advance(49);
    expect(delivered).toEqual([]);
    advance(1);
    expect(delivered.map((d) => [d.msg.body.type, d.delayed])).toEqual([["hello", true]]);
  });
});
