// The browser the dashboard tests drive: Debian's Chromium through
// Playwright (never a downloaded browser), headless, with the flags this
// machine's closed network needs.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const BASE = process.env.DK_URL;
if (!BASE) throw new Error('DK_URL is not set: these tests run from tests/dashboard.rs against a real server');
const SHOTS = process.env.DK_SCREENSHOTS;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.DK_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A new page at `hash` (e.g. '#/jobs'), failing the test on any page error. */
export async function open(browser, hash = '#/jobs') {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.errors = errors;
  await page.goto(`${BASE}/${hash}`);
  return page;
}

/** Save a screenshot under $DK_SCREENSHOTS (CI keeps them as artifacts). */
export async function screenshot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** The API, for what a test sets up or checks beside the page. */
export async function api(path, body) {
  const res = await fetch(`${BASE}/api/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(data)}`);
  return data;
}

export async function waitJob(jobId, seconds = 60) {
  for (let i = 0; i < seconds * 10; i++) {
    const status = await api(`/exec/status/${jobId}`);
    if (!['pending', 'active', 'paused'].includes(status.status)) return status;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${jobId} did not end in ${seconds} s`);
}
