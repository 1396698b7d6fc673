/**
 * One renderer per system, fed the panel its view on the driver built (../systems.ts). A system
 * without a renderer gets the generic one. To add a system, add its digest in ../systems.ts and a
 * renderer here under the same name.
 */
import { esc, fmtMs, fmtRate } from "./util.ts";

export interface PanelContext {
  /** The live request rate and latency of the workload, from the stream. */
  ops: number;
  p50: number | null;
  p99: number | null;
  /** Sends a system action (POST /systems/<system>/<name>) with the page's token. */
  act(name: string, body: unknown): Promise<unknown>;
}

export interface Renderer {
  title: string;
  /** Called once: builds the panel's fixed parts (forms) inside `root`. */
  mount?(root: HTMLElement, ctx: PanelContext): void;
  /** Called on every panel update with the system's digest. */
  render(root: HTMLElement, panel: any, ctx: PanelContext): void;
  /** Nodes to draw as "recovering" in the graph. */
  recovering?(panel: any): string[];
}

function body(root: HTMLElement): HTMLElement {
  let b = root.querySelector<HTMLElement>(".panel-body");
  if (!b) {
    b = document.createElement("div");
    b.className = "panel-body";
    root.appendChild(b);
  }
  return b;
}

const stat = (label: string, value: string) => `<div class="stat"><b>${value}</b><span>${esc(label)}</span></div>`;

// ---- olympics ----

interface Tally { team: string; gold: number; silver: number; bronze: number; version: number }
interface Score { event: string; scores: Record<string, number>; version: number }
const lastVersions = new Map<string, number>();

/** Rows whose version moved since the last render flash, so a change catches the eye. */
function changed(key: string, version: number): boolean {
  const old = lastVersions.get(key);
  lastVersions.set(key, version);
  return old !== undefined && old !== version;
}

interface TieredPanel {
  leader: string | null;
  dispatchers: Array<{ id: string; leader?: boolean; syncRounds?: number; down?: boolean }>;
  frontends: Array<{ id: string; status: string; load: number | null }>;
  clocks: Array<{ id: string; synced: boolean; status: string; errorMs: number | null }>;
  raffle: { delivered: number; winners: Array<{ seq: number; origin: string; client: string; op: string }> } | null;
}

/** Each node's recent clock errors, for its sparkline (the page keeps them; the stream sends the latest). */
const clockTrail = new Map<string, number[]>();
const TRAIL = 60;

/** A node's recent errors, scaled to its own range (at least ±1 ms) so a correction shows as a step. */
function sparkline(values: number[]): string {
  if (values.length < 2) return `<svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none"></svg>`;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const mid = (lo + hi) / 2;
  const half = Math.max(1, (hi - lo) / 2);
  const pts = values.map((v, i) => `${((i / (TRAIL - 1)) * 120).toFixed(1)},${(12 - ((v - mid) / half) * 10).toFixed(1)}`).join(" ");
  return `<svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none"><title>${lo.toFixed(2)} … ${hi.toFixed(2)} ms</title><polyline points="${pts}"/></svg>`;
}

function tieredHtml(t: TieredPanel): string {
  let h = `<h3>Dispatchers</h3><div class="replicas">`;
  for (const d of t.dispatchers) {
    const cls = d.down ? "replica down" : d.leader ? "replica leader" : "replica";
    h += `<div class="${cls}" data-dispatcher="${esc(d.id)}"><b>${esc(d.id)}${d.leader ? " ★" : ""}</b>${d.down ? "down" : d.leader ? `leads · ${d.syncRounds ?? 0} sync rounds` : "follows"}</div>`;
  }
  h += `</div>`;
  const maxLoad = Math.max(1, ...t.frontends.map((f) => f.load ?? 0));
  h += `<h3>Front-end loads (clients per front end, as ${esc(t.leader ?? "the leading dispatcher")} assigns them)</h3><table id="fe-loads"><tr><th>front end</th><th>status</th><th class="num">clients</th><th style="width:45%"></th></tr>`;
  for (const f of t.frontends) {
    const load = f.load ?? 0;
    h += `<tr data-frontend="${esc(f.id)}"><td>${esc(f.id)}</td><td>${esc(f.status)}</td><td class="num"><b>${f.load ?? "–"}</b></td><td><div class="bar"><i style="width:${((load / maxLoad) * 100).toFixed(1)}%"></i></div></td></tr>`;
  }
  h += `</table>`;
  for (const c of t.clocks) {
    if (c.errorMs === null) continue;
    const trail = clockTrail.get(c.id) ?? [];
    trail.push(c.errorMs);
    if (trail.length > TRAIL) trail.shift();
    clockTrail.set(c.id, trail);
  }
  const scale = Math.max(1, ...t.clocks.map((c) => Math.abs(c.errorMs ?? 0)), ...[...clockTrail.values()].flat().map(Math.abs));
  h += `<h3>Clock error, ms (bars: ± ${fmtMs(scale)} ms; the leading dispatcher's Berkeley rounds pull the synced ones together)</h3><table id="clocks" class="clocks"><tr><th>node</th><th class="num">error</th><th class="diverge-h"><span>slow</span><span>fast</span></th><th>recent</th></tr>`;
  for (const c of t.clocks) {
    const e = c.errorMs;
    const w = e === null ? 0 : (Math.min(Math.abs(e), scale) / scale) * 50;
    const bar = e === null ? "" : `<i class="${e < 0 ? "neg" : "pos"}" style="${e < 0 ? `right:50%` : `left:50%`};width:${w.toFixed(1)}%"></i>`;
    h += `<tr data-node="${esc(c.id)}" class="${c.synced ? "synced" : "unsynced"}"><td>${esc(c.id)}${c.synced ? "" : ' <span class="muted small">not synced</span>'}</td><td class="num">${e === null ? esc(c.status) : `${e > 0 ? "+" : ""}${e.toFixed(Math.abs(e) < 10 ? 2 : 1)}`}</td><td><div class="diverge">${bar}</div></td><td>${sparkline(clockTrail.get(c.id) ?? [])}</td></tr>`;
  }
  h += `</table>`;
  const winners = t.raffle?.winners ?? [];
  h += `<h3>Raffle winners (every 100th write in the total order)</h3><table id="raffle"><tr><th class="num">#</th><th>client</th><th>via</th><th>write</th></tr>`;
  for (const w of winners) h += `<tr><td class="num">${w.seq}</td><td><b>${esc(w.client)}</b></td><td>${esc(w.origin)}</td><td class="muted">${esc(w.op)}</td></tr>`;
  if (winners.length === 0) h += `<tr><td colspan="4" class="muted">${t.raffle ? `no winner yet: ${t.raffle.delivered} of 100 writes ordered` : "no front end answering"}</td></tr>`;
  return h + `</table>`;
}

const olympics: Renderer = {
  title: "Olympics — the stone tablet",
  render(root, p) {
    const tallies: Tally[] = (p.tallies ?? []).slice().sort((a: Tally, b: Tally) => b.gold - a.gold || b.silver - a.silver || b.bronze - a.bronze || a.team.localeCompare(b.team));
    const scores: Score[] = p.scores ?? [];
    const caco = p.cacofonix;
    let h = `<div class="stats-row">${stat("cacofonix writes", caco ? String(caco.updates) : "down")}${stat("failed writes", caco ? String(caco.failed) : "–")}${stat("tablets", String(p.tabletsTotal ?? 0))}${p.tiered ? stat("ordered writes", String(p.tiered.raffle?.delivered ?? "–")) : ""}</div>`;
    if (p.tiered) h += tieredHtml(p.tiered);
    h += `<h3>Medal tally</h3><table id="medals"><tr><th>team</th><th class="num"><i class="medal gold"></i>gold</th><th class="num"><i class="medal silver"></i>silver</th><th class="num"><i class="medal bronze"></i>bronze</th><th class="num">total</th><th class="num">version</th></tr>`;
    for (const t of tallies) {
      const flash = changed(`t:${t.team}`, t.version) ? ' class="flash"' : "";
      h += `<tr${flash} data-team="${esc(t.team)}"><td>${esc(t.team)}</td><td class="num">${t.gold}</td><td class="num">${t.silver}</td><td class="num">${t.bronze}</td><td class="num"><b>${t.gold + t.silver + t.bronze}</b></td><td class="num muted">v${t.version}</td></tr>`;
    }
    if (tallies.length === 0) h += `<tr><td colspan="6" class="muted">${esc(p.board ?? "obelix")} is not answering</td></tr>`;
    h += `</table><h3>Event scores</h3><table id="scores"><tr><th>event</th><th>scores</th><th class="num">version</th></tr>`;
    for (const s of scores) {
      const flash = changed(`s:${s.event}`, s.version) ? ' class="flash"' : "";
      const entries = Object.entries(s.scores).sort((a, b) => b[1] - a[1]);
      h += `<tr${flash}><td>${esc(s.event)}</td><td>${entries.length ? entries.map(([team, v]) => `${esc(team)} <b>${v}</b>`).join(" · ") : '<span class="muted">not started</span>'}</td><td class="num muted">v${s.version}</td></tr>`;
    }
    h += `</table>`;
    const tablets = p.tablets ?? [];
    if (tablets.length > 0) {
      h += `<h3>Tablets${p.tabletsTotal > tablets.length ? ` (first ${tablets.length} of ${p.tabletsTotal})` : ""}</h3><table><tr><th>tablet</th><th>mode</th><th class="num">items</th><th class="num">updates seen</th><th class="num">versions behind</th></tr>`;
      for (const t of tablets) {
        h += `<tr><td>${esc(t.id)}</td><td><span class="mode ${t.mode === "push" ? "push" : "pull"}">${esc(t.mode)}</span></td><td class="num">${t.items}</td><td class="num">${t.changes}</td><td class="num" style="color:${t.behind > 0 ? "#c0561b" : "inherit"}">${t.behind}</td></tr>`;
      }
      h += `</table>`;
    }
    body(root).innerHTML = h;
  },
};

// ---- stocks ----

const stocks: Renderer = {
  title: "Stocks — the bazaar",
  render(root, p) {
    const cache = p.cache;
    const lookups = cache ? cache.hits + cache.misses : 0;
    const hitRate = lookups > 0 ? cache.hits / lookups : 0;
    let h = `<div class="stats-row">${stat("trades", String(p.trades ?? "–"))}${stat("lookups", String(p.lookups ?? "–"))}${stat("cache hit rate", cache ? `${(hitRate * 100).toFixed(1)}%` : "–")}${stat("cached", cache ? String(cache.size) : "–")}</div>`;
    if (cache) h += `<div class="bar" title="cache hit rate"><i style="width:${(hitRate * 100).toFixed(1)}%"></i></div>`;
    h += `<h3>Order replicas</h3><div class="replicas">`;
    for (const r of p.replicas ?? []) {
      const cls = r.state === "leader" ? "replica leader" : r.state === "down" ? "replica down" : "replica";
      h += `<div class="${cls}"><b>${esc(r.id)}${r.state === "leader" ? " ★" : ""}</b>${esc(r.state)}${r.state !== "down" ? ` · epoch ${r.epoch} · ${r.last + 1} orders` : ""}</div>`;
    }
    h += `</div><h3>Prices and quantities</h3><table><tr><th>stock</th><th class="num">price</th><th class="num">quantity</th><th class="num">version</th></tr>`;
    for (const s of p.stocks ?? []) {
      const flash = changed(`stock:${s.name}`, s.version) ? ' class="flash"' : "";
      h += `<tr${flash}><td>${esc(s.name)}</td><td class="num">${Number(s.price).toFixed(2)}</td><td class="num"><b>${s.quantity}</b></td><td class="num muted">v${s.version}</td></tr>`;
    }
    h += `</table><h3>Order log (newest first, from ${esc(p.leader ?? "no leader")})</h3><table><tr><th class="num">#</th><th>stock</th><th>type</th><th class="num">qty</th><th class="num">epoch</th></tr>`;
    for (const o of p.orders ?? []) h += `<tr><td class="num">${o.number}</td><td>${esc(o.name)}</td><td><span class="${o.type === "buy" ? "buy" : "sell"}">${esc(o.type)}</span></td><td class="num">${o.quantity}</td><td class="num muted">${o.epoch}</td></tr>`;
    if ((p.orders ?? []).length === 0) h += `<tr><td colspan="5" class="muted">no orders yet</td></tr>`;
    h += `</table>`;
    body(root).innerHTML = h;
  },
  recovering: (p) => (p.replicas ?? []).filter((r: { state: string }) => r.state === "recovering").map((r: { id: string }) => r.id),
};

// ---- bookstore ----

const share = (n: number, total: number) => (total > 0 ? `${((n / total) * 100).toFixed(0)}%` : "–");

const bookstore: Renderer = {
  title: "Bookstore — the Pygmy bookstore, replicated",
  render(root, p) {
    const cache = p.cache;
    const lookups = cache ? cache.hits + cache.misses : 0;
    const hitRate = lookups > 0 ? cache.hits / lookups : 0;
    const req = p.requests ?? {};
    let h = `<div class="stats-row">${stat("primary catalog", esc(p.primary ?? "none"))}${stat("view", p.epoch === null ? "–" : `#${p.epoch}`)}${stat("buys", String(req.buy ?? 0))}${stat("lookups", String((req.lookup ?? 0) + (req.quantity ?? 0)))}${stat("cache hit rate", cache ? `${(hitRate * 100).toFixed(1)}%` : "–")}</div>`;
    h += `<h3>Books (as ${esc(p.booksFrom ?? "no catalog")} holds them)</h3><table id="books"><tr><th class="num">#</th><th>title · topic</th><th class="num">cost</th><th class="num">quantity</th><th class="num">version</th></tr>`;
    for (const b of p.books ?? []) {
      const flash = changed(`book:${b.item}`, b.version) ? ' class="flash"' : "";
      h += `<tr${flash} data-item="${b.item}"><td class="num muted">${b.item}</td><td><span class="t">${esc(b.title)}</span> <span class="topic">${esc(b.topic.replace(/-/g, " "))}</span></td><td class="num">${Number(b.cost).toFixed(2)}</td><td class="num qty"><b${b.quantity === 0 ? ' class="sell"' : ""}>${b.quantity}</b></td><td class="num muted">v${b.version}</td></tr>`;
    }
    if ((p.books ?? []).length === 0) h += `<tr><td colspan="5" class="muted">no catalog replica answering</td></tr>`;
    const cats = p.catalogs ?? [];
    const routedReads = cats.reduce((a: number, c: { routedReads: number }) => a + c.routedReads, 0);
    h += `</table><h3>Catalog replicas (reads go round-robin over the view's members; writes to the primary)</h3><table id="catalogs"><tr><th>replica</th><th>role</th><th class="num">log</th><th class="num">routed reads</th><th style="width:22%">share</th><th class="num">served</th><th class="num">writes</th></tr>`;
    for (const c of cats) {
      const role = c.mode === "down" ? "down" : c.id === p.primary ? "primary" : c.mode === "member" ? "backup" : c.mode;
      const cls = role === "primary" ? "replica-row leader" : role === "down" ? "replica-row down" : "replica-row";
      h += `<tr class="${cls}" data-catalog="${esc(c.id)}"><td><b>${esc(c.id)}${role === "primary" ? " ★" : ""}</b></td><td>${esc(role)}</td><td class="num">${c.last ?? "–"}</td><td class="num">${c.routedReads}</td><td><div class="bar" title="${share(c.routedReads, routedReads)}"><i style="width:${routedReads > 0 ? ((c.routedReads / routedReads) * 100).toFixed(1) : 0}%"></i></div></td><td class="num">${c.reads ?? "–"}</td><td class="num">${c.writes ?? "–"}</td></tr>`;
    }
    const ords = p.orders ?? [];
    const routedBuys = ords.reduce((a: number, o: { routedBuys: number }) => a + o.routedBuys, 0);
    h += `</table><h3>Order servers (buys go round-robin over the live ones)</h3><table id="order-servers"><tr><th>server</th><th>status</th><th class="num">order log</th><th class="num">routed buys</th><th style="width:22%">share</th><th class="num">pending</th></tr>`;
    for (const o of ords) {
      h += `<tr class="${o.up ? "replica-row" : "replica-row down"}" data-order="${esc(o.id)}"><td><b>${esc(o.id)}</b></td><td>${o.up ? "up" : "down"}</td><td class="num"><b>${o.log ?? "–"}</b></td><td class="num">${o.routedBuys}</td><td><div class="bar" title="${share(o.routedBuys, routedBuys)}"><i style="width:${routedBuys > 0 ? ((o.routedBuys / routedBuys) * 100).toFixed(1) : 0}%"></i></div></td><td class="num">${o.pending ?? "–"}</td></tr>`;
    }
    h += `</table><p class="muted small">“Routed” counts the front end's choices since it started; “served” (reads) and the logs are each node's own count: served restarts from 0 with the node, the logs are durable.</p>`;
    body(root).innerHTML = h;
  },
  recovering: (p) => (p.catalogs ?? []).filter((c: { mode: string }) => c.mode === "recovering" || c.mode === "out").map((c: { id: string }) => c.id),
};

// ---- paxos ----

const mine = new Set<string>();

const paxos: Renderer = {
  title: "Paxos — the replicated chat log",
  mount(root, ctx) {
    const form = document.createElement("form");
    form.className = "chat";
    form.innerHTML = `<input id="chat-input" maxlength="280" placeholder="Say something through the log…" autocomplete="off" /><button id="chat-send">Send</button>`;
    const status = document.createElement("div");
    status.className = "chat-status muted";
    status.id = "chat-status";
    const sent = document.createElement("div");
    sent.className = "slots";
    sent.id = "chat-committed";
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = form.querySelector<HTMLInputElement>("#chat-input")!;
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      mine.add(text);
      status.textContent = `sending “${text}”…`;
      try {
        const r = (await ctx.act("chat", { text })) as { via: string; slot: number | null };
        status.textContent = `“${text}” committed${r.slot ? ` in slot ${r.slot}` : ""} (via ${r.via})`;
        const row = document.createElement("div");
        row.className = "slot mine";
        row.dataset.slot = String(r.slot ?? "");
        row.innerHTML = `<span class="n">${r.slot ?? "?"}</span><span class="text"><span class="who">you</span>${esc(text)}</span>`;
        sent.prepend(row);
        while (sent.children.length > 5) sent.lastElementChild!.remove();
      } catch (e) {
        status.textContent = `not sent: ${e instanceof Error ? e.message : String(e)}`;
      }
    });
    root.append(form, status, sent);
  },
  render(root, p) {
    let h = `<div class="stats-row">${stat("leader", esc(p.leader ?? "electing…"))}${stat("view (ballot)", String(p.ballot ?? "–"))}${stat("committed slots", String(p.commit))}${stat("next slot", String(p.nextSlot ?? "–"))}</div>`;
    h += `<div class="replicas">`;
    for (const r of p.replicas ?? []) {
      const cls = r.role === "leader" ? "replica leader" : r.role === "down" ? "replica down" : "replica";
      h += `<div class="${cls}"><b>${esc(r.id)}${r.role === "leader" ? " ★" : ""}</b>${esc(r.role)}${r.role !== "down" ? ` · commit ${r.commit} · ${r.noops} no-ops` : ""}</div>`;
    }
    h += `</div><h3>The log, slot by slot (newest first)</h3><div class="slots" id="slots">`;
    const inflight = p.nextSlot && p.commit ? Math.min(8, p.nextSlot - 1 - p.commit) : 0;
    for (let i = inflight; i >= 1; i--) h += `<div class="slot inflight"><span class="n">${p.commit + i}</span><span>being agreed…</span></div>`;
    for (const s of (p.slots ?? []).slice().reverse()) {
      if (s.ops === null) {
        h += `<div class="slot noop" data-slot="${s.slot}"><span class="n">${s.slot}</span><span>no-op (a gap filled by a new leader)</span></div>`;
        continue;
      }
      const isMine = s.ops.some((o: { c: string; t: string }) => o.c === p.session && mine.has(o.t));
      const text = s.ops.map((o: { c: string; t: string }) => `<span class="who">${esc(o.c)}</span>${esc(o.t)}`).join("<br>") + (s.more ? ` <span class="muted">+${s.more} more</span>` : "");
      h += `<div class="slot${isMine ? " mine" : ""}" data-slot="${s.slot}"><span class="n">${s.slot}</span><span class="text">${text}</span></div>`;
    }
    if ((p.slots ?? []).length === 0) h += `<div class="muted">nothing committed yet</div>`;
    h += `</div>`;
    body(root).innerHTML = h;
  },
};

// ---- echo ----

const echo: Renderer = {
  title: "Echo",
  render(root, p, ctx) {
    body(root).innerHTML =
      `<div class="stats-row">${stat("requests / s", fmtRate(ctx.ops))}${stat("latency p50", `${fmtMs(ctx.p50)} ms`)}${stat("latency p99", `${fmtMs(ctx.p99)} ms`)}${stat("served (this incarnation)", String(p.served ?? "server down"))}</div>` +
      `<p class="muted small">Every client sends echo requests to the server and checks each reply carries its own payload.</p>` +
      `<h3>Clients</h3><table><tr><th>client</th><th>status</th><th class="num">answered</th><th class="num">waiting</th><th class="num">last latency</th></tr>` +
      (p.clients ?? []).map((c: { id: string; status: string; answered: number; pending: number; lastMs: number | null }) => `<tr><td>${esc(c.id)}</td><td>${esc(c.status)}</td><td class="num">${c.answered}</td><td class="num">${c.pending}</td><td class="num">${fmtMs(c.lastMs)} ms</td></tr>`).join("") +
      `</table>`;
  },
};

// ---- any other system ----

export const GENERIC: Renderer = {
  title: "Nodes",
  render(root, p) {
    let h = `<table><tr><th>node</th><th>role</th><th>status</th></tr>`;
    for (const n of p.nodes ?? []) h += `<tr><td>${esc(n.id)}</td><td>${esc(n.role)}</td><td>${esc(n.status)}</td></tr>`;
    body(root).innerHTML = h + `</table>`;
  },
};

export const RENDERERS: Record<string, Renderer> = { olympics, stocks, paxos, echo, bookstore };
