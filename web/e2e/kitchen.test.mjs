// The kitchen's screens in a real browser (headless Debian Chromium through playwright-core):
// device login by code, a whole order from the tablets to the TV board, undo, revocation and
// cancellation. Screenshots of every screen go to $SCREENSHOT_DIR. Run by run.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";
import {
  WEB, AUTH, P, PIZZAMAKER, TABLET, TV, state, api, placeOrder, tracker, orderDetail, tapAt, card, shot, newPage,
  signedIn, pairDevice, setup, teardown,
} from "./lib.mjs";

const MANAGER = { login: "e2e.office", password: "office-password-1", name: "Olga Ivanova" };

let manager;
const tablets = {};
let board;

before(async () => {
  ({ manager } = await setup({ numberBase: 100, manager: MANAGER }));
});

after(teardown);

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
    const tapped = Date.now();
    await card(page, anna.number).click();
    // The board is watched from the tap on: the tablet holds its cards still for a moment
    // after a tap, which has nothing to do with how soon the board knows.
    if (station === "packing") {
      await board.locator(".ready .ticket .n", { hasText: String(anna.number) }).waitFor({ timeout: 3000 });
      const elapsed = Date.now() - tapped;
      console.log(`# order ${anna.number} showed under Ready ${elapsed} ms after the last tap`);
      assert.ok(elapsed <= 1000, `the board took ${elapsed} ms`);
    }
    await card(page, anna.number).waitFor({ state: "detached", timeout: 5000 });
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

test("undo names the tap it takes back, survives a reload, and brings that product back", async () => {
  const page = tablets.dough;
  const boris = 102;
  await card(page, boris).click();
  await card(page, boris).waitFor({ state: "detached" });
  assert.match(await page.locator("#toast").innerText(), /Margherita 25 cm · #102 → Topping/);
  await page.locator("#undo button").waitFor();
  assert.match(await page.locator("#undo button").innerText(), /Undo Margherita 25 cm · #102/);
  await shot(page, "tablet-undo");
  // A reload keeps the offer: it is this tablet's own last tap.
  await page.reload();
  await page.locator("#undo button").waitFor({ timeout: 5000 });
  await page.locator("#undo button").click();
  await card(page, boris).waitFor({ timeout: 5000 });
  assert.match(await page.locator("#toast").innerText(), /Undone: Margherita 25 cm · #102 is back/);
  await page.locator("#undo").waitFor({ state: "detached", timeout: 5000 });
});

test("the undo offer vanishes once the next station has taken the product", async () => {
  const page = tablets.dough;
  const order = await placeOrder("Gleb", [{ name: "Diablo", category: "pizza", size: "30 cm" }]);
  await card(page, order.number).waitFor({ timeout: 5000 });
  await card(page, order.number).click();
  await page.locator("#undo button", { hasText: `#${order.number}` }).waitFor({ timeout: 5000 });
  const pizza = (await orderDetail(order.id)).products[0].id;
  await tapAt("topping", pizza);
  await page.locator("#undo").waitFor({ state: "detached", timeout: 3000 });
});

test("a quick second tap at the same spot does not bump the card that moved into it", async () => {
  const page = tablets.dough;
  const first = await placeOrder("Hana", [{ name: "Pepperoni", category: "pizza", size: "25 cm" }]);
  const second = await placeOrder("Igor", [{ name: "Margherita", category: "pizza", size: "35 cm" }]);
  await card(page, second.number).waitFor({ timeout: 5000 });
  const box = await card(page, first.number).boundingBox();
  const x = box.x + box.width / 2, y = box.y + box.height / 2;
  await page.mouse.click(x, y);
  await page.waitForTimeout(400);
  await page.mouse.click(x, y);
  await card(page, first.number).waitFor({ state: "detached", timeout: 5000 });
  assert.match(await page.locator("#toast").innerText(), new RegExp(`Pepperoni 25 cm · #${first.number}`));
  await page.waitForTimeout(1000);
  assert.equal(await card(page, second.number).count(), 1, "the second order is still waiting at dough");
  const detail = await orderDetail(second.id);
  assert.equal(detail.products[0].station, "dough");
});

test("focus stays on its card through live updates", async () => {
  const page = tablets.dough;
  const hana = await placeOrder("Jana", [{ name: "Four cheese", category: "pizza", size: "30 cm" }]);
  await card(page, hana.number).waitFor({ timeout: 5000 });
  const id = await card(page, hana.number).getAttribute("data-id");
  await card(page, hana.number).focus();
  const next = await placeOrder("Kirill", [{ name: "Hawaiian", category: "pizza", size: "30 cm" }]);
  await card(page, next.number).waitFor({ timeout: 5000 });
  assert.equal(await page.evaluate(() => document.activeElement?.dataset?.id ?? null), id);
});

test("allergens are highlighted exactly as the order declares them, in their own colour", async () => {
  const page = tablets.dough;
  const order = await placeOrder("Lena", [{
    name: "Pepperoni", category: "pizza", size: "30 cm",
    modifiers: ["аллергия на орехи", "extra eggplant", "well done, +2 minutes"], allergens: ["nuts"],
  }]);
  const c = card(page, order.number);
  await c.waitFor({ timeout: 5000 });
  assert.deepEqual(await c.locator(".allergen").allInnerTexts(), ["⚠ Nuts"]);
  assert.deepEqual(await c.locator(".mod").allInnerTexts(), ["аллергия на орехи", "extra eggplant", "well done, +2 minutes"]);
  const colours = await page.evaluate(() => {
    const root = getComputedStyle(document.documentElement);
    const probe = document.createElement("span");
    document.body.append(probe);
    const resolve = (v) => { probe.style.color = v; return getComputedStyle(probe).color; };
    const timers = ["--ok", "--near", "--late"].map((v) => resolve(root.getPropertyValue(v)));
    probe.remove();
    return { allergen: getComputedStyle(document.querySelector(".allergen")).backgroundColor, timers };
  });
  assert.ok(!colours.timers.includes(colours.allergen), JSON.stringify(colours));
  await page.locator("#toast").waitFor({ state: "hidden", timeout: 6000 });
  await shot(page, "tablet");
});

test("a drink is not over target while its pizza is still at dough", async () => {
  const page = tablets.packing;
  const order = await placeOrder("Mila", [{ name: "Calzone", category: "pizza", size: "30 cm" }, { name: "Lemonade", category: "drink", size: "0.5 l" }]);
  const c = card(page, order.number);
  await c.waitFor({ timeout: 5000 });
  assert.match(await c.locator("[data-timer]").innerText(), /^in \d+:\d\d$/);
  // The packing view per order: how much of it is ready here.
  assert.equal(await c.locator(".order-ready").innerText(), `#${order.number}: 1 of 2 ready`);
  assert.ok(await c.evaluate((el) => el.classList.contains("waiting") && !el.classList.contains("late") && !el.classList.contains("near")));
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
  // The cooks see why the cards went: a short alert at each station that had one.
  for (const station of ["dough", "oven"]) {
    const alert = tablets[station].locator(".station-alert", { hasText: `CANCELLED #${order.number}` });
    await alert.waitFor({ timeout: 3000 });
    assert.match(await alert.innerText(), /customer left/);
  }
});

test("a remake arrives first, marked urgent, with its reason", async () => {
  const order = await placeOrder("Nina", [{ name: "Margherita", category: "pizza", size: "30 cm" }]);
  const pizza = (await orderDetail(order.id)).products[0].id;
  await tapAt("dough", pizza);
  const r = await tracker("POST", `/orders/${order.id}/products/${pizza}/remake`, { reason: "dropped on the floor" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const c = card(tablets.dough, order.number);
  await c.waitFor({ timeout: 3000 });
  assert.match(await c.locator(".tag.urgent").innerText(), /URGENT · Remake: dropped on the floor/);
  const first = tablets.dough.locator(".card").first();
  assert.equal(await first.getAttribute("data-id"), pizza);
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

test("the manager rushes an order and it goes to the top of the station", async () => {
  const order = await placeOrder("Oleg", [{ name: "Pepperoni", category: "pizza", size: "35 cm" }]);
  await card(tablets.dough, order.number).waitFor({ timeout: 5000 });
  await manager.goto(`${WEB}/p/${P}/orders/${order.id}`);
  await manager.getByRole("button", { name: "⚡ Rush" }).click();
  await manager.locator(".notice.ok").waitFor();
  const rushed = tablets.dough.locator(".card.urgent", { has: tablets.dough.locator(".num", { hasText: `#${order.number}` }) });
  // A rush publishes no event (see the tracker's README), so the tablet sees it on its next
  // poll (every 10 s), not pushed.
  await rushed.waitFor({ timeout: 15000 });
  assert.match(await rushed.locator(".tag.urgent").innerText(), /URGENT/);
  // Above every card that is not urgent (other urgent ones, such as remakes, share the top).
  const cards = await tablets.dough.locator(".card").evaluateAll((cs) => cs.map((c) => ({ n: c.querySelector(".num").textContent, urgent: c.classList.contains("urgent") })));
  const at = cards.findIndex((c) => c.n === `#${order.number}`);
  const firstPlain = cards.findIndex((c) => !c.urgent);
  assert.ok(at >= 0 && (firstPlain < 0 || at < firstPlain), JSON.stringify(cards));
});

test("all-day counts show how many of each product wait", async () => {
  const order = await placeOrder("Pyotr", [{ name: "Quattro", category: "pizza", size: "40 cm", quantity: 3 }]);
  await card(tablets.dough, order.number).first().waitFor({ timeout: 5000 });
  assert.ok((await tablets.dough.locator(".all-day li").allInnerTexts()).includes("3× Quattro 40 cm"));
});

test("a bump bar (keyboard) picks, taps and undoes; the keys are on screen", async () => {
  const page = tablets.dough;
  assert.match(await page.locator("#keys").innerText(), /Enter done/);
  await page.reload();
  await page.locator(".card").first().waitFor();
  const firstNumber = await page.locator(".card .num").first().innerText();
  await page.keyboard.press("1");
  assert.equal(await page.evaluate(() => document.activeElement.closest(".card") !== null), true);
  await page.keyboard.press("Enter");
  await page.locator("#toast", { hasText: firstNumber }).waitFor({ timeout: 3000 });
  await page.locator("#undo button", { hasText: firstNumber }).waitFor({ timeout: 5000 });
  await page.keyboard.press("u");
  await page.locator("#toast", { hasText: `Undone` }).waitFor({ timeout: 3000 });
  await page.locator(".card .num", { hasText: new RegExp(`^${firstNumber}$`) }).waitFor({ timeout: 5000 });
});

test("recall brings back a product this station sent on, until the next station makes it", async () => {
  const page = tablets.dough;
  const order = await placeOrder("Rita", [{ name: "Carbonara", category: "pizza", size: "30 cm" }]);
  await card(page, order.number).waitFor({ timeout: 5000 });
  await card(page, order.number).click();
  await card(page, order.number).waitFor({ state: "detached", timeout: 5000 });
  await page.locator("#recall").waitFor({ timeout: 5000 });
  await page.keyboard.press("r");
  await page.locator("#recall .recall-form button", { hasText: `Carbonara 30 cm · #${order.number}` }).click();
  await card(page, order.number).waitFor({ timeout: 5000 });
  assert.match(await page.locator("#toast").innerText(), new RegExp(`Recalled: Carbonara 30 cm · #${order.number} is back`));
});

test("the TV board fits 1920×1080 with long names, newest ready first, at most 16", async () => {
  const long = (i) => `${"Konstantin Konstantinopolsky-Vasilievich ".repeat(2).slice(0, 60)} ${String(i).padStart(3, "0")}`;
  const orders = [];
  for (let i = 0; i < 18; i += 1) {
    const order = await placeOrder(long(i), [{ name: "Water", category: "drink" }]);
    const drink = (await orderDetail(order.id)).products[0].id;
    await tapAt("packing", drink);
    orders.push(order);
  }
  const newest = orders[orders.length - 1].number;
  await board.locator(".ready .ticket .n", { hasText: String(newest) }).waitFor({ timeout: 5000 });
  const layout = await board.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
    ready: [...document.querySelectorAll(".ready .ticket")].map((t) => {
      const r = t.getBoundingClientRect();
      const who = t.querySelector(".who");
      return { n: t.querySelector(".n").textContent, right: r.right, bottom: r.bottom, cut: who.scrollWidth > who.clientWidth };
    }),
  }));
  assert.ok(layout.width <= 1920, `the page is ${layout.width} px wide`);
  assert.ok(layout.height <= 1080, `the page is ${layout.height} px high`);
  assert.equal(layout.ready.length, 16);
  assert.equal(layout.ready[0].n, String(newest), "the newest ready order comes first");
  for (const t of layout.ready) {
    assert.ok(t.right <= 1920 && t.bottom <= 1080, `ticket ${t.n} is off screen: ${JSON.stringify(t)}`);
    assert.ok(t.cut, `the long name of ${t.n} ends in an ellipsis`);
  }
  await shot(board, "board-full");
  // Hand them over, so the board is the customers' again.
  for (const order of orders) assert.equal((await tracker("POST", `/orders/${order.id}/hand-over`, {})).status, 200);
});

test("the TV shows a calm reconnecting sign, not the staff's warning", async () => {
  await board.context().setOffline(true);
  try {
    const sign = board.locator("#stale");
    await sign.waitFor({ state: "visible", timeout: 30000 });
    assert.match(await sign.innerText(), /Reconnecting/);
    assert.doesNotMatch(await board.locator("body").innerText(), /out of date/);
  } finally {
    await board.context().setOffline(false);
  }
});

test("sound: the pairing page offers the one-time step, and a blocked screen says it is muted", async () => {
  // A browser with the default autoplay policy: sound needs a gesture on the page.
  const strict = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=document-user-activation-required"] });
  try {
    const context = await strict.newContext({ viewport: TABLET, storageState: await tablets.dough.context().storageState() });
    const page = await context.newPage();
    await page.goto(`${WEB}/station`);
    const muted = page.locator("#sound-state");
    await muted.waitFor({ state: "visible", timeout: 5000 });
    await muted.click();
    await muted.waitFor({ state: "hidden", timeout: 5000 });
    assert.equal(await page.evaluate(() => localStorage.getItem("kitchen.sound")), "on");
    // A new device sees the step next to its code, at the address it used itself.
    const fresh = await (await strict.newContext({ viewport: TABLET })).newPage();
    await fresh.goto(`${WEB.replace("127.0.0.1", "localhost")}/device`);
    await fresh.locator("#enable-sound").click();
    assert.equal(await fresh.evaluate(() => localStorage.getItem("kitchen.sound")), "on");
    assert.match(await fresh.locator(".uri").innerText(), /^http:\/\/localhost:\d+\/activate/);
  } finally {
    await strict.close();
  }
});

test("the manager finds an order by number or name, and stations are listed in route order", async () => {
  const order = await placeOrder("Zoya Searchable", [{ name: "Cola", category: "drink" }]);
  await manager.goto(`${WEB}/p/${P}/orders`);
  await manager.locator("input[name=q]").fill(String(order.number));
  await manager.getByRole("button", { name: "Find" }).click();
  await manager.waitForURL(/q=/);
  assert.deepEqual(await manager.locator("td.num a").allInnerTexts(), [String(order.number)]);
  await manager.goto(`${WEB}/p/${P}/orders?q=searchable`);
  assert.deepEqual(await manager.locator("td.num a").allInnerTexts(), [String(order.number)]);
  await manager.goto(`${WEB}/activate`);
  const options = await manager.locator("select[name=station]").first().locator("option").evaluateAll((os) => os.map((o) => o.value).filter((v) => v));
  assert.deepEqual(options, ["dough", "topping", "oven", "packing"]);
});

test("kitchen staff who sign in on the website are told where their work is and can sign out", async () => {
  const cook = { login: "e2e.cook", password: "cook-password-123", name: "Vera (kitchen)" };
  const created = await api(AUTH, "POST", "/api/v1/users", state.adminToken, {
    login: cook.login, display_name: cook.name, password: cook.password,
    roles: [{ role: "kitchen_staff", pizzeria_id: P }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const page = await signedIn(cook.login, cook.password);
  await page.locator("#kitchen-only").waitFor();
  assert.match(await page.locator("#kitchen-only").innerText(), /station tablets/);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
});

test("a station with a backlog says how many wait and that more are not shown", async () => {
  const page = tablets.dough;
  const orders = [];
  for (let i = 0; i < 3; i += 1) {
    orders.push(await placeOrder(`Backlog ${i}`, Array.from({ length: 4 }, () => ({ name: "Pepperoni", category: "pizza", size: "30 cm", quantity: 45 }))));
  }
  await page.locator(".more-waiting").waitFor({ timeout: 10000 });
  const total = Number(await page.locator(".waiting").getAttribute("data-total"));
  assert.ok(total > 540, `total ${total}`);
  assert.equal(await page.locator(".card").count(), 500);
  assert.match(await page.locator(".more-not-shown").innerText(), new RegExp(`${total - 500} more waiting, not shown`));
  await page.locator("#more-below").waitFor({ state: "visible" });
  for (const order of orders) assert.equal((await tracker("POST", `/orders/${order.id}/cancel`, { reason: "e2e backlog" })).status, 200);
});

test("a forged form is refused with a friendly page", async () => {
  const response = await manager.request.post(`${WEB}/p/${P}/orders/${randomUUID()}/cancel`, {
    form: { csrf: "forged", reason: "x" },
    headers: { origin: WEB },
  });
  assert.equal(response.status(), 403);
  assert.match(await response.text(), /This form has expired/);
});
