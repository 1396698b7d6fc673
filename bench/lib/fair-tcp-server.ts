/**
 * Server side of the fair TCP baseline (its own OS process): decodes every message with msgpackr,
 * answers a ping with an encoded pong, counts "one"s and answers "until" once it has them all.
 * Prints its port on stdout.
 */
import { MessageReader, encodeOne } from "./fair-tcp.ts";

const server = Bun.listen<{ reader: MessageReader; count: number; want: number; until: any }>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(s) {
      s.data = { reader: new MessageReader(), count: 0, want: -1, until: null };
      s.setNoDelay?.(true);
    },
    data(s, chunk) {
      const out: Uint8Array[] = [];
      s.data.reader.push(chunk, (m) => {
        const t = m.body.type;
        if (t === "ping") out.push(encodeOne({ src: m.dest, dest: m.src, body: { type: "pong", in_reply_to: m.body.msg_id } }));
        else if (t === "one") s.data.count++;
        else if (t === "until") {
          s.data.want = m.body.n;
          s.data.until = m;
        }
        if (s.data.until && s.data.count >= s.data.want) {
          const u = s.data.until;
          out.push(encodeOne({ src: u.dest, dest: u.src, body: { type: "until_ok", in_reply_to: u.body.msg_id } }));
          s.data.count = 0;
          s.data.until = null;
        }
      });
      for (const b of out) s.write(b);
    },
  },
});
console.log(server.port);
