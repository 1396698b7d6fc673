import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { opToLine, parseJsonLines, readHistoryFile, toJsonLines, writeHistoryFile } from "../src/history/jsonl.ts";
import { checkLinearizable } from "../src/history/linearizable.ts";
import { registerModel } from "../src/history/models.ts";
import type { Op } from "../src/history/op.ts";
import { HistoryLog } from "../src/history/record.ts";
import { renderHistoryReport } from "../src/history/report.ts";
import { checkTotalOrder } from "../src/history/total-order.ts";
import { DriverCalls } from "../src/driver/calls.ts";
import { NodeRuntime, type Env } from "../src/workers/runtime/node.ts";
import { EVENT_STRIDE, HISTORY_COMPLETE_GROUP, HISTORY_INVOKE_GROUP, MAX_GROUP_OPS, MAX_HISTORY_BATCH } from "../src/workers/runtime/recorder.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import { ErrorCode, RpcError, type Message } from "../src/workers/runtime/types.ts";

const w = (process: string, value: unknown, invokeMs: number, completeMs: number | null, type: Op["type"] = "ok", f = "write"): Op => ({ process, type, f, value, invokeMs, completeMs, key: "x" });

/** A history batch's events, whichever form it travelled in (JSON text or the array). */
const eventsOf = (body: Record<string, unknown>): unknown[] => (body.text !== undefined ? (JSON.parse(body.text as string) as unknown[]) : (body.events as unknown[]));

describe("history JSON Lines", () => {
  test("fixed fields first, in order, then the system's fields sorted; round-trips", async () => {
    const h: Op[] = [{ key: "nvidia", error: "not enough stock", process: "client-1", type: "fail", f: "buy", value: 3, invokeMs: 1.5, completeMs: 4 }, w("client-2", null, 2, null, "info")];
    expect(opToLine(h[0]!)).toBe('{"process":"client-1","type":"fail","f":"buy","value":3,"invokeMs":1.5,"completeMs":4,"error":"not enough stock","key":"nvidia"}');
    const text = toJsonLines(h);
    expect(text.split("\n").length).toBe(3);
    expect(parseJsonLines(text)).toEqual(h);
    const file = join(mkdtempSync(join(tmpdir(), "menhir-history-")), "h.jsonl");
    await writeHistoryFile(file, h);
    expect(await readHistoryFile(file)).toEqual(h);
  });

  test.each([
    ["not JSON", "{", /line 1: not JSON/],
    ["bad type", '{"process":"a","type":"maybe","f":"r","value":1,"invokeMs":0,"completeMs":1}', /line 1: .*type must be ok, fail or info/],
    ["completion before invocation", '{"process":"a","type":"ok","f":"r","value":1,"invokeMs":5,"completeMs":1}', /completeMs is before invokeMs/],
    ["ok without completion", '\n{"process":"a","type":"ok","f":"r","value":1,"invokeMs":5,"completeMs":null}', /line 2: .*only an info/],
    ["missing value", '{"process":"a","type":"ok","f":"r","invokeMs":5,"completeMs":6}', /value is missing/],
  ])("a bad line is a clear error: %s", (_n, text, re) => {
    expect(() => parseJsonLines(text)).toThrow(re);
  });
});

describe("HistoryLog (the driver's side of the recorder)", () => {
  test("pairs invocations with completions; open ones end as info with no completion", () => {
    const log = new HistoryLog();
    log.add({ type: "history", ev: "invoke", process: "c1", incarnation: 0, n: 0, t: 10, f: "write", value: 1, fields: { key: "x" } });
    log.add({ type: "history", ev: "invoke", process: "c2", incarnation: 0, n: 0, t: 11, f: "read", value: null, fields: { key: "x" } });
    log.add({ type: "history", ev: "complete", process: "c2", incarnation: 0, n: 0, t: 12, outcome: "ok", value: 1 });
    log.add({ type: "history", ev: "complete", process: "c2", incarnation: 0, n: 9, t: 12, outcome: "ok" }); // never invoked
    log.add({ type: "history", ev: "invoke", process: "c3", incarnation: 0, n: 0, t: 1, f: "write", fields: { process: "spoof" } });
    log.add({ type: "history", ev: "invoke" }); // malformed
    expect(log.refused).toBe(2);
    expect(log.history()).toEqual([
      { process: "c3", type: "info", f: "write", value: null, invokeMs: 1, completeMs: null },
      { process: "c1", type: "info", f: "write", value: 1, invokeMs: 10, completeMs: null, key: "x" },
      { process: "c2", type: "ok", f: "read", value: 1, invokeMs: 11, completeMs: 12, key: "x" },
    ]);
  });

  test("over its limit it refuses invocations and says it is truncated", () => {
    const log = new HistoryLog(2);
    for (let n = 0; n < 3; n++) log.add({ type: "history", ev: "invoke", process: "c", incarnation: 0, n, t: n, f: "read" });
    expect(log.size).toBe(2);
    expect(log.truncated).toBe(true);
  });
});

describe("total order (paxos)", () => {
  const s = (process: string, id: string, invokeMs: number, completeMs: number | null, type: Op["type"] = "ok"): Op => ({ process, type, f: "send", value: id, invokeMs, completeMs });
  test("a correct log passes", () => {
    const h = [s("a", "a1", 0, 1), s("a", "a2", 2, 3), s("b", "b1", 0, 5), s("b", "b2", 6, 7, "info"), s("b", "b3", 8, 9, "fail")];
    const r = checkTotalOrder(h, [{ id: "b1" }, { id: "a1" }, { id: "a2" }]);
    expect(r).toMatchObject({ ok: true, acked: 3, logged: 3 });
  });
  test("a log kept from an earlier run: its messages at the head are that run's; an unknown message after them is still caught", () => {
    const h = [s("a", "a1", 0, 1), s("a", "a2", 2, 3)];
    expect(checkTotalOrder(h, [{ id: "old1" }, { id: "old2" }, { id: "a1" }, { id: "a2" }], { prior: 2 })).toMatchObject({ ok: true, acked: 2, logged: 2 });
    const r = checkTotalOrder(h, [{ id: "old1" }, { id: "a1" }, { id: "zz" }, { id: "a2" }], { prior: 1 });
    expect(r.ok).toBe(false);
    expect(r.counts.neverSent).toBe(1);
    // Without the earlier run's share, its messages are faults.
    expect(checkTotalOrder(h, [{ id: "old1" }, { id: "a1" }, { id: "a2" }]).counts.neverSent).toBe(1);
  });
  test.each([
    ["an acknowledged message missing", [{ id: "a1" }], "missing"],
    ["a message twice", [{ id: "a1" }, { id: "a2" }, { id: "b1" }, { id: "a1" }], "duplicated"],
    ["a message never sent", [{ id: "a1" }, { id: "a2" }, { id: "b1" }, { id: "zz" }], "neverSent"],
    ["a definitely failed message", [{ id: "a1" }, { id: "a2" }, { id: "b1" }, { id: "b3" }], "failedButLogged"],
    ["a client's messages out of order", [{ id: "a2" }, { id: "a1" }, { id: "b1" }], "clientOrder"],
    ["a message before one acknowledged before it was sent", [{ id: "a2" }, { id: "b1" }, { id: "a1" }], "outOfOrder"],
    ["a message credited to the wrong client", [{ id: "a1" }, { id: "a2", process: "b" }, { id: "b1" }], "wrongClient"],
  ])("%s is caught", (_n, log, kind) => {
    // b1 is sent at 4, after a1 was acknowledged at 1.
    const h = [s("a", "a1", 0, 1), s("a", "a2", 2, 3), s("b", "b1", 4, 5), s("b", "b3", 8, 9, "fail")];
    const r = checkTotalOrder(h, log);
    expect(r.ok).toBe(false);
    expect(r.counts[kind as keyof typeof r.counts]).toBeGreaterThan(0);
    expect(r.problems.length).toBeGreaterThan(0);
  });
});

describe("history report", () => {
  test("a non-linearizable history gives a self-contained page with the failing operations and the state before them", () => {
    const h = [w("client-1", 1, 0, 10), w("client-1", 2, 20, 30), { ...w("client-2", 1, 40, 50), f: "read" }, { ...w("client-3", 2, 41, 49), f: "read" }];
    const r = checkLinearizable(h, registerModel);
    expect(r.verdict).toBe("not linearizable");
    const html = renderHistoryReport(h, r, { title: "register <test>" });
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain("register &lt;test&gt;");
    expect(html).not.toMatch(/<script|<link|src=/);
    for (const p of ["client-1", "client-2", "client-3"]) expect(html).toContain(`>${p}</text>`);
    expect(html).toContain("model state before the window: 2");
    expect(html).toContain('class="stuck"><td>stuck</td><td>client-2 read x 1 → ok');
    expect(html).toContain("not linearizable");
  });
  test("a linearizable history says so", () => {
    const h = [w("a", 1, 0, 1)];
    const html = renderHistoryReport(h, checkLinearizable(h, registerModel));
    expect(html).toContain("every partition is linearizable");
  });
});

describe("node.history (the runtime's recorder)", () => {
  function node(id: string, incarnation = 0) {
    let now = 5000;
    const sent: Message[] = [];
    const env: Env = {
      now: () => now,
      setTimer: () => 0,
      clearTimer: () => {},
      transmit: (m) => sent.push(m),
      storage: new SqliteStorage(null, "memory"),
      emitLog: () => {},
      uid: () => "u",
      serveHttp: () => {},
    };
    const rt = new NodeRuntime({ id, role: "client", config: {}, nodeIds: [id], incarnation, seed: 1, logLevel: "silent" }, env);
    return { rt, sent, tick: (ms: number) => (now += ms) };
  }

  test("stamps on the host's clock, not the node's adjustable one, and the driver assembles the operations", async () => {
    const { rt, sent, tick } = node("client-1");
    const ctx = rt.ctx;
    ctx.adjustClock(1_000_000); // clock-sync code may skew the node's clock: the history must not follow
    const w = ctx.history.invoke("write", 3, { key: "x" });
    tick(7);
    const r = ctx.history.invoke("read", null, { key: "x" });
    tick(2);
    w.ok();
    r.error(new RpcError(ErrorCode.Timeout, "no reply"));
    const c = ctx.history.invoke("cas", [3, 4], { key: "x" });
    tick(1);
    c.error(new RpcError(ErrorCode.PreconditionFailed, "precondition failed"));
    ctx.history.invoke("write", 5, { key: "x" }); // open at the end
    expect(sent).toEqual([]); // sent at the end of the turn ...
    await Promise.resolve();
    expect(sent.length).toBe(1); // ... all of it in one message
    // A value JSON cannot carry exactly ([3, 4] is an array) sends the batch as the array itself.
    expect((sent[0]!.body.events as unknown[]).length).toBe(7 * EVENT_STRIDE);
    expect(sent.every((m) => m.dest === "driver" && m.body.type === "history")).toBe(true);
    const calls = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of sent) calls.settle(m);
    // Another node cannot record in client-1's name: the sender is the process.
    calls.settle({ src: "client-2", dest: "driver", body: { ...sent[0]!.body, process: "client-1", events: (sent[0]!.body.events as unknown[]).slice(0, EVENT_STRIDE) } });
    expect(calls.history.history()).toEqual([
      { process: "client-1", type: "ok", f: "write", value: 3, invokeMs: 5000, completeMs: 5009, key: "x" },
      { process: "client-2", type: "info", f: "write", value: 3, invokeMs: 5000, completeMs: null, key: "x" },
      { process: "client-1", type: "info", f: "read", value: null, invokeMs: 5007, completeMs: 5009, key: "x", error: "no reply", code: 0 },
      { process: "client-1", type: "fail", f: "cas", value: [3, 4], invokeMs: 5009, completeMs: 5010, key: "x", error: "precondition failed", code: 22 },
      { process: "client-1", type: "info", f: "write", value: 5, invokeMs: 5010, completeMs: null, key: "x" },
    ]);
  });

  test("an operation completes once; a crashed node records nothing more; a restart's operations stay apart", async () => {
    const a = node("c");
    const op = a.rt.ctx.history.invoke("read", null);
    op.ok(1);
    expect(() => op.ok(2)).toThrow(/completed twice/);
    a.tick(1);
    const open = a.rt.ctx.history.invoke("write", 9);
    a.rt.halt();
    open.ok();
    // The halt sent what its turn had recorded (one message); nothing after it.
    expect(a.sent.length).toBe(1);
    await Promise.resolve();
    expect(a.sent.flatMap((m) => eventsOf(m.body)).length).toBe(3 * EVENT_STRIDE);
    const b = node("c", 1);
    b.tick(2);
    b.rt.ctx.history.invoke("write", 10).ok();
    await Promise.resolve();
    const calls = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of [...a.sent, ...b.sent]) calls.settle(m);
    expect(calls.history.history().map((o) => [o.f, o.value, o.type])).toEqual([
      ["read", 1, "ok"],
      ["write", 9, "info"],
      ["write", 10, "ok"],
    ]);
  });

  test("a turn's events go in batches of a bounded size, a large part alone; the driver refuses a batch over the bound", async () => {
    const { rt, sent } = node("c");
    for (let i = 0; i < MAX_HISTORY_BATCH + 10; i++) rt.ctx.history.invoke("write", i).ok();
    rt.ctx.history.invoke("write", "y".repeat(4000)).ok();
    await Promise.resolve();
    expect(sent.map((m) => eventsOf(m.body).length / EVENT_STRIDE)).toEqual([MAX_HISTORY_BATCH, MAX_HISTORY_BATCH, 21, 1]);
    const calls = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of sent) calls.settle(m);
    const h = calls.history.history();
    expect(h.length).toBe(MAX_HISTORY_BATCH + 11);
    expect(h.every((o) => o.type === "ok" && o.process === "c")).toBe(true);
    const big = { type: "history", incarnation: 0, events: [...eventsOf(sent[0]!.body), ...eventsOf(sent[1]!.body)] };
    const log = new HistoryLog();
    log.add(big, "c");
    log.add({ type: "history", incarnation: 0, events: "no" }, "c");
    log.add({ type: "history", incarnation: 0, events: [0, 1, 2] }, "c");
    log.add({ type: "history", incarnation: 0, events: [7, 0, 1, "send", null, undefined] }, "c");
    log.add({ type: "history", incarnation: 0, text: "[0, 1, " }, "c");
    log.add({ type: "history", incarnation: 0, text: JSON.stringify([...eventsOf(sent[0]!.body), ...eventsOf(sent[1]!.body)]) }, "c");
    log.add({ type: "history", incarnation: 0, text: [0, 1, 2, "send", 1, null] }, "c");
    expect(log.refused).toBe(7);
    expect(log.size).toBe(0);
  });

  test("a batch JSON carries exactly goes as JSON text; the driver assembles the same history from text as from the array", async () => {
    const { rt, sent, tick } = node("c");
    const a = rt.ctx.history.invoke("send", "id-1", { seq: 0 });
    const b = rt.ctx.history.invoke("send", "id-2", { seq: 1 });
    const c = rt.ctx.history.invoke("read", "k");
    await Promise.resolve();
    tick(3);
    a.ok(); // keeps the invocation's value
    b.ok(null); // a completion's own value, null, replaces it
    c.info("timed out");
    await Promise.resolve();
    expect(sent.map((m) => typeof m.body.text)).toEqual(["string", "string"]);
    expect(sent.every((m) => m.body.events === undefined)).toBe(true);
    const fromText = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of sent) fromText.settle(m);
    const fromArray = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of sent) fromArray.settle({ ...m, body: { type: "history", incarnation: m.body.incarnation, events: eventsOf(m.body) } });
    const expected: Op[] = [
      { process: "c", type: "ok", f: "send", value: "id-1", invokeMs: 5000, completeMs: 5003, seq: 0 },
      { process: "c", type: "ok", f: "send", value: null, invokeMs: 5000, completeMs: 5003, seq: 1 },
      { process: "c", type: "info", f: "read", value: "k", invokeMs: 5000, completeMs: 5003, error: "timed out" },
    ];
    expect(fromText.history.history()).toEqual(expected);
    expect(fromArray.history.history()).toEqual(expected);
    // -0, NaN, undefined inside a part: JSON would change them, so the batch goes as the array.
    for (const v of [-0, Number.NaN, { x: undefined }]) {
      const n = sent.length;
      rt.ctx.history.invoke("write", v);
      await Promise.resolve();
      expect(sent.length).toBe(n + 1);
      expect(sent[n]!.body.text).toBeUndefined();
      expect(Object.is((sent[n]!.body.events as unknown[])[4], v)).toBe(true);
    }
  });

  test("a group is one event per invocation and completion, and the driver files the same operations as one invoke each", async () => {
    const ids = ["id-0", "id-1", "id-2"];
    const seqs = [4, 5, 6];
    const one = node("c");
    const ops = ids.map((id, i) => one.rt.ctx.history.invoke("send", id, { seq: seqs[i] }));
    const grouped = node("c");
    const g = grouped.rt.ctx.history.invokeGroup("send", ids, { seq: seqs });
    const open = grouped.rt.ctx.history.invokeGroup("send", ["id-9"], { seq: [9] }); // open at the end
    ids[0] = "changed"; // the group copied its arrays
    const single = grouped.rt.ctx.history.invoke("read", "k"); // numbered after both groups
    await Promise.resolve();
    one.tick(3);
    grouped.tick(3);
    for (const op of ops) op.ok();
    g.ok();
    single.ok(7);
    expect(() => g.fail("again")).toThrow(/completed twice/);
    await Promise.resolve();
    const events = grouped.sent.flatMap((m) => eventsOf(m.body));
    expect(events.filter((_, i) => i % EVENT_STRIDE === 0)).toEqual([HISTORY_INVOKE_GROUP, HISTORY_INVOKE_GROUP, 0, HISTORY_COMPLETE_GROUP, 2]);
    const a = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of one.sent) a.settle(m);
    const b = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of grouped.sent) b.settle(m);
    const sent = (id: string, seq: number): Op => ({ process: "c", type: "ok", f: "send", value: id, invokeMs: 5000, completeMs: 5003, seq });
    expect(a.history.history()).toEqual([sent("id-0", 4), sent("id-1", 5), sent("id-2", 6)]);
    expect(b.history.history()).toEqual([
      sent("id-0", 4),
      sent("id-1", 5),
      sent("id-2", 6),
      { process: "c", type: "ok", f: "read", value: 7, invokeMs: 5000, completeMs: 5003 },
      { process: "c", type: "info", f: "send", value: "id-9", invokeMs: 5000, completeMs: null, seq: 9 },
    ]);
    expect(b.history.refused).toBe(0);
    open.error(new RpcError(ErrorCode.Timeout, "no reply"));
    await Promise.resolve();
    b.settle(grouped.sent.at(-1)!);
    expect(b.history.history()[4]).toEqual({ process: "c", type: "info", f: "send", value: "id-9", invokeMs: 5000, completeMs: 5003, seq: 9, error: "no reply", code: 0 });
  });

  test("a group whose parts a group event does not carry is recorded one operation at a time; groups count toward a batch's bound", async () => {
    const { rt, sent } = node("c");
    const g = rt.ctx.history.invokeGroup("send", [[1], "x".repeat(100), 3], { seq: [0, 1, 2] });
    g.fail("refused");
    await Promise.resolve();
    expect(eventsOf(sent[0]!.body).filter((_, i) => i % EVENT_STRIDE === 0)).toEqual([0, 0, 0, 1, 1, 1]);
    const calls = new DriverCalls({ setTimer: () => 0, clearTimer: () => {} });
    for (const m of sent) calls.settle(m);
    expect(calls.history.history().map((o) => [o.value, o.seq, o.type, o.error])).toEqual([
      [[1], 0, "fail", "refused"],
      ["x".repeat(100), 1, "fail", "refused"],
      [3, 2, "fail", "refused"],
    ]);
    // Columns of the wrong length or too many values: one at a time too.
    const n = sent.length;
    rt.ctx.history.invokeGroup("send", [1, 2], { seq: [0] });
    rt.ctx.history.invokeGroup("send", Array.from({ length: MAX_GROUP_OPS + 1 }, (_, i) => i));
    await Promise.resolve();
    expect(sent.slice(n).flatMap((m) => eventsOf(m.body)).filter((_, i) => i % EVENT_STRIDE === 0).every((k) => k === 0)).toBe(true);
    // Groups of 100: two fit a batch of MAX_HISTORY_BATCH (256) operations, the third starts the next.
    const m = sent.length;
    for (let i = 0; i < 3; i++) rt.ctx.history.invokeGroup("send", Array.from({ length: 100 }, (_, j) => j));
    await Promise.resolve();
    expect(sent.slice(m).map((x) => eventsOf(x.body).length / EVENT_STRIDE)).toEqual([2, 1]);
  });

  test("the driver refuses a malformed group event and files nothing of it", () => {
    const log = new HistoryLog();
    const add = (...events: unknown[]) => log.add({ type: "history", incarnation: 0, events }, "c");
    add(HISTORY_INVOKE_GROUP, 0, 1, "send", "not an array", null);
    add(HISTORY_INVOKE_GROUP, 0, 1, "send", [], null);
    add(HISTORY_INVOKE_GROUP, 0, 1, "send", ["a", "b"], { seq: [1] });
    add(HISTORY_INVOKE_GROUP, 0, 1, "send", ["a"], { seq: 1 });
    add(HISTORY_INVOKE_GROUP, 0, 1, "send", Array.from({ length: MAX_GROUP_OPS + 1 }, () => "a"), null);
    expect(log.refused).toBe(5);
    expect(log.size).toBe(0);
    add(HISTORY_INVOKE_GROUP, 0, 5, "send", ["a", "b"], { seq: [1, 2] });
    add(0, 2, 5, "read", null, null);
    expect(log.size).toBe(3);
    add(1, 0, 6, "ok", null, null); // a group does not complete as a single operation ...
    add(HISTORY_COMPLETE_GROUP, 2, 6, "ok", null, null); // ... nor a single operation as a group
    add(HISTORY_COMPLETE_GROUP, 0, 4, "ok", null, null); // before its invocation
    add(HISTORY_COMPLETE_GROUP, 0, 6, "ok", "a value", null); // a group's completion has no value
    expect(log.refused).toBe(9);
    add(HISTORY_COMPLETE_GROUP, 0, 6, "ok", null, null);
    add(HISTORY_COMPLETE_GROUP, 0, 7, "ok", null, null); // twice
    expect(log.refused).toBe(10);
    expect(log.size).toBe(3);
    expect(log.history().map((o) => [o.value, o.type, o.completeMs])).toEqual([
      ["a", "ok", 6],
      ["b", "ok", 6],
      [null, "info", null],
    ]);
    // Over the history's limit: the whole group is refused and the history says it is truncated.
    const small = new HistoryLog(3);
    small.add({ type: "history", incarnation: 0, events: [HISTORY_INVOKE_GROUP, 0, 1, "send", ["a", "b", "c", "d"], null] }, "c");
    expect(small.truncated).toBe(true);
    expect(small.size).toBe(0);
  });

  test("an operation too large for a message is refused with a clear error", () => {
    const { rt } = node("c");
    expect(() => rt.ctx.history.invoke("write", "x".repeat(2_000_000))).toThrow(/history operation "write" carries more than/);
  });
});
