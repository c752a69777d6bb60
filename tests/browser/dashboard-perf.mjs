// Measures the dashboard at a large fleet: frame time and update lag in headless Chromium.
//
//   DISPATCH_URL=http://127.0.0.1:8080 DISPATCH_TOKEN=<dispatcher token> node dashboard-perf.mjs
//
// Start the server with a big demo city first, e.g. DISPATCH_DEMO__RIDERS=5000.
// Prints window.dashboardFrameStats after a warm-up and a measuring window.
import { chromium } from 'playwright-core';

const BASE = (process.env.DISPATCH_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const TOKEN = process.env.DISPATCH_TOKEN || 'dev-dispatcher-token';
const SECONDS = Number(process.env.MEASURE_S || 30);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(`${BASE}/?token=${TOKEN}`);
await page.waitForFunction(() => Number(document.querySelector('#rider-count')?.textContent || 0) > 0, null, { timeout: 30000 });
await page.waitForTimeout(5000);
const before = await page.evaluate(() => ({ ...window.dashboardFrameStats }));
await page.waitForTimeout(SECONDS * 1000);
const after = await page.evaluate(() => ({ ...window.dashboardFrameStats }));
const riders = await page.evaluate(() => document.querySelector('#rider-count')?.textContent);
console.log(JSON.stringify({ riders_on_map: riders, seconds: SECONDS, before, after }, null, 1));
await browser.close();
