/** The CLI options of the tiered topology (`--tiered`), shared by the olympics scenario. */
export const TIERED_OPTIONS = [
  { flags: "--tiered", description: "The multi-tier Olympics: dispatchers, front ends, a db, clock sync, total order and a raffle", default: false },
  { flags: "--dispatchers <n>", description: "tiered: dispatchers (they elect a leader)", default: 3 },
  { flags: "--frontends <n>", description: "tiered: front-end servers", default: 2 },
  { flags: "--sync-ms <ms>", description: "tiered: period of Berkeley clock synchronisation", default: 500 },
  { flags: "--sync-outlier-ms <ms>", description: "tiered: clocks further than this from the median are left out of the average", default: 20 },
  { flags: "--sync-delta-ms <ms>", description: "tiered: the largest clock difference allowed between synced nodes (δ)", default: 5 },
  { flags: "--total-order <on|off>", description: "tiered: totally ordered multicast of client requests, and the raffle", default: "on" },
  { flags: "--increments <n>", description: "tiered: concurrent increments the driver sends through the front ends", default: 1000 },
  { flags: "--heartbeat-ms <ms>", description: "tiered: dispatcher and front-end heartbeat period", default: 100 },
];
