import type { Random } from "./types.ts";

/** 32-bit FNV-1a of a string: turns labels ("replica-0", "net") into seed material. */
export function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** sfc32: small, fast, and good enough for simulation; never for secrets. */
class Sfc32 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(private readonly seedLabel: string) {
    this.a = hashString(seedLabel, 0x9e3779b9);
    this.b = hashString(seedLabel, 0x243f6a88);
    this.c = hashString(seedLabel, 0xb7e15162);
    this.d = 1;
    for (let i = 0; i < 15; i++) this.u32();
  }

  private u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.u32() / 4294967296;
  }
  int(n: number): number {
    if (!(n > 0)) throw new RangeError(`random.int needs n > 0, got ${n}`);
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("random.pick of an empty list");
    return items[this.int(items.length)]!;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }
  fork(label: string): Random {
    return new Sfc32(`${this.seedLabel}/${label}`);
  }
}

/** A random source for (seed, label): the same pair always gives the same stream. */
export function seededRandom(seed: number | string, label = ""): Random {
  return new Sfc32(`${seed}:${label}`);
}
