import { test, expect, hydrated } from './fixtures';

// A real browser's page load reports its navigation timing through the beacon, and the
// sample shows up in /metrics under the page's route.
test('a navigation-timing sample from a real page load reaches /metrics', async ({ page, request }) => {
  const samples = async () => {
    const text = await (await request.get('/metrics')).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('browser_navigation_seconds_count{') && l.includes('route="/signup"') && l.includes('phase="hydrated"'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };
  const before = await samples();
  await page.goto('/signup');
  await hydrated(page);
  await expect.poll(samples, { timeout: 10_000 }).toBeGreaterThan(before);
});
