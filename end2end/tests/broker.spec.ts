import { test, expect, hydrated, uniqueName, logInAsAdmin } from './fixtures';
import http from 'node:http';

/** A webhook receiver on loopback (the e2e server allows 127.0.0.1 as a target). */
async function startReceiver() {
  const hits: { headers: http.IncomingHttpHeaders; body: any }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hook`, hits, close: () => server.close() };
}

test('an admin wires a subscriber and watches deliveries arrive live', async ({ page }) => {
  const receiver = await startReceiver();
  await logInAsAdmin(page);

  await page.goto('/broker');
  await hydrated(page);
  const topic = `e2e:${uniqueName('t')}`;
  await page.getByLabel('Topic name').fill(topic);
  await page.getByLabel('Description').fill('end-to-end test topic');
  await page.getByRole('button', { name: 'Create topic' }).click();
  await expect(page.getByTestId('topics')).toContainText(topic);

  await page.getByLabel('Subscriber name').fill('e2e receiver');
  await page.getByLabel('Endpoint URL').fill(receiver.url);
  await page.getByRole('button', { name: 'Add subscriber' }).click();
  await expect(page.getByTestId('new-secret')).toHaveText(/^whsec_/);
  await page.getByRole('link', { name: 'Open the subscriber →' }).click();
  await expect(page.getByRole('heading', { name: 'e2e receiver' })).toBeVisible();
  await hydrated(page);

  await page.getByLabel('Topic or pattern').fill(topic);
  await page.getByRole('button', { name: 'Subscribe' }).click();
  await expect(page.getByTestId('subscriptions')).toContainText(topic);

  // Publish over the REST API (the page's session cookie authenticates it); the open
  // page shows the deliveries without a reload.
  for (const n of [1, 2, 3]) {
    const res = await page.request.post(`/api/v1/topics/${topic}/messages`, { data: { payload: { n } } });
    expect(res.status()).toBe(202);
  }
  const delivered = page.locator('[data-testid="delivery"][data-state="delivered"]');
  await expect(delivered).toHaveCount(3);
  expect(receiver.hits.map((h) => h.body.data.n)).toEqual([1, 2, 3]);
  expect(receiver.hits[0].headers['webhook-signature']).toMatch(/^v1,/);

  // Pause: a new message waits (lag 1); resume: it goes out, live.
  await page.getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('subscriptions')).toContainText('paused');
  await page.request.post(`/api/v1/topics/${topic}/messages`, { data: { payload: { n: 4 } } });
  await expect(page.getByTestId('lag')).toHaveText('1');
  await expect(page.locator('[data-testid="delivery"][data-state="pending"]')).toHaveCount(1);
  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(delivered).toHaveCount(4);
  await expect(page.getByTestId('lag')).toHaveText('0');
  expect(receiver.hits.map((h) => h.body.data.n)).toEqual([1, 2, 3, 4]);
  receiver.close();
});

test('members do not see the broker', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByRole('navigation').getByRole('link', { name: 'Broker' })).toHaveCount(0);
});
