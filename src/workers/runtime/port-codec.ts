/**
 * What a node message looks like on a MessageChannel between worker threads. Posting a string skips
 * structured serialisation on both ends: for a small message (a push to a tablet) JSON text costs
 * about half of what the object does, to send and to receive — and a fan-out pays it once per
 * recipient. So a message that JSON carries exactly (plain objects, dense arrays, strings, finite
 * numbers other than -0, booleans, null) goes as JSON text; any other message (undefined, NaN, a
 * Map, a typed array, a bigint, a cycle, a very large one...) goes as the object itself, as before.
 * Node messages are objects, so a string on a link is always one encoded here. On a node's own
 * link (links.ts) the text is the body alone (toLink/fromLink); on a lane it is the whole message.
 */
import { assert } from "./assert.ts";
import { PLAIN_MAX_DEPTH, PLAIN_MAX_VALUES, cloneMessage, plainShape, type Budget } from "./clone.ts";
import type { Body, Message, NodeId } from "./types.ts";

/** A scalar JSON carries exactly (JSON.parse(JSON.stringify(v)) is v): null, a string, a boolean, a finite number other than -0. */
export function jsonExactScalar(v: unknown): boolean {
  return v === null || typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v) && !Object.is(v, -0));
}

/** True when JSON.parse(JSON.stringify(v)) equals v exactly. */
function jsonExact(v: unknown, depth: number, budget: Budget): boolean {
  if (--budget.values < 0) return false;
  if (typeof v !== "object" || v === null) return jsonExactScalar(v);
  // Deeper or larger messages are posted as objects: for them serialisation is no longer the cost that dominates.
  if (depth >= PLAIN_MAX_DEPTH) return false;
  const shape = plainShape(v);
  if (shape === "array") {
    const a = v as unknown[];
    for (let i = 0; i < a.length; i++) if (!(i in a) || !jsonExact(a[i], depth + 1, budget)) return false;
    return true;
  }
  if (shape === null) return false;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k === "__proto__" || !jsonExact(o[k], depth + 1, budget)) return false;
  return true;
}

/** The form to post on a lane (lanes.ts): JSON text when it carries the message exactly, else the message. */
export function toPort(msg: Message): Message | string {
  return jsonExact(msg, 0, { values: PLAIN_MAX_VALUES }) ? JSON.stringify(msg) : msg;
}

/**
 * A body's JSON text, or null when JSON does not carry it exactly. The message around the body
 * costs the walk three values (itself, src, dest) and one level, as toPort's walk of the whole
 * message does, so a body posts as text on a link exactly when its message would on a lane.
 */
function bodyJson(body: Body): string | null {
  return jsonExact(body, 1, { values: PLAIN_MAX_VALUES - 3 }) ? JSON.stringify(body) : null;
}

/**
 * One body that a node sends to many peers in one call (`sendMany`): the check and the JSON text
 * of the body are made once, on first need, and every recipient gets that same text (a node's
 * link posts it as is; a lane names the recipients once in a multicast entry). Lives for that one
 * call's immediate posts: a copy the network delays is posted
 * later (the body may have changed by then) and takes the per-message path.
 *
 * It also holds the call's hand-offs to nodes in the sender's own thread until the call ends
 * (`local`, then `flushLocal`): the posts to other threads go first (with packed threads, the lane
 * batches the call filled are posted then, not at the end of the turn; Links.postMany fills them
 * before it looks at this thread's recipients), so those threads start on their share while this
 * one still queues its own. The body is copied once inside the call, so what a recipient gets is
 * the body as it was sent; only the order between different recipients changes (a recipient named
 * twice gets its two copies in order). Whoever makes a SharedBody calls flushLocal before the call
 * returns.
 */
export class SharedBody {
  /** undefined: not encoded yet; null: JSON does not carry this body exactly (post objects). */
  private text: string | null | undefined;
  private readonly held: Array<{ deliver: (m: Message) => void; msg: Message }> = [];
  /** A whole list of this thread's recipients, worked out before the call (localMany): handed on after `held`. */
  private planned: { src: NodeId; dests: readonly NodeId[]; delivers: ReadonlyArray<(m: Message) => void> } | null = null;
  /** Posts the call queued for other threads (packed threads' lanes hold a turn's messages), made before the local copies. */
  private postQueued: (() => void) | null = null;
  constructor(readonly body: Body) {}

  /** The call queued messages for other threads: `post` sends them at flushLocal, before the copies for this thread are made. */
  queued(post: () => void): void {
    assert(this.postQueued === null || this.postQueued === post, "a fan-out's posts queued in two places");
    this.postQueued = post;
  }

  /** The body's JSON text (made once), or null when JSON does not carry it exactly. */
  bodyText(): string | null {
    if (this.text === undefined) this.text = bodyJson(this.body);
    return this.text;
  }

  /** toLink(msg) for a message whose body is this one: the same text for every recipient. */
  toLink(msg: Message): Message | string {
    assert(msg.body === this.body, "a shared body posted with another message's body");
    return this.bodyText() ?? msg;
  }

  /** A hand-off to a node in this thread, made at flushLocal (still within the call); as many as the call has recipients. */
  local(deliver: (m: Message) => void, msg: Message): void {
    assert(msg.body === this.body, "a shared body handed on with another message's body");
    this.held.push({ deliver, msg });
  }

  /**
   * As local for each of `dests` from src, `delivers` giving each one's hand-off: both lists are
   * kept as given (a caller's plan for a list it fans out to again and again), so the call makes no
   * message and no entry per recipient; each recipient's message is made as it is handed on.
   */
  localMany(src: NodeId, dests: readonly NodeId[], delivers: ReadonlyArray<(m: Message) => void>): void {
    assert(this.planned === null && dests.length === delivers.length, "a fan-out's own-thread recipients planned twice, or a plan that does not match its list");
    this.planned = { src, dests, delivers };
  }

  /**
   * Queue the held recipients' deliveries (asynchronous, as every delivery is) as one microtask
   * that hands them on in order: one task for the fan-out, not one per recipient. The body is
   * copied once now, so what they get is the body as it was sent; each recipient's own copy is made
   * from that one as it is handed on (the last gets it), so the first recipient does not wait for
   * every copy to be made (250 copies took ~0.13 ms).
   */
  flushLocal(): void {
    this.postQueued?.();
    const held = this.held.splice(0);
    const planned = this.planned;
    this.planned = null;
    const n = held.length + (planned?.dests.length ?? 0);
    if (n === 0) return;
    const sent = cloneMessage(this.body);
    const h = held.length;
    queueMicrotask(() =>
      eachThenRaise(n, (i) => {
        const body = i === n - 1 ? sent : cloneMessage(sent);
        if (i < h) {
          const { deliver, msg } = held[i]!;
          deliver({ src: msg.src, dest: msg.dest, body });
        } else planned!.delivers[i - h]!({ src: planned!.src, dest: planned!.dests[i - h]!, body });
      }),
    );
  }
}

/**
 * Hand each message on, in order (`copy`, when given, makes the message handed on from the one
 * held, as it is handed on); one whose delivery throws does not cost the rest theirs (the first
 * error is raised after them).
 */
export function deliverInOrder(list: ReadonlyArray<{ deliver: (m: Message) => void; msg: Message }>, copy?: (msg: Message, i: number) => Message): void {
  eachThenRaise(list.length, (i) => {
    const { deliver, msg } = list[i]!;
    deliver(copy ? copy(msg, i) : msg);
  });
}

/** step(0) … step(n - 1), each whatever the ones before threw; then the first error, if any. */
function eachThenRaise(n: number, step: (i: number) => void): void {
  let failed: { error: unknown } | null = null;
  for (let i = 0; i < n; i++) {
    try {
      step(i);
    } catch (error) {
      failed ??= { error };
    }
  }
  if (failed !== null) throw failed.error;
}

/**
 * The form to post on a node's own MessageChannel link (links.ts): the body's JSON text when that
 * carries it exactly, else the whole message. A link joins two nodes and carries only one node's
 * messages to the other, so the receiving end knows src and dest without reading them (fromLink):
 * a fan-out posts one string to every recipient instead of building and copying one per recipient.
 */
export function toLink(msg: Message): Message | string {
  return bodyJson(msg.body) ?? msg;
}

/**
 * What arrived on the link from `src` to `dest`, decoded: a body's text becomes a message from src
 * to dest (a peer cannot name another sender on it); an object is a whole message, as posted.
 * Text that does not parse is handed on as is, for the runtime to refuse as malformed.
 */
export function fromLink(data: unknown, src: string, dest: string): unknown {
  if (typeof data !== "string") return data;
  let body: unknown;
  try {
    body = JSON.parse(data) as unknown;
  } catch {
    return data;
  }
  return { src, dest, body };
}
