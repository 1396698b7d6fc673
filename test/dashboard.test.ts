/**
 * The dashboard in a real browser (system Chromium, headless): a cluster started by the CLI, the
 * page opened from the link it prints, and every check made against the admin API or the node's
 * own service, not only against what the page says. Screenshots go to test/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { CHROMIUM, NO_CHROMIUM, SHOTS, launchBrowser, startCli, until } from "./browser.ts";

/** Functions passed to page.evaluate run in the browser, where these exist. */
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): ArrayLike<any> & Iterable<any> };

if (!CHROMIUM) console.warn(NO_CHROMIUM);
const browserDescribe = CHROMIUM ? describe : describe.skip;

async function open(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${String(e)}`));
  await page.goto(url);
  return page;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

browserDescribe("dashboard in a browser", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test("refuses without the token; with it shows every node; crash, restart, pause, resume, partition, heal and loss from the page reach the cluster", async () => {
    const c = await startCli(["echo", "--clients", "3"]);
    try {
      // The stream and the API refuse a missing or wrong token.
      expect((await fetch(new URL("/events", c.base))).status).toBe(401);
      expect((await fetch(new URL("/events", c.base), { headers: { authorization: "Bearer nope" } })).status).toBe(401);

      const refused = await open(browser, c.base);
      await refused.waitForSelector("#refused:not([hidden])");
      expect(await refused.$$eval("#graph g.node", (n) => n.length)).toBe(0);
      await shot(refused, "refused");
      await refused.close();

      const page = await open(browser, c.dashboard);
      await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length === 4, { timeout: 20_000 });
      const ids = await page.$$eval("#graph g.node", (ns) => ns.map((n) => n.getAttribute("data-id")).sort());
      expect(ids).toEqual(["client-1", "client-2", "client-3", "server"]);
      expect(await page.$eval("#refused", (e) => (e as unknown as { hidden: boolean }).hidden)).toBe(true);
      // At least 5 updates a second: count the header's redraws over 3 s (one frame of slack at the edges).
      const redraws = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            let n = 0;
            const mo = new (globalThis as any).MutationObserver((records: unknown[]) => (n += records.length));
            mo.observe(document.querySelector("#kpis"), { childList: true });
            setTimeout(() => {
              mo.disconnect();
              resolve(n);
            }, 3000);
          }),
      );
      expect(redraws).toBeGreaterThanOrEqual(14);
      // Traffic is drawn: requests per second and latency reach the header.
      await page.waitForFunction(() => Number(document.querySelector("#kpis .kpi b")?.textContent) > 0, { timeout: 20_000 });

      await page.click('#graph g.node[data-id="server"]');
      await page.waitForSelector('#node-menu:not([hidden]) button[data-action="crash"]:not([disabled])');
      await page.click('#node-menu button[data-action="crash"]');
      // The admin API confirms the crash, and the page shows it.
      await until("admin API to report server crashed", async () => {
        const { json } = await c.api<{ nodes: Array<{ id: string; status: string }> }>("GET", "/nodes");
        return json.nodes.find((n) => n.id === "server")?.status === "crashed";
      });
      await page.waitForSelector('#graph g.node[data-id="server"].crashed', { timeout: 10_000 });
      await page.waitForFunction(() => [...document.querySelectorAll("#timeline li")].some((li) => li.textContent?.includes("server crashed")), { timeout: 10_000 });
      await shot(page, "echo-crashed");

      // Restart from the page too: the node comes back with a new incarnation.
      await page.click('#graph g.node[data-id="server"]');
      await page.waitForSelector('#node-menu:not([hidden]) button[data-action="restart"]:not([disabled])');
      await page.click('#node-menu button[data-action="restart"]');
      await until("server to run again", async () => {
        const { json } = await c.api<{ nodes: Array<{ id: string; status: string; incarnation: number }> }>("GET", "/nodes");
        const s = json.nodes.find((n) => n.id === "server");
        return s?.status === "running" && s.incarnation === 1;
      });
      await page.waitForSelector('#graph g.node[data-id="server"].running', { timeout: 10_000 });

      // Pause and resume from the page.
      for (const [action, status] of [["pause", "paused"], ["resume", "running"]] as const) {
        await page.click('#graph g.node[data-id="client-2"]');
        await page.waitForSelector(`#node-menu:not([hidden]) button[data-action="${action}"]:not([disabled])`);
        await page.click(`#node-menu button[data-action="${action}"]`);
        await until(`admin API to report client-2 ${status}`, async () => (await c.api<{ nodes: Array<{ id: string; status: string }> }>("GET", "/nodes")).json.nodes.find((n) => n.id === "client-2")?.status === status);
        await page.waitForSelector(`#graph g.node[data-id="client-2"].${status}`, { timeout: 10_000 });
      }

      // Partition two groups picked on the graph, then heal; the admin API confirms each.
      await page.click("#part-a");
      await page.click('#graph g.node[data-id="client-1"]');
      await page.click("#part-b");
      await page.click('#graph g.node[data-id="server"]');
      await page.click("#part-go");
      await until("the partition to reach the cluster", async () => {
        const { json } = await c.api<{ partitions: Array<{ from: string[]; to: string[] }> }>("GET", "/network");
        return json.partitions.length === 1 && json.partitions[0]!.from.join() === "client-1" && json.partitions[0]!.to.join() === "server";
      });
      await page.waitForFunction(() => document.querySelectorAll("#graph line.link.cut").length === 1, { timeout: 10_000 });
      // Loss set from the form applies to every link.
      await page.$eval("#net-loss", (e) => ((e as unknown as { value: string }).value = "0.2"));
      await page.click("#net-form button");
      await until("loss 0.2 on the cluster", async () => (await c.api<{ defaults: { loss: number } }>("GET", "/network")).json.defaults.loss === 0.2);
      await page.waitForFunction(() => document.querySelectorAll("#graph line.link.dropping").length > 0, { timeout: 10_000 });
      await shot(page, "echo-partitioned");
      await page.click("#heal");
      await until("the partition healed", async () => (await c.api<{ partitions: unknown[] }>("GET", "/network")).json.partitions.length === 0);
      await page.waitForFunction(() => document.querySelectorAll("#graph line.link.cut").length === 0, { timeout: 10_000 });
    } finally {
      expect(await c.stop()).toBe(0);
    }
    expect(c.output()).toContain("all checks passed");
  }, 90_000);

  test("olympics: the scoreboard changes after cacofonix's next write, as obelix has it", async () => {
    const c = await startCli(["olympics", "--pull", "2", "--push", "2", "--rate", "400"]);
    try {
      const obelix = await until("obelix's HTTP address", () => /obelix serves HTTP at (\S+)/.exec(c.output())?.[1]);
      const page = await open(browser, c.dashboard);
      await page.waitForSelector("#medals tr[data-team]", { timeout: 20_000 });
      const rows = () => page.$$eval("#medals tr[data-team]", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
      const before = JSON.stringify(await rows());
      await page.waitForFunction((b) => JSON.stringify([...document.querySelectorAll("#medals tr[data-team]")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""))) !== b, { timeout: 20_000 }, before);
      // What the page shows is what obelix holds: some row matches obelix's own answer at the same version.
      await until("a page row equal to obelix's tally at the same version", async () => {
        for (const [team, gold, silver, bronze, , version] of await rows()) {
          const t = (await (await fetch(new URL(`getMedalTally/${encodeURIComponent(team!)}`, obelix))).json()) as { gold: number; silver: number; bronze: number; version: number };
          if (`v${t.version}` === version && [t.gold, t.silver, t.bronze].join() === [gold, silver, bronze].join() && t.version > 0) return true;
        }
        return false;
      });
      await shot(page, "olympics");
    } finally {
      expect(await c.stop()).toBe(0);
    }
  }, 90_000);

  test("paxos: a chat message typed in the page is committed to the log", async () => {
    const c = await startCli(["paxos", "--clients", "1", "--interval-ms", "100"]);
    try {
      const page = await open(browser, c.dashboard);
      await page.waitForSelector("#chat-input", { timeout: 20_000 });
      await page.waitForFunction(() => document.querySelectorAll("#slots .slot").length > 0, { timeout: 20_000 });
      const text = `hello from the page ${Date.now() % 100000}`;
      await page.type("#chat-input", text);
      await page.keyboard.press("Enter");
      const slot = await until("the page to report the commit", () =>
        page.$$eval("#chat-committed .slot", (rows, t) => rows.find((r) => r.textContent?.includes(t as string))?.getAttribute("data-slot") ?? null, text),
      );
      expect(Number(slot)).toBeGreaterThan(0);
      // The live log view (read from the replicas' committed log) shows it in that slot.
      await page.waitForFunction((s, t) => document.querySelector(`#slots .slot[data-slot="${s}"]`)?.textContent?.includes(t as string) === true, { timeout: 10_000 }, slot, text);
      await shot(page, "paxos-chat");
      // Bad input is refused by the admin API and changes nothing.
      const bad = await c.api("POST", "/systems/paxos/chat", { text: "" });
      expect(bad.status).toBe(400);
      expect((await fetch(new URL("/systems/paxos/chat", c.base), { method: "POST", body: JSON.stringify({ text: "x" }) })).status).toBe(401);
      // Ctrl-C: the checks reach the watching page's timeline before the server closes.
      expect(await c.stop()).toBe(0);
      await page.waitForFunction(() => [...document.querySelectorAll("#timeline .tag")].some((t) => t.textContent === "check ok"), { timeout: 5_000 });
      expect(await page.$$eval("#timeline .tag", (ts) => ts.filter((t) => t.textContent === "check FAILED").length)).toBe(0);
      await shot(page, "paxos-stopped");
    } finally {
      expect(await c.stop()).toBe(0);
    }
    expect(c.output()).toContain("all checks passed");
  }, 90_000);
  test("bookstore: every book with its quantity; a buy through the front end's HTTP API shows on the page, with the order server that took it; a crashed primary is replaced on the page", async () => {
    // No shoppers: the only writes are this test's, so every change on the page is ours.
    const c = await startCli(["bookstore", "--clients", "0", "--port", "0"]);
    try {
      const fe = await until("the front end's HTTP address", () => /frontend serves HTTP at (\S+)/.exec(c.output())?.[1]);
      const get = async (path: string, init?: RequestInit) => ((await (await fetch(new URL(path, fe), init)).json()) as { data: any }).data;
      const books = (await get("list")) as Array<{ item: number; title: string; quantity: number; version: number }>;
      expect(books.length).toBeGreaterThan(0);
      const page = await open(browser, c.dashboard);
      await page.waitForFunction((n) => document.querySelectorAll("#books tr[data-item]").length === n, { timeout: 20_000 }, books.length);
      // [title, quantity, version] of a book's row.
      const row = (item: number) => page.$eval(`#books tr[data-item="${item}"]`, (tr) => [tr.querySelector(".t")?.textContent ?? "", ...[...tr.querySelectorAll("td.num")].slice(-2).map((td) => td.textContent ?? "")]);
      for (const b of books) {
        const [title, qty, version] = await row(b.item);
        expect([title, qty, version]).toEqual([b.title, String(b.quantity), `v${b.version}`]);
      }
      // Reads are spread over both catalog replicas (/list is never cached), and the page counts them per replica.
      for (let i = 0; i < 4; i++) await get("list");
      await page.waitForFunction(() => [...document.querySelectorAll("#catalogs tr[data-catalog]")].filter((tr) => Number(tr.querySelectorAll("td")[3].textContent) >= 2).length === 2, { timeout: 10_000 });
      expect(await page.$$eval("#catalogs tr[data-catalog] td:nth-child(2)", (tds) => tds.map((td) => td.textContent).sort())).toEqual(["backup", "primary"]);
      expect(await page.$eval("#catalogs tr.leader", (tr) => tr.getAttribute("data-catalog"))).toBe("catalog-1");

      const target = books.find((b) => b.quantity > 0)!;
      const bought = (await get(`buy/${target.item}`, { method: "POST" })) as { order: number; version: number };
      expect(bought.version).toBe(target.version + 1);
      await page.waitForFunction((item, v) => document.querySelector(`#books tr[data-item="${item}"] td:last-child`)?.textContent === `v${v}`, { timeout: 10_000 }, target.item, bought.version);
      expect((await row(target.item))[1]).toBe(String(target.quantity - 1));
      // The front end agrees with the page, and exactly one order server logged the one order.
      expect(((await get(`get_quantity/${target.item}`)) as { quantity: number }).quantity).toBe(target.quantity - 1);
      await page.waitForFunction(() => [...document.querySelectorAll("#order-servers tr[data-order]")].map((tr) => Number(tr.querySelectorAll("td")[2].textContent)).sort().join() === "0,1", { timeout: 10_000 });
      await shot(page, "bookstore");

      // Crash the primary: the front end promotes catalog-2, and the page says so.
      expect((await c.api("POST", "/nodes/catalog-1/crash")).status).toBe(200);
      await page.waitForFunction(() => document.querySelector('#catalogs tr.leader[data-catalog="catalog-2"]') !== null && document.querySelector('#catalogs tr[data-catalog="catalog-1"] td:nth-child(2)')?.textContent === "down", { timeout: 15_000 });
      await page.waitForSelector('#graph g.node[data-id="catalog-1"].crashed', { timeout: 10_000 });
      await page.waitForSelector('#graph g.node[data-id="catalog-2"].leader', { timeout: 10_000 });
      await shot(page, "bookstore-failover");
      // Restarted, it resyncs and rejoins as the backup (and the run's end needs no long recovery).
      expect((await c.api("POST", "/nodes/catalog-1/restart")).status).toBe(200);
      await page.waitForFunction(() => document.querySelector('#catalogs tr[data-catalog="catalog-1"] td:nth-child(2)')?.textContent === "backup", { timeout: 15_000 });
    } finally {
      expect(await c.stop()).toBe(0);
    }
  }, 90_000);

  test("olympics --tiered: each front end's load, the leading dispatcher, every node's clock error", async () => {
    // Skewed, drifting clocks, so the errors are worth drawing and the page's numbers can be told from zero.
    const c = await startCli(["olympics", "--tiered", "--pull", "2", "--push", "2", "--increments", "200", "--clock-skew", "40", "--clock-drift", "200", "--port", "0"]);
    try {
      const page = await open(browser, c.dashboard);
      const { json } = await c.api<{ nodes: Array<{ id: string; role: string }> }>("GET", "/nodes");
      const frontends = json.nodes.filter((n) => n.role === "frontend").map((n) => n.id).sort();
      expect(frontends).toEqual(["frontend-1", "frontend-2"]);
      // Every client (cacofonix and the four tablets) registered with a front end: the loads add up to 5.
      await page.waitForFunction(
        (fes) => {
          const rows = [...document.querySelectorAll("#fe-loads tr[data-frontend]")];
          return rows.map((r) => r.getAttribute("data-frontend")).sort().join() === (fes as string[]).join() && rows.reduce((a, r) => a + Number(r.querySelectorAll("td")[2].textContent), 0) === 5;
        },
        { timeout: 20_000 },
        frontends,
      );
      // The dispatcher starred on the page is the one the dispatchers' HTTP API names as leader.
      const dispatcher = await until("a dispatcher's HTTP address", () => /dispatcher-1 serves HTTP at (\S+)/.exec(c.output())?.[1]);
      const leader = await until("a leader named by the page and dispatcher-1 alike", async () => {
        const named = ((await (await fetch(dispatcher!)).json()) as { leader: string | null }).leader;
        const starred = await page.$eval(".replica.leader[data-dispatcher]", (e) => e.getAttribute("data-dispatcher")).catch(() => null);
        return named && named === starred ? named : null;
      });
      expect(leader).toMatch(/^dispatcher-\d$/);
      // A clock error for every node, and it moves (live): the numbers change between two looks.
      const ids = json.nodes.map((n) => n.id).sort();
      const errors = () => page.$$eval("#clocks tr[data-node]", (trs) => trs.map((tr) => [tr.getAttribute("data-node"), tr.querySelectorAll("td")[1].textContent ?? ""] as [string, string]));
      await page.waitForFunction((n) => [...document.querySelectorAll("#clocks tr[data-node]")].filter((tr) => Number.isFinite(Number.parseFloat(tr.querySelectorAll("td")[1].textContent ?? ""))).length === n, { timeout: 10_000 }, ids.length);
      const first = await errors();
      expect(first.map(([id]) => id).sort()).toEqual(ids);
      await page.waitForFunction((b) => JSON.stringify([...document.querySelectorAll("#clocks tr[data-node]")].map((tr) => tr.querySelectorAll("td")[1].textContent)) !== b, { timeout: 10_000 }, JSON.stringify(first.map(([, e]) => e)));
      // The numbers are the nodes' own: the unsynced clients' clocks (offset plus slow drift, nobody
      // corrects them) read the same on the page as in the admin API, to within a few ms of drift.
      const fromApi = new Map((await c.api<{ nodes: Array<{ id: string; role: string; stats: { clockErrorMs: number } | null }> }>("GET", "/nodes")).json.nodes.map((n) => [n.id, n] as const));
      const onPage = new Map((await errors()).map(([id, e]) => [id, Number.parseFloat(e)] as const));
      const clients = [...fromApi.values()].filter((n) => n.role.startsWith("tiered-"));
      expect(clients.length).toBe(5);
      for (const n of clients) expect(Math.abs(onPage.get(n.id)! - n.stats!.clockErrorMs)).toBeLessThan(3);
      expect(clients.some((n) => Math.abs(n.stats!.clockErrorMs) > 3)).toBe(true);
      // The burst's 200 ordered increments make at least two raffle winners.
      await page.waitForFunction(() => document.querySelectorAll("#raffle tr td b").length >= 2, { timeout: 30_000 });
      await page.waitForFunction(() => document.querySelectorAll("#clocks svg.spark polyline").length > 0, { timeout: 10_000 });
      await shot(page, "olympics-tiered");
      // The single-server scoreboard is still there, below the tiers.
      await page.waitForSelector("#medals tr[data-team]");
      // Scroll the panel card (not the window: the sticky header would land mid-screenshot).
      await page.$eval(".panel-card", (card) => {
        const c = card as unknown as { scrollTop: number; querySelector(s: string): { offsetTop: number } | null };
        c.scrollTop = (c.querySelector("#medals")?.offsetTop ?? 0) - 120;
      });
      await shot(page, "olympics-tiered-scoreboard");
    } finally {
      // The run's own checks are the tiered tests' business (test/olympics-tiered-threads.test.ts); this one is the page's.
      expect(await c.stop()).toBe(0);
    }
  }, 90_000);
});
