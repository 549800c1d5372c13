// A server with API tokens: the dashboard asks for one, keeps it in the
// browser, and the pages then load (run by tests/dashboard.rs).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, open, screenshot } from './browser.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('the dashboard asks for the API token, then shows the jobs', async () => {
  const anonymous = await fetch(`${BASE}/api/v1/exec/jobs`);
  assert.equal(anonymous.status, 401, 'the API wants a token');
  const page = await open(browser, '#/jobs');
  const prompt = page.locator('.modal');
  await prompt.waitFor();
  assert.match(await prompt.textContent(), /needs an API token/);
  await screenshot(page, 'token-prompt');
  await prompt.locator('input[name="token"]').fill('not-the-token-at-all');
  await prompt.getByRole('button', { name: 'Use token' }).click();
  await page.locator('.modal').filter({ hasText: 'not valid' }).waitFor();
  await page.locator('.modal input[name="token"]').fill(process.env.DK_TOKEN);
  await page.getByRole('button', { name: 'Use token' }).click();
  await page.getByText('No job yet: run a pipeline.').waitFor();
  assert.equal(await page.locator('.modal').count(), 0);
  // Kept: a new visit needs no prompt.
  await page.reload();
  await page.getByText('No job yet: run a pipeline.').waitFor();
  assert.equal(await page.locator('.modal').count(), 0);
  assert.deepEqual(page.errors, []);
});
