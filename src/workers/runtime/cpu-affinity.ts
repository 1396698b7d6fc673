/**
 * Pinning a packed worker thread to a CPU of its own (Linux, through libc's sched_setaffinity).
 *
 * Why: packed threads (`--threads`) wake each other all the time (a lane post each way per fan-out),
 * and Linux's wake-affine placement then tends to put the woken thread on the waker's CPU, where it
 * waits until the waker sleeps. At 500 tablets in 2 threads the other thread's first delivery came
 * late in the posting thread's run or after it, in most windows: the two threads ran mostly one after
 * the other on one CPU (bench/push-pull.ts, beside the packed stages, has the figures).
 * A thread per CPU, pinned, is what thread-per-core runtimes do for the same reason.
 *
 * Only the calling thread is pinned (pid 0 means the caller to sched_setaffinity); threads it starts
 * later inherit its mask (see the supervisor's planPins for the collector's shared helpers).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

/** glibc's cpu_set_t: 1024 CPUs. */
const MASK_BYTES = 128;

type Sched = {
  sched_getaffinity(pid: number, size: number, mask: ReturnType<typeof ptr>): number;
  sched_setaffinity(pid: number, size: number, mask: ReturnType<typeof ptr>): number;
};

/** libc's two calls, or why they cannot be had here; loaded once per thread, when first asked for. */
let sched: Sched | string | undefined;

function libc(): Sched | string {
  if (sched !== undefined) return sched;
  if (process.platform !== "linux") return (sched = `not on Linux (${process.platform})`);
  try {
    const lib = dlopen("libc.so.6", {
      sched_getaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      sched_setaffinity: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    });
    sched = lib.symbols as unknown as Sched;
  } catch (e) {
    sched = `libc.so.6 not loadable: ${e instanceof Error ? e.message : String(e)}`;
  }
  return sched;
}

/** The CPUs the calling thread may run on, ascending; or why they cannot be known. */
export function allowedCpus(): number[] | string {
  const c = libc();
  if (typeof c === "string") return c;
  const mask = new Uint8Array(MASK_BYTES);
  if (c.sched_getaffinity(0, MASK_BYTES, ptr(mask)) !== 0) return "sched_getaffinity failed";
  const cpus: number[] = [];
  for (let i = 0; i < MASK_BYTES * 8; i++) if (mask[i >> 3]! & (1 << (i & 7))) cpus.push(i);
  return cpus;
}

/** Pin the calling thread to `cpu`. Null when done; otherwise why it was not. */
export function pinThread(cpu: number): string | null {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= MASK_BYTES * 8) return `no CPU ${cpu}`;
  const c = libc();
  if (typeof c === "string") return c;
  const mask = new Uint8Array(MASK_BYTES);
  mask[cpu >> 3] = 1 << (cpu & 7);
  return c.sched_setaffinity(0, MASK_BYTES, ptr(mask)) === 0 ? null : `sched_setaffinity to CPU ${cpu} failed (not in this process's CPU set?)`;
}

/**
 * Which CPU each of `threads` packed threads gets: the allowed CPUs in order, one each. Null when
 * there are more threads than CPUs (threads would share a CPU that no scheduler could balance).
 */
export function pinPlan(threads: number, cpus: readonly number[]): number[] | null {
  if (threads < 1 || threads > cpus.length) return null;
  return cpus.slice(0, threads);
}

/** pinPlan over the CPUs this thread may use: the CPU for each of `threads` threads, or why there is none. */
export function cpusForThreads(threads: number): number[] | string {
  const cpus = allowedCpus();
  if (typeof cpus === "string") return cpus;
  return pinPlan(threads, cpus) ?? `${threads} threads, ${cpus.length} CPUs`;
}
