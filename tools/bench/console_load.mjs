// console_load.mjs — times the web console in Debian's chromium (playwright-core), driven by
// tools/bench/console_load.py: config JSON {url, key, runs, playwright, tmp} as argument; prints
// {"signin_usable_ms": [...], "traffic_after_signin_ms": [...], "reference_healthz_ms": [...]}.
//   signin_usable: navigation start -> the sign-in field has the focus (the page's module ran).
//   traffic_after_signin: Enter in the key field -> the Traffic page rendered its charts (token
//     exchange, whoami, catalog, statistics, uPlot).
//   reference_healthz: navigation start -> load of the hub's /healthz (plain text, same listener,
//     same browser): what the browser and loopback cost without the console.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = await import(pathToFileURL(path.join(cfg.playwright, 'index.mjs')).href);
const userDir = fs.mkdtempSync(path.join(cfg.tmp, 'chromium-'));
const browser = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { signin_usable_ms: [], traffic_after_signin_ms: [], reference_healthz_ms: [] };
try {
  for (let i = 0; i < cfg.runs; i++) {
    const ref = await browser.newPage();
    let t0 = performance.now();
    await ref.goto(cfg.url + '/healthz', { waitUntil: 'load' });
    out.reference_healthz_ms.push(performance.now() - t0);
    await ref.close();

    const p = await browser.newPage();
    t0 = performance.now();
    await p.goto(cfg.url + '/console/', { waitUntil: 'commit' });
    await p.waitForFunction(() => document.activeElement && document.activeElement.id === 'apikey', null, { polling: 5 });
    out.signin_usable_ms.push(performance.now() - t0);
    await p.fill('#apikey', cfg.key);
    t0 = performance.now();
    await p.press('#apikey', 'Enter');
    await p.locator('#page[data-ready="traffic"]').waitFor();
    out.traffic_after_signin_ms.push(performance.now() - t0);
    await p.close();
  }
} finally {
  await browser.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
