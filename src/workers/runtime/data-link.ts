/**
 * What a node accepts on its TCP data link: a batch of node messages, all for this node and all
 * from nodes that live on the host at the other end of the (authenticated) connection. A frame is
 * checked whole before any of it is delivered, so a bad one changes nothing; the error closes the
 * connection (wire.ts) with its text.
 */
import { MAX_FRAME_MESSAGES } from "./links.ts";
import { isMessage } from "./node.ts";
import type { Message, NodeId } from "./types.ts";

export function acceptWireFrame(frame: Record<string, unknown>, self: NodeId, placement: Readonly<Record<NodeId, string>>, peerHost: string | null): Message[] {
  const ms = frame.ms;
  if (frame.t !== "msgs" || !Array.isArray(ms) || ms.length === 0 || ms.length > MAX_FRAME_MESSAGES) {
    throw new Error(`expected a batch of 1 to ${MAX_FRAME_MESSAGES} messages`);
  }
  for (const m of ms) {
    if (!isMessage(m)) throw new Error("malformed node message");
    if (m.dest !== self) throw new Error(`message for "${m.dest}" on ${self}'s data link`);
    if (placement[m.src] !== peerHost) throw new Error(`host ${peerHost} sent a message from "${m.src}", which does not live there`);
  }
  return ms as Message[];
}
