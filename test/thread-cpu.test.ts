import { describe, expect, test } from "bun:test";
import { formatThreadCpu, parseTaskStat, parseVoluntarySwitches, threadCpuMsSince, threadCpuSnapshot, threadWakesSince, threadWindowSince } from "../bench/lib/thread-cpu.ts";

describe("a benchmark window's CPU by thread (bench/lib/thread-cpu.ts)", () => {
  test("a task's stat line gives its name, even one with spaces and parentheses, and its user + system ticks", () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    expect(parseTaskStat("4242 (mi-scavenger) S 1 4242 4242 0 -1 4194624 10 0 0 0 37 5 0 0 20 0 3 0 100")).toEqual({ name: "mi-scavenger", ticks: 42 });
    expect(parseTaskStat("7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0")).toEqual({ name: "a (b) c", ticks: 7 });
    expect(parseTaskStat("garbage")).toBeNull();
    expect(parseTaskStat("7 (x) R 1")).toBeNull();
  });

  test("the CPU a thread spends between two snapshots is counted under its name; threads that did nothing are left out", () => {
    const before = threadCpuSnapshot();
    if (before === null) return; // no /proc: nothing to read on this system
    const start = process.cpuUsage();
    let x = 0;
    while (process.cpuUsage(start).user < 300_000) x += Math.sqrt(x + 1);
    const ms = threadCpuMsSince(before)!;
    expect(x).toBeGreaterThan(0);
    const total = Object.values(ms).reduce((a, b) => a + b, 0);
    // 300 ms of user time in this thread; ticks are 10 ms, and other threads may add a little.
    expect(total).toBeGreaterThanOrEqual(250);
    expect(Object.values(ms).every((v) => v > 0)).toBe(true);
    const names = Object.keys(ms);
    expect(ms[names[0]!]).toBeGreaterThanOrEqual(250);
    expect(formatThreadCpu(ms, 1)).toBe(`${names[0]} ${Math.round(ms[names[0]!]!)} ms`);
    expect(formatThreadCpu(null)).toBe("n/a (no /proc)");
  });

  test("a status file gives the thread's voluntary context switches, not its involuntary ones", () => {
    expect(parseVoluntarySwitches("Name:\tWorker\nvoluntary_ctxt_switches:\t812\nnonvoluntary_ctxt_switches:\t9\n")).toBe(812);
    expect(parseVoluntarySwitches("Name:\tWorker\nnonvoluntary_ctxt_switches:\t9\n")).toBeNull();
  });

  test("a worker thread woken by each of 20 messages, 20 ms apart, counts at least 20 wakes under Bun's name for it", async () => {
    const before = threadCpuSnapshot();
    if (before === null) return; // no /proc
    // An echo worker: each message finds its thread asleep, since the next comes 20 ms later.
    const w = new Worker(URL.createObjectURL(new Blob(["self.onmessage = (e) => self.postMessage(e.data);"], { type: "application/javascript" })));
    try {
      const answer = () => new Promise<unknown>((resolve) => (w.onmessage = (e) => resolve(e.data)));
      for (let i = 0; i < 20; i++) {
        const got = answer();
        w.postMessage(i);
        expect(await got).toBe(i);
        await Bun.sleep(20);
      }
      const window = threadWindowSince(before);
      expect(window.workerWakes).toBeGreaterThanOrEqual(20);
      expect(window.cpuMsByThread).not.toBeNull();
      // Threads of another name are not counted: none is called this.
      expect(threadWakesSince(before, threadCpuSnapshot(), "no thread is called this")).toBe(0);
    } finally {
      w.terminate();
    }
  });
});
