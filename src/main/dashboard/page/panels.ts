/**
 * One renderer per system, fed the panel its view on the driver built (../systems.ts). A system
 * without a renderer gets the generic one. To add a system (bookstore: books, quantities, which
 * replica served what), add its digest in ../systems.ts and a renderer here under the same name.
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

const olympics: Renderer = {
  title: "Olympics — the stone tablet",
  render(root, p) {
    const tallies: Tally[] = (p.tallies ?? []).slice().sort((a: Tally, b: Tally) => b.gold - a.gold || b.silver - a.silver || b.bronze - a.bronze || a.team.localeCompare(b.team));
    const scores: Score[] = p.scores ?? [];
    const caco = p.cacofonix;
    let h = `<div class="stats-row">${stat("cacofonix writes", caco ? String(caco.updates) : "down")}${stat("failed writes", caco ? String(caco.failed) : "–")}${stat("tablets", String(p.tabletsTotal ?? 0))}</div>`;
    h += `<h3>Medal tally</h3><table id="medals"><tr><th>team</th><th class="num"><i class="medal gold"></i>gold</th><th class="num"><i class="medal silver"></i>silver</th><th class="num"><i class="medal bronze"></i>bronze</th><th class="num">total</th><th class="num">version</th></tr>`;
    for (const t of tallies) {
      const flash = changed(`t:${t.team}`, t.version) ? ' class="flash"' : "";
      h += `<tr${flash} data-team="${esc(t.team)}"><td>${esc(t.team)}</td><td class="num">${t.gold}</td><td class="num">${t.silver}</td><td class="num">${t.bronze}</td><td class="num"><b>${t.gold + t.silver + t.bronze}</b></td><td class="num muted">v${t.version}</td></tr>`;
    }
    if (tallies.length === 0) h += `<tr><td colspan="6" class="muted">obelix is not answering</td></tr>`;
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

export const RENDERERS: Record<string, Renderer> = { olympics, stocks, paxos, echo };
