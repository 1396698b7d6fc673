/**
 * One thread of the raw consensus pipeline (bench/lib/raw-paxos.ts): a client, the leader or a
 * follower, with no node runtime. It moves the messages `bench consensus` moves, with the same
 * payloads and in the same pattern — client → leader `chat_batch` (the ops as one encoded string),
 * leader → every follower `accept` (a window of slots, each one batch), follower → leader
 * `accepted`, the commit index piggybacked on the next accept, leader → client `chat_batch_ok` —
 * encoded and decoded as the runtime does (each message as JSON text on its port, slot values with
 * the paxos codec), and nothing else: no checks, no storage, no history, no chat log executed, no
 * timers or retries. What it reaches is the floor of CPU per commit for this workload.
 */
import { decodeValue, encodeValue, type Op } from "../../src/workers/paxos/messages.ts";

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

export interface RawPaxosInit {
  role: "client" | "leader" | "follower";
  id: string;
  /** client: [leader]; leader: [clients..., followers...]; follower: [leader]. */
  ports: MessagePort[];
  peers: string[];
  clients: number;
  pipeline: number;
  clientBatch: number;
  slotBatch: number;
  window: number;
  f: number;
  textChars: number;
}

interface Envelope {
  src: string;
  dest: string;
  id?: number;
  in_reply_to?: number;
  body: Record<string, unknown> & { type: string };
}

const send = (port: MessagePort, m: Envelope) => port.postMessage(JSON.stringify(m));
const recv = (data: unknown) => JSON.parse(data as string) as Envelope;

function client(init: RawPaxosInit): void {
  const leader = init.ports[0]!;
  const session = `${init.id}#1`;
  // An id of the runtime's uid() length (hyperid, url-safe), made from a counter.
  const idBase = `${init.id.padEnd(8, "x")}-raw0pipe1base-`;
  const filler = ".".repeat(init.textChars);
  const text = (seq: number) => {
    const base = `hello #${seq} `;
    return base.length >= init.textChars ? base.slice(0, init.textChars) : base + filler.slice(base.length);
  };
  let nextSeq = 0;
  let acked = 0;
  let reqId = 0;
  const unacked = new Set<number>();
  let lw = 0;
  const lanes = new Map<number, number[]>();
  const sendBatch = () => {
    const seqs: number[] = [];
    for (let i = 0; i < init.clientBatch; i++) seqs.push(nextSeq++);
    for (const s of seqs) unacked.add(s);
    while (lw < nextSeq && !unacked.has(lw)) lw++;
    const ops: Op[] = seqs.map((s) => ({ id: idBase + s, c: session, s, lw, t: text(s) }));
    const id = reqId++;
    lanes.set(id, seqs);
    send(leader, { src: init.id, dest: init.peers[0]!, id, body: { type: "chat_batch", ops: encodeValue(ops) } });
  };
  leader.onmessage = (e) => {
    const m = recv(e.data);
    const seqs = lanes.get(m.in_reply_to!)!;
    lanes.delete(m.in_reply_to!);
    for (const s of seqs) unacked.delete(s);
    acked += seqs.length;
    sendBatch();
  };
  self.onmessage = (e) => {
    if (e.data === "start") for (let i = 0; i < init.pipeline; i++) sendBatch();
    else if (e.data === "acked") self.postMessage({ acked });
  };
}

function leader(init: RawPaxosInit): void {
  const clientPorts = init.ports.slice(0, init.clients);
  const followerPorts = init.ports.slice(init.clients);
  interface Req {
    client: number;
    id: number;
    ops: Op[];
  }
  interface Slot {
    reqs: Req[];
    acks: number;
    chosen: boolean;
  }
  const queue: Req[] = [];
  const inflight = new Map<number, Slot>();
  let nextSlot = 1;
  let commit = 0;
  const ballot = 1;
  const propose = () => {
    while (inflight.size < init.window && queue.length > 0) {
      const reqs: Req[] = [];
      let value: Op[] = [];
      while (queue.length > 0 && (reqs.length === 0 || value.length + queue[0]!.ops.length <= init.slotBatch)) {
        const r = queue.shift()!;
        reqs.push(r);
        value = value.length === 0 ? r.ops : value.concat(r.ops);
      }
      const slot = nextSlot++;
      inflight.set(slot, { reqs, acks: 0, chosen: false });
      // As at the replica: encodeValue splices each request's own string into the slot's.
      const w = encodeValue(value);
      for (let k = 0; k < followerPorts.length; k++)
        send(followerPorts[k]!, { src: init.id, dest: init.peers[init.clients + k]!, body: { type: "accept", b: ballot, entries: [[slot, w]], commit } });
    }
  };
  clientPorts.forEach((port, c) => {
    port.onmessage = (e) => {
      const m = recv(e.data);
      const ops = decodeValue(m.body.ops);
      if (!ops) throw new Error("raw pipeline: a client batch did not decode");
      queue.push({ client: c, id: m.id!, ops });
      propose();
    };
  });
  followerPorts.forEach((port) => {
    port.onmessage = (e) => {
      const m = recv(e.data);
      for (const s of m.body.slots as number[]) {
        const sl = inflight.get(s);
        if (sl && !sl.chosen && ++sl.acks >= init.f) sl.chosen = true;
      }
      for (let sl = inflight.get(commit + 1); sl?.chosen; sl = inflight.get(commit + 1)) {
        inflight.delete(++commit);
        for (const r of sl.reqs) send(clientPorts[r.client]!, { src: init.id, dest: init.peers[r.client]!, in_reply_to: r.id, body: { type: "chat_batch_ok" } });
      }
      propose();
    };
  });
  self.onmessage = () => undefined;
}

function follower(init: RawPaxosInit): void {
  const port = init.ports[0]!;
  let commit = 0;
  port.onmessage = (e) => {
    const m = recv(e.data);
    const slots: number[] = [];
    for (const [s, w] of m.body.entries as Array<[number, string]>) {
      if (decodeValue(w) === undefined) throw new Error("raw pipeline: a slot did not decode");
      slots.push(s);
    }
    commit = Math.max(commit, m.body.commit as number);
    send(port, { src: init.id, dest: init.peers[0]!, body: { type: "accepted", b: m.body.b, ok: true, promised: m.body.b, slots } });
  };
  self.onmessage = () => undefined;
}

self.onmessage = (e: MessageEvent) => {
  const init = e.data as RawPaxosInit;
  if (init.role === "client") client(init);
  else if (init.role === "leader") leader(init);
  else follower(init);
  self.postMessage("ready");
};
