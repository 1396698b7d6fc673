import { RpcError, defineRole } from "../runtime/types.ts";
import type { EchoClientConfig, EchoClientState, EchoOk } from "./messages.ts";

const MAX_SAMPLES = 10_000;

/**
 * Sends echo requests to the server in a loop and checks each reply carries its own payload. A
 * mismatch is written to storage before it is counted, so a crash of this client does not erase it;
 * a new run (incarnation 0) starts from none.
 */
export const echoClient = defineRole<EchoClientConfig>((node) => {
  const { server, intervalMs, timeoutMs } = node.config;
  if (node.incarnation === 0) node.storage.delete("mismatched");
  const state: EchoClientState = { sent: 0, ok: 0, mismatched: node.storage.get<number>("mismatched") ?? 0, failed: 0, slow: 0, latenciesMs: [] };
  let running = true;
  // Stored before it is counted, so a crash of this client does not erase it.
  const mismatch = () => node.storage.put("mismatched", ++state.mismatched);

  async function loop(): Promise<void> {
    while (running) {
      const payload = `${node.id}:${state.sent}:${node.random.int(1e9)}`;
      const t0 = node.now();
      state.sent++;
      const op = node.history.invoke("echo", null, { sent: payload });
      try {
        // A reply after the timeout turns a failure into "slow": it was late, not lost.
        const onLateReply = (late: Record<string, unknown>) => {
          state.failed--;
          if (late.echo === payload) state.slow++;
          else mismatch();
        };
        const reply = await node.request<EchoOk>(server, { type: "echo", echo: payload }, { timeoutMs, onLateReply });
        op.ok(reply.echo);
        if (reply.echo === payload) state.ok++;
        else mismatch();
        if (state.latenciesMs.length < MAX_SAMPLES) state.latenciesMs.push(node.now() - t0);
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
        op.error(e);
        state.failed++;
      }
      await node.sleep(intervalMs);
    }
  }
  void loop();
  return {
    inspect: () => ({ completed: state.ok + state.mismatched, ...state }), // added fields first: see olympics/tablet.ts
    stop: () => {
      running = false;
    },
  };
});
