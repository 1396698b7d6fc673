/**
 * The wake floor for a serial round trip between two threads: the two sides hand a counter back and
 * forth through shared memory with Atomics.wait/notify, the cheapest way one thread can sleep until
 * another wakes it. No message, no event loop: what is left is the operating system's (and, in a
 * virtual machine, the hypervisor's) cost of waking a sleeping thread, twice per round trip. A
 * MessageChannel round trip, raw or through the node API, pays that too and cannot go below it.
 */
const worker = self as unknown as { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

worker.onmessage = (e: MessageEvent) => {
  const { sab, role, n, warmup } = e.data as { sab: SharedArrayBuffer; role: "ping" | "pong"; n: number; warmup: number };
  const a = new Int32Array(sab);
  const total = warmup + n;
  // a[0] counts hand-offs: ping makes it odd, pong makes it even.
  const waitFor = (v: number) => {
    for (let cur = Atomics.load(a, 0); cur !== v; cur = Atomics.load(a, 0)) Atomics.wait(a, 0, cur, 1000);
  };
  const hand = (v: number) => {
    Atomics.store(a, 0, v);
    Atomics.notify(a, 0);
  };
  if (role === "pong") {
    worker.postMessage("ready");
    for (let i = 0; i < total; i++) {
      waitFor(2 * i + 1);
      hand(2 * i + 2);
    }
    return;
  }
  const lat: number[] = [];
  for (let i = 0; i < total; i++) {
    const t0 = performance.now();
    hand(2 * i + 1);
    waitFor(2 * i + 2);
    if (i >= warmup) lat.push(performance.now() - t0);
  }
  worker.postMessage({ lat });
};

export {};
