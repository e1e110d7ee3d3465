import { test, expect, hydrated, uniqueName, signUp, PASSWORD } from './fixtures';

test('the first response is server-rendered, then the page hydrates', async ({ browser }) => {
  // JavaScript off: the content is in the HTML itself.
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  const page = await noJs.newPage();
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Switchboard', level: 1 })).toBeVisible();
  await expect(page.getByTestId('system-status')).toContainText('Database');
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
  await noJs.close();
});

test('the WASM app hydrates and navigates client-side', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
});

test('sign up, log out, log in', async ({ page }) => {
  const username = uniqueName('e2e');
  await signUp(page, username);
  await expect(page.getByTestId('current-user')).toHaveText(username);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByTestId('current-user')).toHaveCount(0);

  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('current-user')).toHaveText(username);
  await expect(page.getByTestId('welcome')).toContainText(username);

  // The session survives a full reload (server-side session cookie).
  await page.reload();
  await expect(page.getByTestId('current-user')).toHaveText(username);
});

test.describe('wrong password', () => {
  test.use({ expectedHttpErrors: [401] });

  test('shows the error and stays signed out', async ({ page }) => {
    const username = uniqueName('e2e');
    await signUp(page, username);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByRole('banner').getByRole('link', { name: 'Sign in' })).toBeVisible();

    await page.goto('/login');
    await hydrated(page);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill('not my password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('invalid username or password');
    await expect(page.getByTestId('current-user')).toHaveCount(0);
  });
});

test.describe('sign-up validation', () => {
  test.use({ expectedHttpErrors: [400] });

  test('a weak password is refused beside its field', async ({ page }) => {
    await page.goto('/signup');
    await hydrated(page);
    await page.getByLabel('Username').fill(uniqueName('e2e'));
    await page.getByLabel('Password').fill('aaaaaaaaaaaa');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByRole('alert')).toContainText('too easy to guess');
  });
});

test('API tokens are shown once and can be revoked', async ({ page }) => {
  await signUp(page, uniqueName('e2e'));
  await page.goto('/account');
  await hydrated(page);
  await page.getByPlaceholder('Token name').fill('laptop');
  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = await page.getByTestId('new-token').textContent();
  expect(token).toMatch(/^sb_/);

  // The token works against the REST API.
  const me = await page.request.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);

  await expect(page.getByRole('cell', { name: 'laptop' })).toBeVisible();
  await page.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByText('No tokens yet.')).toBeVisible();
  const after = await page.request.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).toBe(401);
});

test('changing the password keeps this browser signed in and signs the others out', async ({ page, browser }) => {
  const username = uniqueName('pw');
  await signUp(page, username);
  // A second browser signed in as the same account.
  const other = await browser.newContext();
  const phone = await other.newPage();
  await phone.goto('/login');
  await hydrated(phone);
  await phone.getByLabel('Username').fill(username);
  await phone.getByLabel('Password').fill(PASSWORD);
  await phone.getByRole('button', { name: 'Sign in' }).click();
  await expect(phone.getByTestId('current-user')).toHaveText(username);

  await page.goto('/account');
  await hydrated(page);
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password').fill('an entirely new passphrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByTestId('password-changed')).toBeVisible();
  await page.reload();
  await expect(page.getByTestId('current-user')).toHaveText(username);
  await phone.reload();
  await expect(phone.getByTestId('current-user')).toHaveCount(0);
  await other.close();
});
