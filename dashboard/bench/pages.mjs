// Page timings of the dashboard in Chromium, against the server of
// benches/dashboard.rs (1,000 jobs stored, a finished 10,000-task job
// $DK_BIG_JOB, and a pipeline `big` that runs 10,000 trivial tasks).
// Prints one JSON line of figures (milliseconds, medians of ROUNDS loads).

import { api, launch, open } from '../test/browser.mjs';

const ROUNDS = 5;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** ms from navigation start until `selector` is visible, in a fresh page. */
async function load(browser, hash, selector) {
  const times = [];
  for (let i = 0; i < ROUNDS; i++) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${process.env.DK_URL}/${hash}`);
    await page.locator(selector).first().waitFor({ timeout: 30_000 });
    times.push(Date.now() - t0);
    await context.close();
  }
  return median(times);
}

const browser = await launch();
const big = process.env.DK_BIG_JOB;
const figures = {};
// The baseline: the shell alone (the bundle loads and renders, no API call).
figures.shell = await load(browser, '#/nowhere', 'p.empty');
figures.jobs = await load(browser, '#/jobs', 'table.jobs tbody tr');
figures.jobPage = await load(browser, `#/jobs/${big}`, 'svg.dag g.node[data-status="completed"]');

// Clicks on the finished 10,000-task job's page.
const page = await open(browser, `#/jobs/${big}`);
await page.locator('svg.dag g.node[data-node="T"]').waitFor();
let t0 = Date.now();
await page.locator('svg.dag g.node[data-node="T"]').click();
await page.locator('[data-node-panel="T"] tr.task').first().waitFor();
figures.nodeTasks = Date.now() - t0;
t0 = Date.now();
await page.getByRole('button', { name: 'next ›' }).click();
await page.locator('.pager', { hasText: '101–200' }).waitFor();
figures.nextPage = Date.now() - t0;
t0 = Date.now();
await page.getByRole('tab', { name: 'Timeline' }).click();
await page.locator('.timeline rect.bar-task').first().waitFor({ timeout: 30_000 });
figures.timeline5000 = Date.now() - t0;
await page.context().close();

// A running 10,000-task job's page: long tasks (main thread busy > 50 ms)
// while it runs, and how many live updates reached the page.
const live = await open(browser, '#/jobs');
await live.evaluate(() => {
  window.longTasks = [];
  new PerformanceObserver((list) => list.getEntries().forEach((e) => window.longTasks.push(e.duration))).observe({ entryTypes: ['longtask'] });
});
const { jobId } = await api('/exec/stored', { name: 'big' });
await live.evaluate((id) => (location.hash = `#/jobs/${id}`), jobId);
await live.locator('svg.dag g.node[data-node="T"]').waitFor();
const seen = new Set();
const started = Date.now();
const counts = () => live.locator('svg.dag g.node[data-node="T"] .counts').textContent().catch(() => '');
// Once it moves, a click on the node: how long until the page answers.
while (Date.now() - started < 60_000 && !/^[1-9]/.test(await counts())) await new Promise((r) => setTimeout(r, 50));
t0 = Date.now();
await live.locator('svg.dag g.node[data-node="T"]').click();
await live.locator('[data-node-panel="T"]').waitFor();
figures.clickWhileRunning = Date.now() - t0;
while (Date.now() - started < 180_000) {
  seen.add(await counts());
  if ((await live.locator('svg.dag g.node[data-node="T"]').getAttribute('data-status')) === 'completed') break;
  await new Promise((r) => setTimeout(r, 100));
}
const longTasks = await live.evaluate(() => window.longTasks);
figures.runningUpdatesSeen = seen.size;
figures.longTasks = longTasks.length;
figures.longestTask = Math.round(Math.max(0, ...longTasks));
figures.runningJobSeconds = Math.round((Date.now() - started) / 100) / 10;
await browser.close();
console.log(JSON.stringify(figures));
