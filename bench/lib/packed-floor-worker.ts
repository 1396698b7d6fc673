/**
 * One thread of the packed floor (packed-floor.ts): the olympics push fan-out as packed threads do
 * it, written as plainly and as fast as it can be, with no node runtime. Thread 0 is obelix's
 * thread, thread 1 cacofonix's; the tablets are dealt to the threads as `--threads` deals nodes.
 *
 * - Thread 1 asks thread 0 for an update over their lane (a MessageChannel), as cacofonix does.
 * - Thread 0 stamps it, encodes it once, posts the text to every other thread in one post each,
 *   then gives each of its own tablets a copy.
 * - Every other thread parses the text once and gives each of its tablets a copy. Thread 1 asks for
 *   the next update `gapMs` after it has its share, as cacofonix naps after obelix's answer.
 *
 * A tablet's work is the least a push must do: its own copy of the update (a literal copy of this
 * one shape, ~10 ns, against ~80 ns for the runtime's generic copy and ~100 ns for a parse), the value
 * kept only if newer, and the delivery's time noted. Clocks are read as a tablet reads them
 * (runtime/real-clock.ts). Each thread pins itself to the CPU it is given, as packed threads do.
 */
import { pinThread } from "../../src/workers/runtime/cpu-affinity.ts";
import { realNow } from "../../src/workers/runtime/real-clock.ts";

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

export interface PackedFloorInit {
  thread: number;
  /** Tablets this thread holds. */
  tablets: number;
  /** Thread 0: a lane to each other thread; any other thread: its lane to thread 0. */
  lanes: MessagePort[];
  cpu: number | null;
}

interface Tally {
  team: string;
  gold: number;
  silver: number;
  bronze: number;
  version: number;
  updatedAt: number;
}
interface TallyUpdate {
  type: "tally_update";
  tally: Tally;
}

let held: number[] = [];
let got: number[] = [];
let version = 0;
/** Thread 1 only: ask for `count` updates, `gapMs` apart. */
let run: ((count: number, gapMs: number) => void) | null = null;

/** Each tablet's own copy, kept if newer, its delivery timed. */
function deliver(u: TallyUpdate): void {
  for (let i = 0; i < held.length; i++) {
    const t = u.tally;
    const copy: TallyUpdate = { type: u.type, tally: { team: t.team, gold: t.gold, silver: t.silver, bronze: t.bronze, version: t.version, updatedAt: t.updatedAt } };
    if (copy.tally.version <= held[i]!) continue;
    held[i] = copy.tally.version;
    got.push(realNow() - copy.tally.updatedAt);
  }
}

function writer(lanes: MessagePort[]): void {
  const onAsk = () => {
    version++;
    const u: TallyUpdate = { type: "tally_update", tally: { team: "Gaul", gold: version, silver: 0, bronze: 0, version, updatedAt: realNow() } };
    const text = JSON.stringify(u);
    for (const lane of lanes) lane.postMessage(text);
    deliver(u);
  };
  for (const lane of lanes) lane.onmessage = onAsk;
}

function reader(lane: MessagePort, caller: boolean): void {
  let left = 0;
  let gapMs = 0;
  const ask = () => lane.postMessage("next");
  lane.onmessage = (m) => {
    deliver(JSON.parse(m.data as string) as TallyUpdate);
    if (!caller) return;
    if (--left > 0) setTimeout(ask, gapMs);
    else self.postMessage("done");
  };
  if (caller)
    run = (count, gap) => {
      left = count;
      gapMs = gap;
      ask();
    };
}

self.onmessage = (e: MessageEvent) => {
  const d = e.data as PackedFloorInit | { run: number; gapMs: number } | "collect";
  if (d === "collect") {
    self.postMessage(got);
    got = [];
    return;
  }
  if ("run" in d) {
    if (!run) throw new Error("only thread 1 runs updates");
    run(d.run, d.gapMs);
    return;
  }
  const notPinned = d.cpu === null ? null : pinThread(d.cpu);
  held = new Array<number>(d.tablets).fill(0);
  if (d.thread === 0) writer(d.lanes);
  else reader(d.lanes[0]!, d.thread === 1);
  self.postMessage({ ready: true, notPinned });
};
