// Drives the console in headless Chromium: sign in, read the aging board, open a request, retry a dead letter.
// Usage: node console_e2e.cjs <handoff url> <admin token> <screenshot dir>; PLAYWRIGHT_CORE names the module to load.
const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const [base, token, shots] = process.argv.slice(2);

async function expectText(page, text) {
  // Waits with Playwright's own deadline rather than sleeping.
  await page.getByText(text, { exact: false }).first().waitFor({ timeout: 10000 });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${base}/console/`);
    await page.getByLabel("Admin token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expectText(page, "open requests");
    await page.screenshot({ path: `${shots}/console-aging-board.png`, fullPage: true });

    await page.locator("#stalled a").first().click();
    await expectText(page, "Every entry verified");
    await page.screenshot({ path: `${shots}/console-request.png`, fullPage: true });

    await page.getByRole("link", { name: "Process intelligence" }).click();
    await expectText(page, "Approval duration by role and stage");
    await page.screenshot({ path: `${shots}/console-insights.png`, fullPage: true });

    await page.getByRole("link", { name: "Outbox" }).click();
    await page.locator("#dead").getByRole("button", { name: "Retry" }).first().click();
    await expectText(page, "is queued again");
    await page.screenshot({ path: `${shots}/console-outbox-retried.png`, fullPage: true });
    console.log("console e2e: ok");
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(`console e2e failed: ${error.stack || error}`);
  process.exit(1);
});
