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

test('a weekly series shows on several weeks; one occurrence is changed alone', async ({ page }) => {
  await signUp(page, uniqueName('rep'));
  await page.goto('/calendar?view=week&date=2031-06-02');
  await hydrated(page);
  await page.locator('[data-slot="2031-06-04T10"]').click();
  const dialog = page.getByRole('dialog', { name: 'Event' });
  await dialog.getByLabel('Title').fill('Weekly review');
  await dialog.getByLabel('Repeats', { exact: true }).selectOption('WEEKLY');
  await dialog.getByLabel('End of series').selectOption('after');
  await dialog.getByLabel('Times').fill('3');
  await expect(dialog.getByTestId('repeat-summary')).toHaveText('Every week on Wed, 3 times');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);

  const review = page.getByTestId('week').getByTestId('event').filter({ hasText: 'Weekly review' });
  for (const week of ['Jun 2 – Jun 8, 2031', 'Jun 9 – Jun 15, 2031', 'Jun 16 – Jun 22, 2031']) {
    await expect(page.getByRole('heading', { name: week })).toBeVisible();
    await expect(review).toHaveCount(1);
    await expect(review).toContainText('10:00');
    await page.getByRole('link', { name: 'Next' }).click();
  }
  await expect(page.getByRole('heading', { name: 'Jun 23 – Jun 29, 2031' })).toBeVisible();
  await expect(review).toHaveCount(0);

  // Rename the second occurrence only.
  await page.getByRole('link', { name: 'Previous' }).click();
  await page.getByRole('link', { name: 'Previous' }).click();
  await expect(page.getByRole('heading', { name: 'Jun 9 – Jun 15, 2031' })).toBeVisible();
  await review.click();
  await expect(dialog.getByRole('heading', { name: 'Edit repeating event' })).toBeVisible();
  await expect(dialog.getByLabel('This event')).toBeChecked();
  await dialog.getByLabel('Title').fill('Weekly review (special)');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId('week').getByTestId('event').filter({ hasText: 'Weekly review (special)' })).toHaveCount(1);
  await page.getByRole('link', { name: 'Next' }).click();
  await expect(page.getByRole('heading', { name: 'Jun 16 – Jun 22, 2031' })).toBeVisible();
  await expect(review).toHaveText(/Weekly review(?! \(special\))/);
});

test('drag an event to another day and make it longer; both stay after a reload', async ({ page }) => {
  await signUp(page, uniqueName('drag'));
  await page.goto('/calendar?view=week&date=2031-07-07');
  await hydrated(page);
  await page.locator('[data-slot="2031-07-09T10"]').click();
  const dialog = page.getByRole('dialog', { name: 'Event' });
  await dialog.getByLabel('Title').fill('Design review');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);

  const chip = page.locator('[data-day="2031-07-09"] [data-testid="event"]').filter({ hasText: 'Design review' });
  const box = (await chip.boundingBox())!;
  const column = (await page.locator('[data-day="2031-07-09"]').boundingBox())!;
  // Two days to the right and one hour down, with the mouse.
  await page.mouse.move(box.x + box.width / 2, box.y + 8);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + column.width, box.y + 30, { steps: 5 });
  await page.mouse.move(box.x + box.width / 2 + 2 * column.width, box.y + 8 + 44, { steps: 5 });
  await page.mouse.up();
  const moved = page.locator('[data-day="2031-07-11"] [data-testid="event"]').filter({ hasText: 'Design review' });
  await expect(moved).toContainText('11:00');
  await expect(chip).toHaveCount(0);

  // Drag the bottom edge an hour down: 11:00–13:00.
  const edge = (await moved.getByTestId('resize').boundingBox())!;
  await page.mouse.move(edge.x + edge.width / 2, edge.y + edge.height / 2);
  await page.mouse.down();
  await page.mouse.move(edge.x + edge.width / 2, edge.y + edge.height / 2 + 44, { steps: 5 });
  await page.mouse.up();
  await expect(moved).toHaveCSS('height', '88px');

  await page.reload();
  await hydrated(page);
  await expect(moved).toContainText('11:00');
  await moved.click();
  await expect(dialog.getByLabel('Starts')).toHaveValue('2031-07-11T11:00');
  await expect(dialog.getByLabel('Ends')).toHaveValue('2031-07-11T13:00');
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // The keyboard moves it too: Alt+Down four times is an hour later, Enter saves.
  await moved.focus();
  for (let i = 0; i < 4; i++) await page.keyboard.press('Alt+ArrowDown');
  await page.keyboard.press('Enter');
  await expect(moved).toContainText('12:00');
  await expect(moved, 'the focus stays on the moved event').toBeFocused();
});

test('dragging an occurrence of a series asks which occurrences move', async ({ page }) => {
  await signUp(page, uniqueName('dragrep'));
  await page.goto('/calendar?view=week&date=2031-08-04');
  await hydrated(page);
  await page.locator('[data-slot="2031-08-05T09"]').click();
  const dialog = page.getByRole('dialog', { name: 'Event' });
  await dialog.getByLabel('Title').fill('Daily check-in');
  await dialog.getByLabel('Repeats', { exact: true }).selectOption('DAILY');
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(dialog).toHaveCount(0);
  const thursday = page.locator('[data-day="2031-08-07"] [data-testid="event"]').filter({ hasText: 'Daily check-in' });
  await expect(thursday).toContainText('09:00');

  const box = (await thursday.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + 8);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + 8 + 88, { steps: 6 });
  await page.mouse.up();
  const prompt = page.getByRole('dialog', { name: 'Move a repeating event' });
  await prompt.getByRole('button', { name: 'This event', exact: true }).click();
  await expect(thursday).toContainText('11:00');
  await expect(page.locator('[data-day="2031-08-06"] [data-testid="event"]').filter({ hasText: 'Daily check-in' })).toContainText('09:00');
  await expect(page.locator('[data-day="2031-08-08"] [data-testid="event"]').filter({ hasText: 'Daily check-in' })).toContainText('09:00');
});
