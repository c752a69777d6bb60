// Browser tests of the static pages (dashboard, tracking page, rider simulator) against a
// running dispatchd.
//
//   cd tests/browser && npm install
//   DISPATCH_URL=http://127.0.0.1:41235 DISPATCH_TOKEN=<dispatcher token> node --test pages.test.mjs
//
// The server must run with the demo city enabled, `timers.merchant_accept_s` = 2
// (DISPATCH_TIMERS__MERCHANT_ACCEPT_S=2) and `dispatch.policy` = batch with 5 s rounds
// (DISPATCH_DISPATCH__POLICY=batch DISPATCH_DISPATCH__ROUND_S=5): tools/browser-tests.sh. Chromium: $CHROMIUM or /usr/bin/chromium.
// Everything else (merchants, items, customers, riders, orders) is created here over the
// REST API; riders are driven through the rider simulator page. Screenshots go to
// target/screenshots/ at the repository root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(HERE, '../../target/screenshots');
const BASE = (process.env.DISPATCH_URL || '').replace(/\/+$/, '');
const DTOKEN = process.env.DISPATCH_TOKEN || '';
const SKIP = !BASE || !DTOKEN ? 'set DISPATCH_URL and DISPATCH_TOKEN to run the browser tests' : false;
const RUN = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);

let browser;
let seq = 0;
// Far from the demo city (set in the first test), one spot per scenario, each more than
// dispatch.max_radius_m (20 km) from the others so no scenario's rider sees another's order.
let base = { lat: 31.83, lon: 121.47 };

// ------------------------------------------------------------------ helpers
async function rest(method, p, body, token, headers = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}/api/v1${p}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return { status: res.status, body: data };
}
async function ok(method, p, body, token, expected, headers) {
  const r = await rest(method, p, body, token, headers);
  assert.equal(r.status, expected, `${method} ${p} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
const idem = () => ({ 'Idempotency-Key': `bt-${RUN}-${++seq}` });
function spot(i) {
  // 0.5° of longitude is ~47 km at 30°, still > 20 km at 65°.
  return { lat: base.lat, lon: ((base.lon + 180 + i * 0.5) % 360) - 180 };
}
function offset(p, northM, eastM) {
  return {
    lat: p.lat + northM / 111320,
    lon: p.lon + eastM / (111320 * Math.cos((p.lat * Math.PI) / 180)),
  };
}
async function makeMerchant(loc, label) {
  const m = await ok('POST', '/merchants', { name: `BT ${label} ${RUN}`, location: loc, prep_time_s: 0 }, DTOKEN, 201);
  assert.ok(m.merchant_id && m.token, 'merchant id and token');
  const item = await ok('POST', `/merchants/${m.merchant_id}/items`, { name: 'Test noodles', price_cents: 1250 }, m.token, 201);
  return { ...m, location: loc, item };
}
async function makeCustomer() {
  return ok('POST', '/customers', { username: `bt_${RUN}_${++seq}`, password: 'browser-test-password' }, undefined, 201);
}
async function makeRider(label) {
  return ok('POST', '/riders', { name: `BT rider ${label} ${RUN}` }, DTOKEN, 201);
}
async function placeOrder(customer, merchant, dropoff) {
  const body = { merchant_id: merchant.merchant_id, items: [{ item_id: merchant.item.item_id, qty: 2 }], dropoff };
  const o = await ok('POST', '/orders', body, customer.token, 201, idem());
  assert.equal(o.status, 'pending_payment');
  return o;
}
async function pay(customer, order) {
  const o = await ok('POST', `/orders/${order.order_id}/pay`, { payment_ref: `bt-${RUN}` }, customer.token, 200, idem());
  assert.equal(o.status, 'paid');
  return o;
}
async function merchantAccept(merchant, order) {
  const o = await ok('POST', `/orders/${order.order_id}/accept`, { prep_time_s: 0 }, merchant.token, 200);
  assert.equal(o.status, 'accepted');
  return o;
}
async function eventually(what, fn, timeoutMs = 20000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  return page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}
/** A fresh browser context; records uncaught page errors so a test can assert there were none. */
async function newContext() {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  ctx.pageErrors = [];
  ctx.on('page', (p) => {
    p.on('pageerror', (e) => ctx.pageErrors.push(`${p.url()}: ${e.message}`));
  });
  return ctx;
}
/** Run body; on failure save screenshots of the context's pages, then rethrow. */
async function scenario(name, body) {
  const ctx = await newContext();
  try {
    await body(ctx);
    assert.deepEqual(ctx.pageErrors, [], 'uncaught errors in the pages');
  } catch (e) {
    let i = 0;
    for (const p of ctx.pages()) await shot(p, `fail-${name}-${i++}`).catch(() => {});
    throw e;
  } finally {
    await ctx.close().catch(() => {});
  }
}
async function openDashboard(ctx) {
  const page = await ctx.newPage();
  await page.goto(`${BASE}/?token=${encodeURIComponent(DTOKEN)}`);
  await page.waitForSelector('#conn-state[data-state="open"]', { timeout: 15000 });
  return page;
}
async function openRider(ctx, rider, at) {
  const page = await ctx.newPage();
  await page.goto(`${BASE}/rider?token=${encodeURIComponent(rider.token)}`);
  await page.waitForSelector('#conn-state[data-state="open"]', { timeout: 15000 });
  await page.waitForFunction((id) => window.riderApp && window.riderApp.state.riderId === id, rider.rider_id, { timeout: 10000 });
  await page.click('#go-online');
  await setRiderPosition(page, at);
  await page.waitForFunction(() => document.querySelector('#rider-status').textContent !== 'offline', null, { timeout: 5000 });
  return page;
}
async function setRiderPosition(page, p) {
  await page.fill('#pos-input', `${p.lat.toFixed(6)},${p.lon.toFixed(6)}`);
  await page.click('#pos-set');
}
/** Wait until the dispatcher's REST view says the rider is available near a point. */
async function riderNearby(riderId, p) {
  return eventually(`rider ${riderId} in /riders/nearby`, async () => {
    const r = await rest('GET', `/riders/nearby?lat=${p.lat}&lon=${p.lon}&radius_m=5000&limit=100`, undefined, DTOKEN);
    return r.status === 200 && Array.isArray(r.body) && r.body.some((x) => x.rider_id === riderId);
  }, 15000);
}

before(async () => {
  if (SKIP) return;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { if (browser) await browser.close(); });

// ------------------------------------------------------------------ scenarios
test('dashboard shows the demo city riders', { skip: SKIP, timeout: 60000 }, async () => {
  await scenario('dashboard', async (ctx) => {
    const page = await openDashboard(ctx);
    await page.waitForFunction(() => Number(document.querySelector('#rider-count').textContent) > 0, null, { timeout: 20000 });
    const info = await page.evaluate(() => {
      const s = window.dashboardState;
      let minLat = 90, maxLat = -90, minLon = 180, maxLon = -180, n = 0;
      for (const r of s.riders.values()) {
        if (!r.location) continue;
        n++;
        minLat = Math.min(minLat, r.location.lat); maxLat = Math.max(maxLat, r.location.lat);
        minLon = Math.min(minLon, r.location.lon); maxLon = Math.max(maxLon, r.location.lon);
      }
      return { n, minLat, maxLat, minLon, maxLon, count: Number(document.querySelector('#rider-count').textContent), frames: window.dashboardFrameStats };
    });
    assert.ok(info.count > 0);
    // #rider-count is the number of riders with a position (the panel lags the data by ≤ 200 ms).
    await page.waitForFunction(() => {
      let n = 0;
      for (const r of window.dashboardState.riders.values()) if (r.location) n++;
      return Number(document.querySelector('#rider-count').textContent) === n;
    }, null, { timeout: 10000 });
    // Our own scenarios play out ~0.6° north of the demo city, out of its riders' reach.
    base = { lat: Math.min(80, info.maxLat + 0.6), lon: (info.minLon + info.maxLon) / 2 };
    await page.waitForFunction(() => window.dashboardFrameStats.frames > 0);
    const f = await page.evaluate(() => window.dashboardFrameStats);
    console.log(`# dashboard: ${info.count} riders on the map; frames ${f.frames}, avg ${f.avgFrameMs.toFixed(2)} ms, max ${f.maxFrameMs.toFixed(2)} ms`);
    await shot(page, 'dashboard');
  });
});

test('dashboard renderer stays smooth with 5,000 riders', { skip: SKIP, timeout: 60000 }, async () => {
  await scenario('smooth', async (ctx) => {
    const page = await openDashboard(ctx);
    await page.waitForFunction(() => window.dashboardFrameStats.frames > 0, null, { timeout: 20000 });
    const result = await page.evaluate(async () => {
      // Synthetic riders fed through the same path as socket frames.
      const app = window.dashboardApp;
      const c = { lat: 10.5, lon: 20.5 };
      const riders = [];
      const st = ['idle', 'offered', 'busy', 'stale', 'offline'];
      for (let i = 0; i < 5000; i++) {
        riders.push({ rider_id: `r_synthetic_${i}`, name: `s${i}`, status: st[i % 5], order_ids: [], last_seen_ms: Date.now(),
          location: { lat: c.lat + (Math.random() - 0.5) * 0.2, lon: c.lon + (Math.random() - 0.5) * 0.2 } });
      }
      app.feed({ type: 'updates', riders, orders: [], escalations: [] });
      app.map.fit(riders.map((r) => r.location));
      await new Promise((r) => requestAnimationFrame(() => r()));
      const s0 = { ...window.dashboardFrameStats };
      const lags = [];
      for (let k = 0; k < 20; k++) {
        for (const r of riders) r.location = { lat: r.location.lat + (Math.random() - 0.5) * 0.0005, lon: r.location.lon + (Math.random() - 0.5) * 0.0005 };
        app.feed({ type: 'updates', riders, orders: [], escalations: [] });
        await new Promise((r) => setTimeout(r, 100));
        lags.push(window.dashboardFrameStats.lastUpdateLagMs);
      }
      const s1 = window.dashboardFrameStats;
      const frames = s1.frames - s0.frames;
      const avg = (s1.avgFrameMs * s1.frames - s0.avgFrameMs * s0.frames) / Math.max(1, frames);
      return { frames, avg, max: s1.maxFrameMs, lags, shown: Number(document.querySelector('#rider-count').textContent) };
    });
    console.log(`# 5,000 synthetic riders: ${result.frames} frames, avg ${result.avg.toFixed(2)} ms, max ${result.max.toFixed(2)} ms, update→frame lag max ${Math.max(...result.lags).toFixed(1)} ms`);
    assert.ok(result.shown >= 5000, 'the synthetic riders are on the map');
    assert.ok(result.frames >= 10 && result.frames <= 40, `one redraw per update, not more (got ${result.frames})`);
    assert.ok(result.avg < 40, `average frame ${result.avg} ms`);
    assert.ok(Math.max(...result.lags) < 250, `update-to-frame lag ${Math.max(...result.lags)} ms`);
  });
});

test('an escalation appears on the dashboard and is resolved by a click', { skip: SKIP, timeout: 90000 }, async () => {
  await scenario('escalation', async (ctx) => {
    const page = await openDashboard(ctx);
    const merchant = await makeMerchant(spot(1), 'escalation');
    const customer = await makeCustomer();
    const order = await placeOrder(customer, merchant, offset(merchant.location, 1200, 800));
    await pay(customer, order);
    // merchant_accept_s = 2: the merchant stays silent, a merchant_unresponsive escalation opens.
    const item = page.locator(`#escalations .escalation[data-order-id="${order.order_id}"]`);
    await item.first().waitFor({ state: 'visible', timeout: 20000 });
    const escId = await item.first().getAttribute('data-id');
    assert.match(escId, /^e_/);
    assert.match(await item.first().textContent(), /merchant_unresponsive/);
    const resolved = page.waitForResponse((r) => r.url().includes(`/api/v1/escalations/${escId}/resolve`), { timeout: 10000 }).catch(() => null);
    let clicked = true;
    try {
      await page.locator(`#escalations .escalation[data-id="${escId}"] button.resolve`).click({ timeout: 5000 });
    } catch (e) {
      clicked = false; // the engine may have resolved it itself (order cancelled at 2× the timer)
    }
    await page.locator(`#escalations .escalation[data-id="${escId}"]`).waitFor({ state: 'detached', timeout: 10000 });
    const all = await ok('GET', '/escalations', undefined, DTOKEN, 200);
    const esc = all.find((e) => e.escalation_id === escId);
    assert.ok(esc, 'the escalation exists');
    assert.notEqual(esc.resolved_ms, null, 'the escalation is resolved');
    if (clicked) {
      const res = await resolved;
      assert.ok(res, 'the Resolve click sent POST /escalations/{id}/resolve');
      assert.ok(res.status() === 200 || res.status() === 409, `resolve answered ${res.status()}`);
    }
    console.log(`# escalation ${escId} resolved by ${esc.resolved_by}${clicked ? ' (clicked)' : ' (before the click)'}`);
    const open = await ok('GET', '/escalations?open=true', undefined, DTOKEN, 200);
    assert.ok(!open.some((e) => e.escalation_id === escId), 'no longer open');
  });
});

test('a dispatcher assigns an order to a rider by hand', { skip: SKIP, timeout: 90000 }, async () => {
  await scenario('assign', async (ctx) => {
    const merchant = await makeMerchant(spot(2), 'assign');
    const rider = await makeRider('assign');
    const riderPage = await openRider(ctx, rider, offset(merchant.location, 200, 150));
    await riderNearby(rider.rider_id, merchant.location);
    const customer = await makeCustomer();
    const order = await placeOrder(customer, merchant, offset(merchant.location, -1500, 900));
    await pay(customer, order);
    await merchantAccept(merchant, order);

    const page = await openDashboard(ctx);
    const row = page.locator(`#orders .order[data-id="${order.order_id}"]`);
    await row.waitFor({ state: 'visible', timeout: 15000 });
    await row.click();
    await page.waitForSelector(`#selected-card[data-order-id="${order.order_id}"]`, { timeout: 5000 });
    const nearby = page.locator(`#nearby .nearby-rider[data-id="${rider.rider_id}"]`);
    await eventually('our rider in the nearest riders list', async () => {
      if (await nearby.count()) return true;
      await page.click('#nearby-refresh');
      await page.waitForTimeout(500);
      return (await nearby.count()) > 0;
    }, 20000, 100);
    await nearby.locator('button.assign').click();
    await page.waitForFunction(() => /assigned/i.test(document.querySelector('#assign-result').textContent)
      && document.querySelector('#assign-result').dataset.outcome === 'ok', null, { timeout: 10000 });
    await shot(page, 'dashboard');

    const o = await ok('GET', `/orders/${order.order_id}`, undefined, DTOKEN, 200);
    assert.equal(o.status, 'assigned');
    assert.equal(o.rider_id, rider.rider_id);
    await riderPage.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'visible', timeout: 10000 });
    assert.equal(await riderPage.locator('#rider-status').textContent(), 'busy');
    // The dashboard follows: the order row shows its rider.
    await page.waitForFunction(([id, rid]) => {
      const li = document.querySelector(`#orders .order[data-id="${id}"]`);
      return li && li.dataset.status === 'assigned' && li.textContent.includes(rid);
    }, [order.order_id, rider.rider_id], { timeout: 10000 });

    // Clean up: the dispatcher cancels the order; the rider page drops it; the rider goes offline.
    await ok('POST', `/orders/${order.order_id}/cancel`, { reason: 'browser test done' }, DTOKEN, 200);
    await riderPage.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await page.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await riderPage.click('#go-offline');
  });
});

test('the tracking page follows the rider and the timeline', { skip: SKIP, timeout: 120000 }, async () => {
  await scenario('track', async (ctx) => {
    const merchant = await makeMerchant(spot(3), 'track');
    const rider = await makeRider('track');
    let pos = offset(merchant.location, 250, -200);
    const riderPage = await openRider(ctx, rider, pos);
    await riderNearby(rider.rider_id, merchant.location);
    const customer = await makeCustomer();
    const dropoff = offset(merchant.location, 1200, 1500);
    const order = await placeOrder(customer, merchant, dropoff);

    const track = await ctx.newPage();
    await track.goto(`${BASE}/track/${order.order_id}?token=${encodeURIComponent(customer.token)}`);
    await track.waitForSelector('#status[data-status="pending_payment"]', { timeout: 15000 });
    assert.equal(await track.locator('#rider-pos').textContent(), '');

    await pay(customer, order);
    await track.waitForSelector('#timeline li[data-status="paid"].done', { timeout: 10000 });
    await merchantAccept(merchant, order);
    await track.waitForSelector('#timeline li[data-status="accepted"].done', { timeout: 10000 });

    // The rider takes the offer.
    await riderPage.waitForSelector(`#offer:not(.hidden)[data-order-id="${order.order_id}"]`, { timeout: 45000 });
    await riderPage.click('#accept');
    await riderPage.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'visible', timeout: 10000 });
    await track.waitForSelector('#status[data-status="assigned"]', { timeout: 10000 });
    await track.waitForSelector('#timeline li[data-status="assigned"].done', { timeout: 5000 });

    // The rider moves; the marker follows.
    const seen = [];
    for (let k = 1; k <= 3; k++) {
      await riderPage.waitForTimeout(1500);
      pos = offset(pos, 30, 30); // ~42 m in ≥1.5 s, well under gps.max_speed_mps
      await setRiderPosition(riderPage, pos);
      const want = [pos.lat, pos.lon];
      const got = await eventually(`rider position ${k} on the tracking page`, async () => {
        const t = await track.locator('#rider-pos').textContent();
        if (!t) return null;
        const [lat, lon] = t.split(',').map(Number);
        return Math.abs(lat - want[0]) < 1e-5 && Math.abs(lon - want[1]) < 1e-5 ? t : null;
      }, 10000);
      seen.push(got);
    }
    assert.equal(new Set(seen).size, 3, 'the rider marker moved');
    assert.match(await track.locator('#eta').textContent(), /\d+ min/);

    await riderPage.locator(`#orders .order[data-id="${order.order_id}"] button.picked-up`).click();
    await track.waitForSelector('#timeline li[data-status="picked_up"].done', { timeout: 10000 });
    await shot(track, 'track');

    await riderPage.locator(`#orders .order[data-id="${order.order_id}"] button.delivered`).click();
    await track.waitForSelector('#status[data-status="delivered"]', { timeout: 10000 });
    await track.waitForSelector('#timeline li[data-status="delivered"].done', { timeout: 5000 });
    assert.equal(await track.locator('#rider-pos').textContent(), '', 'no rider after delivery');
    for (const s of ['pending_payment', 'paid', 'accepted', 'assigned', 'picked_up', 'delivered']) {
      assert.ok(await track.locator(`#timeline li[data-status="${s}"]`).getAttribute('data-at'), `${s} has a time`);
    }
    await riderPage.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await riderPage.click('#go-offline');

    // Someone else's token is refused.
    const other = await makeCustomer();
    const intruder = await ctx.newPage();
    await intruder.goto(`${BASE}/track/${order.order_id}?token=${encodeURIComponent(other.token)}`);
    await intruder.waitForFunction(() => /not allowed/i.test(document.body.textContent), null, { timeout: 15000 });
  });
});

test('a share link opens the tracking page without an account until it is revoked', { skip: SKIP, timeout: 60000 }, async () => {
  await scenario('share', async (ctx) => {
    const merchant = await makeMerchant(spot(6), 'share');
    const customer = await makeCustomer();
    const order = await placeOrder(customer, merchant, offset(merchant.location, 800, 800));
    const link = await ok('POST', `/orders/${order.order_id}/share-links`, { ttl_s: 600, privacy: 'status' }, customer.token, 201);
    assert.match(link.url, /^\/s\/[0-9a-f]{32}$/);

    const page = await ctx.newPage();
    await page.goto(`${BASE}${link.url}`);
    await page.waitForSelector('#status[data-status="pending_payment"]', { timeout: 15000 });
    await page.waitForSelector('#conn-state[data-state="open"]', { timeout: 10000 });
    assert.equal(await page.locator('#order-id').textContent(), order.order_id);
    await pay(customer, order);
    await page.waitForSelector('#timeline li[data-status="paid"].done', { timeout: 10000 });
    await shot(page, 'share');

    await ok('DELETE', `/orders/${order.order_id}/share-links/${link.id}`, undefined, customer.token, 204);
    await page.waitForFunction(() => /does not work.*revoked/i.test(document.querySelector('#error').textContent), null, { timeout: 15000 });
    assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'unauthorized');
    // Opened again, a revoked link says so at once.
    const again = await ctx.newPage();
    const res = await again.goto(`${BASE}${link.url}`);
    assert.equal(res.status(), 410);
    await again.waitForFunction(() => /revoked/i.test(document.querySelector('#error').textContent), null, { timeout: 15000 });
  });
});

test('the rider page accepts an offer', { skip: SKIP, timeout: 90000 }, async () => {
  await scenario('offer', async (ctx) => {
    const merchant = await makeMerchant(spot(4), 'offer');
    const rider = await makeRider('offer');
    const page = await openRider(ctx, rider, offset(merchant.location, -150, 100));
    await riderNearby(rider.rider_id, merchant.location);
    const customer = await makeCustomer();
    const order = await placeOrder(customer, merchant, offset(merchant.location, 900, -700));
    await pay(customer, order);
    await merchantAccept(merchant, order);

    const offer = page.locator(`#offer:not(.hidden)[data-order-id="${order.order_id}"]`);
    await offer.waitFor({ state: 'visible', timeout: 45000 });
    assert.equal(await page.locator('#rider-status').textContent(), 'offered');
    assert.match(await page.locator('#offer-countdown').textContent(), /\d+ s/);
    await shot(page, 'rider');
    await page.click('#accept');
    await page.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'visible', timeout: 10000 });
    await page.waitForSelector('#offer.hidden', { state: 'attached', timeout: 10000 });
    assert.equal(await page.locator('#rider-status').textContent(), 'busy');
    const o = await ok('GET', `/orders/${order.order_id}`, undefined, DTOKEN, 200);
    assert.equal(o.status, 'assigned');
    assert.equal(o.rider_id, rider.rider_id);
    // Hand it back so the order does not linger in the demo's live view.
    await page.locator(`#orders .order[data-id="${order.order_id}"] button.release`).click();
    await page.locator(`#orders .order[data-id="${order.order_id}"]`).waitFor({ state: 'detached', timeout: 10000 });
    await page.click('#go-offline');
    await ok('POST', `/orders/${order.order_id}/cancel`, { reason: 'browser test done' }, DTOKEN, 200);
  });
});

test('the dashboard shows a bundle offer and the decision trace that chose it', { skip: SKIP, timeout: 120000 }, async () => {
  await scenario('bundle', async (ctx) => {
    // Two orders of one merchant, their doors close together, ready now; the one rider
    // comes online only after both wait, so the planner's round sees them together.
    const merchant = await makeMerchant(spot(6), 'bundle');
    const rider = await makeRider('bundle');
    const orders = [];
    for (const east of [600, 750]) {
      const customer = await makeCustomer();
      const order = await placeOrder(customer, merchant, offset(merchant.location, 900, east));
      await pay(customer, order);
      await merchantAccept(merchant, order);
      orders.push(order);
    }
    const dash = await openDashboard(ctx);
    const riderPage = await openRider(ctx, rider, offset(merchant.location, -150, 100));

    // The dashboard's rider view carries the bundle (both orders, one offer).
    await dash.waitForFunction(([rid, a, b]) => {
      const r = window.dashboardState.riders.get(rid);
      return r && r.offer && r.offer.order_ids.length === 2
        && r.offer.order_ids.includes(a) && r.offer.order_ids.includes(b) && r.offer.next_job === false;
    }, [rider.rider_id, orders[0].order_id, orders[1].order_id], { timeout: 60000 });
    await dash.waitForFunction(() => /^[1-9]/.test(document.querySelector('#stat-offers-bundles').textContent));

    // The selected order says which rider holds it and with which other order.
    await dash.locator(`#orders .order[data-id="${orders[0].order_id}"]`).click();
    await dash.waitForFunction(([rid, other]) => {
      const t = document.querySelector('#sel-details').textContent;
      return t.includes(rid) && t.includes('bundle of 2') && t.includes(other);
    }, [rider.rider_id, orders[1].order_id], { timeout: 10000 });
    // Its decision trace shows the planning round and the planned rider.
    await dash.waitForFunction((rid) => {
      const t = document.querySelector('#trace').textContent;
      return /planning round/.test(t) && t.includes(rid) && /planned/.test(t);
    }, rider.rider_id, { timeout: 15000 });
    await shot(dash, 'dashboard-bundle');

    // The rider page shows the offer and accepting it assigns both orders.
    await riderPage.locator('#offer:not(.hidden)').waitFor({ state: 'visible', timeout: 10000 });
    await riderPage.click('#accept');
    for (const o of orders) {
      await riderPage.locator(`#orders .order[data-id="${o.order_id}"]`).waitFor({ state: 'visible', timeout: 10000 });
      const got = await ok('GET', `/orders/${o.order_id}`, undefined, DTOKEN, 200);
      assert.equal(got.status, 'assigned');
      assert.equal(got.rider_id, rider.rider_id);
    }
    await dash.waitForFunction((rid) => {
      const r = window.dashboardState.riders.get(rid);
      return r && !r.offer && r.status === 'busy';
    }, rider.rider_id, { timeout: 10000 });
    for (const o of orders) await ok('POST', `/orders/${o.order_id}/cancel`, { reason: 'browser test done' }, DTOKEN, 200);
    await riderPage.click('#go-offline');
  });
});

test('the API reference lists every path of the OpenAPI document and the socket frames', { skip: SKIP, timeout: 30000 }, async () => {
  await scenario('api-reference', async (ctx) => {
    const doc = await (await fetch(`${BASE}/api/v1/openapi.json`)).json();
    const page = await ctx.newPage();
    const elsewhere = [];
    page.on('request', (r) => { if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) elsewhere.push(r.url()); });
    await page.goto(`${BASE}/api`);
    await page.waitForSelector('#api-nav a[data-path]', { timeout: 10000 });
    const shown = await page.$$eval('#api-nav a[data-path]', (as) => [...new Set(as.map((a) => a.dataset.path))]);
    assert.deepEqual(shown.sort(), Object.keys(doc.paths).sort());
    // Each socket with its frames, and every schema the document has.
    const sockets = await page.$$eval('#sockets ~ .api-schema code', (cs) => cs.map((c) => c.textContent));
    for (const p of ['/ws/rider', '/ws/merchant', '/ws/orders/{id}/track', '/ws/share', '/ws/dispatch']) assert.ok(sockets.includes(p), p);
    assert.ok(await page.locator('#sockets ~ .api-schema code', { hasText: 'type: "offer"' }).count() > 0);
    const schemas = await page.$$eval('.api-schema[id^="schema-"]', (s) => s.map((e) => e.id.slice(7)));
    assert.deepEqual(schemas.sort(), Object.keys(doc.components.schemas).sort());
    assert.deepEqual(elsewhere, [], 'requests to other sites');
    await shot(page, 'api-reference');
  });
});
