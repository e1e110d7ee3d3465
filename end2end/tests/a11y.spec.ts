import AxeBuilder from '@axe-core/playwright';
import { Page } from '@playwright/test';
import crypto from 'node:crypto';
import { test, expect, hydrated, uniqueName, signUp, logInAsAdmin, PASSWORD } from './fixtures';

// Every page, in every state a user reaches, checked against WCAG 2.0/2.1 A and AA by
// axe-core. No rule is disabled: a violation anywhere fails the test.
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

async function checkA11y(page: Page, state: string) {
  await hydrated(page);
  const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  const found = results.violations.map((v) => {
    const nodes = [...new Set(v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1).join(' ').trim()}`))].slice(0, 12);
    return `${state}: ${v.id} (${v.impact}) on ${v.nodes.length} element(s): ${nodes.join(' | ')}`;
  });
  // Soft: one run reports every state's violations, and the test still fails on any.
  expect.soft(found, `axe-core WCAG 2.1 A/AA violations in "${state}"`).toEqual([]);
}

/** A signed Calendly delivery to this server (the e2e key), so the meetings page has data. */
async function booking(page: Page, ev: string, start: string) {
  const api = 'https://api.calendly.com';
  const body = JSON.stringify({
    created_at: new Date().toISOString(),
    created_by: `${api}/users/HOST`,
    event: 'invitee.created',
    payload: {
      uri: `${api}/scheduled_events/${ev}/invitees/I${ev}`,
      email: 'grace@example.com',
      name: 'Grace Hopper',
      status: 'active',
      timezone: 'Europe/Paris',
      rescheduled: false,
      scheduled_event: {
        uri: `${api}/scheduled_events/${ev}`,
        name: 'Design review',
        start_time: start,
        end_time: new Date(Date.parse(start) + 30 * 60_000).toISOString(),
        location: { type: 'physical', location: 'Room 4' },
        event_memberships: [{ user_email: 'host@example.com' }],
      },
    },
  });
  const t = Math.floor(Date.now() / 1000);
  const key = process.env.SB_E2E_CALENDLY_KEY ?? 'dev';
  const v1 = crypto.createHmac('sha256', key).update(`${t}.${body}`).digest('hex');
  const res = await page.request.post('/webhooks/calendly', {
    headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${v1}` },
    data: body,
  });
  expect(res.status()).toBe(202);
}

test.describe('signed out', () => {
  // Pages load their data by server function; signed out, those answer 401 (and the
  // unknown address 404), which the browser logs.
  test.use({ expectedHttpErrors: [401, 404] });

  test('every page is clean', async ({ page }) => {
  for (const path of ['/', '/login', '/signup', '/calendar', '/meetings', '/inbox', '/wages', '/broker', '/system', '/account', '/settings', '/nowhere']) {
    await page.goto(path);
    await checkA11y(page, `signed out ${path}`);
  }
  await page.goto('/signup');
  await hydrated(page);
  await page.getByText('Setting up a new installation?').click();
  await checkA11y(page, 'sign-up with the setup token open');
  });
});

test.describe('as a member', () => {
  test.use({ expectedHttpErrors: [404] });

  test('every page, empty and with data, dialogs open', async ({ page }) => {
    test.setTimeout(120_000);
    const me = uniqueName('a11y');
    await signUp(page, me);
    await checkA11y(page, 'member overview');

    await page.goto('/calendar');
    await checkA11y(page, 'empty week');
    // Overlapping events, one all-day, in a week of their own.
    for (const [title, start, end] of [
      ['Planning', '2031-03-04T09:00:00Z', '2031-03-04T11:00:00Z'],
      ['Review', '2031-03-04T10:00:00Z', '2031-03-04T12:00:00Z'],
      ['Standup', '2031-03-05T08:30:00Z', '2031-03-05T08:45:00Z'],
    ]) {
      const res = await page.request.post(`/api/v1/users/${me}/events`, { data: { title, start, end, location: 'Room 1' } });
      expect(res.status()).toBe(201);
    }
    const res = await page.request.post(`/api/v1/users/${me}/events`, { data: { title: 'Offsite', start: '2031-03-06', all_day: true } });
    expect(res.status()).toBe(201);
    await page.goto('/calendar?date=2031-03-04');
    await expect(page.getByText('Planning').first()).toBeVisible();
    await checkA11y(page, 'week with overlapping events');
    await page.getByText('Review').first().click();
    await expect(page.getByRole('dialog')).toBeVisible();
    await checkA11y(page, 'event dialog open');
    await page.goto('/calendar?date=2031-03-04&view=month');
    await expect(page.getByText('Offsite').first()).toBeVisible();
    await checkA11y(page, 'month with events');

    await page.goto('/settings');
    await checkA11y(page, 'settings');
    // Other calendars: one whose address cannot be reached, one file with an event left out.
    const subscribed = await page.request.post('/api/v1/me/calendar-subscriptions', { data: { name: 'Unreachable', url: 'https://calendar.example.invalid/cal.ics' } });
    expect(subscribed.status()).toBe(201);
    const file = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:No start\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    const uploaded = await page.request.post('/api/v1/me/calendar-subscriptions/upload?name=Warnings', { headers: { 'content-type': 'text/calendar' }, data: file });
    expect(uploaded.status()).toBe(201);
    await page.reload();
    await expect(page.getByTestId('subscription-error')).toBeVisible();
    await expect(page.getByTestId('subscription-warnings')).toBeVisible();
    await checkA11y(page, 'settings with other calendars');

    await page.goto('/meetings');
    await checkA11y(page, 'meetings, maybe empty');
    await booking(page, uniqueName('A11Y'), '2031-06-01T14:00:00.000Z');
    await booking(page, uniqueName('A11Y'), '2020-06-01T14:00:00.000Z');
    await page.reload();
    await expect(page.getByTestId('meeting').first()).toBeVisible();
    await checkA11y(page, 'meetings with upcoming and past');

    await page.goto('/inbox');
    await checkA11y(page, 'empty inbox');
    const sent = await page.request.post('/chat', { data: { username: me, text: 'a note to self', timeout: 3600 } });
    expect(sent.status()).toBe(201);
    const { id } = await sent.json();
    await page.reload();
    await expect(page.getByTestId('waiting-message')).toHaveCount(1);
    await checkA11y(page, 'inbox with a waiting message');
    await page.getByRole('button', { name: /Read 1 message/ }).click();
    await expect(page.getByTestId('read')).toBeVisible();
    await checkA11y(page, 'inbox just read');
    await page.goto(`/inbox/message?id=${id}`);
    await checkA11y(page, 'one message');
    await page.goto('/inbox/message?id=999999999');
    await checkA11y(page, 'a message that does not exist');

    await page.goto('/wages');
    await expect(page.getByTestId('boxplot')).toBeVisible();
    await checkA11y(page, 'wages, default view');
    await page.goto('/wages?group_by=soc&state=WA');
    await expect(page.getByTestId('market').first()).toBeVisible();
    await checkA11y(page, 'wages with the market overlay');
    await page.goto('/wages?employer=NO-SUCH-EMPLOYER-XYZ');
    await checkA11y(page, 'wages, nothing matches');

    await page.goto('/account');
    await page.getByLabel('Token name').fill('a11y token');
    await page.getByLabel('Your password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect(page.getByTestId('new-token')).toBeVisible();
    await checkA11y(page, 'account with a new token');
    await page.goto('/broker');
    await checkA11y(page, 'broker as a member (admins only)');
  });
});

test('as an admin: the broker, a subscriber and the imports', async ({ page }) => {
  test.setTimeout(90_000);
  await logInAsAdmin(page);
  await page.goto('/broker');
  await hydrated(page);
  const topic = `a11y:${uniqueName('t')}`;
  await page.getByLabel('Topic name').fill(topic);
  await page.getByRole('button', { name: 'Create topic' }).click();
  await expect(page.getByText(topic).first()).toBeVisible();
  await checkA11y(page, 'broker with topics');
  const res = await page.request.post('/api/v1/subscribers', { data: { name: uniqueName('sub'), url: 'http://127.0.0.1:9/a11y' } });
  const sub = await res.json();
  await page.request.post(`/api/v1/subscribers/${sub.id}/subscriptions`, { data: { topic } });
  await page.request.post(`/api/v1/topics/${topic}/messages`, { data: { payload: { n: 1 } } });
  await page.goto(`/broker/subscribers/${sub.id}`);
  await expect(page.getByTestId('delivery').first()).toBeVisible();
  await checkA11y(page, 'subscriber with its delivery log');
  await page.goto('/wages');
  await expect(page.getByTestId('boxplot')).toBeVisible();
  await checkA11y(page, 'wages with the imports card');
  await page.goto('/system');
  await expect(page.getByTestId('process')).toBeVisible();
  await checkA11y(page, 'the System page');
  await page.goto('/');
  await expect(page.getByTestId('demo-tour')).toBeVisible();
  await checkA11y(page, 'home with the demo tour');
});

test('the keyboard alone creates, opens and closes events, scrolls the week and reads the chart', async ({ page }) => {
  const me = uniqueName('keys');
  await signUp(page, me);
  await page.goto('/calendar');
  await hydrated(page);
  // New event: from the toolbar, focus lands in the form, Enter saves.
  await page.getByRole('button', { name: 'New event' }).focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('dialog')).toBeVisible();
  await expect(page.getByLabel('Title')).toBeFocused();
  await page.keyboard.type('Typed, not clicked');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('dialog')).toHaveCount(0);
  const chip = page.getByTestId('event').filter({ hasText: 'Typed, not clicked' }).first();
  await expect(chip).toBeVisible();
  // An event opens with Enter and closes with Escape.
  await chip.focus();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('dialog')).toBeVisible();
  await expect(page.getByLabel('Title')).toHaveValue('Typed, not clicked');
  await page.keyboard.press('Escape');
  await expect(page.getByRole('dialog')).toHaveCount(0);
  // The hour grid scrolls from the keyboard.
  const grid = page.getByRole('region', { name: 'The week, hour by hour' });
  await grid.focus();
  const before = await grid.evaluate((el) => el.scrollTop);
  await page.keyboard.press('PageDown');
  await expect.poll(() => grid.evaluate((el) => el.scrollTop)).toBeGreaterThan(before);

  // The box plot's figures, as a table a keyboard (and a screen reader) can read.
  await page.goto('/wages?group_by=soc&state=WA');
  await hydrated(page);
  const groups = await page.getByTestId('box-group').count();
  expect(groups).toBeGreaterThan(0);
  const summary = page.getByText("The plot's figures as a table");
  await summary.focus();
  await page.keyboard.press('Enter');
  const table = page.getByTestId('figures').getByRole('table');
  await expect(table).toBeVisible();
  await expect(table.locator('tbody tr')).toHaveCount(groups);
  await expect(table.getByRole('columnheader', { name: 'Median' })).toBeVisible();
  await expect(table.getByRole('columnheader', { name: 'Market p10 – p90' })).toBeVisible();

  // Live pages announce what changed, politely.
  await page.goto('/meetings');
  await hydrated(page);
  await expect(page.getByRole('status')).toHaveText(/upcoming and \d+ past meeting/);
});
