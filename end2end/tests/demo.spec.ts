import { test, expect, hydrated, logInAsAdmin } from './fixtures';
import { Page } from '@playwright/test';

// The embedded server of the test run seeds the demo (SB_DEMO_DATA=true), as `run` does.
// These tests walk the "first ten minutes" of README, and leave a screenshot of each page
// in docs/screenshots/ (README shows them), so the pictures stay those of today's app.

async function shot(page: Page, name: string, fullPage = false) {
  await page.screenshot({ path: `../docs/screenshots/${name}.png`, fullPage });
}

test('the demo broker topic delivers to the built-in receiver, live, and "Send test message" adds one', async ({ page }) => {
  await logInAsAdmin(page);
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByTestId('demo-tour')).toBeVisible();
  await shot(page, 'home');

  await page.goto('/broker');
  await hydrated(page);
  const row = page.locator('tr[data-topic="demo:ping"]');
  await expect(row).toBeVisible();
  await shot(page, 'broker');
  await page.getByRole('link', { name: 'Demo receiver (built in)' }).click();
  await hydrated(page);
  const delivered = page.locator('[data-testid="delivery"][data-state="delivered"]');
  // The seed's three messages, the second after two refusals (its retries back off 3 s, 6 s).
  await expect.poll(() => delivered.count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
  await expect(page.locator('[data-testid="delivery"][data-state="pending"]')).toHaveCount(0);
  const before = await delivered.count();
  await page.getByTestId('deliveries').scrollIntoViewIfNeeded();
  await shot(page, 'subscriber');

  // From a second tab: the subscriber page, left open, shows the new delivery by itself.
  const other = await page.context().newPage();
  await other.goto('/broker');
  await hydrated(other);
  await other.locator('tr[data-topic="demo:ping"]').getByRole('button', { name: /Send test message/ }).click();
  await expect(other.getByTestId('test-sent')).toContainText(/Test message #\d+ published/);
  await expect(delivered).toHaveCount(before + 1, { timeout: 15_000 });
  await other.close();
});

test('"Send a test booking" adds a meeting live, beside the seeded sample bookings', async ({ page }) => {
  await logInAsAdmin(page);
  await page.goto('/meetings');
  await hydrated(page);
  await expect(page.locator('[data-testid="meeting"]').filter({ hasText: 'Grace Hopper (demo)' })).toBeVisible();
  await expect(page.locator('[data-testid="meeting"][data-status="canceled"]').filter({ hasText: '(demo)' })).toHaveCount(1);
  const tests = page.locator('[data-testid="meeting"]').filter({ hasText: 'Test Booking (demo)' });
  const before = await tests.count();
  await page.getByRole('button', { name: 'Send a test booking' }).click();
  await expect(tests).toHaveCount(before + 1);
  await shot(page, 'meetings');
});

test('the demo calendar, the wage sample and the inbox have something to show', async ({ page }) => {
  await logInAsAdmin(page);
  await page.goto('/calendar?user=demo');
  await hydrated(page);
  await expect(page.getByText('Team stand-up (demo)').first()).toBeVisible();
  await expect(page.getByText("Demo (sample data)'s calendar")).toBeVisible();
  // It opens at the working day, not at midnight.
  const grid = page.getByRole('region', { name: 'The week, hour by hour' });
  await expect.poll(() => grid.evaluate((el) => el.scrollTop)).toBe(7 * 44);
  await shot(page, 'calendar');
  await page.goto('/wages');
  await hydrated(page);
  await expect(page.getByText('synthetic demo data', { exact: false }).first()).toBeVisible({ timeout: 60_000 });
  await shot(page, 'wages');
  await page.goto('/inbox');
  await hydrated(page);
  await shot(page, 'inbox');
});

test('the System page shows the request rate once pages have been loaded', async ({ page }) => {
  await logInAsAdmin(page);
  for (const path of ['/', '/meetings', '/wages', '/']) {
    await page.goto(path);
    await hydrated(page);
  }
  await page.goto('/system');
  await hydrated(page);
  await expect(page.getByTestId('readiness')).toContainText('database: ok');
  // A rate needs two samples (taken every 15 s): reload until one shows traffic.
  const requests = page.locator('[data-testid="figure"][data-name="HTTP requests"] [data-testid="now"]');
  await expect(async () => {
    await page.reload();
    await hydrated(page);
    await expect(requests).toHaveText(/^[0-9.]+ \/s$/, { timeout: 1_000 });
    expect(parseFloat((await requests.textContent()) ?? '0')).toBeGreaterThan(0);
  }).toPass({ timeout: 45_000, intervals: [2_000] });
  await expect(page.locator('[data-testid="route"]').first()).toBeVisible();
  await shot(page, 'system', true);
});
