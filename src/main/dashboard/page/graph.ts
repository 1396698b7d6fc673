/**
 * The node graph: nodes on a circle grouped by role, links drawn with their live message rate,
 * drops and partitions. Redrawn on every frame; positions stay put so the eye can follow.
 */
import type { Frame, LinkView } from "../live.ts";
import { esc, fmtRate } from "./util.ts";

const SVG = "http://www.w3.org/2000/svg";

export interface GraphState {
  /** Nodes the system reports as catching up (shown in blue). */
  recovering: Set<string>;
  leader: string | null;
  groupA: Set<string>;
  groupB: Set<string>;
}

function isCut(net: Frame["network"], a: string, b: string): boolean {
  for (const p of net.partitions) {
    if (p.from.includes(a) && p.to.includes(b)) return true;
    if (!p.oneWay && p.to.includes(a) && p.from.includes(b)) return true;
  }
  return false;
}

export class Graph {
  private pos = new Map<string, { x: number; y: number }>();
  private layoutKey = "";
  /** Pairs that have carried traffic: when cut by a partition they are drawn as cut. */
  private readonly seenPairs = new Set<string>();
  /** Node elements stay put between frames (so clicks and hover tooltips are not lost), updated in place. */
  private readonly nodeEls = new Map<string, { el: SVGGElement; html: string }>();
  private readonly linkLayer: SVGGElement;
  private readonly labelLayer: SVGGElement;
  private readonly nodeLayer: SVGGElement;

  constructor(
    private readonly svg: SVGSVGElement,
    private readonly onNodeClick: (id: string, x: number, y: number) => void,
  ) {
    this.linkLayer = document.createElementNS(SVG, "g") as SVGGElement;
    this.labelLayer = document.createElementNS(SVG, "g") as SVGGElement;
    this.nodeLayer = document.createElementNS(SVG, "g") as SVGGElement;
    svg.append(this.linkLayer, this.labelLayer, this.nodeLayer);
    svg.addEventListener("click", (ev) => {
      const g = (ev.target as Element).closest("g.node");
      if (!g) return;
      ev.stopPropagation();
      const r = svg.getBoundingClientRect();
      onNodeClick(g.getAttribute("data-id")!, ev.clientX - r.left, ev.clientY - r.top);
    });
  }

  private layout(frame: Frame, w: number, h: number): void {
    const key = `${frame.nodes.map((n) => n.id).join(",")}@${w}x${h}`;
    if (key === this.layoutKey) return;
    this.layoutKey = key;
    const nodes = [...frame.nodes].sort((a, b) => (a.role === b.role ? 0 : a.role < b.role ? -1 : 1));
    const cx = w / 2;
    const cy = h / 2;
    // An ellipse filling the box, leaving room for the labels above and below.
    const rx = w / 2 - 90;
    const ry = h / 2 - 50;
    this.pos.clear();
    nodes.forEach((n, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
      this.pos.set(n.id, { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) });
    });
  }

  draw(frame: Frame, st: GraphState): void {
    const w = this.svg.clientWidth || 800;
    const h = this.svg.clientHeight || 470;
    this.svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    this.layout(frame, w, h);
    const many = frame.nodes.length > 40;
    const radius = many ? 7 : frame.nodes.length > 16 ? 13 : 19;

    // Both directions of a pair on one line.
    const pairs = new Map<string, { a: string; b: string; rate: number; drops: number }>();
    for (const l of frame.links as LinkView[]) {
      const [a, b] = l.src < l.dest ? [l.src, l.dest] : [l.dest, l.src];
      const k = `${a}|${b}`;
      const p = pairs.get(k) ?? { a, b, rate: 0, drops: 0 };
      p.rate += l.rate;
      p.drops += l.drops;
      pairs.set(k, p);
      this.seenPairs.add(k);
    }
    for (const k of this.seenPairs) {
      if (pairs.has(k)) continue;
      const [a, b] = k.split("|") as [string, string];
      if (isCut(frame.network, a, b)) pairs.set(k, { a, b, rate: 0, drops: 0 });
    }
    const statusOf = new Map(frame.nodes.map((n) => [n.id, n.status]));
    const maxRate = Math.max(1, ...[...pairs.values()].map((p) => p.rate));
    let links = "";
    let labels = "";
    for (const p of pairs.values()) {
      const pa = this.pos.get(p.a);
      const pb = this.pos.get(p.b);
      if (!pa || !pb) continue;
      const cut = isCut(frame.network, p.a, p.b);
      // Messages to a crashed node still leave their senders; they just go nowhere.
      const dead = statusOf.get(p.a) === "crashed" || statusOf.get(p.b) === "crashed";
      const cls = cut ? "link cut" : dead ? "link dead" : p.drops > 0 ? "link dropping" : "link";
      const width = cut ? 2.5 : 1 + 5 * Math.sqrt(p.rate / maxRate);
      links += `<line class="${cls}" x1="${pa.x}" y1="${pa.y}" x2="${pb.x}" y2="${pb.y}" stroke-width="${width.toFixed(1)}"/>`;
      if (many) continue;
      const mx = (pa.x + pb.x) / 2;
      const my = (pa.y + pb.y) / 2;
      if (cut) labels += `<text class="rate cut" x="${mx}" y="${my + 4}">✂ cut</text>`;
      else if (p.rate >= 0.5) {
        labels += `<text class="rate" x="${mx}" y="${my - 5}">${fmtRate(p.rate)}/s</text>`;
        if (p.drops > 0) labels += `<text class="rate drop" x="${mx}" y="${my + 12}">${fmtRate(p.drops)} dropped/s</text>`;
      }
    }
    const present = new Set<string>();
    for (const n of frame.nodes) {
      const p = this.pos.get(n.id);
      if (!p) continue;
      const status = n.status === "running" && st.recovering.has(n.id) ? "recovering" : n.status;
      const cls = ["node", status, st.leader === n.id ? "leader" : "", st.groupA.has(n.id) ? "in-a" : "", st.groupB.has(n.id) ? "in-b" : ""].join(" ");
      const glyph = status === "crashed" ? "✕" : status === "paused" ? "❚❚" : st.leader === n.id ? "★" : "";
      const below = p.y > this.svg.clientHeight / 2 || false;
      const ty = below ? radius + 16 : -radius - 20;
      const sub = `${n.role} · #${n.incarnation}${n.host && n.host !== "local" ? ` · ${n.host}` : ""}`;
      const html =
        `<title>${esc(n.id)} (${esc(n.role)}), ${status}, incarnation ${n.incarnation}${n.host ? `, host ${esc(n.host)}` : ""}</title>` +
        `<circle class="sel" r="${radius + 6}"/><circle class="ring" r="${radius + 4}"/><circle class="body" r="${radius}"/>` +
        (many ? "" : `<text class="glyph" y="4">${glyph}</text><text class="name" y="${ty}">${esc(n.id)}</text><text class="sub" y="${ty + 13}">${esc(sub)}</text>`);
      let e = this.nodeEls.get(n.id);
      if (!e) {
        const el = document.createElementNS(SVG, "g") as SVGGElement;
        el.setAttribute("data-id", n.id);
        this.nodeLayer.appendChild(el);
        e = { el, html: "" };
        this.nodeEls.set(n.id, e);
      }
      present.add(n.id);
      e.el.setAttribute("class", cls);
      e.el.setAttribute("data-status", status);
      e.el.setAttribute("transform", `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
      if (e.html !== html) {
        e.el.innerHTML = html;
        e.html = html;
      }
    }
    for (const [id, e] of this.nodeEls) {
      if (present.has(id)) continue;
      e.el.remove();
      this.nodeEls.delete(id);
    }
    this.linkLayer.innerHTML = links;
    this.labelLayer.innerHTML = labels;
  }
}
