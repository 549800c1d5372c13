// The dashboard in a real browser against a real server (started by
// tests/dashboard.rs with the numbers algorithms and pipeline, `slow`,
// `failing`, and an image builder): what a user does and sees.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, launch, open, screenshot, waitJob } from './browser.mjs';

const REPO = process.env.DK_REPO;
let browser;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const node = (page, name) => page.locator(`svg.dag g.node[data-node="${name}"]`);

test('runs numbers from the pipeline page and shows the result 30', async () => {
  const page = await open(browser, '#/pipelines');
  await page.getByRole('link', { name: 'numbers', exact: true }).click();
  await node(page, 'Multiply').waitFor();
  await screenshot(page, 'pipeline');
  await page.getByRole('button', { name: 'Run numbers' }).click();
  await page.waitForURL(/#\/jobs\/numbers-/);
  await page.locator('.toolbar .badge[data-status="completed"]').waitFor({ timeout: 30_000 });
  for (const name of ['Range', 'Multiply', 'Reduce']) {
    assert.equal(await node(page, name).getAttribute('data-status'), 'completed');
  }
  assert.match(await node(page, 'Multiply').textContent(), /5\/5/);
  await node(page, 'Multiply').click();
  await page.locator('[data-node-panel="Multiply"] tr.task').first().waitFor();
  assert.equal(await page.locator('[data-node-panel="Multiply"] tr.task').count(), 5, "Multiply's 5 tasks, no other node's");
  const inputs = page.locator('[data-node-panel="Multiply"] .inputs');
  assert.match(await inputs.textContent(), /one task per item of the output of Range/);
  assert.match(await inputs.textContent(), /flowInput\.mul = 2/);
  await screenshot(page, 'job');
  await inputs.getByRole('button', { name: 'Range' }).click();
  await page.locator('[data-node-panel="Range"]').waitFor();
  await page.getByRole('tab', { name: 'Results' }).click();
  const result = page.locator('.results .json .row', { hasText: 'result' }).locator('.number');
  assert.equal(await result.textContent(), '30');
  await screenshot(page, 'results');
  await page.getByRole('tab', { name: 'Timeline' }).click();
  await page.locator('.timeline rect.bar-task').first().waitFor();
  assert.equal(await page.locator('.timeline rect.bar-task').count(), 7, 'one bar per task: 1 + 5 + 1');
  assert.deepEqual(page.errors, []);
});

test("a running job's node states change on the page as the job goes", async () => {
  const { jobId } = await api('/exec/stored', { name: 'slow' });
  const page = await open(browser, `#/jobs/${jobId}`);
  await page.evaluate(() => (window.notReloaded = true));
  await node(page, 'Nap').and(page.locator('[data-status="running"]')).waitFor({ timeout: 20_000 });
  assert.equal(await node(page, 'Double').getAttribute('data-status'), 'waiting');
  // The running task's log, as it prints.
  await node(page, 'Nap').click();
  await page.locator('[data-running="Nap"] pre.log', { hasText: 'napping on 1' }).waitFor({ timeout: 5_000 });
  await node(page, 'Double').and(page.locator('[data-status="completed"]')).waitFor({ timeout: 30_000 });
  assert.equal(await node(page, 'Nap').getAttribute('data-status'), 'completed');
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'updated in place, not by reloading');
  // The jobs list got the same job live, without a reload either.
  await page.getByRole('link', { name: 'Jobs', exact: true }).first().click();
  await page.locator(`tr[data-job="${jobId}"] .badge[data-status="completed"]`).waitFor();
  await screenshot(page, 'jobs');
});

test("a failing task's error and log are one click away", async () => {
  const { jobId } = await api('/exec/stored', { name: 'failing' });
  await waitJob(jobId);
  const page = await open(browser, `#/jobs/${jobId}`);
  await page.locator('.toolbar .badge[data-status="failed"]').waitFor();
  assert.match(await page.locator('[role="alert"]').first().textContent(), /node Boom.*boom: bad input 7/s);
  await node(page, 'Boom').click();
  await page.locator('[data-node-panel="Boom"] tr.task').first().click();
  const detail = page.locator('[data-node-panel="Boom"] tr.task-detail');
  assert.match(await detail.locator('pre.task-error').textContent(), /ValueError: boom: bad input 7/);
  assert.match(await detail.locator('pre.log').textContent(), /about to fail on 7/);
  await screenshot(page, 'failed-task');
});

test('rerun from a node runs that node only, on the stored upstream outputs', async () => {
  const { jobId } = await api('/exec/stored', { name: 'numbers' });
  await waitJob(jobId);
  const page = await open(browser, `#/jobs/${jobId}`);
  await node(page, 'Reduce').click();
  await page.getByRole('button', { name: 'Rerun from this node' }).click();
  await page.waitForURL((url) => url.hash.startsWith('#/jobs/') && !url.hash.endsWith(jobId));
  const rerun = decodeURIComponent(new URL(page.url()).hash.slice('#/jobs/'.length));
  await page.locator('.toolbar .badge[data-status="completed"]').waitFor({ timeout: 30_000 });
  assert.equal(await node(page, 'Multiply').getAttribute('data-status'), 'cached');
  assert.equal(await node(page, 'Reduce').getAttribute('data-status'), 'completed');
  const tasks = await api(`/exec/tasks/${rerun}`);
  assert.deepEqual([...new Set(tasks.map((t) => t.nodeName))], ['Reduce'], 'no Range or Multiply task ran');
  const results = await api(`/exec/results/${rerun}`);
  assert.equal(results.data[0].result, 30);
});

test("rerun from a node with debug shows the debug URL and the command to paste", async () => {
  const { jobId } = await api('/exec/stored', { name: 'numbers' });
  await waitJob(jobId);
  const page = await open(browser, `#/jobs/${jobId}`);
  await node(page, 'Multiply').click();
  await page.getByRole('button', { name: '…with debug' }).click();
  const hint = page.locator('.notice[data-debug-url]');
  await hint.waitFor();
  assert.match(await hint.getAttribute('data-debug-url'), /^ws:\/\/.*\/hkube\/debug\/multiply$/);
  assert.match(await hint.locator('pre.command').textContent(), /^distributedkubectl debug multiply /);
  const rerun = await hint.locator('a').first().textContent();
  await api('/exec/stop', { jobId: rerun });
});

test('uploading an algorithm folder streams its build log', async () => {
  const page = await open(browser, '#/algorithms');
  await page.getByRole('button', { name: 'Apply an algorithm…' }).click();
  const spec = { name: 'dash-range', env: 'python', code: { entryPoint: 'main.py' } };
  await page.getByLabel('spec').fill(JSON.stringify(spec));
  await page.locator('input[name="folder"]').setInputFiles(`${REPO}/fixtures/algorithms/range`);
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  const log = page.locator('.build-log');
  await log.locator('.badge[data-status="completed"]').waitFor({ timeout: 60_000 });
  const text = await log.locator('pre.log').textContent();
  assert.match(text, /layer|push|image/i, `the build log has the builder's lines: ${text}`);
  await screenshot(page, 'algorithm-build');
  const algorithm = await api('/store/algorithms/dash-range');
  assert.match(algorithm.algorithmImage || algorithm.image || '', /@sha256:/);
});

test('a validation error is shown on the node and input it names', async () => {
  const page = await open(browser, '#/pipelines/numbers');
  const editor = page.getByLabel('descriptor');
  await node(page, 'Multiply').waitFor();
  // The stored descriptor, as YAML and back.
  await page.getByRole('button', { name: 'YAML', exact: true }).click();
  await page.waitForFunction(() => document.querySelector('textarea[aria-label="descriptor"]').value.startsWith('name: numbers'));
  assert.match(await editor.inputValue(), /\n- nodeName: Range\n/);
  await page.getByRole('button', { name: 'JSON', exact: true }).click();
  await page.waitForFunction(() => document.querySelector('textarea[aria-label="descriptor"]').value.startsWith('{'));
  const text = await editor.inputValue();
  await editor.fill(text.replace('"#@Range"', '"#@Nope"'));
  await page.getByRole('button', { name: 'Store', exact: true }).click();
  const error = page.locator('.error[data-node="Multiply"]');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-input'), '0');
  assert.match(await error.textContent(), /node 'Multiply', input 0: .*'Nope'/);
  assert.equal(await node(page, 'Multiply').evaluate((g) => g.classList.contains('marked')), true);
  const selected = await editor.evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd));
  assert.match(selected, /"nodeName": "Multiply"/, 'the editor shows the node the error names');
  await screenshot(page, 'validation-error');
  // Nothing was stored: the pipeline still reads Range.
  const stored = await api('/store/pipelines/numbers');
  assert.equal(stored.nodes[1].input[0], '#@Range');
});

test('the workers page shows warm workers and the budget', async () => {
  const page = await open(browser, '#/workers');
  await page.locator('tr[data-pool^="multiply@"]').waitFor();
  assert.match(await page.locator('.budget').textContent(), /cpu .* of \d+ held/);
  await screenshot(page, 'workers');
});

test("a pipeline's cron trigger is turned on and off from its page", async () => {
  const page = await open(browser, '#/pipelines/numbers');
  const cron = page.locator('.cron');
  await cron.and(page.locator('[data-cron="off"]')).waitFor();
  await page.getByLabel('cron pattern').fill('0 3 * * *');
  await cron.getByRole('button', { name: 'Turn on' }).click();
  await cron.and(page.locator('[data-cron="on"]')).waitFor();
  assert.match(await cron.textContent(), /0 3 \* \* \* on, next run/);
  const [entry] = (await api('/cron/list')).filter((c) => c.name === 'numbers');
  assert.deepEqual([entry.pattern, entry.enabled], ['0 3 * * *', true]);
  await cron.getByRole('button', { name: 'Turn off' }).click();
  await cron.and(page.locator('[data-cron="off"]')).waitFor();
  assert.equal((await api('/cron/list')).find((c) => c.name === 'numbers').enabled, false);
});
