import { defineRole } from "../runtime/types.ts";
import type { Echo } from "./messages.ts";

/** Replies to every `echo` with `echo_ok` and the same payload. */
export const echoServer = defineRole((node) => {
  let served = 0;
  node.on<Echo>("echo", (msg) => {
    served++;
    node.reply(msg, { type: "echo_ok", echo: msg.body.echo });
  });
  return { inspect: () => ({ served }) };
});
