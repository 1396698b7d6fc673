/**
 * The dashboard page. It holds no power of its own: every read is the admin API's stream and every
 * action an admin API request, both with the bearer token read from the URL fragment (which
 * browsers never send to the server).
 */
import type { Frame, PanelFrame, Point } from "../live.ts";
import type { TimelineEvent } from "../timeline.ts";
import { Charts } from "./charts.ts";
import { Graph, type GraphState } from "./graph.ts";
import { GENERIC, RENDERERS, type PanelContext, type Renderer } from "./panels.ts";
import { clock, esc, fmtMs, fmtRate } from "./util.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
let frame: Frame | null = null;
let renderer: Renderer | null = null;
let systemName = "";
const gs: GraphState = { recovering: new Set(), leader: null, groupA: new Set(), groupB: new Set() };
let picking: "a" | "b" | null = null;

// ---- admin API calls ----

async function api(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((json as { error?: string }).error ?? `HTTP ${res.status}`);
  return json;
}

function toast(text: string, err = false): void {
  let box = document.getElementById("toasts");
  if (!box) {
    box = document.createElement("div");
    box.id = "toasts";
    document.body.appendChild(box);
  }
  const t = document.createElement("div");
  t.className = `toast${err ? " err" : ""}`;
  t.textContent = text;
  box.appendChild(t);
  setTimeout(() => t.remove(), err ? 5000 : 2500);
}

async function act(label: string, method: string, path: string, body?: unknown): Promise<void> {
  try {
    await api(method, path, body);
    toast(label);
  } catch (e) {
    toast(`${label} failed: ${e instanceof Error ? e.message : String(e)}`, true);
  }
}

// ---- header ----

function kpis(f: Frame): void {
  const p = f.point;
  const items: Array<[string, string]> = [
    ["ops / s", fmtRate(p.ops)],
    ["p50 ms", fmtMs(p.p50)],
    ["p99 ms", fmtMs(p.p99)],
    ["nodes up", `${f.up}/${f.nodes.length}`],
    ["msgs / s", fmtRate(p.msgs)],
    ["dropped / s", fmtRate(p.drops)],
  ];
  $("kpis").innerHTML = items.map(([k, v]) => `<div class="kpi"><b>${v}</b><span>${k}</span></div>`).join("");
}

// ---- node menu ----

const menu = $("node-menu");
function openMenu(id: string, x: number, y: number): void {
  if (picking) {
    const [mine, other] = picking === "a" ? [gs.groupA, gs.groupB] : [gs.groupB, gs.groupA];
    if (mine.has(id)) mine.delete(id);
    else {
      mine.add(id);
      other.delete(id);
    }
    partitionButtons();
    if (frame) graph.draw(frame, gs);
    return;
  }
  const n = frame?.nodes.find((x) => x.id === id);
  if (!n) return;
  const enc = encodeURIComponent(id);
  const can = { crash: n.status !== "crashed", restart: n.status === "crashed", pause: n.status === "running", resume: n.status === "paused" };
  menu.innerHTML =
    `<div class="who">${esc(id)}</div><div class="muted small">${esc(n.role)} · ${esc(n.status)} · incarnation ${n.incarnation}${n.host !== "local" ? ` · host ${esc(n.host)}` : ""}</div>` +
    `<div class="row">${(["crash", "restart", "pause", "resume"] as const).map((a) => `<button data-action="${a}" class="${a === "crash" ? "danger" : ""}" ${can[a] ? "" : "disabled"}>${a}</button>`).join("")}</div>`;
  menu.style.left = `${Math.min(x + 12, (menu.parentElement?.clientWidth ?? 800) - 190)}px`;
  menu.style.top = `${y + 40}px`;
  menu.hidden = false;
  menu.onclick = (ev) => {
    const a = (ev.target as HTMLElement).getAttribute("data-action");
    if (!a) return;
    menu.hidden = true;
    void act(`${a} ${id}`, "POST", `/nodes/${enc}/${a}`);
  };
}
document.addEventListener("click", (ev) => {
  if (!menu.contains(ev.target as Node)) menu.hidden = true;
});

// ---- partitions and network ----

function partitionButtons(): void {
  $("part-a").classList.toggle("on", picking === "a");
  $("part-b").classList.toggle("on", picking === "b");
  $("part-a").textContent = `Group A${gs.groupA.size ? ` (${gs.groupA.size})` : ""}`;
  $("part-b").textContent = `Group B${gs.groupB.size ? ` (${gs.groupB.size})` : ""}`;
  $<HTMLButtonElement>("part-go").disabled = gs.groupA.size === 0 || gs.groupB.size === 0;
}
for (const g of ["a", "b"] as const) {
  $(`part-${g}`).addEventListener("click", (ev) => {
    ev.stopPropagation();
    picking = picking === g ? null : g;
    menu.hidden = true;
    partitionButtons();
  });
}
$("part-go").addEventListener("click", async () => {
  const from = [...gs.groupA];
  const to = [...gs.groupB];
  picking = null;
  await act(`partitioned [${from.join(", ")}] from [${to.join(", ")}]`, "PUT", "/network", { partitions: [{ from, to }] });
  gs.groupA.clear();
  gs.groupB.clear();
  partitionButtons();
});
$("heal").addEventListener("click", () => {
  picking = null;
  gs.groupA.clear();
  gs.groupB.clear();
  partitionButtons();
  void act("healed every partition", "PUT", "/network", { partitions: [] });
});
let netFilled = false;
$("net-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  void act("network settings applied", "PUT", "/network", { loss: num("net-loss"), dup: num("net-dup"), latencyMs: num("net-lat") });
});
function fillNetwork(f: Frame): void {
  const d = f.network.defaults;
  $("net-status").textContent = `now: loss ${d.loss}, dup ${d.dup}, latency ${d.latencyMs} ms (${d.distribution})${f.network.partitions.length ? `, ${f.network.partitions.length} partition(s)` : ""}`;
  if (netFilled) return;
  netFilled = true;
  $<HTMLInputElement>("net-loss").value = String(d.loss);
  $<HTMLInputElement>("net-dup").value = String(d.dup);
  $<HTMLInputElement>("net-lat").value = String(d.latencyMs);
}

// ---- timeline ----

function addEvent(e: TimelineEvent): void {
  const li = document.createElement("li");
  const tag = e.kind === "check" ? (e.ok ? "check-ok" : "check-fail") : e.kind;
  const label = e.kind === "check" ? (e.ok ? "check ok" : "check FAILED") : e.kind;
  li.innerHTML = `<time>${clock(e.at)}</time><span class="tag ${tag}">${esc(label)}</span><span>${esc(e.text)} <span class="muted small">— ${esc(e.source)}</span></span>`;
  li.dataset.kind = e.kind;
  const list = $("timeline");
  list.prepend(li);
  while (list.children.length > 300) list.lastElementChild!.remove();
}

// ---- panel ----

const panelCtx: PanelContext = {
  ops: 0,
  p50: null,
  p99: null,
  act: (name, body) => api("POST", `/systems/${encodeURIComponent(systemName)}/${encodeURIComponent(name)}`, body),
};

function onPanel(p: PanelFrame): void {
  if (!renderer) return;
  gs.leader = p.leader;
  gs.recovering = new Set(renderer.recovering?.(p.panel) ?? []);
  $("panel-leader").textContent = p.leader ? `leader: ${p.leader}` : "";
  renderer.render($("panel"), p.panel, panelCtx);
}

// ---- the stream ----

const graph = new Graph(document.getElementById("graph") as unknown as SVGSVGElement, openMenu);
const charts = new Charts({ msgs: $("chart-msgs"), ops: $("chart-ops"), lat: $("chart-lat") });

function onHello(h: { system: string; mode: string; seed: number; history: Point[]; timeline: TimelineEvent[] }): void {
  systemName = h.system;
  $("title").textContent = `${h.system} · ${h.mode} · seed ${h.seed}`;
  document.title = `menhir · ${h.system}`;
  if (!renderer) {
    renderer = RENDERERS[h.system] ?? GENERIC;
    $("panel-title").textContent = renderer.title;
    renderer.mount?.($("panel"), panelCtx);
    charts.add(h.history);
    for (const e of h.timeline) addEvent(e);
  }
}

function onFrame(f: Frame): void {
  frame = f;
  panelCtx.ops = f.point.ops;
  panelCtx.p50 = f.point.p50;
  panelCtx.p99 = f.point.p99;
  kpis(f);
  graph.draw(f, gs);
  charts.add([f.point]);
  fillNetwork(f);
}

function setConn(text: string, cls: string): void {
  const c = $("conn");
  c.textContent = text;
  c.className = `conn ${cls}`;
}

function refuse(why: string): void {
  $("refused").hidden = false;
  if (why) $("refused-why").textContent = why;
  setConn("not authorized", "down");
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $<HTMLInputElement>("token-input").value.trim();
  location.hash = `token=${encodeURIComponent(token)}`;
  $("refused").hidden = true;
  void connect();
});

let seenHello = false;
async function connect(): Promise<void> {
  if (!token) return refuse("");
  setConn("connecting…", "");
  let res: Response;
  try {
    res = await fetch("/events", { headers: { authorization: `Bearer ${token}` } });
  } catch {
    setConn("cluster unreachable — retrying", "down");
    setTimeout(connect, 2000);
    return;
  }
  if (res.status === 401) return refuse("The token was refused. Paste the token the cluster printed:");
  if (!res.ok || !res.body) {
    setConn(`stream refused (HTTP ${res.status}) — retrying`, "down");
    setTimeout(connect, 2000);
    return;
  }
  setConn("live", "live");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let lastFrameSeen = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        let data = "";
        for (const line of chunk.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        const msg = JSON.parse(data);
        if (event === "hello") {
          onHello(msg);
          seenHello = true;
        } else if (event === "frame") {
          if (msg.t > lastFrameSeen) onFrame(msg);
          lastFrameSeen = msg.t;
        } else if (event === "panel") onPanel(msg);
        else if (event === "event") addEvent(msg);
      }
    }
  } catch {
    // the connection broke: fall through and reconnect
  }
  setConn(seenHello ? "cluster stopped or unreachable — retrying" : "disconnected — retrying", "down");
  setTimeout(connect, 2000);
}

partitionButtons();
void connect();
