// Issue 11's screens in a real browser: every screen in the viewer's language (a device's as
// its approver chose it, a person's as they chose it, else the browser's), times in the
// pizzeria's time zone, the TV board's privacy modes with a chime per newly ready order, and
// station tablets speaking new products. Nothing in the product is stubbed: the scenarios only
// watch what the page does (speech and tones are recorded by wrapping the browser's own calls).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  WEB, P, DESKTOP, placeOrder, tracker, orderDetail, tapAt, card, shot, newPage, signedIn,
  pairDevice, setup, teardown, state,
} from "./lib.mjs";

const MANAGER = { login: "e2e.screens", password: "screens-password-1", name: "Sofia Screens" };

let manager;
let russianTablet;

/// Records what the page asks the browser to say and how many tones it plays, by wrapping the
/// browser's own functions (they still run).
const WATCH = () => {
  window.__spoken = [];
  window.__tones = 0;
  if (window.speechSynthesis) {
    const speak = window.speechSynthesis.speak.bind(window.speechSynthesis);
    window.speechSynthesis.speak = (utterance) => {
      window.__spoken.push({ text: utterance.text, lang: utterance.lang });
      return speak(utterance);
    };
  }
  const Audio = window.AudioContext || window.webkitAudioContext;
  if (Audio) {
    const create = Audio.prototype.createOscillator;
    Audio.prototype.createOscillator = function () {
      window.__tones += 1;
      return create.call(this);
    };
  }
};

async function watched(page) {
  await page.addInitScript(WATCH);
  await page.reload();
  return page;
}

/// Reloads `page` until `ready` holds (a change made elsewhere reaches a screen at its next
/// refresh, once the services' caches have dropped the old answer).
async function reloadUntil(page, ready, what) {
  for (let i = 0; i < 40; i++) {
    if (await ready()) return;
    await page.waitForTimeout(250);
    await page.reload();
  }
  assert.fail(`never saw ${what}`);
}

/// The Devices page row of the device called `name`.
const deviceRow = (page, name) => page.locator("table.devices tr", { has: page.locator(`input[value="${name}"]`) });

/// An order whose pizza has been through every station: ready on the board.
async function readyOrder(customer) {
  const order = await placeOrder(customer, [{ name: "Margherita", category: "pizza", size: "25 cm" }]);
  const product = (await orderDetail(order.id)).products[0].id;
  for (const station of ["dough", "topping", "oven", "packing"]) await tapAt(station, product);
  return order;
}

before(async () => {
  ({ manager } = await setup({ numberBase: 4000, manager: MANAGER }));
});

after(async () => {
  await state.manager?.goto(`${WEB}/p/${P}/orders`).catch(() => {});
  await teardown();
});

test("a browser that asks for Russian gets the sign-in page in Russian, any other English", async () => {
  const russian = await (await state.browser.newContext({ viewport: DESKTOP, locale: "ru-RU" })).newPage();
  await russian.goto(`${WEB}/login`);
  assert.equal(await russian.locator("html").getAttribute("lang"), "ru");
  assert.equal(await russian.locator("h1").textContent(), "Кухня: вход");
  assert.equal(await russian.title(), "Вход · Кухня");
  const german = await (await state.browser.newContext({ viewport: DESKTOP, locale: "de-DE" })).newPage();
  await german.goto(`${WEB}/login`);
  assert.equal(await german.locator("h1").textContent(), "Kitchen: sign in");
});

test("a tablet approved in Russian shows its station in Russian, and follows a change of language", async () => {
  russianTablet = await pairDevice({ kind: "kitchen_station", station: "dough", name: "Тесто планшет", language: "ru" });
  await russianTablet.locator(".station-bar h1").waitFor();
  assert.equal(await russianTablet.locator("html").getAttribute("lang"), "ru");
  assert.equal(await russianTablet.locator(".station-bar h1").textContent(), "Тесто");
  assert.equal((await russianTablet.locator("a.checkin").textContent()).trim(), "Отметиться");
  const order = await placeOrder("Ольга", [{ name: "Пепперони", category: "pizza", size: "30 см", allergens: ["milk"] }]);
  const pizza = card(russianTablet, order.number);
  await pizza.waitFor({ timeout: 5000 });
  assert.match(await pizza.locator(".target").textContent(), /^норматив \d+:\d\d · нажмите, когда готово$/);
  assert.equal((await pizza.locator(".allergen").textContent()).trim(), "⚠ Молоко");
  assert.match(await russianTablet.locator("p.waiting").textContent(), /\d+ в очереди/);
  assert.equal(await russianTablet.title(), "Тесто · Кухня");
  // The page script speaks Russian too.
  await pizza.click();
  await russianTablet.locator("#toast", { hasText: `Готово: Пепперони 30 см · #${order.number} → Начинка` }).waitFor();
  await shot(russianTablet, "tablet-ru");

  // The manager (in English) moves the tablet to English on the Devices page.
  await manager.goto(`${WEB}/activate#devices`);
  const row = deviceRow(manager, "Тесто планшет");
  assert.equal(await row.locator("select[name=language]").inputValue(), "ru");
  await row.locator("select[name=language]").selectOption("en");
  await row.getByRole("button", { name: "Save" }).click();
  await manager.locator(".notice.ok", { hasText: "Saved" }).waitFor();
  await reloadUntil(russianTablet, async () => (await russianTablet.locator(".station-bar h1").textContent()) === "Dough", "the tablet in English");
  assert.equal(await russianTablet.locator("html").getAttribute("lang"), "en");
  // And back, for the announcements below.
  await manager.goto(`${WEB}/activate#devices`);
  await deviceRow(manager, "Тесто планшет").locator("select[name=language]").selectOption("ru");
  await deviceRow(manager, "Тесто планшет").getByRole("button", { name: "Save" }).click();
  await manager.locator(".notice.ok").waitFor();
  await reloadUntil(russianTablet, async () => (await russianTablet.locator(".station-bar h1").textContent()) === "Тесто", "the tablet in Russian again");
});

test("a manager switches to Russian and sees the orders page in Russian, on every computer", async () => {
  await manager.goto(`${WEB}/p/${P}/orders`);
  assert.equal(await manager.locator("h1").textContent(), "Today's orders");
  await manager.getByRole("button", { name: "Русский" }).click();
  await manager.waitForURL(new RegExp(`/p/${P}/orders$`));
  assert.equal(await manager.locator("html").getAttribute("lang"), "ru");
  assert.equal(await manager.locator("h1").textContent(), "Заказы за сегодня");
  assert.equal(await manager.title(), "Заказы · Кухня");
  assert.equal((await manager.locator("nav.filters a").first().textContent()).trim(), "Все");
  assert.equal((await manager.locator("table.orders th").nth(1).textContent()).trim(), "Клиент");
  assert.equal(await manager.getByRole("button", { name: "Выйти" }).count(), 1);
  // The live refresh speaks Russian too (the fragment the page script fetches).
  const live = await manager.evaluate(async (url) => (await fetch(url, { headers: { "X-Live": "1" } })).text(),
    `/p/${P}/orders/live`);
  assert.match(live, /Клиент/);
  await shot(manager, "manager-orders-ru");
  // Stored with the person (auth), not the browser: another computer signs in in Russian.
  const elsewhere = await signedIn(MANAGER.login, MANAGER.password);
  assert.equal(await elsewhere.locator("h1").textContent(), "Заказы за сегодня");
  // Error pages too.
  await elsewhere.goto(`${WEB}/p/${P}/orders/00000000-0000-4000-8000-000000000000`);
  assert.equal(await elsewhere.locator("h1").textContent(), "Не найдено");
  await manager.getByRole("button", { name: "English" }).click();
  await manager.waitForURL(new RegExp(`/p/${P}/orders$`));
  assert.equal(await manager.locator("h1").textContent(), "Today's orders");
});

test("times on the manager's pages are in the pizzeria's time zone", async () => {
  const pizzeria = (await tracker("GET", "")).body;
  const zone = "Asia/Yekaterinburg";
  const put = await tracker("PUT", "", { name: pizzeria.name, time_zone: zone });
  assert.ok(put.status < 300, JSON.stringify(put.body));
  try {
    const order = await placeOrder("Zeno", [{ name: "Cola", category: "drink" }]);
    const accepted = new Date((await orderDetail(order.id)).order.accepted_at);
    const local = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(accepted);
    await manager.goto(`${WEB}/p/${P}/orders?q=${order.number}`);
    const line = manager.locator("table.orders tr", { has: manager.locator("td.num", { hasText: String(order.number) }) });
    assert.equal((await line.locator("td").nth(4).textContent()).trim(), local);
    await manager.goto(`${WEB}/p/${P}/orders/${order.id}`);
    assert.equal((await manager.locator("xpath=//dt[.='Accepted']/following-sibling::dd[1]").textContent()).trim(), local);
    // The station tablet's clock too (read between two readings of the time, so a minute
    // turning over in between cannot fail it).
    const inZone = () => new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date());
    await russianTablet.reload();
    const before = inZone();
    await russianTablet.waitForFunction(() => document.querySelector("[data-clock]").textContent.length > 0);
    const shown = await russianTablet.locator("[data-clock]").textContent();
    assert.ok([before, inZone()].includes(shown), `the tablet shows ${shown}, the pizzeria's time is ${before}`);
  } finally {
    await tracker("PUT", "", { name: pizzeria.name, time_zone: pizzeria.time_zone });
  }
});

test("the TV board shows names, numbers only or icons, as the manager chooses per board, and chimes per ready order", async () => {
  const board = await watched(await pairDevice({ kind: "order_board", name: "Screens TV" }));
  const setMode = async (mode) => {
    await manager.goto(`${WEB}/activate#devices`);
    const row = deviceRow(manager, "Screens TV");
    await row.locator("select[name=board_mode]").selectOption(mode);
    await row.getByRole("button", { name: "Save" }).click();
    await manager.locator(".notice.ok").waitFor();
  };
  const ticket = (n) => board.locator(".ready .ticket", { has: board.locator(".n", { hasText: new RegExp(`^${n}$`) }) });

  const named = await readyOrder("Veronika");
  await ticket(named.number).waitFor({ timeout: 5000 });
  assert.equal(await ticket(named.number).locator(".who").textContent(), "Veronika");
  assert.equal(await ticket(named.number).locator(".icon").count(), 0);

  await setMode("number");
  await reloadUntil(board, async () => (await board.locator("main.board").getAttribute("data-board-mode")) === "number", "the number mode");
  assert.equal(await ticket(named.number).locator(".who").count(), 0);
  assert.equal(await ticket(named.number).locator(".icon").count(), 0);
  assert.equal(await board.locator(".ready .who").count(), 0, "no name on a number-only board");

  await setMode("icon");
  await reloadUntil(board, async () => (await board.locator("main.board").getAttribute("data-board-mode")) === "icon", "the icon mode");
  assert.equal(await ticket(named.number).locator(".who").count(), 0);
  const icon = await ticket(named.number).locator("svg.icon path").getAttribute("d");
  assert.ok(icon.length > 10, "an icon");
  assert.equal(await board.locator(".who").count(), 0, "no name on an icon board");

  // Two orders become ready: one chime (three tones) for each.
  const before = await board.evaluate(() => window.__tones);
  const first = await readyOrder("Walter");
  const second = await readyOrder("Xenia");
  await ticket(first.number).waitFor({ timeout: 5000 });
  await ticket(second.number).waitFor({ timeout: 5000 });
  await board.waitForFunction((at) => window.__tones >= at + 6, before, { timeout: 5000 });
  const tones = (await board.evaluate(() => window.__tones)) - before;
  assert.equal(tones % 3, 0, `whole chimes only: ${tones} tones`);
  await shot(board, "board-icons");

  await setMode("name");
  await reloadUntil(board, async () => (await board.locator("main.board").getAttribute("data-board-mode")) === "name", "the name mode");
  assert.equal(await ticket(first.number).locator(".who").textContent(), "Walter");
});

test("a station tablet speaks new products in its language, and its toggle stops it", async () => {
  const english = await watched(await pairDevice({ kind: "kitchen_station", station: "dough", name: "Screens dough" }));
  const russian = await watched(russianTablet);
  const toggle = english.locator("#speech-toggle");
  await toggle.waitFor();
  assert.equal(await toggle.getAttribute("aria-pressed"), "true");

  const first = await placeOrder("Yuri", [{ name: "Pepperoni", category: "pizza", size: "30 cm" }, { name: `Sprite ${state.number + 1}`, category: "drink" }]);
  await card(english, first.number).first().waitFor({ timeout: 5000 });
  await english.waitForFunction(() => window.__spoken.some((s) => s.text === "New pizza: Pepperoni 30 cm"), null, { timeout: 5000 });
  const said = await english.evaluate(() => window.__spoken.find((s) => s.text === "New pizza: Pepperoni 30 cm"));
  assert.equal(said.lang, "en-GB");
  await russian.waitForFunction(() => window.__spoken.some((s) => s.text === "Новая пицца: Pepperoni 30 cm" && s.lang === "ru-RU"), null, { timeout: 5000 });

  // Off on the English tablet, remembered there across a reload; the Russian one goes on.
  await toggle.click();
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  assert.equal(await toggle.textContent(), "♫ Not speaking");
  await english.reload();
  await toggle.waitFor();
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  const name = `Calzone ${state.number + 1}`;
  const second = await placeOrder("Zlata", [{ name, category: "pizza", size: "35 cm" }]);
  await card(english, second.number).waitFor({ timeout: 5000 });
  await russian.waitForFunction((n) => window.__spoken.some((s) => s.text === `Новая пицца: ${n} 35 cm`), name, { timeout: 5000 });
  // The English tablet showed the card (it refreshed), and said nothing about it.
  assert.deepEqual(await english.evaluate((n) => window.__spoken.filter((s) => s.text.includes(n)), name), []);
  await toggle.click();
  assert.equal(await toggle.getAttribute("aria-pressed"), "true");
});
