/** The catalog replication core on its own: no network, no storage, every step by hand. */
import { describe, expect, test } from "bun:test";
import { CatalogCore, evaluate, type Out } from "../src/workers/bookstore/core.ts";
import { BOOKS, type LogEntry, type View } from "../src/workers/bookstore/messages.ts";

const CATS = ["catalog-1", "catalog-2"];
const V1: View = { epoch: 1, primary: "catalog-1", members: CATS };

/** A core that learns `view` from the front end; with `restarted`, one that finds it in its own storage. */
function core(me: string, view: View = V1, last = 0, restarted = false) {
  const c = new CatalogCore({ me, catalogs: CATS, frontend: "frontend", replicateTimeoutMs: 300, pullEveryMs: 200, maxQueue: 10 }, { view: restarted ? view : null, last, books: BOOKS.map((b) => ({ ...b })) }, () => undefined);
  if (!restarted) c.onView(view, 0);
  return c;
}

const buy = (token: number, rid: string, item = 4) => ({ kind: "write" as const, token, rid, op: { k: "buy" as const, item } });
const sends = (o: Out, type: string) => o.send.filter((s) => s.msg.type === type);

describe("catalog core", () => {
  test("a write commits only once every member holds it, then the next one starts", () => {
    const p = core("catalog-1");
    const o1 = p.submit(buy(1, "a"), 0);
    const rep = sends(o1, "replicate");
    expect(rep.map((s) => s.to)).toEqual(["catalog-2"]);
    expect(o1.entries).toEqual([]); // not applied on the primary before the backup holds it
    expect(o1.answers).toEqual([]);
    const o2 = p.submit(buy(2, "b"), 1);
    expect(o2.send).toEqual([]); // one write at a time
    const o3 = p.onReplicateReply("catalog-2", 1, { ok: true, epoch: 1 }, 2);
    expect(o3.entries.map((e) => e.seq)).toEqual([1]);
    expect(o3.answers).toMatchObject([{ token: 1, duplicate: false, entry: { seq: 1, result: { item: 4, quantity: 9, version: 1 } } }]);
    expect(sends(o3, "replicate")[0]!.msg).toMatchObject({ entries: [{ seq: 2, rid: "b" }] });
  });

  test("writes queued behind one in flight go out as one batch; answers, refusals included, wait for it to commit", () => {
    const p = core("catalog-1");
    p.submit({ kind: "write", token: 1, rid: "q", op: { k: "qty", item: 4, delta: -9 } }, 0);
    for (let i = 2; i <= 4; i++) expect(p.submit(buy(i, `b${i}`), i).send).toEqual([]);
    const o = p.onReplicateReply("catalog-2", 1, { ok: true, epoch: 1 }, 5);
    expect(o.answers.map((a) => a.token)).toEqual([1]);
    // Quantity 1 left: the first buy of the batch takes it, the next two are refused, none answered yet.
    expect(sends(o, "replicate")[0]!.msg).toMatchObject({ entries: [{ seq: 2, rid: "b2", result: { quantity: 0 } }] });
    expect(o.answers.length).toBe(1);
    const done = p.onReplicateReply("catalog-2", 2, { ok: true, epoch: 1 }, 6);
    expect(done.entries.map((e) => e.seq)).toEqual([2]);
    expect(done.answers).toMatchObject([{ token: 2, entry: { seq: 2 } }, { token: 3, error: { code: "unavailable" } }, { token: 4, error: { code: "unavailable" } }]);
  });

  test("a backup applies in order, rejects an older epoch, and a deposed primary completes nothing", () => {
    const p = core("catalog-1");
    const b = core("catalog-2");
    const entry = (sends(p.submit(buy(1, "a"), 0), "replicate")[0]!.msg as { entries: LogEntry[] }).entries;
    const r = b.onReplicate(V1, entry);
    expect(r.reply).toEqual({ ok: true, epoch: 1, last: 1 });
    expect(r.out.entries.length).toBe(1);
    expect(b.onReplicate(V1, entry).out.entries).toEqual([]); // a resend changes nothing
    // The front end promotes catalog-2 (epoch 2); the old primary's next write is refused.
    b.onView({ epoch: 2, primary: "catalog-2", members: ["catalog-2"] }, 5);
    expect(b.mode).toBe("primary");
    const stale = b.onReplicate(V1, [{ ...entry[0]!, seq: 2, rid: "z" }]);
    expect(stale.reply).toEqual({ ok: false, epoch: 2, last: 1 });
    const deposed = p.onReplicateReply("catalog-2", 1, { ok: false, epoch: 2 }, 6);
    expect(deposed.entries).toEqual([]);
    expect(deposed.answers).toMatchObject([{ token: 1, error: { code: "not_primary" } }]);
  });

  test("a silent member is dropped through the front end; the write then commits without it", () => {
    const p = core("catalog-1");
    p.submit(buy(1, "a"), 0);
    expect(p.tick(100).send).toEqual([]);
    const t = p.tick(300);
    expect(sends(t, "view_change")).toEqual([{ to: "frontend", msg: { type: "view_change", epoch: 1, primary: "catalog-1", members: ["catalog-1"] } }]);
    const o = p.onView({ epoch: 2, primary: "catalog-1", members: ["catalog-1"] }, 310);
    expect(o.view?.epoch).toBe(2);
    expect(o.entries.map((e) => e.seq)).toEqual([1]);
    expect(o.answers).toMatchObject([{ token: 1, entry: { seq: 1 } }]);
    // Alone now: the next write commits at once.
    expect(p.submit(buy(2, "b"), 320).answers).toMatchObject([{ token: 2, entry: { seq: 2 } }]);
  });

  test("definite refusals log nothing; a request id applies once", () => {
    const p = core("catalog-1", { epoch: 1, primary: "catalog-1", members: ["catalog-1"] });
    for (let i = 0; i < 10; i++) expect(p.submit(buy(i, `r${i}`), i).answers[0]).toHaveProperty("entry");
    const none = p.submit(buy(20, "r20"), 20);
    expect(none.entries).toEqual([]);
    expect(none.answers).toMatchObject([{ token: 20, error: { code: "unavailable", text: "item is unavailable" } }]);
    const again = p.submit(buy(21, "r3"), 21);
    expect(again.entries).toEqual([]);
    expect(again.answers).toMatchObject([{ token: 21, duplicate: true, entry: { seq: 4 } }]);
    expect(p.submit({ kind: "write", token: 22, rid: "q", op: { k: "qty", item: 4, delta: -1 } }, 22).answers).toMatchObject([{ error: { code: "below_zero" } }]);
    expect(p.submit({ kind: "write", token: 23, rid: "x", op: { k: "cost", item: 99, cost: 5 } }, 23).answers).toMatchObject([{ error: { code: "not_found" } }]);
    expect(evaluate(BOOKS[3], { k: "buy", item: 4 })).toHaveProperty("book");
  });

  test("a restarted primary leads again only after the front end's view and every peer's log say it may", () => {
    // Before the crash: catalog-1 sent seq 3 to catalog-2, which applied it; then it dropped catalog-2
    // and crashed before committing seq 3. Its stored view is the solo one.
    const solo: View = { epoch: 2, primary: "catalog-1", members: ["catalog-1"] };
    const before = core("catalog-1", solo);
    const log: LogEntry[] = [];
    for (let i = 1; i <= 3; i++) log.push(...before.submit(buy(i, `w${i}`, 2), i).entries);
    // Its storage holds seq 1..2 (two buys of item 2).
    const restarted = new CatalogCore({ me: "catalog-1", catalogs: CATS, frontend: "frontend", replicateTimeoutMs: 300, pullEveryMs: 200, maxQueue: 10 }, { view: solo, last: 2, books: BOOKS.map((b) => (b.item === 2 ? { ...b, quantity: 99, version: 2 } : { ...b })) }, () => undefined);
    expect(restarted.mode).toBe("recovering");
    expect(restarted.submit(buy(9, "x"), 0).answers).toMatchObject([{ error: { code: "not_primary" } }]);
    const t = restarted.tick(10);
    expect(sends(t, "pull")).toEqual([{ to: "catalog-2", msg: { type: "pull", after: 2 } }]);
    // catalog-2 holds seq 3: the restarted primary takes it rather than reuse the number.
    const took = restarted.onPullReply("catalog-2", { entries: [log[2]!], last: 3 }, 11);
    expect(took.entries.map((e) => e.seq)).toEqual([3]);
    expect(restarted.mode).toBe("recovering");
    restarted.tick(300);
    restarted.onPullReply("catalog-2", { entries: [], last: 3 }, 301);
    expect(restarted.mode).toBe("recovering"); // the front end has not confirmed its view yet
    const led = restarted.onView(solo, 302);
    expect(restarted.mode).toBe("primary");
    expect(led.events.join()).toContain("leading");
    expect(restarted.submit(buy(10, "y", 2), 303).answers).toMatchObject([{ entry: { seq: 4, result: { quantity: 97 } } }]);
    // Replaced while recovering: it resyncs like anyone else.
    const q = core("catalog-1", V1, 0, true);
    q.onView({ epoch: 2, primary: "catalog-2", members: ["catalog-2"] }, 5);
    expect(q.mode).toBe("out");
  });

  test("a joiner pulls only what it missed, asks to join, and is admitted between two writes", () => {
    const p = core("catalog-1", { epoch: 2, primary: "catalog-1", members: ["catalog-1"] });
    const log: LogEntry[] = [];
    for (let i = 0; i < 5; i++) log.push(...p.submit(buy(i, `w${i}`, 1), i).entries);
    const j = core("catalog-2", { epoch: 2, primary: "catalog-1", members: ["catalog-1"] }, 0);
    expect(j.mode).toBe("out");
    const t = j.tick(100);
    expect(sends(t, "pull")).toEqual([{ to: "catalog-1", msg: { type: "pull", after: 0 } }]);
    const pulled = j.onPullReply("catalog-1", { entries: log.slice(0, 3), last: 5 }, 101);
    expect(pulled.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(sends(pulled, "join")).toEqual([]);
    j.tick(102);
    const rest = j.onPullReply("catalog-1", { entries: log.slice(3), last: 5 }, 103);
    expect(sends(rest, "join")).toEqual([{ to: "catalog-1", msg: { type: "join", last: 5 } }]);
    // The primary takes the join; a write queued behind it waits until the view includes the joiner.
    const jo = p.submit({ kind: "join", token: 50, from: "catalog-2", last: 5 }, 104);
    expect(sends(jo, "view_change")[0]!.msg).toEqual({ type: "view_change", epoch: 2, primary: "catalog-1", members: ["catalog-1", "catalog-2"] });
    expect(p.submit(buy(51, "late", 1), 105).send).toEqual([]);
    const admitted = p.onView({ epoch: 3, primary: "catalog-1", members: ["catalog-1", "catalog-2"] }, 106);
    expect(admitted.answers).toMatchObject([{ token: 50, joined: { epoch: 3 } }]);
    expect(sends(admitted, "replicate")).toMatchObject([{ to: "catalog-2", msg: { entries: [{ seq: 6, rid: "late" }] } }]);
    const done = j.onJoinReply({ view: { epoch: 3, primary: "catalog-1", members: ["catalog-1", "catalog-2"] } }, 120);
    expect(j.mode).toBe("member");
    expect(done.events.join()).toContain("resynced 5 missed writes (seq 1..5) from catalog-1");
    // A member asking again (a lost answer) is told the view at once, after the write ahead of it.
    const again = p.submit({ kind: "join", token: 60, from: "catalog-2", last: 6 }, 130);
    expect(again.answers).toEqual([]);
    expect(p.onReplicateReply("catalog-2", 6, { ok: true, epoch: 3 }, 131).answers).toMatchObject([{ token: 51, entry: { seq: 6 } }, { token: 60, joined: { epoch: 3 } }]);
  });
});
