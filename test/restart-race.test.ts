import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { Cluster } from "../src/driver/cluster.ts";
import { TcpBridge } from "../src/main/bridge.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";
import type { TabletConfig, TabletState } from "../src/workers/olympics/messages.ts";
import type { ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { paxosTopology, replicaIds, runPaxos, type PaxosOptions } from "../src/workers/paxos/scenario.ts";
import type { NodeId, NodeSpec } from "../src/workers/runtime/types.ts";
import { freePort, tempDirs, withThreads } from "./helpers.ts";

/**
 * A node restarted again and again while its peers keep talking to it: no peer may be left with a
 * dead link. On a thread per node, on packed threads and across two hosts over TCP.
 */

setDefaultTimeout(60_000);

const SECRET = "restart-race-secret";
const tmp = tempDirs("race");

type Layout = "threads" | "packed" | "tcp";

/**
 * A cluster in one of three layouts. "tcp" runs two hosts in this process, each with its own bridge:
 * `remote` nodes live on host b, every other node and the driver on host a.
 */
async function withCluster<T>(layout: Layout, system: string, nodes: NodeSpec[], remote: NodeId[], fn: (c: Cluster) => Promise<T>): Promise<T> {
  if (layout !== "tcp") return withThreads({ system, nodes, seed: 1, dataDir: tmp(), logLevel: "silent", threads: layout === "packed" ? 2 : undefined }, fn);
  const placement = Object.fromEntries(nodes.map((n) => [n.id, remote.includes(n.id) ? "b" : "a"]));
  const ports = { a: freePort(), b: freePort() };
  const hosts = (["a", "b"] as const).map((host) => {
    const peer = host === "a" ? "b" : "a";
    const c = new ThreadCluster({ system, nodes, seed: 1, dataDir: tmp(), logLevel: "silent", host, placement, driverHost: "a", wire: { secret: SECRET, listenHostname: "127.0.0.1", peerHosts: [peer] } });
    const bridge = new TcpBridge({ host, listen: { hostname: "127.0.0.1", port: ports[host] }, peers: { [peer]: { hostname: "127.0.0.1", port: ports[peer] } }, secret: SECRET, log: c.log }, c);
    c.attachBridge(bridge);
    bridge.start();
    return { c, bridge };
  });
  try {
    await Promise.all(hosts.map((h) => h.c.start()));
    for (let i = 0; i < 500 && hosts.some((h) => h.bridge.connectedHosts().length === 0); i++) await Bun.sleep(10);
    return await fn(hosts[0]!.c);
  } finally {
    for (const h of hosts) await h.c.stop();
    for (const h of hosts) h.bridge.close();
  }
}

/** Poll until `ok` holds; false if it never does within `ms`. */
async function until(c: Cluster, ok: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = c.now() + ms;
  while (c.now() < end) {
    if (await ok()) return true;
    await c.sleep(10);
  }
  return ok();
}

const PW = "race-password";
function tablet(id: string, mode: "push" | "pull"): NodeSpec {
  return { id, role: "tablet", config: { obelix: "obelix", mode, teams: ["Gaul"], events: ["Stone Curling"], pollMs: 20, refreshMs: 60_000 } satisfies TabletConfig };
}

for (const layout of ["threads", "packed", "tcp"] as const) {
  describe(`restart race (${layout})`, () => {
    test("obelix restarted again and again while tablets poll and subscribe: every tablet keeps up", async () => {
      const nodes = [{ id: "obelix", role: "obelix", config: { password: PW, port: 0 } }, tablet("pull-1", "pull"), tablet("pull-2", "pull"), tablet("push-1", "push"), tablet("push-2", "push")];
      await withCluster(layout, "olympics", nodes, ["obelix"], async (c) => {
        const gold = async (id: string) => (await c.inspect<TabletState>(id))?.tallies.Gaul?.gold ?? 0;
        const rounds = 12;
        for (let round = 1; round <= rounds; round++) {
          await c.request("obelix", { type: "increment_medal_tally", team: "Gaul", medal: "gold", password: PW }, 5000);
          // Restart while the tablets are mid-poll and the new obelix is still making its links.
          await c.sleep(round % 4) ;
          expect(await c.restart("obelix")).toBe("running");
        }
        await c.request("obelix", { type: "increment_medal_tally", team: "Gaul", medal: "gold", password: PW }, 5000);
        for (const id of ["pull-1", "pull-2", "push-1", "push-2"]) {
          await until(c, async () => (await gold(id)) === rounds + 1);
          expect([id, await gold(id)]).toEqual([id, rounds + 1]);
        }
      });
    });

    test("a paxos leader restarted again and again under load: all checks pass", async () => {
      const opts = { f: 1, clients: 2, intervalMs: 2, clientTimeoutMs: 150 } as PaxosOptions;
      const nodes = paxosTopology(opts);
      let restarts = 0;
      const r = await withCluster(layout, "paxos", nodes, replicaIds(1), (c) =>
        runPaxos(
          c,
          opts,
          {
            untilStopped: async () => {
              for (let i = 0; i < 5; i++) {
                await c.sleep(300);
                let leader: string | null = null;
                for (const id of replicaIds(1)) if ((await c.inspect<ReplicaSnapshot>(id))?.role === "leader") leader = id;
                if (!leader) continue;
                expect(await c.restart(leader)).toBe("running");
                restarts++;
              }
              await c.sleep(500);
            },
            stopping: () => false,
          },
          { quietTimeoutMs: 8000 },
        ),
      );
      expect(restarts).toBeGreaterThanOrEqual(3);
      expect(Object.entries(r.checks).filter(([, ch]) => !ch.ok)).toEqual([]);
    });
  });
}
