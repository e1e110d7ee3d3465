import { test, expect, hydrated, uniqueName, PASSWORD } from './fixtures';
import crypto from 'node:crypto';

// Two server processes on one MariaDB database (started by scripts/test.sh).
const pageServer = process.env.SB_E2E_MARIADB_A ?? 'http://127.0.0.1:3000';
const webhookServer = process.env.SB_E2E_MARIADB_B ?? pageServer;
const key = process.env.SB_E2E_CALENDLY_KEY ?? 'dev';

function delivery(event: string, ev: string, inv: string, extra: Record<string, unknown> = {}) {
  const api = 'https://api.calendly.com';
  return {
    created_at: new Date().toISOString(),
    created_by: `${api}/users/HOST`,
    event,
    payload: {
      uri: `${api}/scheduled_events/${ev}/invitees/${inv}`,
      email: 'grace@example.com',
      name: 'Grace Hopper',
      status: event === 'invitee.canceled' ? 'canceled' : 'active',
      timezone: 'America/New_York',
      rescheduled: false,
      scheduled_event: {
        uri: `${api}/scheduled_events/${ev}`,
        name: 'Design review',
        start_time: '2031-06-01T14:00:00.000000Z',
        end_time: '2031-06-01T14:30:00.000000Z',
        location: { type: 'physical', location: 'Room 4' },
        event_memberships: [{ user_email: 'host@example.com' }],
      },
      ...extra,
    },
  };
}

async function post(request: any, body: object) {
  const raw = JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', key).update(`${t}.${raw}`).digest('hex');
  const res = await request.post(`${webhookServer}/webhooks/calendly`, {
    headers: { 'content-type': 'application/json', 'calendly-webhook-signature': `t=${t},v1=${v1}` },
    data: raw,
  });
  expect(res.status()).toBe(202);
}

test('a booking POSTed to another server process appears live, then its cancellation', async ({ page, request }) => {
  // Sign up on the page server (its own account table: the MariaDB pair shares one).
  await page.goto(`${pageServer}/signup`);
  await hydrated(page);
  await page.getByLabel('Username').fill(uniqueName('viewer'));
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('current-user')).toBeVisible();

  await page.goto(`${pageServer}/meetings`);
  await hydrated(page);
  const ev = uniqueName('EV');
  const row = page.locator(`[data-testid="meeting"][data-event$="/${ev}"]`);
  await expect(row).toHaveCount(0);

  await post(request, delivery('invitee.created', ev, 'INV1'));
  await expect(row).toHaveCount(1); // no reload: the page follows the change stream
  await expect(row).toHaveAttribute('data-status', 'scheduled');
  await expect(row).toContainText('Design review');
  await expect(row).toContainText('Grace Hopper');
  await expect(page.getByTestId('upcoming')).toContainText('Room 4');

  await post(request, delivery('invitee.canceled', ev, 'INV1', {
    cancellation: { canceled_by: 'Grace Hopper', reason: 'double-booked', canceler_type: 'invitee' },
  }));
  await expect(row).toHaveAttribute('data-status', 'canceled');
  await expect(row).toContainText('double-booked');

  // Filters live in the URL, so a view can be shared.
  await page.goto(`${pageServer}/meetings?status=scheduled`);
  await hydrated(page);
  await expect(row).toHaveCount(0);
});
