// End-to-end checks of the web gallery served by `imagegen serve`, in headless Debian
// Chromium driven by playwright-core (run.sh starts the gateway on its simulator and sets
// GALLERY_URL). Each check prints PASS or FAIL with its reason, and the run closes with
// 'N passed, N failed'; the exit code is 1 when any check failed. Nothing is skipped: a
// check that needs what an earlier one failed to make fails too, and says so.
//
// The DOM contract checked (issue #17):
//   layout      nav with links Gallery `/`, Generate `/generate`, Spend `/spend`
//   `/`         form#filters (fields provider, model, from, to, q; a submit button),
//               ul#grid > li.tile > a[href^="/images/"] > img[alt], a#more, p#empty
//   `/generate` form#generate (textarea#prompt, select#shape, input#count, select#model,
//               select#quality, select#style, button#submit), table#plans tbody > tr.plan,
//               div#progress (a progress element and #status), div#result a.image-link;
//               fieldset#references (input#ref-1[type=url][name=reference_images],
//               button#add-reference), fieldset#kolbo-options (select#moodboard, the
//               account's moodboards; fieldset#visual-dna checkboxes name=visual_dna_ids),
//               #estimate-status (the estimate, or a refused request's message)
//   detail      /images/{provider}/{job_id}/{index}: img#image, #prompt, #revised-prompt,
//               #provider, #model, #route, #credits, #usd, #timings, a#download, a#rerun,
//               a#delete; the delete confirmation form#confirm-delete > button#confirm
//   `/spend`    svg#spend-chart rect[data-provider][data-day][data-credits], table#totals
//               tr[data-provider] td.credits, #total-credits, #budgets (.budget per key)

import { chromium } from 'playwright-core';
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const base = (process.env.GALLERY_URL || '').replace(/\/+$/, '');
if (!base) {
  console.error('gallery-e2e: GALLERY_URL is not set (run.sh starts imagegen serve and sets it)');
  process.exit(1);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const shotDir = process.env.SCREENSHOT_DIR || path.join(root, 'target', 'gallery-screenshots');
const readmeShot = process.env.README_SCREENSHOT || path.join(root, 'docs', 'gallery.png');
const updateReadme = process.argv.includes('--update-readme-screenshot');
const require = createRequire(import.meta.url);
const startedAt = Date.now();
const axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

// Bounded waits: generous for a debug build on 2 cores, never open-ended.
const NAV_MS = 20_000;
const PLANS_MS = 20_000;
const GENERATE_MS = 60_000;
const LIVE_MS = 45_000;
const SETTLE_MS = 10_000;

// Two prompts, each with a word no other prompt has (for the `q` filter).
const PROMPT_A = 'a lighthouse at dusk above zephyrquartz cliffs, watercolor';
const WORD_A = 'zephyrquartz';
const PROMPT_B = 'a red fox asleep in marmalade snow, gouache';
const WORD_B = 'marmalade';
// The prompt of the Kolbo check (no word of the others, so the filters are not moved).
const PROMPT_C = 'a quiet harbour town at blue hour, film photo';

// ---------------------------------------------------------------------------------------
// The runner: checks in order, each PASS or FAIL with its reason.

const results = [];
const notes = [];
const pageErrors = [];

class Needs extends Error {}

/** Fails a dependent check with the reason its input is missing. */
function need(value, what) {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) {
    throw new Needs(`needs ${what}, which an earlier check failed to produce`);
  }
  return value;
}

function record(name, ok, detail) {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}

// A page an axe-core audit is due on, once the check that reached it ends (pass or fail).
let pendingAudit = null;
function reached(label) {
  pendingAudit = label;
}

async function check(name, page, body) {
  try {
    return await runCheck(name, page, body);
  } finally {
    if (pendingAudit && page && !page.isClosed()) {
      const label = pendingAudit;
      pendingAudit = null;
      await audit(page, label);
    }
  }
}

async function runCheck(name, page, body) {
  const started = Date.now();
  try {
    const detail = await body();
    record(name, true, `${detail ? `${detail} ` : ''}(${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return true;
  } catch (error) {
    const reason = error instanceof Needs ? error.message : (error && error.message) || String(error);
    record(name, false, reason.split('\n').slice(0, 12).join('\n    '));
    if (page && !page.isClosed()) {
      const file = path.join(shotDir, `failed-${slug(name)}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.log(`     (the page at ${page.url()} is in ${path.relative(root, file)})`);
    }
    return false;
  }
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------
// Helpers.

/** The path of a URL or href (hrefs may be relative or absolute). */
function pathOf(href) {
  return new URL(href, base).pathname;
}

/** A decimal in `text` (the first number, thousands commas ignored) as nano-units. */
function decimal(text) {
  const match = String(text ?? '').replace(/,/g, '').match(/-?\d+(?:\.\d+)?/);
  if (!match) return null;
  const negative = match[0].startsWith('-');
  const [whole, fraction = ''] = match[0].replace('-', '').split('.');
  const value = BigInt(whole) * 1_000_000_000n + BigInt((fraction + '000000000').slice(0, 9));
  return negative ? -value : value;
}

function showDecimal(value) {
  if (value === null || value === undefined) return 'none';
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / 1_000_000_000n;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

async function goto(page, route) {
  const response = await page.goto(base + route, { waitUntil: 'load', timeout: NAV_MS });
  assert(response, `GET ${route}: no response`);
  assert(response.ok(), `GET ${route} answered ${response.status()}`);
  return response;
}

/** Waits for `selector`, with a message naming the selector and the page when it never comes. */
async function want(page, selector, { state = 'attached', timeout = SETTLE_MS, what } = {}) {
  try {
    return await page.waitForSelector(selector, { state, timeout });
  } catch {
    throw new Error(
      `${what ? `${what}: ` : ''}\`${selector}\` ${state === 'visible' ? 'is not visible' : 'is missing'} on ${pathOf(page.url())} (waited ${timeout / 1000} s)`,
    );
  }
}

async function shot(page, name) {
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The visible tiles of the grid: their detail links (paths) and their images' alt texts. */
async function tiles(page) {
  return page.$$eval('ul#grid > li.tile', (items) =>
    items
      .filter((li) => li.checkVisibility())
      .map((li) => {
        const link = li.querySelector('a[href^="/images/"]');
        const img = link && link.querySelector('img[alt]');
        return {
          href: link ? new URL(link.getAttribute('href'), location.href).pathname : null,
          alt: img ? img.getAttribute('alt') : null,
          loaded: img ? img.complete && img.naturalWidth > 0 : false,
        };
      }),
  );
}

/** Waits until `predicate(tiles)` holds; the last tiles seen go into the error. */
async function waitForTiles(page, predicate, timeout, what) {
  const deadline = Date.now() + timeout;
  let seen = [];
  for (;;) {
    seen = await tiles(page).catch(() => []);
    if (predicate(seen)) return seen;
    if (Date.now() > deadline) {
      throw new Error(
        `${what} (waited ${timeout / 1000} s); the grid shows ${seen.length} tile(s): ${seen.map((t) => t.href).join(', ') || 'none'}`,
      );
    }
    await page.waitForTimeout(200);
  }
}

/** Generates through the API, as a client with the same gateway would. */
async function apiGenerate(body) {
  const response = await fetch(`${base}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(GENERATE_MS),
  });
  const text = await response.text();
  assert(response.ok, `POST /v1/images/generations answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function apiJson(route) {
  const response = await fetch(base + route, { signal: AbortSignal.timeout(NAV_MS) });
  const text = await response.text();
  assert(response.ok, `GET ${route} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// axe-core: serious and critical violations fail; the others are printed.
const axePages = ['/', '/generate', '/generate with Kolbo options', 'a detail page', '/spend', 'the delete confirmation'];
const axeDone = new Set();

async function audit(page, label) {
  axeDone.add(label);
  await check(`7 axe-core on ${label}`, page, async () => {
    await page.evaluate(axeSource);
    const loaded = await page.evaluate(() => typeof window.axe?.run === 'function');
    assert(loaded, 'axe-core could not be injected into the page');
    const { violations } = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const describe = (v) =>
      `${v.impact} ${v.id} (${v.help}): ${v.nodes
        .slice(0, 4)
        .map((n) => n.target.join(' '))
        .join('; ')}${v.nodes.length > 4 ? `; and ${v.nodes.length - 4} more` : ''}`;
    const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    const other = violations.filter((v) => !blocking.includes(v));
    for (const v of other) {
      const note = `axe-core on ${label}: ${describe(v)}`;
      notes.push(note);
      console.log(`     note: ${note}`);
    }
    assert(blocking.length === 0, `${blocking.length} serious or critical violation(s):\n${blocking.map(describe).join('\n')}`);
    return `no serious or critical violations${other.length ? `; ${other.length} minor or moderate noted` : ''}`;
  });
}

// The layout's nav, checked on every page visited.
const navProblems = new Map();
async function checkNav(page, label) {
  const links = await page
    .$$eval('nav a[href]', (as) => as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent.trim() })))
    .catch(() => []);
  const missing = [
    ['Gallery', '/'],
    ['Generate', '/generate'],
    ['Spend', '/spend'],
  ].filter(([text, href]) => !links.some((l) => pathOf(l.href) === href && l.text.toLowerCase().includes(text.toLowerCase())));
  if (missing.length) {
    navProblems.set(label, `no ${missing.map(([t, h]) => `\`nav a[href="${h}"]\` "${t}"`).join(', ')}`);
  } else {
    navProblems.set(label, null);
  }
}

// ---------------------------------------------------------------------------------------
// The run.

await mkdir(shotDir, { recursive: true });
for (const name of await readdir(shotDir)) {
  if (name.startsWith('failed-')) await rm(path.join(shotDir, name), { force: true });
}
const browser = await chromium.launch({
  executablePath,
  headless: true,
  chromiumSandbox: false,
  // This machine's network is closed: no background connections, no component updates.
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  timeout: 60_000,
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
context.setDefaultTimeout(SETTLE_MS);
context.setDefaultNavigationTimeout(NAV_MS);
const page = await context.newPage();
page.on('pageerror', (error) => pageErrors.push(`${pathOf(page.url())}: ${error.message}`));

// What the checks learn and pass on.
const state = {
  imageA: null, // the detail path of the image made through /generate
  imageA2: null, // the one made again from its detail page (a#rerun)
  imageB: null, // the one made through the API while the grid was open
  providerOf: new Map(), // detail path -> provider
};

// 0. A fresh ledger: the empty state, the filters form and the layout.
await check('0 empty gallery: p#empty, no tiles, form#filters', page, async () => {
  await goto(page, '/');
  await checkNav(page, '/');
  await want(page, 'p#empty', { state: 'visible', what: 'a fresh ledger' });
  const shown = await tiles(page);
  assert(shown.length === 0, `p#empty is shown but so are ${shown.length} tile(s)`);
  await want(page, 'form#filters');
  const fields = await page.$$eval('form#filters [name]', (els) => els.map((e) => e.getAttribute('name')));
  const missing = ['provider', 'model', 'from', 'to', 'q'].filter((n) => !fields.includes(n));
  assert(missing.length === 0, `form#filters has no field named ${missing.join(', ')} (it has: ${fields.join(', ') || 'none'})`);
  const submit = await page.$('form#filters button:not([type="button"]):not([type="reset"]), form#filters input[type="submit"]');
  assert(submit, 'form#filters has no submit button');
  await shot(page, 'gallery-empty');
  return 'p#empty shown, filters provider/model/from/to/q and a submit button';
});

// 1. Generate through the page.
await check('1 /generate: plans priced, submit, progress moves, result link', page, async () => {
  // Follows the progress bar and the status in every document of this page, from the
  // moment it loads, so a move is seen even when it is quick.
  const seen = { positions: [], statuses: [] };
  await page.exposeBinding('__galleryProgress', (_source, kind, value) => {
    const list = kind === 'position' ? seen.positions : seen.statuses;
    if (list.at(-1) !== value) list.push(value);
  });
  await page.addInitScript(() => {
    if (window.__galleryProgressTimer) return;
    let position;
    let status;
    window.__galleryProgressTimer = setInterval(() => {
      if (!window.__galleryProgress) return;
      const bar = document.querySelector('#progress progress');
      const text = document.querySelector('#status')?.textContent.trim();
      if (bar && bar.position !== position) window.__galleryProgress('position', (position = bar.position));
      if (text !== undefined && text !== status) window.__galleryProgress('status', (status = text));
    }, 10);
  });

  await goto(page, '/generate');
  reached('/generate');
  await checkNav(page, '/generate');
  for (const selector of [
    'form#generate',
    'form#generate textarea#prompt',
    'form#generate select#shape',
    'form#generate input#count',
    'form#generate select#model',
    'form#generate select#quality',
    'form#generate select#style',
    'form#generate button#submit',
    'table#plans',
    'div#progress progress',
    'div#progress #status',
    'div#result',
  ]) {
    await want(page, selector);
  }
  await page.fill('textarea#prompt', PROMPT_A);
  // A plan with a price: a row of the plans table with a number in it.
  try {
    await page.waitForFunction(
      () => [...document.querySelectorAll('table#plans tbody tr.plan')].some((tr) => /\d/.test(tr.textContent)),
      null,
      { timeout: PLANS_MS, polling: 100 },
    );
  } catch {
    const rows = await page.$$eval('table#plans tbody tr', (trs) => trs.map((tr) => `${tr.className}: ${tr.textContent.trim().replace(/\s+/g, ' ')}`));
    throw new Error(`no \`table#plans tbody tr.plan\` with a price after typing a prompt (waited ${PLANS_MS / 1000} s); rows: ${rows.join(' | ') || 'none'}`);
  }
  const firstPlan = (await page.textContent('table#plans tbody tr.plan')).trim().replace(/\s+/g, ' ');
  seen.positions.length = 0;
  seen.statuses.length = 0;
  const before = await page.evaluate(() => document.querySelector('#progress progress').position);
  seen.positions.push(before);
  await page.click('button#submit');
  const link = await want(page, '#result a.image-link[href^="/images/"]', {
    timeout: GENERATE_MS,
    what: 'after submitting',
  });
  const href = pathOf(await link.getAttribute('href'));
  await page.waitForTimeout(50); // one more sample of the final state
  // Moved: from where it started to higher, through at least one step between (not only
  // set to done at the end).
  const first = seen.positions[0];
  const last = Math.max(...seen.positions);
  const between = seen.positions.some((p) => p > Math.max(first, 0) && p < last);
  assert(
    last > first && between,
    `#progress's progress element did not move while generating (positions seen: ${seen.positions.join(' → ')}; #status: ${seen.statuses.join(' → ') || 'never set'})`,
  );
  assert(/^\/images\/[^/]+\/[^/]+\/\d+$/.test(href), `the result link ${href} is not /images/{provider}/{job_id}/{index}`);
  state.imageA = href;
  state.providerOf.set(href, href.split('/')[2]);
  await shot(page, 'generate');
  return `first plan "${firstPlan.slice(0, 80)}"; progress ${seen.positions.map((p) => (p < 0 ? 'indeterminate' : p.toFixed(2))).join(' → ')}; status ${seen.statuses.map((s) => JSON.stringify(s.slice(0, 40))).join(' → ')}; result ${href}`;
});

// 2a. The new image is a tile of the grid.
await check('2a / shows the new image as a tile with alt text', page, async () => {
  const href = need(state.imageA, 'the image of check 1');
  await goto(page, '/');
  reached('/');
  await checkNav(page, '/');
  await want(page, 'ul#grid > li.tile > a[href^="/images/"] > img[alt]');
  const shown = await tiles(page);
  const tile = shown.find((t) => t.href === href);
  assert(tile, `no \`ul#grid > li.tile > a[href="${href}"]\`; tiles: ${shown.map((t) => t.href).join(', ')}`);
  assert(tile.alt && tile.alt.trim(), `the tile's img has an empty alt`);
  await page.waitForFunction(
    (h) => {
      const img = document.querySelector(`ul#grid li.tile a[href="${h}"] img`);
      return img && img.complete && img.naturalWidth > 0;
    },
    href,
    { timeout: SETTLE_MS },
  ).catch(() => {
    throw new Error(`the tile's image for ${href} does not load`);
  });
  assert(!(await page.$('p#empty')) || !(await page.isVisible('p#empty')), 'p#empty is still shown with a tile in the grid');
  return `tile ${href}, alt "${tile.alt.slice(0, 60)}"`;
});

// 2b. An image generated elsewhere arrives in the open grid without a reload.
await check('2b / grows by itself when an image is generated through the API', page, async () => {
  need(state.imageA, 'the grid of check 2a');
  assert(pathOf(page.url()) === '/', `not on / but ${page.url()}`);
  const before = await tiles(page);
  await page.evaluate(() => {
    window.__galleryNotReloaded = true;
  });
  // The other image from a different provider, so the provider filter has two to tell apart.
  const answer = await apiGenerate({ prompt: PROMPT_B, model: 'koala', n: 1, size: '1024x1024' });
  const provider = answer?.imagegen?.provider;
  const after = await waitForTiles(
    page,
    (shown) => shown.length > before.length,
    LIVE_MS,
    `no new tile arrived in the open grid (had ${before.length}) after POST /v1/images/generations`,
  );
  const stillSame = await page.evaluate(() => window.__galleryNotReloaded === true);
  assert(stillSame, 'the page reloaded to show the new image');
  const fresh = after.filter((t) => !before.some((b) => b.href === t.href));
  assert(fresh.length === 1, `expected one new tile, got ${fresh.length}: ${fresh.map((t) => t.href).join(', ')}`);
  const [tile] = fresh;
  assert(tile.href && /^\/images\/[^/]+\/[^/]+\/\d+$/.test(tile.href), `the new tile's link ${tile.href} is not /images/{provider}/{job_id}/{index}`);
  assert(tile.alt && tile.alt.trim(), `the new tile's img (${tile.href}) has an empty alt`);
  assert(!provider || tile.href.split('/')[2] === provider, `the API said provider ${provider}, the tile's link is ${tile.href}`);
  state.imageB = tile.href;
  state.providerOf.set(tile.href, tile.href.split('/')[2]);
  return `tile ${tile.href} arrived (${before.length} → ${after.length}) without a reload`;
});

// 3a. The detail page.
await check('3a detail page: image, prompt, provider, model, credits, download', page, async () => {
  const href = need(state.imageA, 'the image of check 1');
  await goto(page, '/');
  await page.click(`ul#grid li.tile a[href="${href}"]`);
  await page.waitForURL((url) => url.pathname === href, { timeout: NAV_MS }).catch(() => {
    throw new Error(`clicking the tile for ${href} led to ${page.url()}`);
  });
  await page.waitForLoadState('load');
  reached('a detail page');
  await checkNav(page, 'detail');
  for (const selector of ['img#image', '#prompt', '#revised-prompt', '#provider', '#model', '#route', '#credits', '#usd', '#timings', 'a#download', 'a#rerun', 'a#delete']) {
    await want(page, selector);
  }
  const alt = await page.getAttribute('img#image', 'alt');
  assert(alt && alt.trim(), 'img#image has no alt text');
  await page.waitForFunction(() => {
    const img = document.querySelector('img#image');
    return img.complete && img.naturalWidth > 0;
  }, null, { timeout: SETTLE_MS }).catch(() => {
    throw new Error('img#image does not load');
  });
  const prompt = (await page.textContent('#prompt')).trim();
  assert(prompt === PROMPT_A, `#prompt is ${JSON.stringify(prompt)}, not the prompt ${JSON.stringify(PROMPT_A)}`);
  const provider = (await page.textContent('#provider')).trim();
  const model = (await page.textContent('#model')).trim();
  const credits = (await page.textContent('#credits')).trim();
  assert(provider.includes(state.providerOf.get(href)), `#provider is ${JSON.stringify(provider)} but the link names ${state.providerOf.get(href)}`);
  assert(model, '#model is empty');
  assert(decimal(credits) !== null && decimal(credits) > 0n, `#credits ${JSON.stringify(credits)} has no positive number`);
  const download = await page.getAttribute('a#download', 'href');
  assert(download, 'a#download has no href');
  const response = await page.request.get(new URL(download, page.url()).href, { timeout: NAV_MS });
  assert(response.ok(), `a#download (${download}) answered ${response.status()}`);
  const type = response.headers()['content-type'] || '';
  assert(type.startsWith('image/'), `a#download (${download}) is ${type || 'untyped'}, not an image`);
  assert((await response.body()).length > 100, `a#download (${download}) is nearly empty`);
  await shot(page, 'detail');
  return `${provider} / ${model}, ${credits}; download ${download} (${type})`;
});

// 3b. Again from the detail page.
await check('3b a#rerun: /generate with the prompt prefilled, a new image', page, async () => {
  const href = need(state.imageA, 'the detail page of check 3a');
  if (pathOf(page.url()) !== href) await goto(page, href);
  await want(page, 'a#rerun');
  await page.click('a#rerun');
  await page.waitForURL((url) => url.pathname === '/generate', { timeout: NAV_MS }).catch(() => {
    throw new Error(`a#rerun led to ${page.url()}, not /generate`);
  });
  await page.waitForLoadState('load');
  await want(page, 'textarea#prompt');
  const prefilled = await page.inputValue('textarea#prompt');
  assert(prefilled === PROMPT_A, `textarea#prompt holds ${JSON.stringify(prefilled)}, not the prompt ${JSON.stringify(PROMPT_A)}`);
  await page.click('button#submit');
  const link = await want(page, '#result a.image-link[href^="/images/"]', { timeout: GENERATE_MS, what: 'after submitting again' });
  const again = pathOf(await link.getAttribute('href'));
  assert(again !== href, `the result links to the first image ${href} again, not a new one`);
  state.imageA2 = again;
  state.providerOf.set(again, again.split('/')[2]);
  return `new image ${again}`;
});

// 4. Filters.
await check('4a filter q: only the tiles of the prompt with that word', page, async () => {
  const expected = [state.imageA, state.imageA2].filter(Boolean);
  need(expected, 'the images of checks 1 and 3b');
  const other = need(state.imageB, 'the image of check 2b');
  await goto(page, '/');
  await waitForTiles(page, (shown) => [...expected, other].every((h) => shown.some((t) => t.href === h)), SETTLE_MS, `the grid does not show all of ${[...expected, other].join(', ')}`);
  await shot(page, 'gallery');
  await page.fill('form#filters [name="q"]', WORD_A);
  await page.click('form#filters button:not([type="button"]):not([type="reset"]), form#filters input[type="submit"]');
  const want_ = new Set(expected);
  const shown = await waitForTiles(
    page,
    (tiles_) => tiles_.length === want_.size && tiles_.every((t) => want_.has(t.href)),
    SETTLE_MS,
    `q=${WORD_A} should leave exactly ${expected.join(', ')}`,
  );
  await page.waitForLoadState('load');
  await shot(page, 'gallery-filtered');
  // The other word finds only the other prompt's tile.
  await page.fill('form#filters [name="q"]', WORD_B);
  await page.click('form#filters button:not([type="button"]):not([type="reset"]), form#filters input[type="submit"]');
  await waitForTiles(page, (tiles_) => tiles_.length === 1 && tiles_[0].href === other, SETTLE_MS, `q=${WORD_B} should leave exactly ${other}`);
  return `q=${WORD_A}: ${shown.map((t) => t.href).join(', ')}; q=${WORD_B}: ${other}`;
});

await check('4b filter provider: only that provider\'s tiles', page, async () => {
  need(state.imageA, 'the image of check 1');
  need(state.imageB, 'the image of check 2b');
  const byProvider = new Map();
  for (const [href, provider] of state.providerOf) {
    if (!byProvider.has(provider)) byProvider.set(provider, []);
    byProvider.get(provider).push(href);
  }
  assert(byProvider.size >= 2, `every image came from ${[...byProvider.keys()].join(', ')}: nothing to tell apart`);
  const said = [];
  for (const [provider, hrefs] of byProvider) {
    await goto(page, '/');
    const field = await want(page, 'form#filters [name="provider"]');
    const tag = await field.evaluate((el) => el.tagName.toLowerCase());
    if (tag === 'select') {
      const values = await field.evaluate((el) => [...el.options].map((o) => o.value));
      assert(values.includes(provider), `form#filters select[name=provider] has no option ${provider} (options: ${values.join(', ')})`);
      await field.selectOption(provider);
    } else {
      await field.fill(provider);
    }
    await page.fill('form#filters [name="q"]', '');
    await page.click('form#filters button:not([type="button"]):not([type="reset"]), form#filters input[type="submit"]');
    const expected = new Set(hrefs);
    await waitForTiles(
      page,
      (shown) => shown.length === expected.size && shown.every((t) => expected.has(t.href)),
      SETTLE_MS,
      `provider=${provider} should leave exactly ${hrefs.join(', ')}`,
    );
    said.push(`${provider}: ${hrefs.length} tile(s)`);
  }
  return said.join('; ');
});

// 4c. Kolbo's options on the form. Run after the filter checks, so their tiles stay as
// they expect.
await check('4c /generate with a Kolbo moodboard: plans switch to Kolbo only, a bad reference URL is refused on the form, the image shows', page, async () => {
  await goto(page, '/generate');
  for (const selector of [
    'form#generate fieldset#kolbo-options select#moodboard',
    'form#generate fieldset#visual-dna input[type="checkbox"][name="visual_dna_ids"]',
    'form#generate fieldset#references input#ref-1[type="url"][name="reference_images"]',
    'form#generate button#add-reference',
    '#estimate-status',
  ]) {
    await want(page, selector);
  }
  const plansNow = () =>
    page.$$eval('table#plans tbody tr', (trs) =>
      trs.map((tr) => ({
        eligible: tr.classList.contains('plan'),
        model: (tr.cells[1]?.textContent ?? '').trim(),
        why: (tr.cells[4]?.textContent ?? '').trim(),
      })),
    );
  const describe = (rows) => rows.map((r) => `${r.eligible ? '' : '-'}${r.model}`).join(', ') || 'none';
  await page.fill('textarea#prompt', PROMPT_C);
  try {
    await page.waitForFunction(
      () => {
        const models = [...document.querySelectorAll('table#plans tbody tr.plan')].map((tr) => tr.cells[1].textContent.trim());
        return models.some((m) => m.startsWith('kolbo/')) && models.some((m) => m.startsWith('koala/'));
      },
      null,
      { timeout: PLANS_MS, polling: 100 },
    );
  } catch {
    throw new Error(`with no Kolbo option, the plans should name both providers; they are: ${describe(await plansNow())}`);
  }
  const moodboards = await page.$$eval('select#moodboard option', (os) => os.map((o) => ({ value: o.value, label: o.textContent.trim() })));
  const moodboard = moodboards.find((o) => o.value);
  assert(moodboard, `select#moodboard offers no moodboard (options: ${moodboards.map((o) => o.label).join(', ')})`);
  await page.selectOption('select#moodboard', moodboard.value);
  try {
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('table#plans tbody tr')];
        const plans = rows.filter((tr) => tr.classList.contains('plan'));
        const koala = rows.filter((tr) => tr.cells[1].textContent.trim().startsWith('koala/'));
        return (
          plans.length > 0 &&
          plans.every((tr) => tr.cells[1].textContent.trim().startsWith('kolbo/')) &&
          koala.length > 0 &&
          koala.every((tr) => tr.classList.contains('excluded') && /kolbo/i.test(tr.cells[4].textContent))
        );
      },
      null,
      { timeout: PLANS_MS, polling: 100 },
    );
  } catch {
    const rows = await plansNow();
    throw new Error(`after picking the moodboard ${moodboard.label}, the plans should be Kolbo's only, KoalaImages' excluded with a reason; they are: ${rows.map((r) => `${r.eligible ? '' : '-'}${r.model} (${r.why.slice(0, 80)})`).join(' | ')}`);
  }
  const rows = await plansNow();
  const koalaWhy = rows.find((r) => r.model.startsWith('koala/')).why;
  const status = (await page.textContent('#estimate-status')).trim();
  assert(/kolbo\//.test(status), `#estimate-status does not name a Kolbo model: ${JSON.stringify(status)}`);

  // A bad reference URL: the API's message on the form, the field marked invalid.
  await page.fill('input#ref-1', 'ftp://example.com/reference.png');
  try {
    await page.waitForFunction(
      () => /http or https/.test(document.querySelector('#estimate-status').textContent) &&
        document.querySelector('input#ref-1').getAttribute('aria-invalid') === 'true',
      null,
      { timeout: PLANS_MS, polling: 100 },
    );
  } catch {
    throw new Error(`an ftp:// reference image should be refused on the form; #estimate-status says ${JSON.stringify((await page.textContent('#estimate-status')).trim())}, input#ref-1 aria-invalid=${await page.getAttribute('input#ref-1', 'aria-invalid')}`);
  }
  const refused = (await page.textContent('#estimate-status')).trim();
  await page.fill('input#ref-1', '');
  await page.waitForFunction(
    () => /kolbo\//.test(document.querySelector('#estimate-status').textContent) &&
      !document.querySelector('input#ref-1').hasAttribute('aria-invalid'),
    null,
    { timeout: PLANS_MS, polling: 100 },
  ).catch(() => {
    throw new Error('clearing the bad reference URL did not bring the Kolbo plans back');
  });
  // A second reference field can be added, labelled.
  await page.click('button#add-reference');
  await want(page, 'input#ref-2[type="url"][name="reference_images"]', { what: 'after button#add-reference' });
  const label2 = await page.$('label[for="ref-2"]');
  assert(label2, 'input#ref-2 has no label');
  reached('/generate with Kolbo options');

  await page.click('button#submit');
  const link = await want(page, '#result a.image-link[href^="/images/"]', { timeout: GENERATE_MS, what: 'after submitting with a moodboard' });
  const href = pathOf(await link.getAttribute('href'));
  assert(href.split('/')[2] === 'kolbo', `the image was made at ${href.split('/')[2]}, not at Kolbo (${href})`);
  await page.waitForFunction(() => {
    const img = document.querySelector('#result a.image-link img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: SETTLE_MS }).catch(() => {
    throw new Error(`the result's image for ${href} does not load`);
  });
  await shot(page, 'generate-kolbo');
  return `moodboard ${moodboard.label}: koala excluded (${koalaWhy.slice(0, 70)}); refused ftp:// with ${JSON.stringify(refused.slice(0, 70))}; image ${href}`;
});

// 5. Spend.
await check('5 /spend: chart, totals table and total agree with GET /v1/spend', page, async () => {
  await goto(page, '/spend');
  reached('/spend');
  await checkNav(page, '/spend');
  await want(page, 'svg#spend-chart');
  await want(page, 'svg#spend-chart rect[data-provider][data-day][data-credits]');
  await want(page, 'table#totals tr[data-provider] td.credits');
  await want(page, '#total-credits');
  await want(page, '#budgets');
  const rects = await page.$$eval('svg#spend-chart rect[data-provider][data-day][data-credits]', (els) =>
    els.map((r) => ({ provider: r.dataset.provider, day: r.dataset.day, credits: r.dataset.credits })),
  );
  const rows = await page.$$eval('table#totals tr[data-provider]', (trs) =>
    trs.map((tr) => ({ provider: tr.dataset.provider, credits: tr.querySelector('td.credits')?.textContent ?? null })),
  );
  const totalText = await page.textContent('#total-credits');
  const budgets = await page.$$eval('#budgets .budget', (els) => els.length);
  for (const r of rects) {
    assert(decimal(r.credits) !== null, `a rect's data-credits is ${JSON.stringify(r.credits)}, not a number`);
    assert(/^\d{4}-\d{2}-\d{2}$/.test(r.day), `a rect's data-day is ${JSON.stringify(r.day)}, not YYYY-MM-DD`);
  }
  for (const row of rows) {
    assert(row.credits !== null, `table#totals tr[data-provider="${row.provider}"] has no td.credits`);
    assert(decimal(row.credits) !== null, `table#totals tr[data-provider="${row.provider}"] td.credits is ${JSON.stringify(row.credits)}, not a number`);
  }
  const sum = (list) => list.reduce((acc, x) => acc + decimal(x.credits), 0n);
  const chartSum = sum(rects);
  const tableSum = sum(rows);
  const total = decimal(totalText);
  assert(total !== null, `#total-credits is ${JSON.stringify(totalText)}, not a number`);
  assert(chartSum === total, `the chart's rects add up to ${showDecimal(chartSum)} credits, #total-credits says ${showDecimal(total)}`);
  assert(tableSum === total, `table#totals adds up to ${showDecimal(tableSum)} credits, #total-credits says ${showDecimal(total)}`);

  const api = await apiJson('/v1/spend?by=provider');
  assert(Array.isArray(api.data), 'GET /v1/spend?by=provider has no data list');
  const apiTotal = api.data.reduce((acc, row) => acc + decimal(row.credits), 0n);
  assert(apiTotal > 0n, 'GET /v1/spend?by=provider says nothing was spent');
  assert(total === apiTotal, `#total-credits says ${showDecimal(total)}, GET /v1/spend says ${showDecimal(apiTotal)}`);
  for (const row of api.data) {
    const chart = rects.filter((r) => r.provider === row.provider).reduce((acc, r) => acc + decimal(r.credits), 0n);
    const table = rows.filter((r) => r.provider === row.provider).reduce((acc, r) => acc + decimal(r.credits), 0n);
    assert(chart === decimal(row.credits), `the chart shows ${showDecimal(chart)} credits for ${row.provider}, GET /v1/spend?by=provider says ${row.credits}`);
    assert(table === decimal(row.credits), `table#totals shows ${showDecimal(table)} credits for ${row.provider}, GET /v1/spend?by=provider says ${row.credits}`);
  }
  const extra = [...new Set([...rects, ...rows].map((r) => r.provider))].filter((p) => !api.data.some((row) => row.provider === p));
  assert(extra.length === 0, `the page shows spend for ${extra.join(', ')}, which GET /v1/spend?by=provider does not have`);
  const byDay = await apiJson('/v1/spend?by=day');
  for (const row of byDay.data) {
    const chart = rects.filter((r) => r.day === row.day).reduce((acc, r) => acc + decimal(r.credits), 0n);
    assert(chart === decimal(row.credits), `the chart shows ${showDecimal(chart)} credits on ${row.day}, GET /v1/spend?by=day says ${row.credits}`);
  }
  await shot(page, 'spend');
  return `${rects.length} bar(s), ${rows.length} provider row(s), total ${showDecimal(total)} = API (${api.data.map((r) => `${r.provider} ${r.credits}`).join(', ')}); ${budgets} .budget in #budgets (no gateway keys)`;
});

// 6. Delete.
await check('6 delete: a#delete, form#confirm-delete button#confirm, the tile is gone', page, async () => {
  const victim = need(state.imageA2 ?? state.imageA, 'an image from check 1 or 3b');
  await goto(page, victim);
  await want(page, 'a#delete');
  await page.click('a#delete');
  await want(page, 'form#confirm-delete button#confirm', { timeout: NAV_MS, what: 'after a#delete' });
  await page.waitForLoadState('load');
  await checkNav(page, 'delete confirmation');
  await shot(page, 'delete-confirm');
  await audit(page, 'the delete confirmation');
  await page.click('form#confirm-delete button#confirm');
  await page.waitForURL((url) => url.pathname === '/', { timeout: NAV_MS }).catch(() => {
    throw new Error(`button#confirm led to ${page.url()}, not back to /`);
  });
  await page.waitForLoadState('load');
  await want(page, 'ul#grid, p#empty');
  const shown = await tiles(page);
  assert(!shown.some((t) => t.href === victim), `the deleted image ${victim} is still a tile`);
  const kept = [state.imageA, state.imageA2, state.imageB].filter((h) => h && h !== victim);
  const lost = kept.filter((h) => !shown.some((t) => t.href === h));
  assert(lost.length === 0, `deleting ${victim} also took ${lost.join(', ')} off the grid`);
  const after = await page.request.get(base + victim, { timeout: NAV_MS });
  const said = `its detail page now answers ${after.status()}`;
  if (after.ok()) notes.push(`the deleted image's detail page ${victim} still answers ${after.status()}`);
  return `${victim} gone, ${shown.length} tile(s) left; ${said}`;
});

// Paging: with more images than a page holds, a#more leads on, and every image is on
// exactly one page. The page size is the server's (40 when this was written): 44 more
// images make at least two pages of it, and all must be reachable however it pages.
await check('paging: a#more leads through every image exactly once', page, async () => {
  const requests = 11; // of 4 images each: 44, more than the 40 a page when written
  let made = 0;
  const hrefsBefore = new Set([state.imageA, state.imageB].filter(Boolean));
  // Three at a time, under the gateway's default of 4 generations in flight per caller.
  let nextRequest = 0;
  const worker = async () => {
    while (nextRequest < requests) {
      const index = nextRequest++;
      const answer = await apiGenerate({ prompt: `paging test batch ${index + 1}`, n: 4, model: 'koala', size: '1024x1024' });
      assert(answer.data.length > 0, 'a generation made no image');
      made += answer.data.length;
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const seen = [];
  let pages = 0;
  await goto(page, '/');
  for (;;) {
    pages += 1;
    assert(pages <= 20, 'more than 20 pages: a#more does not end');
    const shown = await tiles(page);
    seen.push(...shown.map((t) => t.href));
    const more = await page.$('a#more');
    if (!more) break;
    const next = await more.getAttribute('href');
    assert(next, 'a#more has no href');
    await goto(page, pathOf(next) + new URL(next, base).search);
  }
  const unique = new Set(seen);
  assert(unique.size === seen.length, `${seen.length - unique.size} image(s) shown on two pages`);
  const missing = [...hrefsBefore].filter((h) => !unique.has(h));
  assert(missing.length === 0, `not on any page: ${missing.join(', ')}`);
  assert(unique.size >= made + hrefsBefore.size, `only ${unique.size} tiles over ${pages} page(s) for at least ${made + hrefsBefore.size} images`);
  return `${unique.size} tiles over ${pages} page(s)`;
});

// 7. Every page audited.
for (const label of axePages) {
  if (!axeDone.has(label)) record(`7 axe-core on ${label}`, false, 'the page was never reached (an earlier check failed)');
}

// The layout, on every page visited.
{
  const bad = [...navProblems].filter(([, problem]) => problem);
  record(
    'layout nav: Gallery /, Generate /generate, Spend /spend on every page',
    navProblems.size > 0 && bad.length === 0,
    navProblems.size === 0 ? 'no page was reached' : bad.length ? bad.map(([p, why]) => `${p}: ${why}`).join('; ') : `on ${[...navProblems.keys()].join(', ')}`,
  );
}

// No uncaught script error on any page.
record(
  'no uncaught script errors in the pages',
  pageErrors.length === 0,
  pageErrors.length ? pageErrors.slice(0, 8).join('; ') : '',
);

// 8. Screenshots.
await check('8 screenshots in target/gallery-screenshots/', null, async () => {
  const names = ['gallery-empty', 'generate', 'generate-kolbo', 'gallery', 'gallery-filtered', 'detail', 'spend', 'delete-confirm'];
  const missing = [];
  for (const name of names) {
    const file = path.join(shotDir, `${name}.png`);
    const info = await stat(file).catch(() => null);
    // Leftovers of an earlier run do not count.
    if (!info || info.size < 1000 || info.mtimeMs < startedAt) missing.push(`${name}.png`);
  }
  assert(missing.length === 0, `not written by this run: ${missing.join(', ')}`);
  if (updateReadme) {
    await mkdir(path.dirname(readmeShot), { recursive: true });
    await copyFile(path.join(shotDir, 'gallery.png'), readmeShot);
  }
  return `${names.length} page(s)${updateReadme ? `; the grid copied to ${path.relative(root, readmeShot)}` : ''}`;
});

await browser.close();

if (notes.length) {
  console.log('\nnotes (not failures):');
  for (const note of notes) console.log(`  - ${note}`);
}
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
