import { ErrorCode, RpcError, type Body, type Handler, type Message, type NodeContext, type NodeId, type Role, type RoleHooks } from "../runtime/types.ts";
import type { Redirect, RegisterClientOk } from "./tiered-messages.ts";

/** How long a client keeps looking for a front end before a request fails. */
const RESOLVE_DEADLINE_MS = 5000;
/** Tries of one request, each on the front end the dispatcher names (the same body, so the same write id). */
const ATTEMPTS = 3;
/** Errors after which a client asks the dispatcher for another front end. */
const MOVE_ON: ReadonlySet<number> = new Set([ErrorCode.Timeout, ErrorCode.Crash, ErrorCode.TemporarilyUnavailable, ErrorCode.NodeNotFound]);

export interface RouterConfig {
  dispatchers: NodeId[];
  frontends: NodeId[];
  /** The name the wrapped role addresses its server by (its config's `obelix`). */
  server: NodeId;
  /** How often the client registers again with the dispatcher (a lease; lets the dispatcher rebalance). */
  renewMs: number;
}

export interface RouterState {
  server: NodeId | null;
  leader: NodeId | null;
  registrations: number;
  moves: number;
  retries: number;
}

/**
 * A tiered client's way to its server: asks the dispatcher leader (following redirects) which
 * front end to use, sends there, and asks again when that front end fails. Every role of the
 * single-server Olympics (tablets, Cacofonix) runs unchanged behind it: what it sends to "obelix"
 * goes to its front end, and pushes from any front end look to it as pushes from "obelix".
 */
export class Router {
  readonly state: RouterState = { server: null, leader: null, registrations: 0, moves: 0, retries: 0 };
  private resolving: Promise<NodeId> | null = null;

  constructor(
    private readonly node: NodeContext,
    private readonly cfg: RouterConfig,
  ) {}

  /** The current front end, asking the dispatcher if there is none. */
  async server(): Promise<NodeId> {
    return this.state.server ?? this.resolve();
  }

  resolve(): Promise<NodeId> {
    this.resolving ??= this.register().finally(() => (this.resolving = null));
    return this.resolving;
  }

  private async register(): Promise<NodeId> {
    const node = this.node;
    const deadline = node.now() + RESOLVE_DEADLINE_MS;
    let backoff = 50;
    while (node.now() < deadline) {
      const order = this.state.leader ? [this.state.leader, ...this.cfg.dispatchers.filter((d) => d !== this.state.leader)] : this.cfg.dispatchers;
      for (const d of order) {
        try {
          const r = await node.request<RegisterClientOk | Redirect>(d, { type: "register_client", client: node.id }, { timeoutMs: 500 });
          if (r.type === "redirect") {
            if (typeof r.leader === "string" && this.cfg.dispatchers.includes(r.leader) && r.leader !== d) this.state.leader = r.leader;
            continue;
          }
          if (typeof r.server !== "string" || !this.cfg.frontends.includes(r.server)) continue;
          this.state.leader = d;
          this.state.registrations++;
          if (this.state.server !== null && this.state.server !== r.server) this.state.moves++;
          this.state.server = r.server;
          return r.server;
        } catch (e) {
          if (!(e instanceof RpcError)) throw e;
        }
      }
      await node.sleep(backoff);
      backoff = Math.min(backoff * 2, 1000);
    }
    throw new RpcError(ErrorCode.TemporarilyUnavailable, "no dispatcher named a live front end");
  }

  /** A request to the server: on a lost or refused one, the next try goes where the dispatcher says now. */
  async request<R>(body: Body, opts?: { timeoutMs?: number }): Promise<R> {
    for (let attempt = 1; ; attempt++) {
      const fe = await this.server();
      try {
        return await this.node.request<R>(fe, body, opts);
      } catch (e) {
        if (!(e instanceof RpcError) || !MOVE_ON.has(e.code) || attempt >= ATTEMPTS) throw e;
        this.state.retries++;
        if (this.state.server === fe) this.state.server = null;
      }
    }
  }
}

/** Run a single-server Olympics client role in the tiered topology, behind a Router. */
export function viaDispatcher(inner: Role): Role<RouterConfig & Record<string, unknown>> {
  return async (node) => {
    const cfg = node.config;
    const router = new Router(node, cfg);
    const ctx: NodeContext = {
      ...node,
      send(dest, body) {
        if (dest !== cfg.server) return node.send(dest, body);
        if (router.state.server) node.send(router.state.server, body);
      },
      request<R = Body>(dest: NodeId, body: Body, opts?: { timeoutMs?: number }): Promise<R> {
        return dest === cfg.server ? router.request<R>(body, opts) : node.request<R>(dest, body, opts);
      },
      on<B extends Body>(type: B["type"], handler: Handler<B>) {
        node.on<B>(type, (msg: Message<B>) => {
          // A push (not a request) from a front end is, to the inner role, a push from its server.
          const fromServer = cfg.frontends.includes(msg.src) && typeof msg.body.msg_id !== "number";
          return handler(fromServer ? { ...msg, src: cfg.server } : msg);
        });
      },
    };
    node.setInterval(cfg.renewMs, async () => {
      try {
        await router.resolve();
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
      }
    });
    const hooks: RoleHooks = (await inner(ctx)) ?? {};
    return {
      inspect: () => ({ ...(hooks.inspect?.() as object), router: router.state }),
      stop: hooks.stop,
    };
  };
}
