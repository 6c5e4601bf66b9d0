// What every browser scenario file shares: the stack run.sh started (from the environment),
// the API helpers, pairing a device by code, and a signed-in manager. Each scenario file runs in
// its own process against the same pizzeria, so each gives `setup` its own order-number base and
// manager login: cards are found by number, and a number must not repeat across files.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

export const WEB = process.env.WEB_URL;
export const TRACKER = process.env.TRACKER_URL;
export const AUTH = process.env.AUTH_URL;
export const P = process.env.PIZZERIA_ID;
export const SHOTS = process.env.SCREENSHOT_DIR;
// Kitchen staff of the demo pizzeria, from `auth seed-demo`.
export const PIZZAMAKER = "Pavel (kitchen)";
export const TABLET = { width: 1280, height: 800 };
export const TV = { width: 1920, height: 1080 };
export const DESKTOP = { width: 1440, height: 900 };

/// Set by `setup`: the browser, the signed-in manager's page and the chain admin's API token.
export const state = { browser: null, manager: null, adminToken: null, number: 100 };

export async function api(base, method, path, token, body) {
  const response = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/// An order as the cashier's till would place it.
export async function placeOrder(customer, items, extra = {}) {
  state.number += 1;
  const number = state.number;
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

/// The tracker's API as the chain admin (who holds kitchen.work and orders.manage everywhere).
export const tracker = (method, path, body) => api(TRACKER, method, `/api/v1/pizzerias/${P}${path}`, state.adminToken, body);
export const orderDetail = async (id) => (await tracker("GET", `/orders/${id}`)).body;
export async function tapAt(station, productId) {
  // The chain admin taps as themselves: a signed-in user cannot name someone else.
  const r = await tracker("POST", `/stations/${station}/products/${productId}/tap`, {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}
export const card = (page, n) => page.locator(".card", { has: page.locator(".num", { hasText: new RegExp(`^#${n}$`) }) });
export const shot = async (page, name, fullPage = false) => {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage });
};

export async function newPage(viewport) {
  const context = await state.browser.newContext({ viewport, deviceScaleFactor: 1 });
  return context.newPage();
}

/// A desktop browser signed in at the web.
export async function signedIn(login, password) {
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

/// The device shows its code; a manager approves it (in `language`, if given: `ru`); the device
/// opens its screen by itself.
/// Each pairing costs the approver's session two code entries (look up, approve) of the devices
/// service's 10 a minute.
export async function pairDevice({ kind, station, name, language, screenshots = false, approver = state.manager }) {
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
  if (language) await form.locator("select[name=language]").selectOption(language);
  await form.locator("input[name=present]").check();
  if (screenshots) await shot(approver, "activation", true);
  await form.getByRole("button", { name: "Approve" }).click();
  await approver.locator(".notice.ok").waitFor();
  const screen = { order_board: /\/board$/, motivation_board: /\/motivation$/ }[kind] ?? /\/station$/;
  await page.waitForURL(screen, { timeout: 15000 });
  return page;
}

/// Starts Chromium, signs the chain admin in over the API, creates `manager` (an office manager
/// who also runs shifts in the demo pizzeria) and signs them in at the web. `numberBase` is where
/// this file's order numbers start.
export async function setup({ numberBase, manager }) {
  state.number = numberBase;
  state.browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
  });
  const admin = await api(AUTH, "POST", "/api/v1/sessions", null,
    { login: process.env.ADMIN_LOGIN, password: process.env.ADMIN_PASSWORD });
  assert.equal(admin.status, 201, JSON.stringify(admin.body));
  state.adminToken = admin.body.token;
  const created = await api(AUTH, "POST", "/api/v1/users", admin.body.token, {
    login: manager.login, display_name: manager.name, password: manager.password,
    roles: [{ role: "office_manager", pizzeria_id: P }, { role: "shift_manager", pizzeria_id: P }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  state.manager = await signedIn(manager.login, manager.password);
  assert.match(state.manager.url(), new RegExp(`/p/${P}/orders`));
  return state;
}

export async function teardown() {
  await state.browser?.close();
}
