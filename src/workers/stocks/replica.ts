import { ErrorCode, RpcError, defineRole, type Body } from "../runtime/types.ts";
import { OrderCore, type Ready, type Ref } from "./core.ts";
import type { ReplicaConfig } from "./messages.ts";
import { OrderStore } from "./orders.ts";

/** How often the core gets a tick: well under its shortest period (a 50 ms re-probe). */
const TICK_MS = 25;
/** The requests an order replica answers; everything else is refused by the runtime. */
const REQUESTS = ["place_order", "get_order", "set_leader", "append", "log_state", "log_tail", "health"] as const;

/**
 * An order replica: a thin shell around OrderCore (core.ts, the protocol and its reasoning). It
 * loads the durable log, feeds the core requests, replies and ticks, writes each Ready's changes to
 * storage (one transaction) BEFORE it sends or answers anything, then does the Ready's I/O.
 */
export const replica = defineRole<ReplicaConfig>((node) => {
  const store = new OrderStore(node.storage);
  const core = new OrderCore({ me: node.id, replicas: node.config.replicas, catalog: node.config.catalog }, store.load());
  const waiting = new Map<Ref, { resolve(b: Body): void; reject(e: RpcError): void }>();
  let nextRef = 0;
  /**
   * The core's time: the node's clock, never read back. The clock nemesis and a clock sync may step
   * node.now() back, and the core asserts that time does not reverse (its periods are durations:
   * a step back only makes them last longer). Fed the raw clock, a step back failed that assertion
   * in the middle of a reply and left the request it answered pending for good (stocks, seed 14,
   * --nemesis clock,kill).
   */
  let latest = -Infinity;
  const now = (): number => (latest = Math.max(latest, node.now()));

  function run(r: Ready): void {
    store.write(r.writes, r.epoch);
    for (const e of r.events) node.log[e.level](e.text, e.fields);
    for (const s of r.sends) node.send(s.to, s.body);
    for (const q of r.requests) {
      node.request(q.to, q.body, { timeoutMs: q.timeoutMs }).then(
        (body) => run(core.result(now(), q.id, { ok: true, body })),
        (e) => run(core.result(now(), q.id, { ok: false, error: e instanceof RpcError ? e : new RpcError(ErrorCode.Crash, String(e)) })),
      );
    }
    for (const a of r.answers) {
      const w = waiting.get(a.ref);
      if (!w) continue;
      waiting.delete(a.ref);
      if ("error" in a) w.reject(a.error);
      else w.resolve(a.body);
    }
  }

  for (const type of REQUESTS) {
    node.on(type, async (msg) => {
      const ref = nextRef++;
      const answered = new Promise<Body>((resolve, reject) => waiting.set(ref, { resolve, reject }));
      run(core.receive(now(), ref, msg.src, msg.body));
      node.reply(msg, await answered);
    });
  }

  node.setInterval(TICK_MS, () => run(core.tick(now())));
  run(core.start(now()));

  return {
    inspect: () => ({ ...core.inspect(), answersPending: waiting.size }),
  };
});
