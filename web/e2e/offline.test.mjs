// A station tablet through a dropped link (issue 11): taps made offline wait on the tablet and
// are sent when the link returns, a send whose answer was lost is sent again and applied once,
// and a tap that became impossible meanwhile is reported by product and order. Also who did it
// (issue 12 item 7) and handing over at the counter. Run by run.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { WEB, P, PIZZAMAKER, placeOrder, tracker, orderDetail, card, shot, pairDevice, setup, teardown } from "./lib.mjs";

const MANAGER = { login: "e2e.offline", password: "offline-password-1", name: "Oksana Petrova" };

let dough, packing, manager;

before(async () => {
  ({ manager } = await setup({ numberBase: 3000, manager: MANAGER }));
});

after(teardown);

const stationOf = async (order) => (await orderDetail(order.id)).products[0].station;
const completions = async (order) =>
  (await orderDetail(order.id)).timeline.filter((t) => t.kind === "ProductStageCompleted");

test("taps made offline wait on the tablet, go out when the link returns, and an impossible one is reported", async () => {
  dough = await pairDevice({ kind: "kitchen_station", station: "dough", name: "Offline dough tablet" });
  // A cook checks in: the queued taps are theirs, and the tracker checks the name against the
  // pizzeria's kitchen staff list.
  await dough.locator("a.checkin").click();
  await dough.getByRole("button", { name: PIZZAMAKER, exact: true }).click();
  await dough.waitForURL(/\/station$/);
  const anna = await placeOrder("Anna", [{ name: "Pepperoni", category: "pizza", size: "30 cm" }]);
  const boris = await placeOrder("Boris", [{ name: "Margherita", category: "pizza", size: "25 cm" }]);
  const clara = await placeOrder("Clara", [{ name: "Diablo", category: "pizza", size: "35 cm" }]);
  for (const order of [anna, boris, clara]) await card(dough, order.number).waitFor({ timeout: 5000 });

  await dough.context().setOffline(true);
  for (const order of [anna, boris, clara]) await card(dough, order.number).click();
  const waiting = dough.locator("#offline-state");
  await waiting.waitFor({ state: "visible", timeout: 3000 });
  assert.equal(await waiting.innerText(), "offline, 3 taps waiting");
  await shot(dough, "tablet-offline");
  // Nothing reached the tracker; meanwhile the till cancels Boris's order.
  assert.equal(await stationOf(anna), "dough");
  assert.equal((await tracker("POST", `/orders/${boris.id}/cancel`, { reason: "customer left" })).status, 200);

  await dough.context().setOffline(false);
  await waiting.waitFor({ state: "hidden", timeout: 10000 });
  const problems = dough.locator("#tap-problems");
  await problems.waitFor({ state: "visible", timeout: 5000 });
  const reported = await problems.innerText();
  assert.match(reported, new RegExp(`Not done: Margherita 25 cm · #${boris.number}`));
  assert.match(reported, /This order was cancelled\./);
  assert.equal(await stationOf(anna), "topping");
  assert.equal(await stationOf(clara), "topping");
  // By the cook checked in at the tablet, from the tablet's own token.
  const [done] = await completions(anna);
  assert.equal(done.actor, PIZZAMAKER);
  assert.match(done.principal, /^device:/);
  assert.ok(done.actor_user_id, "the cook's user id is recorded");
  await problems.getByRole("button", { name: "OK, seen" }).click();
  await problems.waitFor({ state: "hidden" });

  // Undo by the tap's id works for a tap that came from the queue.
  const undo = dough.locator("#undo button", { hasText: `Diablo 35 cm · #${clara.number}` });
  await undo.waitFor({ timeout: 5000 });
  await undo.click();
  await card(dough, clara.number).waitFor({ timeout: 5000 });
  assert.equal(await stationOf(clara), "dough");
});

test("a tap whose answer was lost is sent again with its id and applied once", async () => {
  const dmitry = await placeOrder("Dmitry", [{ name: "Hawaii", category: "pizza", size: "30 cm" }]);
  await card(dough, dmitry.number).waitFor({ timeout: 5000 });
  // The first send reaches the tracker, but its answer never reaches the tablet.
  const sent = [];
  let lost = false;
  await dough.route("**/station/tap/**", async (route) => {
    sent.push(new URLSearchParams(route.request().postData()).get("client_tap_id"));
    if (!lost) {
      lost = true;
      await route.fetch();
      await route.abort("failed");
    } else {
      await route.continue();
    }
  });
  await card(dough, dmitry.number).click();
  await dough.locator("#toast", { hasText: `Hawaii 30 cm · #${dmitry.number} → Topping` }).waitFor({ timeout: 10000 });
  await dough.unroute("**/station/tap/**");
  assert.equal(sent.length, 2, "sent twice");
  assert.ok(sent[0], "with the tablet's own id");
  assert.equal(sent[1], sent[0], "the same id both times");
  assert.equal((await completions(dmitry)).length, 1, "applied once");
  assert.equal(await stationOf(dmitry), "topping");
  assert.ok(await dough.locator("#tap-problems").isHidden(), "nothing to report");
  assert.ok(await dough.locator("#offline-state").isHidden(), "nothing waiting");
});

test("the packing tablet hands a ready order over at the counter, as itself", async () => {
  packing = await pairDevice({ kind: "kitchen_station", station: "packing", name: "Counter tablet" });
  const elena = await placeOrder("Elena", [{ name: "Cola 0.5", category: "drink" }]);
  await card(packing, elena.number).waitFor({ timeout: 5000 });
  await card(packing, elena.number).click();
  const handOver = packing.locator(".handover-form button", { hasText: `#${elena.number}` });
  await handOver.waitFor({ timeout: 5000 });
  assert.match(await handOver.innerText(), /Elena/);
  await shot(packing, "tablet-hand-over");
  await handOver.click();
  await packing.locator("#toast", { hasText: `Handed over: #${elena.number} Elena` }).waitFor({ timeout: 5000 });
  await handOver.waitFor({ state: "detached", timeout: 5000 });
  const detail = await orderDetail(elena.id);
  assert.equal(detail.order.status, "handed_over");
  const entry = detail.timeline.find((t) => t.kind === "OrderHandedOver");
  assert.equal(entry.actor, "Counter tablet");
  assert.match(entry.principal, /^device:/);
});

test("the dough tablet offers no hand-over, and the tracker refuses one from it", async () => {
  const order = await placeOrder("Fyodor", [{ name: "Water", category: "drink" }]);
  const product = (await orderDetail(order.id)).products[0].id;
  assert.equal((await tracker("POST", `/stations/packing/products/${product}/tap`, {})).status, 200);
  await dough.reload();
  assert.equal(await dough.locator(".handover-form").count(), 0);
  const refused = await dough.request.post(`${WEB}/station/hand-over/${order.id}`, {
    form: { csrf: await dough.locator("body").getAttribute("data-csrf") },
    headers: { accept: "application/json", origin: WEB },
  });
  assert.equal(refused.status(), 403);
  assert.equal((await orderDetail(order.id)).order.status, "packed");
  assert.equal((await tracker("POST", `/orders/${order.id}/hand-over`, {})).status, 200);
});

test("a pre-order is scheduled for the manager, on no station, until it fires at its prep time", async () => {
  // Promised a few seconds after the pizza's route takes, so it fires a few seconds from now.
  const routes = (await tracker("GET", "")).body.routes;
  const prep = routes.pizza.stages.reduce((sum, s) => sum + s.target_seconds, 0);
  const promised = new Date(Date.now() + (prep + 4) * 1000).toISOString();
  const order = await placeOrder("Galina", [{ name: "Calzone", category: "pizza", size: "30 cm" }], { promised_at: promised });
  const held = await orderDetail(order.id);
  assert.ok(held.order.fires_at, "held until it fires");
  assert.equal(held.products[0].station, null);
  await manager.goto(`${WEB}/p/${P}/orders`);
  const row = manager.locator("table.orders tr", { has: manager.locator("td.num", { hasText: String(order.number) }) });
  assert.match(await row.innerText(), /Scheduled · fires \d\d:\d\d/);
  await dough.reload();
  assert.equal(await card(dough, order.number).count(), 0, "no station sees it yet");
  // The tracker fires it; the tablet is told and shows the card.
  await card(dough, order.number).waitFor({ timeout: 20000 });
  const fired = await orderDetail(order.id);
  assert.equal(fired.order.fires_at, null);
  assert.ok(fired.timeline.some((t) => t.kind === "OrderFired"));
});
