import { percentile } from "../../driver/stats.ts";
import { MAX_NODES, type Scenario } from "../../driver/scenario.ts";
import { echoModel } from "../../history/models.ts";
import type { EchoClientConfig, EchoClientState } from "./messages.ts";

const CLIENT_TIMEOUT_MS = 500;

interface EchoOptions extends Record<string, unknown> {
  clients: number;
  intervalMs: number;
}

export const scenario: Scenario<EchoOptions> = {
  name: "echo",
  description: "One server, N clients: every client checks that each reply carries its own payload",
  options: [
    { flags: "--clients <n>", description: "Client nodes", default: 3, integer: true, max: MAX_NODES - 1 },
    { flags: "--interval-ms <ms>", description: "Gap between a client's requests", default: 10, max: 3_600_000 },
  ],
  topology(o) {
    const clients = Array.from({ length: o.clients }, (_, i) => ({
      id: `client-${i + 1}`,
      role: "client",
      config: { server: "server", intervalMs: o.intervalMs, timeoutMs: CLIENT_TIMEOUT_MS } satisfies EchoClientConfig,
    }));
    return [{ id: "server", role: "server" }, ...clients];
  },
  // A healthy client completes a request every interval; after a heal, one in flight may time out first.
  clients: (o) => Array.from({ length: o.clients }, (_, i) => ({ id: `client-${i + 1}`, withinMs: 2 * (CLIENT_TIMEOUT_MS + Number(o.intervalMs)) + 1000 })),
  historyModel: () => echoModel,
  async run(cluster, o, control) {
    await control.untilStopped();
    // Requests in flight when faults healed get their replies (or time out) before we count.
    await cluster.sleep(600);
    const states: EchoClientState[] = [];
    // A few at a time: a thousand clients one by one would take longer than the run.
    for (let i = 1; i <= o.clients; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, o.clients - i + 1) }, (_, k) => cluster.inspect<EchoClientState>(`client-${i + k}`)));
      for (const s of batch) if (s) states.push(s);
    }
    const ok = states.reduce((a, s) => a + s.ok, 0);
    const sent = states.reduce((a, s) => a + s.sent, 0);
    const mismatched = states.reduce((a, s) => a + s.mismatched, 0);
    const failed = states.reduce((a, s) => a + s.failed, 0);
    const slow = states.reduce((a, s) => a + s.slow, 0);
    // Sent but not yet answered when inspected: neither a success nor a failure.
    const inFlight = sent - ok - mismatched - failed - slow;
    const lat = states.flatMap((s) => s.latenciesMs);
    // No fault from the flags, the nemesis, an operator or a test: then there is no excuse for a failure.
    const faultFree = o.nemesis.length === 0 && o.loss === 0 && o.dup === 0 && cluster.faultsAsked === 0;
    return {
      checks: {
        "every client answered": { ok: states.length === o.clients, detail: `${states.length}/${o.clients} clients reachable` },
        "replies match requests": { ok: mismatched === 0, detail: `${mismatched} mismatched of ${ok + mismatched}` },
        "requests succeeded": { ok: ok > 0, detail: `${ok} of ${sent} requests answered` },
        ...(faultFree ? { "no request failed without a fault": { ok: failed === 0, detail: `${failed} failed (error, or timeout never answered) of ${ok + mismatched + failed + slow} that ended; ${slow} answered after their timeout; ${inFlight} still in flight` } } : {}),
      },
      metrics: { sent, ok, failed, slow, inFlight, latencyP50Ms: percentile(lat, 50), latencyP99Ms: percentile(lat, 99) },
    };
  },
};
