import { test as base, expect, Page } from '@playwright/test';

type Fixtures = {
  /** HTTP statuses this test expects the app to answer with (e.g. 401 for a wrong
   *  password); the browser logs those as console errors, which are otherwise fatal. */
  expectedHttpErrors: number[];
};

/** Collects uncaught page errors and console errors (but the expected HTTP statuses). */
export function watchErrors(page: Page, expectedHttpErrors: number[], problems: string[]) {
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const status = /status of (\d{3})/.exec(text);
    if (status && expectedHttpErrors.includes(Number(status[1]))) return;
    problems.push(`console: ${text}`);
  });
}

/** Every test fails on an uncaught page error or a console error. */
export const test = base.extend<Fixtures>({
  expectedHttpErrors: [[], { option: true }],
  page: async ({ page, expectedHttpErrors }, use) => {
    const problems: string[] = [];
    watchErrors(page, expectedHttpErrors, problems);
    await use(page);
    expect(problems, 'browser errors during the test').toEqual([]);
  },
});

export { expect };

/** Waits until the WASM app has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

export const PASSWORD = 'correct horse battery staple';

/** Signs up through the UI (the first account of a fresh installation is admin). */
export async function signUp(page: Page, username: string, password = PASSWORD) {
  await page.goto('/signup');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('current-user')).toBeVisible();
}

/** Logs in as the admin the test command created (`server create-admin`). */
export async function logInAsAdmin(page: Page) {
  const username = process.env.SB_E2E_ADMIN_USER ?? 'e2eadmin';
  const password = process.env.SB_E2E_ADMIN_PASSWORD ?? PASSWORD;
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('current-user')).toBeVisible();
}
