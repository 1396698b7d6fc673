/**
 * Pinning a packed worker thread to a CPU of its own (Linux, through libc's sched_setaffinity).
 *
 * Why: packed threads (`--threads`) wake each other all the time (a lane post each way per fan-out),
 * and Linux's wake-affine placement then tends to put the woken thread on the waker's CPU, where it
 * waits until the waker sleeps. At 500 tablets in 2 threads the other thread's first delivery came
 * no sooner than the posting thread's last, in most runs: the two threads ran one after the other on
 * one CPU while the other CPU idled (bench/push-pull.ts, beside the packed stages, has the figures).
 * A thread per CPU, pinned, is what thread-per-core runtimes do for the same reason.
 *
 * Only the calling thread is pinned (pid 0 means the caller to sched_setaffinity); threads it starts
 * later inherit its mask, which is why the worker pins itself once its runtime is up, not before.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

/** glibc's cpu_set_t: 1024 CPUs. */
const MASK_BYTES = 128;

type Sched = {
  sched_getaffinity(pid: number, size: number, mask: ReturnType<typeof ptr>): number;
  sched_setaffinity(pid: number, size: number, mask: ReturnType<typeof ptr>): number;
};

let sched: Sched | null | undefined;
let unavailable = "";

function libc(): Sched | null {
  if (sched !== undefined) return sched;
  if (process.platform !== "linux") {
    unavailable = `not on Linux (${process.platform})`;
    return (sched = null);
  }
  try {
    const lib = dlopen("libc.so.6", {
      sched_getaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      sched_setaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    });
    sched = lib.symbols as unknown as Sched;
  } catch (e) {
    unavailable = `libc.so.6 not loadable: ${e instanceof Error ? e.message : String(e)}`;
    sched = null;
  }
  return sched;
}

/** The CPUs the calling thread may run on, ascending; null where that cannot be known (see `whyNot`). */
export function allowedCpus(): number[] | null {
  const c = libc();
  if (!c) return null;
  const mask = new Uint8Array(MASK_BYTES);
  if (c.sched_getaffinity(0, MASK_BYTES, ptr(mask)) !== 0) {
    unavailable = "sched_getaffinity failed";
    return null;
  }
  const cpus: number[] = [];
  for (let i = 0; i < MASK_BYTES * 8; i++) if (mask[i >> 3]! & (1 << (i & 7))) cpus.push(i);
  return cpus;
}

/** Pin the calling thread to `cpu`. Null when done; otherwise why it was not. */
export function pinThread(cpu: number): string | null {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= MASK_BYTES * 8) return `no CPU ${cpu}`;
  const c = libc();
  if (!c) return unavailable;
  const mask = new Uint8Array(MASK_BYTES);
  mask[cpu >> 3] = 1 << (cpu & 7);
  return c.sched_setaffinity(0, MASK_BYTES, ptr(mask)) === 0 ? null : `sched_setaffinity to CPU ${cpu} failed (not in this process's CPU set?)`;
}

/** Why allowedCpus or pinThread could not do its work, after one of them returned so. */
export function whyNot(): string {
  return unavailable;
}

/**
 * Which CPU each of `threads` packed threads gets: the allowed CPUs in order, one each. Null when
 * there are more threads than CPUs (threads would share a CPU that no scheduler could balance) or
 * the CPUs cannot be known.
 */
export function pinPlan(threads: number, cpus: readonly number[] | null): number[] | null {
  if (!cpus || threads < 1 || threads > cpus.length) return null;
  return cpus.slice(0, threads);
}
