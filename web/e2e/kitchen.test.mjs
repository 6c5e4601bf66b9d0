// The kitchen's screens in a real browser (headless Debian Chromium through playwright-core):
// device login by code, a whole order from the tablets to the TV board, undo, revocation and
// cancellation. Screenshots of every screen go to $SCREENSHOT_DIR. Run by run.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const WEB = process.env.WEB_URL;
const TRACKER = process.env.TRACKER_URL;
const AUTH = process.env.AUTH_URL;
const P = process.env.PIZZERIA_ID;
const SHOTS = process.env.SCREENSHOT_DIR;
const MANAGER = { login: "e2e.office", password: "office-password-1", name: "Olga Ivanova" };
// Kitchen staff of the demo pizzeria, from `auth seed-demo`.
const PIZZAMAKER = "Pavel (kitchen)";
const TABLET = { width: 1280, height: 800 };
const TV = { width: 1920, height: 1080 };
const DESKTOP = { width: 1440, height: 900 };

let browser;
let manager;
const tablets = {};
let board;
let number = 100;

async function api(base, method, path, token, body) {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/// An order as the cashier's till would place it.
async function placeOrder(customer, items, extra = {}) {
  number += 1;
  const order = {
    order_id: randomUUID(), pizzeria_id: P, number, customer_name: customer, source: "restaurant",
    placed_at: new Date().toISOString(),
    items: items.map((i) => ({ product_id: randomUUID(), quantity: 1, modifiers: [], ...i })),
    ...extra,
  };
  const r = await api(TRACKER, "POST", "/api/v1/orders", process.env.INTAKE_KEY, order);
  assert.ok(r.status === 201 || r.status === 200, `order intake answered ${r.status} ${JSON.stringify(r.body)}`);
  return { id: order.order_id, number };
}

const card = (page, n) => page.locator(".card", { has: page.locator(".num", { hasText: new RegExp(`^#${n}$`) }) });
const shot = async (page, name, fullPage = false) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage });
};

async function newPage(viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  return context.newPage();
}

/// A desktop browser signed in at the web.
async function signedIn(login, password) {
  const page = await newPage(DESKTOP);
  page.on("dialog", (d) => d.accept());
  await page.goto(`${WEB}/`);
  await page.waitForURL(/\/login/);
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/login"));
  return page;
}

/// The device shows its code; a manager approves it; the device opens its screen by itself.
/// Each pairing costs the approver's session two code entries (look up, approve) of the devices
/// service's 10 a minute.
async function pairDevice({ kind, station, name, screenshots = false, approver = manager }) {
  const page = await newPage(kind === "kitchen_station" ? TABLET : TV);
  await page.goto(`${WEB}/device`);
  const code = (await page.locator("#user-code").textContent()).trim();
  assert.match(code, /^[A-Z]{4}-[A-Z]{4}$/);
  if (screenshots) await shot(page, "device-login");
  await approver.goto(`${WEB}/activate?user_code=${encodeURIComponent(code)}`);
  await approver.locator("section.request").waitFor();
  const form = approver.locator("form.approve");
  await form.locator(`input[name=kind][value=${kind}]`).check();
  if (station) await form.locator("select[name=station]").selectOption(station);
  await form.locator("input[name=name]").fill(name);
  await form.locator("input[name=present]").check();
  if (screenshots) await shot(approver, "activation", true);
  await form.getByRole("button", { name: "Approve" }).click();
  await approver.locator(".notice.ok").waitFor();
  const screen = { order_board: /\/board$/, motivation_board: /\/motivation$/ }[kind] ?? /\/station$/;
  await page.waitForURL(screen, { timeout: 15000 });
  return page;
}

before(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
  });
  // An office manager who also runs shifts: approves and manages devices, manages orders.
  const admin = await api(AUTH, "POST", "/api/v1/sessions", null,
    { login: process.env.ADMIN_LOGIN, password: process.env.ADMIN_PASSWORD });
  assert.equal(admin.status, 201, JSON.stringify(admin.body));
  const created = await api(AUTH, "POST", "/api/v1/users", admin.body.token, {
    login: MANAGER.login, display_name: MANAGER.name, password: MANAGER.password,
    roles: [{ role: "office_manager", pizzeria_id: P }, { role: "shift_manager", pizzeria_id: P }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  manager = await signedIn(MANAGER.login, MANAGER.password);
  assert.match(manager.url(), new RegExp(`/p/${P}/orders`));
});

after(async () => {
  await browser?.close();
});

test("a tablet logs in by code, a manager approves it, and it lands on its station", async () => {
  tablets.dough = await pairDevice({ kind: "kitchen_station", station: "dough", name: "Dough tablet", screenshots: true });
  assert.equal(await tablets.dough.locator(".station-bar h1").textContent(), "Dough");
  for (const station of ["topping", "oven", "packing"]) {
    tablets[station] = await pairDevice({ kind: "kitchen_station", station, name: `${station[0].toUpperCase()}${station.slice(1)} tablet` });
  }
  board = await pairDevice({ kind: "order_board", name: "Dining room TV" });
  await board.locator(".column.ready h2").waitFor();
});

test("an order tapped through every station is under Ready on the TV board within 1 s of the last tap", async () => {
  const anna = await placeOrder("Anna", [
    { name: "Pepperoni", category: "pizza", size: "30 cm", modifiers: ["no onion", "nut allergy"] },
  ]);
  // Company for the screenshots: more orders waiting at the stations.
  await placeOrder("Boris", [{ name: "Margherita", category: "pizza", size: "25 cm", modifiers: ["extra cheese"] }]);
  await placeOrder("Chloé", [{ name: "Four cheese", category: "pizza", size: "35 cm", modifiers: ["gluten-free base"] }]);
  await placeOrder("Dmitry", [{ name: "Potato wedges", category: "side" }, { name: "Cola 0.5", category: "drink" }], { show_number_only: true });
  // The pizzamaker checks in at the dough station with the tablet's own device token: auth
  // gives a station tablet its pizzeria's kitchen staff.
  await tablets.dough.locator("a.checkin").click();
  await tablets.dough.waitForURL(/\/station\/checkin$/);
  await shot(tablets.dough, "checkin");
  await tablets.dough.getByRole("button", { name: PIZZAMAKER, exact: true }).click();
  await tablets.dough.waitForURL(/\/station$/);
  assert.equal((await tablets.dough.locator("a.checkin").textContent()).trim(), `✓ ${PIZZAMAKER}`);
  anna.actors = { dough: PIZZAMAKER, topping: "Topping tablet", oven: "Oven tablet", packing: "Packing tablet" };
  for (const station of ["dough", "topping", "oven", "packing"]) {
    const page = tablets[station];
    await card(page, anna.number).waitFor({ timeout: 5000 });
    if (station === "dough") await shot(page, "tablet");
    const tapped = Date.now();
    await card(page, anna.number).click();
    await card(page, anna.number).waitFor({ state: "detached", timeout: 5000 });
    if (station === "packing") {
      await board.locator(".ready .ticket .n", { hasText: String(anna.number) }).waitFor({ timeout: 3000 });
      const elapsed = Date.now() - tapped;
      console.log(`# order ${anna.number} showed under Ready ${elapsed} ms after the last tap`);
      assert.ok(elapsed <= 1000, `the board took ${elapsed} ms`);
    }
  }
  await board.waitForTimeout(2200);
  await shot(board, "board");
  // Each tap carries who did it: the name checked in at the dough tablet, else the tablet's.
  await manager.goto(`${WEB}/p/${P}/orders/${anna.id}`);
  for (const [station, actor] of Object.entries(anna.actors)) {
    const title = `${station[0].toUpperCase()}${station.slice(1)}`;
    const entry = manager.locator("ol.timeline li", { hasText: "Stage done" }).filter({ hasText: ` · ${title} · ` });
    const text = await entry.innerText();
    assert.ok(text.includes(` · by ${actor}`), `the ${station} tap should be by ${actor}: ${text}`);
  }
});

test("undo brings the last tap back", async () => {
  const page = tablets.dough;
  const boris = 102;
  await card(page, boris).click();
  await card(page, boris).waitFor({ state: "detached" });
  await page.locator("#undo button").waitFor();
  await shot(page, "tablet-undo");
  await page.locator("#undo button").click();
  await card(page, boris).waitFor({ timeout: 5000 });
  assert.ok(await page.locator("#undo").isHidden());
});

test("a revoked device drops back to the login page", async () => {
  await manager.goto(`${WEB}/activate`);
  const row = manager.locator(`tr:has(input[value="Topping tablet"])`);
  await row.getByRole("button", { name: "Revoke" }).click();
  const notice = await manager.locator(".notice.ok").textContent();
  assert.match(notice, /Revoked/);
  await tablets.topping.waitForURL(/\/device$/, { timeout: 15000 }).catch(async (e) => {
    console.log("# tablet still at", tablets.topping.url(), await tablets.topping.locator("body").innerText());
    throw e;
  });
  await tablets.topping.locator("#user-code").waitFor();
  await manager.goto(`${WEB}/activate`);
  await shot(manager, "devices", true);
});

test("the manager cancels an order and its cards leave the tablets", async () => {
  const order = await placeOrder("Eva", [
    { name: "Hawaiian", category: "pizza", size: "30 cm" },
    { name: "Chicken wings", category: "side", modifiers: ["spicy"] },
  ]);
  await card(tablets.dough, order.number).waitFor({ timeout: 5000 });
  await card(tablets.oven, order.number).waitFor({ timeout: 5000 });
  await manager.goto(`${WEB}/p/${P}/orders`);
  await shot(manager, "manager-orders");
  await manager.getByRole("link", { name: String(order.number), exact: true }).click();
  await manager.locator("input[name=reason]").first().fill("customer left");
  await manager.getByRole("button", { name: "Cancel order" }).click();
  await manager.locator(".notice.ok").waitFor();
  await card(tablets.dough, order.number).waitFor({ state: "detached", timeout: 3000 });
  await card(tablets.oven, order.number).waitFor({ state: "detached", timeout: 3000 });
});

test("the manager's other screens render: order page, performance, motivation", async () => {
  await manager.goto(`${WEB}/p/${P}/orders?status=packed`);
  await manager.getByRole("link", { name: "101", exact: true }).click();
  await manager.locator("ol.timeline li").first().waitFor();
  await shot(manager, "order", true);
  await manager.goto(`${WEB}/p/${P}/performance`);
  await manager.locator("svg.chart").first().waitFor();
  await shot(manager, "performance", true);
  await manager.goto(`${WEB}/p/${P}/motivation`);
  await manager.locator("ol.leaderboard").waitFor();
  // The kitchen's own motivation board: the tracker's actor report, and auth's kitchen staff
  // to tell people from tablets, both read with the board's device token.
  // The manager paired five devices a moment ago, all of their session's code entries for this
  // minute; they approve this one from a second browser (a session of its own).
  const phone = await signedIn(MANAGER.login, MANAGER.password);
  const wall = await pairDevice({ kind: "motivation_board", name: "Kitchen wall", approver: phone });
  const names = await wall.locator("ol.leaderboard li .name").allInnerTexts();
  assert.deepEqual(names, [PIZZAMAKER], "only people are ranked");
  assert.match(await wall.locator("p.lead").innerText(), /without a name/);
  await shot(wall, "motivation");
});

test("a forged form is refused with a friendly page", async () => {
  const response = await manager.request.post(`${WEB}/p/${P}/orders/${randomUUID()}/cancel`, {
    form: { csrf: "forged", reason: "x" },
    headers: { origin: WEB },
  });
  assert.equal(response.status(), 403);
  assert.match(await response.text(), /This form has expired/);
});
