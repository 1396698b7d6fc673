/**
 * The role's floor for push-pull: a bare worker that does a push tablet's own work on each update,
 * written flat, with no node runtime around it. It gets the same JSON text on a raw MessagePort as
 * raw-tablet.ts does, and then does what the tablet role does with it:
 * - checks the message as the runtime does (isMessage);
 * - checks the tally with the role's own asTally, and checks that the tablet asked for the team;
 * - keeps the value only if it is newer than the one held;
 * - records when it applied it (the three columns of TabletState.applied).
 *
 * Push cannot beat this either, since a tablet must do that work. So push's p50 over this floor's
 * is what the runtime costs, and this floor's over raw-tablet.ts's is what the role's own work
 * costs (push-pull's roleSplit).
 */
import { asTally, tallyKey, type Tally } from "../../src/workers/olympics/domain.ts";
import { realNow } from "../../src/workers/runtime/real-clock.ts";

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

/** As the tablets of push-pull: interested in Gaul only. */
const teams: string[] = ["Gaul"];
const tallies: Partial<Record<string, Tally>> = {};
/** The tablet keeps at most this many applied values (tablet.ts MAX_SAMPLES). */
const MAX_SAMPLES = 20_000;
const appliedKeys: string[] = [];
const appliedVersions: number[] = [];
const appliedAt: number[] = [];
const counts = { received: 0, refused: 0, pushes: 0, changes: 0, stale: 0 };
let got: number[] = [];

function onPush(data: unknown): void {
  let body: Record<string, unknown> | null;
  try {
    body = typeof data === "string" ? (JSON.parse(data) as Record<string, unknown> | null) : null;
  } catch {
    body = null;
  }
  if (typeof body !== "object" || body === null || typeof body.type !== "string" || (body.msg_id !== undefined && typeof body.msg_id !== "number")) {
    counts.refused++;
    return;
  }
  counts.received++;
  if (body.type !== "tally_update") return;
  const t = asTally(body.tally);
  if (t === undefined || !teams.includes(t.team)) {
    counts.refused++;
    return;
  }
  counts.pushes++;
  const held = tallies[t.team];
  if (held !== undefined && held.version >= t.version) {
    if (held.version > t.version) counts.stale++;
    return;
  }
  const now = realNow();
  tallies[t.team] = t;
  if (appliedAt.length < MAX_SAMPLES) {
    appliedKeys.push(tallyKey(t.team));
    appliedVersions.push(t.version);
    appliedAt.push(now);
  }
  counts.changes++;
  if (t.updatedAt !== null) got.push(now - t.updatedAt);
}

self.onmessage = (e: MessageEvent) => {
  if (e.data === "collect") {
    self.postMessage(got);
    got = [];
    appliedKeys.length = appliedVersions.length = appliedAt.length = 0;
    return;
  }
  if (e.data === "counts") {
    self.postMessage({ ...counts });
    return;
  }
  (e.data as { port: MessagePort }).port.onmessage = (m) => onPush(m.data);
  self.postMessage("ready");
};
