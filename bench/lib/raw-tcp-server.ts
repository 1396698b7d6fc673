/**
 * Raw TCP baseline server (its own OS process): length-prefixed frames, echoes "ping" frames and
 * acknowledges a blast once it has counted the expected number of frames. No msgpack, no runtime.
 * Prints its port on stdout.
 */
const server = Bun.listen<{ buf: Uint8Array; count: number }>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(s) {
      s.data = { buf: new Uint8Array(0), count: 0 };
      s.setNoDelay?.(true);
    },
    data(s, chunk) {
      const joined = new Uint8Array(s.data.buf.length + chunk.length);
      joined.set(s.data.buf);
      joined.set(chunk, s.data.buf.length);
      let off = 0;
      while (joined.length - off >= 4) {
        const len = ((joined[off]! << 24) | (joined[off + 1]! << 16) | (joined[off + 2]! << 8) | joined[off + 3]!) >>> 0;
        if (joined.length - off - 4 < len) break;
        const kind = joined[off + 4];
        if (kind === 1) s.write(joined.subarray(off, off + 4 + len)); // ping: echo
        else if (kind === 2) s.data.count++;
        else if (kind === 3) {
          s.write(new Uint8Array([0, 0, 0, 1, 3]));
          s.data.count = 0;
        }
        off += 4 + len;
      }
      s.data.buf = joined.slice(off);
    },
  },
});
console.log(server.port);
