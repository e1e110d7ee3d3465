import { test, expect, hydrated, uniqueName, signUp, watchErrors } from './fixtures';

test('a visitor books a free slot in their own zone; it appears live on the owner’s meetings page and calendar', async ({ page, browser }) => {
  // The owner publishes a page open every day, bookable at once.
  const owner = uniqueName('host');
  const email = `${owner}@example.com`;
  await signUp(page, owner);
  await page.goto('/settings');
  await hydrated(page);
  const card = page.getByTestId('booking-card');
  await card.getByLabel('Publish my booking page').check();
  for (const day of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']) {
    await card.getByLabel(day).fill('00:00-24:00');
  }
  await card.getByLabel('Minimum notice (minutes)').fill('60');
  await card.getByRole('button', { name: 'Save booking page' }).click();
  await expect(card.getByTestId('booking-url')).toHaveText(new RegExp(`/book/${owner}$`));

  // The owner watches the meetings page, and the calendar in a second tab.
  await page.goto('/meetings');
  await hydrated(page);
  const calendar = await page.context().newPage();
  const problems: string[] = [];
  watchErrors(calendar, [], problems);

  // The visitor, in another browser set to New York time.
  const visitorContext = await browser.newContext({ timezoneId: 'America/New_York' });
  const visitor = await visitorContext.newPage();
  watchErrors(visitor, [], problems);
  await visitor.goto(`/book/${owner}`);
  await hydrated(visitor);
  await expect(visitor).toHaveURL(/tz=America(%2F|\/)New_York/);
  await expect(visitor.getByText('times in America/New_York')).toBeVisible();
  const slot = visitor.getByTestId('slot-button').nth(1);
  const start = (await slot.getAttribute('data-start'))!;
  await calendar.goto(`/calendar?view=week&date=${start.slice(0, 10)}`);
  await hydrated(calendar);

  await slot.click();
  await visitor.getByLabel('Your name').fill('Vera Visitor');
  await visitor.getByLabel('E-mail').fill(email);
  await visitor.getByRole('button', { name: 'Book' }).click();
  await expect(visitor.getByTestId('booked')).toContainText('(America/New_York)');
  await expect(visitor.locator(`[data-start="${start}"]`)).toHaveCount(0);

  // Live, without a reload, on both of the owner's pages.
  await expect(page.getByText(email)).toBeVisible();
  await expect(calendar.getByTestId('week').getByTestId('event').filter({ hasText: 'Vera Visitor' })).toBeVisible();

  // The visitor cancels with the link: the meeting shows canceled, the event goes.
  await visitor.getByTestId('booked').getByRole('link').click();
  await hydrated(visitor);
  await visitor.getByRole('button', { name: 'Cancel this booking' }).click();
  await expect(visitor.getByTestId('canceled')).toBeVisible();
  await expect(calendar.getByTestId('week').getByTestId('event').filter({ hasText: 'Vera Visitor' })).toHaveCount(0);
  await expect(page.locator('tr', { hasText: email })).toContainText('canceled');

  expect(problems, 'browser errors in the other pages').toEqual([]);
  await visitorContext.close();
  await calendar.close();
});
