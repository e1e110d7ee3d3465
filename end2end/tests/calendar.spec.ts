import { test, expect, hydrated, uniqueName, signUp } from './fixtures';

test('create an event by clicking the calendar, see it after reload, edit it, delete it', async ({ page }) => {
  await signUp(page, uniqueName('cal'));
  await page.goto('/calendar?view=week&date=2031-06-02');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: /Jun 2 – Jun 8, 2031/ })).toBeVisible();

  // Click Wednesday 10:00: the dialog opens with that hour filled in.
  await page.locator('[data-slot="2031-06-04T10"]').click();
  const dialog = page.getByRole('dialog', { name: 'Event' });
  await expect(dialog.getByLabel('Starts')).toHaveValue('2031-06-04T10:00');
  await dialog.getByLabel('Title').fill('Quarterly planning');
  await dialog.getByLabel('Location').fill('Room 4');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);
  const event = page.getByTestId('week').getByTestId('event').filter({ hasText: 'Quarterly planning' });
  await expect(event).toBeVisible();

  await page.reload();
  await hydrated(page);
  await expect(event).toBeVisible();
  await expect(event).toContainText('10:00');

  // An overlapping event is flagged as a conflict on both.
  await page.locator('[data-slot="2031-06-04T08"]').click();
  await dialog.getByLabel('Title').fill('Double-booked');
  await dialog.getByLabel('Starts').fill('2031-06-04T10:30');
  await dialog.getByLabel('Ends').fill('2031-06-04T11:30');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('week').locator('.ev.conflict')).toHaveCount(2);

  // Edit by clicking the event.
  await event.click();
  await expect(dialog.getByLabel('Title')).toHaveValue('Quarterly planning');
  await dialog.getByLabel('Title').fill('Quarterly planning (moved)');
  await dialog.getByLabel('Starts').fill('2031-06-05T14:00');
  await dialog.getByLabel('Ends').fill('2031-06-05T15:30');
  await dialog.getByRole('button', { name: 'Save' }).click();
  const moved = page.getByTestId('week').getByTestId('event').filter({ hasText: 'Quarterly planning (moved)' });
  await expect(moved).toContainText('14:00');
  await expect(page.getByTestId('week').locator('.ev.conflict')).toHaveCount(0);

  // Month view shows it too.
  await page.getByRole('link', { name: 'Month' }).click();
  await expect(page.getByTestId('month').getByTestId('event').filter({ hasText: 'Quarterly planning (moved)' })).toBeVisible();

  // Delete.
  await page.getByTestId('month').getByTestId('event').filter({ hasText: 'Quarterly planning (moved)' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('month').getByTestId('event').filter({ hasText: 'Quarterly planning' })).toHaveCount(0);
  await page.reload();
  await expect(page.getByTestId('month').getByTestId('event').filter({ hasText: 'Quarterly planning' })).toHaveCount(0);
});

test('the settings page reveals the iCal feed address', async ({ page, request }) => {
  await signUp(page, uniqueName('feed'));
  await page.goto('/settings');
  await hydrated(page);
  const url = await page.getByTestId('feed-url').textContent();
  expect(url).toMatch(/\/ical\/[A-Za-z0-9_-]+\.ics$/);
  const feed = await request.get(new URL(url!).pathname);
  expect(feed.status()).toBe(200);
  expect(await feed.text()).toContain('BEGIN:VCALENDAR');
});
