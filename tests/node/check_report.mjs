// Opens a report page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// records console messages, page errors and every network request, saves a full-page
// screenshot and measures it. Prints one JSON object; the Rust test (tests/report.rs) asserts.
//
//   node tests/node/check_report.mjs <page.html> <screenshot.png>
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [htmlPath, pngPath] = process.argv.slice(2);
const url = pathToFileURL(htmlPath).href;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleMessages = [];
  const pageErrors = [];
  const requests = [];
  page.on('console', (m) => consoleMessages.push({ type: m.type(), text: m.text() }));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  const dom = await page.evaluate(() => {
    const svgs = [...document.querySelectorAll('section svg')];
    return {
      title: document.title,
      sections: [...document.querySelectorAll('section')].map((s) => s.id),
      svgs: svgs.length,
      // Charts that rendered too small to read (an empty or broken SVG).
      tinySvgs: svgs.filter((s) => { const r = s.getBoundingClientRect(); return r.width < 200 || r.height < 80; }).length,
      kpis: Object.fromEntries([...document.querySelectorAll('[data-kpi]')]
        .map((k) => [k.dataset.kpi, k.dataset.value ?? null])),
      captions: document.querySelectorAll('figcaption').length,
      tables: document.querySelectorAll('figure table').length,
      scripts: document.scripts.length,
      text: document.body.innerText,
    };
  });
  await page.screenshot({ path: pngPath, fullPage: true });
  // Measure the screenshot in a second page (not watched for requests): size, distinct
  // colours and the share of non-white pixels, from a sample of every 7th pixel.
  const probe = await browser.newPage();
  await probe.setContent('<canvas id="c"></canvas>');
  const shot = await probe.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.getElementById('c');
    c.width = img.width; c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, img.width, img.height).data;
    const colours = new Set();
    let sampled = 0; let nonWhite = 0;
    for (let i = 0; i < d.length; i += 4 * 7) {
      const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
      colours.add(k); sampled += 1;
      if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) nonWhite += 1;
    }
    return { width: img.width, height: img.height, colours: colours.size, nonWhiteShare: nonWhite / sampled };
  }, readFileSync(pngPath).toString('base64'));
  console.log(JSON.stringify({ consoleMessages, pageErrors, requests, dom, shot }));
} finally {
  await browser.close();
}
