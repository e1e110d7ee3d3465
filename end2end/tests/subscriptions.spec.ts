import { test, expect, hydrated, uniqueName, signUp, logInAsAdmin, watchErrors } from './fixtures';

/** A day two months ahead (subscribed calendars keep two years ahead): `YYYY-MM-DD`. */
const DAY = new Date(Date.now() + 60 * 86_400_000).toISOString().slice(0, 10);
const COMPACT = DAY.replaceAll('-', '');

/** A calendar file with one event on that day, 09:00–10:00 UTC. */
function icsFile(uid: string, title: string): string {
  return [
    'BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//e2e//EN',
    'BEGIN:VEVENT', `UID:${uid}`, `SUMMARY:${title}`, `DTSTART:${COMPACT}T090000Z`, `DTEND:${COMPACT}T100000Z`, 'END:VEVENT',
    'END:VCALENDAR', '',
  ].join('\r\n');
}

test('another user’s calendar, subscribed by its address, shows read-only; a file is shown or imported', async ({ page, browser }) => {
  // Ada has an event and a secret feed address.
  const ada = uniqueName('ada');
  await signUp(page, ada);
  const made = await page.request.post(`/api/v1/users/${ada}/events`, { data: { title: 'Ada’s offsite', start: `${DAY}T13:00:00Z`, end: `${DAY}T15:00:00Z` } });
  expect(made.status()).toBe(201);
  await page.goto('/settings');
  await hydrated(page);
  const feed = new URL((await page.getByTestId('feed-url').textContent())!);
  const origin = new URL(page.url()).origin;

  // Bob, in another browser, subscribes to it on his settings page. Bob is an admin: the
  // test server reaches itself on loopback, which BROKER_ALLOWED_TARGETS opens to admins'
  // subscriptions only (members' feeds must be public).
  const bobContext = await browser.newContext({ timezoneId: 'UTC' });
  const bob = await bobContext.newPage();
  const problems: string[] = [];
  watchErrors(bob, [], problems);
  await logInAsAdmin(bob);
  const [adaCal, gone, holidays] = [uniqueName('Ada'), uniqueName('Gone'), uniqueName('Holidays')];
  await bob.goto('/settings');
  await hydrated(bob);
  const card = bob.getByTestId('subscriptions-card');
  await card.locator('#sub-name').fill(adaCal);
  await card.getByLabel('iCalendar address (https:// or webcal://)').fill(`${origin}${feed.pathname}`);
  await card.getByRole('button', { name: 'Subscribe' }).click();
  const line = card.getByTestId('subscription').filter({ hasText: adaCal });
  await expect(line).toHaveAttribute('data-events', '1');
  await expect(line.getByTestId('subscription-error')).toHaveCount(0);

  // A feed that cannot be read says why on the settings page.
  await card.locator('#sub-name').fill(gone);
  await card.getByLabel('iCalendar address (https:// or webcal://)').fill(`${origin}/ical/no-such-token.ics`);
  await card.getByRole('button', { name: 'Subscribe' }).click();
  await expect(card.getByTestId('subscription').filter({ hasText: gone }).getByTestId('subscription-error')).toContainText('HTTP 404');

  // A file shown as it is, and a file imported into Bob's own calendar.
  await card.locator('#sub-file-name').fill(holidays);
  await card.getByTestId('subscription-upload').locator('input[type=file]').setInputFiles({ name: 'holidays.ics', mimeType: 'text/calendar', buffer: Buffer.from(icsFile(uniqueName('h'), 'Bank holiday')) });
  await card.getByRole('button', { name: 'Show beside my calendar' }).click();
  await expect(card.getByTestId('subscription').filter({ hasText: holidays })).toHaveAttribute('data-events', '1');
  const importer = card.getByTestId('calendar-import');
  await importer.locator('input[type=file]').setInputFiles({ name: 'mine.ics', mimeType: 'text/calendar', buffer: Buffer.from(icsFile(uniqueName('m'), 'Dentist')) });
  await importer.getByRole('button', { name: 'Import', exact: true }).click();
  await expect(card.getByTestId('import-report')).toContainText('Imported 1 events; 0 were already in your calendar.');

  // On Bob's calendar: Ada's event and the file's, read-only; the imported one his own.
  await bob.goto(`/calendar?view=week&date=${DAY}`);
  await hydrated(bob);
  const week = bob.getByTestId('week');
  const adas = week.locator(`[data-calendar="${adaCal}"]`).filter({ hasText: 'Ada’s offsite' });
  await expect(adas).toBeVisible();
  await expect(adas).toHaveAttribute('title', new RegExp(`[Ff]rom ${adaCal} \\(read-only\\)`));
  await adas.click();
  await expect(bob.getByRole('dialog', { name: 'Event' })).toHaveCount(0);
  await expect(week.locator(`[data-calendar="${holidays}"]`).filter({ hasText: 'Bank holiday' })).toBeVisible();
  const dentist = week.getByTestId('event').filter({ hasText: 'Dentist' });
  await expect(dentist).not.toHaveAttribute('data-calendar', /.*/);
  await dentist.click();
  await expect(bob.getByRole('dialog', { name: 'Event' }).getByLabel('Title')).toHaveValue('Dentist');
  await bob.keyboard.press('Escape');

  // Removing the subscription takes its events off the calendar.
  await bob.goto('/settings');
  await hydrated(bob);
  await bob.getByTestId('subscription').filter({ hasText: adaCal }).getByRole('button', { name: 'Remove' }).click();
  await expect(bob.getByTestId('subscription').filter({ hasText: adaCal })).toHaveCount(0);
  await bob.goto(`/calendar?view=week&date=${DAY}`);
  await hydrated(bob);
  await expect(bob.getByTestId('week').locator(`[data-calendar="${adaCal}"]`)).toHaveCount(0);
  expect(problems, 'browser errors in Bob’s pages').toEqual([]);
  await bobContext.close();
});
