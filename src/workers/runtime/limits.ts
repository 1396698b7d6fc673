/**
 * Explicit bounds on every queue and message (TigerBeetle-style). What exceeds one is refused with an
 * error or dropped and counted — never buffered without bound.
 */
export const Limits = {
  /** Largest message body, in (estimated, for MessageChannel; exact, for TCP frames) bytes. */
  maxMessageBytes: 1 << 20,
  /** Outstanding `request`s per node. */
  maxPendingRequests: 65_536,
  /** Timed-out requests a node remembers, so that a late reply can still be reported (RequestOptions.onLateReply). */
  maxLateRepliesWatched: 4096,
  /** Messages held for a link that is still being set up. */
  maxLinkBacklog: 16_384,
  /** Messages held for a paused node. */
  maxPausedInbox: 65_536,
  /** Live timers per node. */
  maxTimers: 65_536,
  /** Messages delayed by simulated latency, per node (threaded) or per cluster (simulator). */
  maxInFlight: 1_000_000,
  /** Bytes a TCP bridge buffers for one peer host before it drops. */
  maxBridgeBufferBytes: 64 << 20,
  defaultRequestTimeoutMs: 1000,
  /** Largest TCP frame (a message at the size limit plus framing headroom); a connection that sends more is closed. */
  maxFrameBytes: (1 << 20) + 64 * 1024,
  /** A TCP connection that has not completed the mutual challenge-response by then is closed. */
  handshakeTimeoutMs: 5000,
  /** A node's HTTP request bodies, unless its serveHttp options say otherwise (larger ones get 413). */
  defaultMaxHttpBodyBytes: 64 * 1024,
  /** Largest simulated latency a network setting may ask for. */
  maxLatencyMs: 60_000,
  /** More simulator events than this at one virtual instant is a livelock (a zero-delay loop), not a workload. */
  maxEventsPerInstant: 250_000,
  /** Node messages in one frame on a TCP data link (a receiver refuses more). */
  maxFrameMessages: 4096,
  /**
   * Packed threads: entries in one post on a lane between two threads (a receiver refuses a larger
   * post), and the JSON text a sender gathers before it posts without waiting for the turn's end.
   */
  maxLaneBatch: 4096,
  maxLaneBatchChars: 1 << 20,
  /**
   * Packed threads: recipient lists the receiving end of a lane keeps for the sending end, so a
   * fan-out to a list it was sent before names the list by number (lanes.ts). The sender reuses the
   * oldest number past this; the receiver refuses a number outside it.
   */
  maxLaneLists: 64,
  /** A peer found down is asked for again after this long (sends meanwhile are dropped). */
  linkDownRetryMs: 200,
  /** The host bridge: a control request to another host that takes longer failed; redial backoff; calls pending at once. */
  bridgeControlTimeoutMs: 5000,
  bridgeRedialMinMs: 100,
  bridgeRedialMaxMs: 5000,
  maxBridgePendingCalls: 4096,
  /** Control operations waiting their turn on one node (the supervisor runs them one at a time). */
  maxQueuedControlOps: 64,
  /** A control call to a worker (start a node, crash, pause, link, network) that takes longer failed. */
  controlTimeoutMs: 10_000,
  /**
   * A worker answers control calls one after another and shares its turns among the nodes it holds,
   * so each call already waiting on a worker, and each node beyond the first in it, adds this much to
   * a call's timeout (500 nodes started at once in one packed thread must not time out for that alone).
   */
  controlTimeoutPerQueuedCallMs: 100,
  /** controlTimeoutMs holds for a host of up to this many nodes; each further step of as many adds it again. */
  controlTimeoutNodesPerStep: 100,
  /**
   * Worker threads loading the runtime at once when a cluster starts. Five hundred at once on two
   * cores share them so fairly that none is ready until nearly all are; a few at a time, each is
   * ready in a fraction of a second and the whole takes no longer.
   */
  workersSpawnedAtOnce: 8,
  /** A new worker thread that has not loaded the runtime and answered by then failed (whatever controlTimeoutMs a cluster is given). */
  workerSpawnTimeoutMs: 10_000,
  /** A link asked of a peer that is still starting waits this long for it (then the peer looks down). */
  startingPeerWaitMs: 3000,
  /** Link requests waiting on one starting node; past this they wait out startingPeerWaitMs. */
  maxUpWaiters: 4096,
  /** A role's stop hook that runs longer is cut off (and reported); a node's whole clean stop is bounded by stopTimeoutMs. */
  stopHookTimeoutMs: 2000,
  stopTimeoutMs: 3000,
  /** Stats and inspect snapshots a worker must answer within. */
  statsTimeoutMs: 2000,
  inspectTimeoutMs: 5000,
} as const;

/** A cheap, bounded size estimate: walks the value and stops as soon as it passes `limit`. */
export function exceedsSize(value: unknown, limit: number): boolean {
  // Fast path: a flat body of scalars, short keys and short strings (most protocol messages) cannot
  // exceed a limit this large: at most 64 × (512-char key + 512-char string) = 64 × 1540 < 131,072
  // by the walk's own measure. (Keys are bounded too: a long key must not slip past the walk.)
  if (limit >= 131_072 && typeof value === "object" && value !== null && !Array.isArray(value)) {
    let flat = true;
    let n = 0;
    for (const k in value as Record<string, unknown>) {
      const v = (value as Record<string, unknown>)[k];
      if (++n > 64 || k.length > 512 || (typeof v === "object" && v !== null) || (typeof v === "string" && v.length > 512)) {
        flat = false;
        break;
      }
    }
    if (flat) return false;
  }
  let budget = limit;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") budget -= v.length * 2 + 2;
    else if (v === null || typeof v !== "object") budget -= 9;
    else if (ArrayBuffer.isView(v)) budget -= v.byteLength;
    else if (v instanceof ArrayBuffer) budget -= v.byteLength;
    else if (Array.isArray(v)) {
      budget -= 4;
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else {
      for (const k in v as Record<string, unknown>) {
        budget -= k.length + 2;
        stack.push((v as Record<string, unknown>)[k]);
      }
    }
    if (budget < 0) return true;
  }
  return false;
}
