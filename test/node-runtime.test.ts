import { describe, expect, test } from "bun:test";
import { NodeRuntime, type Env } from "../src/workers/runtime/node.ts";
import { CLOCK_JUMP } from "../src/workers/runtime/clock.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import { DRIVER_ID, ErrorCode, defineRole, type Message } from "../src/workers/runtime/types.ts";

/** The runtime driven by hand, with no network at all: messages in, messages out. */
function harness(incarnation = 0) {
  const sent: Message[] = [];
  const timers: Array<{ at: number; fn: () => void; cancelled: boolean }> = [];
  const logs: string[] = [];
  let now = 1000;
  const env: Env = {
    now: () => now,
    setTimer: (ms, fn) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return t;
    },
    clearTimer: (h) => ((h as { cancelled: boolean }).cancelled = true),
    transmit: (m) => sent.push(m),
    storage: new SqliteStorage(null, "memory"),
    emitLog: (level, _node, text) => void logs.push(`${level}: ${text}`),
    uid: () => "u",
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
  const rt = new NodeRuntime({ id: "a", role: "r", config: {}, nodeIds: ["a", "b"], incarnation, seed: 1, logLevel: "error" }, env);
  return { rt, sent, advance, logs, live: () => timers.filter((t) => !t.cancelled).length };
}

describe("NodeRuntime without a network", () => {
  test("a role may not take the clock nemesis' message type: that one is the runtime's", async () => {
    const { rt } = harness();
    const role = defineRole((node) => {
      node.on(CLOCK_JUMP, () => {});
    });
    await expect(rt.start(role)).rejects.toThrow(`"${CLOCK_JUMP}" is the runtime's`);
  });

  test("sendMany is send to each destination in order, with one body; a bad destination or body sends nothing", async () => {
    const { rt, sent } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    const body = { type: "push", v: 1 };
    ctx.sendMany(new Set(["b", "a", "b"]), body);
    expect(sent.map((m) => [m.src, m.dest, m.body])).toEqual([["a", "b", body], ["a", "a", body]]);
    expect(rt.stats.sent).toBe(2);
    expect(() => ctx.sendMany(["b", "nobody"], body)).toThrow(/no node "nobody"/);
    expect(() => ctx.sendMany(["b"], { type: "big", s: "x".repeat(2 ** 21) })).toThrow(/exceeds/);
    expect(() => ctx.sendMany(["b"], { nope: 1 } as never)).toThrow(/type/);
    expect(sent.length).toBe(2);
    expect(rt.stats.sent).toBe(2);
    ctx.sendMany([], body);
    expect(sent.length).toBe(2);
  });

  test("sendMany checks a collection again whenever its ids change: a set that gained an unknown node, or an array changed in place, sends nothing", async () => {
    const { rt, sent } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    const body = { type: "push", v: 1 };
    const subscribers = new Set(["a", "b"]);
    ctx.sendMany(subscribers, body);
    ctx.sendMany(subscribers, body);
    expect(sent.length).toBe(4);
    subscribers.add("ghost");
    expect(() => ctx.sendMany(subscribers, body)).toThrow(/no node "ghost"/);
    subscribers.delete("ghost");
    ctx.sendMany(subscribers, body);
    expect(sent.length).toBe(6);
    const list = ["b", "a"];
    ctx.sendMany(list, body);
    list[1] = "ghost";
    expect(() => ctx.sendMany(list, body)).toThrow(/no node "ghost"/);
    expect(sent.length).toBe(8);
    // More collections than the node remembers: the oldest is forgotten, and still checked when it comes back.
    const lists = Array.from({ length: 6 }, () => ["a", "b"]);
    for (const l of lists) ctx.sendMany(l, body);
    lists[0]!.push("ghost");
    lists[5]!.push("ghost");
    expect(() => ctx.sendMany(lists[0]!, body)).toThrow(/no node "ghost"/);
    expect(() => ctx.sendMany(lists[5]!, body)).toThrow(/no node "ghost"/);
    expect(sent.length).toBe(20);
    expect(rt.stats.sent).toBe(20);
  });

  test("a late reply to a request of the node's earlier life never answers a request of its new one", async () => {
    // The first life asks b something, then crashes before b answers.
    const before = harness(0);
    let ctx0!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await before.rt.start(defineRole((n) => void (ctx0 = n)));
    void ctx0.request("b", { type: "ask", q: "old" }).catch(() => {});
    const old = before.sent.at(-1)!;
    // The restarted node asks again; b's answer to the OLD request arrives now.
    const after = harness(1);
    let ctx1!: typeof ctx0;
    await after.rt.start(defineRole((n) => void (ctx1 = n)));
    const answer = ctx1.request<{ type: string; a: string }>("b", { type: "ask", q: "new" }, { timeoutMs: 50 });
    const fresh = after.sent.at(-1)!;
    expect(fresh.body.msg_id).not.toBe(old.body.msg_id);
    after.rt.deliver({ src: "b", dest: "a", body: { type: "ask_ok", a: "old answer", in_reply_to: old.body.msg_id } });
    after.rt.deliver({ src: "b", dest: "a", body: { type: "ask_ok", a: "new answer", in_reply_to: fresh.body.msg_id } });
    expect((await answer).a).toBe("new answer");
  });

  test("a clean stop is bounded: a stop hook that never finishes is cut off and reported; timers and sleeps are cancelled", async () => {
    const { rt, advance, logs, live } = harness();
    let woke = false;
    let ticks = 0;
    await rt.start(
      defineRole((n) => {
        void n.sleep(60_000).then(() => (woke = true));
        n.setInterval(10, () => void ticks++);
        return { stop: () => new Promise<void>(() => {}) };
      }),
    );
    const stopping = rt.stop(2000);
    let result: { cutOff: boolean } | undefined;
    void stopping.then((r) => (result = r));
    advance(1999);
    await Bun.sleep(0);
    expect(result).toBeUndefined();
    const ticksBefore = ticks;
    advance(1);
    await Bun.sleep(0);
    expect(result).toEqual({ cutOff: true });
    expect(logs.some((l) => l.startsWith("error:") && l.includes("cut off"))).toBe(true);
    expect(live()).toBe(0);
    advance(120_000);
    await Bun.sleep(0);
    expect([woke, ticks]).toEqual([false, ticksBefore]);
  });


  test("garbage input is refused and counted, never thrown", async () => {
    const { rt, sent } = harness();
    await rt.start(defineRole((n) => n.on("x", (m) => n.reply(m, { type: "x_ok" }))));
    for (const bad of [null, 42, "str", {}, { src: "b" }, { src: "b", dest: "a", body: null }, { src: "b", dest: "a", body: { type: 5 } }, { src: "b", dest: "a", body: { type: "x", msg_id: "1" } }]) {
      expect(() => rt.deliver(bad)).not.toThrow();
    }
    expect(rt.stats.refused).toBe(8);
    rt.deliver({ src: "b", dest: "a", body: { type: "x", msg_id: 1 } });
    expect(sent).toEqual([{ src: "a", dest: "b", body: { type: "x_ok", in_reply_to: 1 } }]);
  });

  test("request resolves on its reply, ignores a duplicate reply, and times out otherwise", async () => {
    const { rt, sent, advance } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    const p1 = ctx.request("b", { type: "q" }, { timeoutMs: 100 });
    const p2 = ctx.request("b", { type: "q" }, { timeoutMs: 100 }).catch((e) => e);
    expect(sent.map((m) => m.body.msg_id)).toEqual([1, 2]);
    rt.deliver({ src: "b", dest: "a", body: { type: "q_ok", in_reply_to: 1 } });
    rt.deliver({ src: "b", dest: "a", body: { type: "q_ok", in_reply_to: 1 } });
    expect((await p1).type).toBe("q_ok");
    advance(150);
    expect((await p2).code).toBe(ErrorCode.Timeout);
  });

  test("a reply after the timeout reaches onLateReply once (slow, not lost); a late error, a duplicate, or a caller that did not ask get nothing", async () => {
    const { rt, advance } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    const late: unknown[] = [];
    const p1 = ctx.request("b", { type: "q" }, { timeoutMs: 100, onLateReply: (r) => void late.push(r.n) }).catch((e) => e);
    const p2 = ctx.request("b", { type: "q" }, { timeoutMs: 100 }).catch((e) => e);
    const p3 = ctx.request("b", { type: "q" }, { timeoutMs: 100, onLateReply: (r) => void late.push(r.n) }).catch((e) => e);
    advance(150);
    for (const p of [p1, p2, p3]) expect((await p).code).toBe(ErrorCode.Timeout);
    rt.deliver({ src: "b", dest: "a", body: { type: "q_ok", in_reply_to: 1, n: 1 } });
    rt.deliver({ src: "b", dest: "a", body: { type: "q_ok", in_reply_to: 1, n: 1 } });
    rt.deliver({ src: "b", dest: "a", body: { type: "q_ok", in_reply_to: 2, n: 2 } });
    rt.deliver({ src: "b", dest: "a", body: { type: "error", code: ErrorCode.Crash, in_reply_to: 3 } });
    expect(late).toEqual([1]);
    expect(rt.stats.lateReplies).toBe(1);
  });

  test("timers fire on the host's clock; a paused node defers them until resumed", async () => {
    const { rt, advance } = harness();
    const fired: number[] = [];
    await rt.start(defineRole((n) => void n.setInterval(10, () => void fired.push(n.now()))));
    advance(10);
    advance(10);
    expect(fired.length).toBe(2);
    rt.pause();
    advance(10);
    expect(fired.length).toBe(2);
    rt.resume();
    expect(fired.length).toBe(3);
  });

  test("requests wait until the role has started; replies to the start's own requests pass", async () => {
    const { rt, sent } = harness();
    const started = rt.start(
      defineRole(async (n) => {
        // Catch up before serving: the start awaits a peer.
        const r = await n.request<{ type: string; value: number }>("b", { type: "catch_up" });
        n.on("x", (m) => n.reply(m, { type: "x_ok", seen: r.value }));
      }),
    );
    rt.deliver({ src: "b", dest: "a", body: { type: "x", msg_id: 7 } });
    expect(sent.map((m) => m.body.type)).toEqual(["catch_up"]);
    rt.deliver({ src: "b", dest: "a", body: { type: "catch_up_ok", value: 42, in_reply_to: sent[0]!.body.msg_id } });
    await started;
    expect(sent.map((m) => m.body)).toEqual([
      { type: "catch_up", msg_id: 1 },
      { type: "x_ok", seen: 42, in_reply_to: 7 },
    ]);
  });

  test("the clock can be offset by clock-sync code", async () => {
    const { rt } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    const before = ctx.now();
    ctx.adjustClock(250);
    expect(ctx.now() - before).toBe(250);
  });

  test("a perfect clock reads the host's time until it is stepped, by the node or the nemesis, and again once the steps cancel out", async () => {
    const { rt, advance } = harness();
    let ctx!: Parameters<Parameters<typeof defineRole>[0]>[0];
    await rt.start(defineRole((n) => void (ctx = n)));
    expect(ctx.now()).toBe(1000);
    advance(5);
    expect(ctx.now()).toBe(1005);
    rt.deliver({ src: DRIVER_ID, dest: "a", body: { type: CLOCK_JUMP, deltaMs: -300, msg_id: 1 } });
    expect(ctx.now()).toBe(705);
    expect(rt.clockErrorMs()).toBe(-300);
    advance(10);
    expect(ctx.now()).toBe(715);
    ctx.adjustClock(300);
    expect(ctx.now()).toBe(1015);
    expect(rt.clockErrorMs()).toBe(0);
    ctx.adjustClock(0.5);
    expect(ctx.now()).toBe(1015.5);
  });
});
