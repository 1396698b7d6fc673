/**
 * A closed-loop HTTP load generator, run as its own process so it does not share a thread with the
 * server it measures. `bun bench/loadgen.ts <url> <seconds> <connections>` keeps <connections>
 * GETs in flight for <seconds> (after a short warm-up) and prints one JSON line:
 * {"requests", "errors", "seconds", "rps"}.
 *
 * `bun bench/loadgen.ts --bare <json>` is the baseline server instead: a bare Bun.serve answering
 * every request with <json>; it prints {"url"} and serves until killed.
 */
export {};

if (process.argv[2] === "--bare") {
  const body = process.argv[3] ?? "{}";
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(body, { headers: { "content-type": "application/json" } }) });
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.port}` }));
} else {
  const [url, secondsArg, connArg] = process.argv.slice(2);
  if (!url) {
    console.error("usage: bun bench/loadgen.ts <url> <seconds> <connections> | --bare <json>");
    process.exit(2);
  }
  const seconds = Number(secondsArg ?? 3);
  const connections = Number(connArg ?? 32);
  const warmupMs = 300;
  let requests = 0;
  let errors = 0;
  let counting = false;
  let running = true;
  const loop = async () => {
    while (running) {
      try {
        const res = await fetch(url);
        await res.arrayBuffer();
        if (counting) res.ok ? requests++ : errors++;
      } catch {
        if (counting) errors++;
      }
    }
  };
  const loops = Array.from({ length: connections }, loop);
  await Bun.sleep(warmupMs);
  counting = true;
  const t0 = performance.now();
  await Bun.sleep(seconds * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  running = false;
  await Promise.all(loops);
  console.log(JSON.stringify({ requests, errors, seconds: elapsed, rps: requests / elapsed }));
  process.exit(0);
}
