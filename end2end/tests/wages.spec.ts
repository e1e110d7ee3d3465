import { test, expect, hydrated, uniqueName, logInAsAdmin } from './fixtures';

const HEADER =
  'CASE_NUMBER,CASE_STATUS,RECEIVED_DATE,DECISION_DATE,EMPLOYER_NAME,JOB_TITLE,SOC_CODE,SOC_TITLE,WORKSITE_CITY,' +
  'WORKSITE_STATE,WAGE_RATE_OF_PAY_FROM,WAGE_RATE_OF_PAY_TO,WAGE_UNIT_OF_PAY,PREVAILING_WAGE,PW_UNIT_OF_PAY,PW_WAGE_LEVEL';

/** Type-7 quantile (R's default), computed here independently of the app. */
function quantile(sorted: number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

test('an uploaded LCA file is imported with live progress; filtered, the box plot and the table agree', async ({ page }) => {
  test.setTimeout(90_000);
  const employer = uniqueName('PWTEST').toUpperCase() + ' CORP';
  const wages = [98000, 101500, 104000, 110000, 112250, 118000, 121000, 125000, 131000, 140000, 152000, 240000];
  const lines = wages.map((w, i) =>
    `E2E-${employer.slice(6, 14)}-${i},Certified,2024-09-01,2024-10-15,${employer},Data Engineer,15-1252.00,Software Developers,Seattle,WA,${w},,Year,"$100,000.00",Year,Level II`);
  const others = [1, 2, 3].map((i) =>
    `E2E-${employer.slice(6, 14)}-A${i},Certified,2024-09-01,2024-10-15,${employer},Analyst,15-2051,Data Scientists,Seattle,WA,${50 + i},,Hour,,,`);
  const bad = `E2E-${employer.slice(6, 14)}-BAD,Certified,2024-09-01,2024-10-15,${employer},Analyst,15-2051,x,Seattle,WA,12,,Fortnight,,,`;
  const csv = [HEADER, ...lines, ...others, bad].join('\n') + '\n';

  await logInAsAdmin(page);
  await page.goto('/wages');
  await hydrated(page);
  await page.getByTestId('lca-file').setInputFiles({ name: 'e2e-lca.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByRole('button', { name: 'Upload and import' }).click();

  // The import list follows the job live (SSE), to a full progress bar.
  const upload = page.getByTestId('import').filter({ hasText: 'e2e-lca.csv' }).first();
  await expect(upload).toHaveAttribute('data-state', 'done', { timeout: 30_000 });
  await expect(upload).toHaveAttribute('data-new', String(wages.length + others.length));
  await expect(upload).toHaveAttribute('data-bad', '1');
  await expect(upload.getByRole('progressbar')).toHaveAttribute('aria-valuenow', '100');
  await upload.getByText('1 bad row(s)').click();
  await expect(upload).toContainText(`line ${wages.length + others.length + 2}`);

  // Filter to the employer and one job title through the filter bar.
  await page.getByLabel('Employer', { exact: true }).fill(employer);
  await page.getByLabel('Job title', { exact: true }).fill('data engineer');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/employer=PWTEST/);
  await hydrated(page);

  const boxes = page.getByTestId('box-group');
  await expect(boxes).toHaveCount(1);
  const box = boxes.first();
  await expect(box).toHaveAttribute('data-key', 'DATA ENGINEER');
  await expect(page.getByTestId('records-total')).toHaveText(String(wages.length));
  const rows = page.getByTestId('wage-row');
  await expect(rows).toHaveCount(wages.length);

  // The table's wages give the same box as the chart, computed here.
  const tableWages = (await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-wage'))))).sort((a, b) => a - b);
  expect(tableWages).toEqual([...wages].sort((a, b) => a - b));
  const attr = async (name: string) => Number(await box.getAttribute(name));
  expect(await attr('data-n')).toBe(tableWages.length);
  expect(await attr('data-min')).toBe(tableWages[0]);
  expect(await attr('data-max')).toBe(tableWages[tableWages.length - 1]);
  expect(await attr('data-median')).toBeCloseTo(quantile(tableWages, 0.5), 6);
  expect(await attr('data-q1')).toBeCloseTo(quantile(tableWages, 0.25), 6);
  expect(await attr('data-q3')).toBeCloseTo(quantile(tableWages, 0.75), 6);
  // 240,000 lies beyond Q3 + 1.5 IQR: drawn as an outlier dot, not inside the whisker.
  await expect(box.locator('circle.outlier')).toHaveCount(1);

  // Hovering shows the figures; sorting by wage descending puts the top earner first.
  await box.hover();
  await expect(page.getByTestId('boxplot-details')).toContainText('$119,500'); // the median of 12: (118,000 + 121,000) / 2
  // The table is sorted by wage, ascending, to begin with: its header flips the order.
  await expect(rows.first()).toHaveAttribute('data-wage', '98000');
  await page.getByRole('link', { name: /Annual wage/ }).click();
  await expect(page).toHaveURL(/sort=annual_wage&dir=desc/);
  await expect(rows.first()).toHaveAttribute('data-wage', '240000');
  await expect(page).toHaveURL(/job_title=data%20engineer/); // filters kept, readable
});

test('the demo sample is there and labelled synthetic, never passed off as filings', async ({ page }) => {
  test.setTimeout(150_000);
  await logInAsAdmin(page);
  // The demo is seeded by a background job when the server starts: wait for it.
  await expect
    .poll(async () => {
      await page.goto('/wages?employer=contoso&group_by=soc');
      return page.getByTestId('synthetic-banner').count();
    }, { timeout: 120_000, intervals: [2_000] })
    .toBe(1);
  await hydrated(page);
  await expect(page.getByTestId('wage-row').first()).toContainText('synthetic');
  await expect(page.getByTestId('box-group').first()).toBeVisible();
  await expect(page.getByTestId('market').first()).toBeVisible();
});
