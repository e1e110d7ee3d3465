import { test, expect, hydrated, uniqueName, signUp, watchErrors } from './fixtures';

test('a message arrives live, is read once, and stays readable by id after archiving', async ({ page, browser }) => {
  // The recipient, in a second browser.
  const recipientContext = await browser.newContext();
  const inbox = await recipientContext.newPage();
  const problems: string[] = [];
  watchErrors(inbox, [], problems);
  const recipient = uniqueName('bob');
  await signUp(inbox, recipient);
  await inbox.goto('/inbox');
  await hydrated(inbox);
  await expect(inbox.getByTestId('waiting')).toContainText('No unexpired messages.');

  // The sender.
  await signUp(page, uniqueName('ada'));
  await page.goto('/inbox');
  await hydrated(page);
  await page.getByLabel('To').fill(recipient);
  await page.getByLabel('Message', { exact: true }).fill('hello from the other browser');
  await page.getByLabel('Expires after (seconds)').fill('120');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('sent')).toBeVisible();

  // It shows up in the recipient's open inbox without a reload, counting down.
  await expect(inbox.getByTestId('waiting-message')).toHaveCount(1);
  await expect(inbox.getByTestId('countdown')).toContainText(/expires in 1 min/);
  const first = await inbox.getByTestId('countdown').textContent();
  await expect(inbox.getByTestId('countdown')).not.toHaveText(first!, { timeout: 5000 });

  // Reading shows the text and expires the message: the waiting list empties.
  await inbox.getByRole('button', { name: 'Read 1 message(s)' }).click();
  await expect(inbox.getByTestId('read')).toContainText('hello from the other browser');
  await expect(inbox.getByTestId('waiting-message')).toHaveCount(0);

  // A message that expires at once: its page says expired, then (after the archiver ran)
  // archived, with the same text.
  await page.getByLabel('Message', { exact: true }).fill('short-lived');
  await page.getByLabel('Expires after (seconds)').fill('0');
  await page.getByRole('button', { name: 'Send' }).click();
  const link = page.getByTestId('sent').getByRole('link');
  await expect(link).toHaveText(/#\d+/);
  await link.click();
  await expect(page.getByTestId('message')).toContainText('short-lived');
  await expect(page.getByTestId('message')).toContainText('expired');
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('message')).toHaveAttribute('data-storage', 'archived', { timeout: 500 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByTestId('message')).toContainText('short-lived');

  expect(problems, 'browser errors in the second browser').toEqual([]);
  await recipientContext.close();
});
