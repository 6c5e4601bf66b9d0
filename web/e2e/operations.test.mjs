// The operations section in a real browser: a malformed message from a till and an order the
// legacy database refuses for a while land in the dead letters; the on-call engineer reads them
// with their reasons, replays once the cause is gone, and the audit says who did it. Then the
// bus overview (from the broker's management API) and the services' HTTP figures. Run by
// run.sh, which starts the sync worker and its legacy database.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import amqp from "amqplib";
import { WEB, AUTH, P, api, placeOrder, shot, signedIn, setup, teardown, state } from "./lib.mjs";

const MANAGER = { login: "e2e.ops.manager", password: "ops-manager-password-1", name: "Oleg Sorokin" };
const ON_CALL = { login: "e2e.oncall", password: "on-call-password-1", name: "Nina Volkova" };
/// Orders for this customer are refused by the legacy database until the scenario mends it.
const REFUSED = "Refused Rita";

/// One SQL statement on the legacy database (the monolith's), as its operator would run it.
const legacy = (sql) => execFileSync("psql", [process.env.LEGACY_DATABASE_URL, "-X", "-q", "-t", "-A",
  "-v", "ON_ERROR_STOP=1", "-c", sql], { encoding: "utf8" }).trim();

/// Publishes a body as a till would, straight onto the bus, and waits for the broker's confirm.
async function publishRaw(routingKey, body) {
  const connection = await amqp.connect(process.env.BUS_URL);
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(process.env.BUS_EXCHANGE, routingKey, Buffer.from(body), { persistent: true, contentType: "application/json" });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/// Reloads `page` until `check` holds (the consumers retry in the background), or fails after
/// `seconds`.
async function reloadUntil(page, what, check, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, `gave up waiting for ${what}`);
    await page.waitForTimeout(500);
    await page.reload();
  }
}

let onCall;
let rita;

before(async () => {
  await setup({ numberBase: 5000, manager: MANAGER });
  const created = await api(AUTH, "POST", "/api/v1/users", state.adminToken, {
    login: ON_CALL.login, display_name: ON_CALL.name, password: ON_CALL.password, roles: [{ role: "on_call" }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  onCall = await signedIn(ON_CALL.login, ON_CALL.password);
});

after(teardown);

test("the operations section is for the on-call roles and chain admins, not for managers", async () => {
  assert.equal(await state.manager.locator('a[href="/ops"]').count(), 0);
  const refused = await state.manager.goto(`${WEB}/ops/dead-letters`);
  assert.equal(refused.status(), 403);
  // On call works in no pizzeria: the start page leads to the section.
  await onCall.goto(`${WEB}/`);
  await onCall.getByRole("link", { name: "Operations" }).click();
  await onCall.waitForURL(/\/ops\/dead-letters$/);
  await onCall.locator("#queue-tracker").waitFor();
  await onCall.locator("#queue-sync-worker").waitFor();
  // Auth's consumer (the tracker's pizzerias) too, served by auth itself: no problem shown.
  await onCall.locator("#queue-auth").waitFor();
  assert.equal(await onCall.locator("#queue-auth .problem").count(), 0);
});

test("a malformed message and an order the legacy database refuses show as dead letters with their reasons", async () => {
  // A till sends something that is not an envelope (with markup in it, which must stay text).
  await publishRaw("cashier.order.placed", '{ "note": "<script>alert(1)</script>", "items": [');
  // The monolith's database refuses this customer's order for now, as a lock would.
  legacy(`create function e2e_refuse_rita() returns trigger language plpgsql as $$
            begin raise exception 'the orders table is locked for maintenance' using errcode = '55P03'; end $$;
          create trigger e2e_refuse_rita before insert on orders for each row
            when (new.client_name = '${REFUSED}') execute function e2e_refuse_rita();`);
  rita = await placeOrder(REFUSED, [{ name: "Margherita", category: "pizza", size: "30 cm" }]);

  const trackerRows = onCall.locator("#queue-tracker table.dead-letters tbody tr");
  const legacyRow = onCall.locator("#queue-sync-worker table.dead-letters tbody tr", { hasText: "OrderAcceptedByTracker" });
  await reloadUntil(onCall, "both dead letters", async () => (await trackerRows.count()) >= 1 && (await legacyRow.count()) === 1);

  const malformed = trackerRows.filter({ hasText: "cashier.order.placed" }).first();
  assert.match(await malformed.locator("td.error").innerText(), /JSON|envelope/i);
  assert.match(await legacyRow.locator("td.error").innerText(), /locked for maintenance/);
  // Three attempts, then it gave up (run.sh sets max_attempts = 3 for the sync worker).
  assert.match(await legacyRow.innerText(), /\b3\b/);
  await shot(onCall, "ops-dead-letters", true);

  // Filters narrow the list to what is asked for.
  await onCall.locator("input[name=error]").fill("maintenance");
  await onCall.getByRole("button", { name: "Filter" }).click();
  await onCall.waitForURL(/error=maintenance/);
  assert.equal(await onCall.locator("#queue-tracker table.dead-letters").count(), 0);
  assert.equal(await legacyRow.count(), 1);

  // The letter in full: the reason and its chain, where it was going, the payload.
  await legacyRow.getByRole("link", { name: "Open" }).click();
  await onCall.locator("dl.letter").waitFor();
  const facts = await onCall.locator("dl.letter").innerText();
  assert.match(facts, /Original routing key\s+tracker\.order\.accepted/);
  assert.match(facts, /Consumer\s+legacy-sync/);
  assert.match(facts, /Attempts\s+3/);
  assert.match(facts, /Trace id\s+[0-9a-f]{32}/);
  assert.match(facts, /First failure\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  assert.match(await onCall.locator("ol.chain").innerText(), /locked for maintenance/);
  // Its path: published by the tracker's relay, retried by the sync worker, then given up.
  const steps = await onCall.locator("table.hops tbody tr td:first-child").allInnerTexts();
  assert.equal(steps[0], "Published by the relay");
  assert.equal(steps.at(-1), "Failed, dead-lettered");
  assert.ok(steps.slice(1, -1).length >= 1 && steps.slice(1, -1).every((s) => s === "Failed, sent to retry"), steps.join(" | "));
  const payload = await onCall.locator("pre.payload").innerText();
  assert.match(payload, new RegExp(`\\n {4}"customer_name": "${REFUSED}"`), payload);
  await shot(onCall, "ops-dead-letter", true);

  // The malformed body is shown as text: nothing in it runs.
  await onCall.goto(`${WEB}/ops/dead-letters?routing_key=cashier.order.placed`);
  await onCall.locator("#queue-tracker table.dead-letters tbody tr").first().getByRole("link", { name: "Open" }).click();
  assert.equal(await onCall.locator("pre.payload").innerText(), '{ "note": "<script>alert(1)</script>", "items": [');
  assert.equal(await onCall.locator("pre.payload script").count(), 0);
});

test("once the cause is fixed a replay puts the order in the legacy tables, and the audit says who did it", async () => {
  assert.equal(legacy(`select count(*) from orders where order_uuid = '${rita.id}'`), "0");
  legacy("drop trigger e2e_refuse_rita on orders; drop function e2e_refuse_rita();");

  await onCall.goto(`${WEB}/ops/dead-letters?type=OrderAcceptedByTracker`);
  const row = onCall.locator("#queue-sync-worker table.dead-letters tbody tr", { hasText: "locked for maintenance" });
  await row.getByRole("link", { name: "Open" }).click();
  await onCall.getByRole("button", { name: "Replay", exact: true }).click();
  await onCall.waitForURL(/done=replay&n=1/);
  assert.match(await onCall.locator(".notice.ok").innerText(), /Replayed 1 dead letter/);

  for (let i = 0; ; i++) {
    const mirrored = legacy(`select client_name || '|' || status from orders where order_uuid = '${rita.id}'`);
    if (mirrored) {
      assert.equal(mirrored, `${REFUSED}|1`);
      break;
    }
    assert.ok(i < 60, "the replayed order never reached the legacy tables");
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  // A chain admin's order page shows the path of each of the order's events, the replay in it.
  const admin = await signedIn(process.env.ADMIN_LOGIN, process.env.ADMIN_PASSWORD);
  await admin.goto(`${WEB}/p/${P}/orders/${rita.id}`);
  const accepted = admin.locator('section.event-path[data-event="OrderAcceptedByTracker"]');
  const path = await accepted.locator("table.hops tbody tr td:first-child").allInnerTexts();
  assert.equal(path[0], "Published by the relay");
  assert.deepEqual(path.slice(-3), ["Failed, dead-lettered", "Replayed", "Handled"]);
  assert.match(await accepted.locator("table.hops tbody tr").last().innerText(), /legacy-sync/);
  await admin.locator("#paths").scrollIntoViewIfNeeded();
  await admin.screenshot({ path: `${process.env.SCREENSHOT_DIR}/order-paths.png`, fullPage: true });
  await admin.context().close();

  const audit = onCall.locator("#queue-sync-worker table.audit tbody tr").first();
  const replayed = await audit.innerText();
  assert.match(replayed, new RegExp(ON_CALL.name));
  assert.match(replayed, /Replayed/);
  assert.match(replayed, /OrderAcceptedByTracker/);

  // The till's garbage is discarded, with a reason, and that is recorded too.
  await onCall.goto(`${WEB}/ops/dead-letters?routing_key=cashier.order.placed`);
  const tracker = onCall.locator("#queue-tracker");
  const before = await tracker.locator("table.dead-letters tbody tr").count();
  await tracker.locator("table.dead-letters tbody tr").first().locator("input[name=key]").check();
  await tracker.locator("input[name=reason]").fill("garbage from a till in the trial");
  await tracker.getByRole("button", { name: "Discard picked" }).click();
  await onCall.waitForURL(/done=discard&n=1/);
  assert.equal(await tracker.locator("table.dead-letters tbody tr").count(), before - 1);
  const discarded = await tracker.locator("table.audit tbody tr").first().innerText();
  assert.match(discarded, /Discarded/);
  assert.match(discarded, /garbage from a till in the trial/);
  assert.match(discarded, new RegExp(ON_CALL.name));
  await shot(onCall, "ops-audit", true);
});

test("the bus overview shows every queue from the broker and each service's outbox and lag", async () => {
  const exchange = process.env.BUS_EXCHANGE;
  // The first partition of the sync worker's queue (bus::topology); it consumes every partition.
  const legacySync = onCall.locator(`#queues tr[data-queue="${exchange}.legacy-sync.p0"]`);
  await onCall.goto(`${WEB}/ops/bus`);
  // The broker counts consumers and rates every few seconds; the page is read again until it has.
  await reloadUntil(onCall, "the legacy sync queue with its consumer", async () =>
    (await legacySync.count()) === 1 && Number(await legacySync.locator("td").nth(6).innerText()) >= 1);
  assert.equal(await legacySync.locator("td.keeps-up").innerText(), "yes");
  for (const queue of ["tracker-intake.p0", "tracker-intake.dead", "legacy-sync.dead", "legacy-sync.delay.0"]) {
    assert.equal(await onCall.locator(`#queues tr[data-queue="${exchange}.${queue}"]`).count(), 1, queue);
  }
  // The history stream every event also lands in is there; only the sync worker may read or
  // change it: the till (and every other user) reaches it only by publishing to the exchange.
  assert.match(await onCall.locator(`#queues tr[data-queue="${exchange}.history"]`).innerText(), /history stream/);
  for (const [what, act] of [
    ["read", (ch) => ch.prefetch(10).then(() => ch.consume(`${exchange}.history`, () => {}, { arguments: { "x-stream-offset": "first" } }))],
    ["bind", (ch) => ch.bindQueue(`${exchange}.history`, exchange, "cashier.#")],
    ["delete", (ch) => ch.deleteQueue(`${exchange}.history`)],
  ]) {
    const connection = await amqp.connect(process.env.BUS_URL);
    connection.on("error", () => {});
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    await assert.rejects(act(channel), /ACCESS.REFUSED/, `the till may not ${what} the history stream`);
    await connection.close().catch(() => {});
  }
  // The tracker's outbox has been drained by its relay; the sync worker has none but consumes.
  const tracker = onCall.locator('#services tr[data-service="Tracker"]').first();
  assert.match(await tracker.innerText(), /^Tracker\s+\d+\s+/);
  const worker = onCall.locator('#services tr[data-service="Sync worker"]', { hasText: "legacy-sync" });
  assert.match(await worker.innerText(), /legacy-sync\s+\d+\s+\d/);
  await shot(onCall, "ops-bus", true);
});

test("each service's endpoints show their request count, latency quantiles and error rate", async () => {
  await onCall.goto(`${WEB}/ops/services`);
  const intake = onCall.locator('section[data-service="Tracker"] table.endpoints tr', { hasText: "/api/v1/orders" })
    .filter({ has: onCall.locator("td", { hasText: /^POST$/ }) });
  assert.equal(await intake.count(), 1);
  const cells = await intake.locator("td").allInnerTexts();
  assert.ok(Number(cells[2]) >= 1, cells.join(" | "));
  for (const quantile of cells.slice(3, 6)) assert.match(quantile, /^\d+(\.\d+)? (µs|ms|s)$/);
  assert.match(cells[6], /^\d+\.\d %$/);
  // The web counts its own pages too: this very section was asked for.
  assert.match(await onCall.locator('section[data-service="Web"]').innerText(), /\/ops\/dead-letters/);
  await shot(onCall, "ops-services", true);
});

test("the operations section speaks Russian too, and keeps what the services wrote as they wrote it", async () => {
  await onCall.goto(`${WEB}/ops/dead-letters`);
  await onCall.getByRole("button", { name: "Русский" }).click();
  await onCall.waitForURL(/\/ops\/dead-letters$/);
  assert.equal(await onCall.locator("html").getAttribute("lang"), "ru");
  assert.equal(await onCall.locator("h1").innerText(), "Мёртвые письма");
  assert.equal(await onCall.getByRole("link", { name: "Шина" }).count(), 1);
  // The audit in Russian; the reason stays as the engineer typed it.
  const audit = await onCall.locator("#queue-tracker table.audit tbody tr").first().innerText();
  assert.match(audit, /Удалено/);
  assert.match(audit, /garbage from a till in the trial/);
  await shot(onCall, "ops-dead-letters-ru", true);

  await onCall.goto(`${WEB}/ops/bus`);
  assert.equal(await onCall.locator("h1").innerText(), "Шина");
  assert.match(await onCall.locator("#queues thead").innerText(), /Глубина/);
  await onCall.goto(`${WEB}/ops/services`);
  assert.equal(await onCall.locator("h1").innerText(), "Сервисы");
  assert.match(await onCall.locator('section[data-service="Tracker"] thead').innerText(), /Запросы/);

  // Back to English: the choice is kept for the person, on every page.
  await onCall.getByRole("button", { name: "English" }).click();
  await onCall.waitForURL(/\/ops\/services$/);
  assert.equal(await onCall.locator("h1").innerText(), "Services");
});
