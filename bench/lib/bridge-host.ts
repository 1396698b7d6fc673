/**
 * Host "b" of the transport benchmark, in its own OS process: runs the ponger node behind a TCP
 * bridge. Args: <listenPort> <peerPort> <secret> <dataDir>. Prints "ready" once listening.
 */
import { TcpBridge } from "../../src/main/bridge.ts";
import { ThreadCluster } from "../../src/main/supervisor.ts";

const [listenPort, peerPort, secret, dataDir] = process.argv.slice(2);
const system = new URL("../nodes/transport-roles.ts", import.meta.url).href;
const cluster = new ThreadCluster({
  system,
  nodes: [
    { id: "pinger", role: "pinger", config: { peer: "ponger" } },
    { id: "ponger", role: "ponger" },
  ],
  seed: 1,
  dataDir: dataDir!,
  logLevel: "warn",
  host: "b",
  placement: { pinger: "a", ponger: "b" },
  driverHost: "a",
  wire: { secret: secret!, listenHostname: "127.0.0.1", peerHosts: ["a"] },
});
const log = { debug() {}, info() {}, warn: (t: string) => console.error(t), error: (t: string) => console.error(t) };
const bridge = new TcpBridge({ host: "b", listen: { hostname: "127.0.0.1", port: Number(listenPort) }, peers: { a: { hostname: "127.0.0.1", port: Number(peerPort) } }, secret: secret!, log }, cluster);
cluster.attachBridge(bridge);
bridge.onShutdown = async () => {
  await cluster.stop();
  bridge.close();
  process.exit(0);
};
bridge.start();
await cluster.start();
console.log("ready");
