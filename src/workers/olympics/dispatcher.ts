import { ErrorCode, RpcError, defineRole, type Message } from "../runtime/types.ts";
import { Election } from "./election.ts";
import { LoadTable } from "./loadtable.ts";
import { dispatcherHttp } from "./tiered-http.ts";
import type { DispatcherAlive, DispatcherState, FrontendAlive, GetServer, GetServerOk, Redirect, RegisterClient, RegisterClientOk, TieredConfig } from "./tiered-messages.ts";
import { TimeDaemon, followClock } from "./timesync.ts";

/** A dispatcher is dead to the others after this many missed heartbeats; a front end likewise. */
const MISSED_HEARTBEATS = 4;
const MAX_CLIENT_NAME = 100;
/** Clients beyond the cluster's own nodes (HTTP clients) the table holds at most. */
const MAX_HTTP_CLIENTS = 1000;

/**
 * A dispatcher: elects a leader with the others (highest live id, election.ts); the leader places
 * clients on front ends (loadtable.ts) and is the Berkeley time daemon (timesync.ts). Every
 * dispatcher hears every front end's heartbeat, so whoever becomes leader already has the table.
 */
export const dispatcher = defineRole<TieredConfig>((node) => {
  const cfg = node.config;
  const peers = cfg.dispatchers.filter((d) => d !== node.id);
  const timeoutMs = cfg.heartbeatMs * MISSED_HEARTBEATS;
  const election = new Election(node.id, peers, timeoutMs);
  const table = new LoadTable(cfg.frontends, timeoutMs, node.nodeIds.length + MAX_HTTP_CLIENTS);
  const daemon = new TimeDaemon(node, cfg.synced, cfg.syncMs, cfg.syncOutlierMs);
  const follower = followClock(node, cfg.dispatchers);
  const bootedAt = node.now();
  let wasLeader = false;

  const isLeader = () => election.leader(node.now()) === node.id;

  node.on<DispatcherAlive>("dispatcher_alive", (msg) => election.heard(msg.src, node.now()));
  node.on<FrontendAlive>("frontend_alive", (msg) => {
    const clients = Array.isArray(msg.body.clients) ? msg.body.clients.filter((c): c is string => typeof c === "string" && node.nodeIds.includes(c)) : [];
    table.heartbeat(msg.src, clients, node.now());
  });

  function redirect(msg: Message): boolean {
    if (isLeader()) return false;
    node.reply(msg, { type: "redirect", leader: election.leader(node.now()) } satisfies Redirect);
    return true;
  }

  /** A fresh dispatcher waits one heartbeat timeout before it leads: a live higher id would otherwise be missed. */
  function settled(): void {
    if (node.now() - bootedAt < timeoutMs) throw new RpcError(ErrorCode.TemporarilyUnavailable, `${node.id} is still finding the leader`);
  }

  function registerClient(client: unknown): string {
    settled();
    if (typeof client !== "string" || client === "" || client.length > MAX_CLIENT_NAME) throw new RpcError(ErrorCode.MalformedRequest, `client must be a name of 1 to ${MAX_CLIENT_NAME} characters`);
    const server = table.register(client, node.now());
    if (!server) throw new RpcError(ErrorCode.TemporarilyUnavailable, "no front end is alive");
    return server;
  }

  function getServer(): string {
    settled();
    const server = table.suggest(node.now());
    if (!server) throw new RpcError(ErrorCode.TemporarilyUnavailable, "no front end is alive");
    return server;
  }

  node.on<RegisterClient>("register_client", (msg) => {
    if (redirect(msg)) return;
    node.reply(msg, { type: "register_client_ok", server: registerClient(msg.body.client) } satisfies RegisterClientOk);
  });
  node.on<GetServer>("get_server", (msg) => {
    if (redirect(msg)) return;
    node.reply(msg, { type: "get_server_ok", server: getServer() } satisfies GetServerOk);
  });

  node.setInterval(cfg.heartbeatMs, () => {
    for (const p of peers) node.send(p, { type: "dispatcher_alive" } satisfies DispatcherAlive);
    const leading = isLeader() && node.now() - bootedAt >= timeoutMs;
    if (leading !== wasLeader) node.log.info(leading ? "leading: placing clients and keeping time" : `following ${election.leader(node.now())}`);
    wasLeader = leading;
  });

  let syncing = false;
  node.setInterval(cfg.syncMs, async () => {
    if (!wasLeader || syncing) return;
    syncing = true;
    try {
      await daemon.round();
    } finally {
      syncing = false;
    }
  });

  if (typeof cfg.port === "number") {
    node.serveHttp(
      dispatcherHttp({
        leader: () => election.leader(node.now()),
        isLeader,
        getServer,
        registerClient,
      }),
      { port: cfg.port, maxBodyBytes: 4096 },
    );
  }

  return {
    inspect: (): DispatcherState & { clock: typeof follower } => ({
      leader: election.leader(node.now()),
      isLeader: wasLeader,
      loads: table.loads(node.now()),
      clients: table.clients(),
      syncRounds: daemon.rounds,
      rounds: daemon.recent.slice(-20),
      clock: follower,
    }),
  };
});
