// End-to-end test of the example SPA in headless Chromium, against a running rs256-auth.
// `.ci/e2e.sh path/to/rs256-auth` starts the service and runs this; by hand:
//
//   API_URL=http://localhost:8000 SPA_PORT=3000 SMTP_PORT=2525 node spa.test.mjs
//
// The service must allow the SPA's origin (CLIENT_ORIGIN=http://localhost:<SPA_PORT>) and
// have a short access lifetime (ACCESS_TOKEN_EXPIRED_IN=3s), since the test waits for
// access tokens to expire several times. It serves the SPA itself, on SPA_PORT, and receives
// the service's mail itself, with an SMTP server on 127.0.0.1:SMTP_PORT: the service needs
// SMTP_URL=smtp://127.0.0.1:<SMTP_PORT>, APP_URL=http://localhost:<SPA_PORT> (the links'
// base) and REQUIRE_VERIFIED_EMAIL=true (the test signs in before verifying and expects 403).
//
// The second factor's steps read the enrollment's QR code from the page's pixels and compute
// the authenticator app's codes from it (see "an authenticator app" below), without ever
// waiting for the clock.
//
// It saves a screenshot of the signed-in view to E2E_SCREENSHOT, by default to the
// repository's target/e2e/screenshot.png (ignored by git): the committed screenshot would
// change at every run (the sessions' times). To update that one on purpose, from the
// repository root:
//
//   E2E_SCREENSHOT=examples/spa/screenshot.png bash .ci/e2e.sh target/debug/rs256-auth
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import jsQR from 'jsqr';
import { simpleParser } from 'mailparser';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { SMTPServer } from 'smtp-server';
import { serve } from '../serve.mjs';

const API = (process.env.API_URL ?? 'http://localhost:8000').replace(/\/+$/, '');
const SPA_PORT = Number(process.env.SPA_PORT ?? 3000);
const SPA = `http://localhost:${SPA_PORT}`;
const APP_URL = `${SPA}/?api=${encodeURIComponent(API)}`;
const SMTP_PORT = Number(process.env.SMTP_PORT ?? 2525);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOT = process.env.E2E_SCREENSHOT
  ? resolve(process.env.E2E_SCREENSHOT)
  : fileURLToPath(new URL('../../../target/e2e/screenshot.png', import.meta.url));
// The enrollment (QR code and key), always beside the default screenshot: never committed.
const ENROLL_SCREENSHOT = fileURLToPath(new URL('../../../target/e2e/two-factor.png', import.meta.url));

// A fixed email keeps the screenshot the same from run to run (but for the sessions'
// times); .ci/e2e.sh sets it, since its store is new each time. Against a long-lived
// service, a fresh one per run.
const EMAIL = process.env.E2E_EMAIL ?? `ada.${Date.now()}@example.com`;
const NAME = 'Ada Lovelace';
const PASSWORD = 'correct horse battery staple';
// Set through the reset link, and the address the change moves to.
const NEW_PASSWORD = 'a new password from the reset link';
const NEW_EMAIL = EMAIL.replace('@', '.new@');
// The password after the step-up's password change (the second factor steps).
const THIRD_PASSWORD = 'a third password, changed with a recovery code';
// The second device of the sessions steps.
const PHONE_AGENT =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36';

// ---- mail ------------------------------------------------------------------------------

// Every message the service sent to the test's SMTP server, parsed, until a step takes it:
// {kind (the X-Mail-Kind header), rcpt (the envelope's recipients), to (the To header's
// addresses), text, html}.
const mailbox = [];

function startSmtp(port) {
  const smtp = new SMTPServer({
    authOptional: true,
    // Plain SMTP on the loopback: the service's opportunistic STARTTLS would otherwise try
    // the server's self-signed certificate, and refuse it.
    disabledCommands: ['STARTTLS'],
    // At the end, close the service's idle pooled connection after 1 s rather than waiting
    // the default 30 s for it to go away (the test's process waits on the server's close).
    closeTimeout: 1000,
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then((mail) => {
        const addresses = (field) => [field ?? []].flat().flatMap((a) => a.value.map((v) => v.address.toLowerCase()));
        mailbox.push({
          kind: mail.headers.get('x-mail-kind'),
          rcpt: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          to: addresses(mail.to),
          text: mail.text ?? '',
          html: typeof mail.html === 'string' ? mail.html : '',
        });
        callback();
      }, callback);
    },
  });
  return new Promise((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(port, '127.0.0.1', () => {
      smtp.off('error', reject);
      // A connection's error (the service hanging up, say) is not the test's failure.
      smtp.on('error', (error) => console.log(`  (SMTP server: ${error.message})`));
      resolve(smtp);
    });
  });
}

// Takes the first mail of that kind to that address out of the mailbox, waiting up to 10 s
// (the service sends from a background queue).
async function waitForMail({ to, kind }) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const i = mailbox.findIndex((m) => m.kind === kind && m.rcpt.includes(to));
    if (i >= 0) {
      const [mail] = mailbox.splice(i, 1);
      assert.deepEqual(mail.to, [to], `the ${kind} mail's To header`);
      return mail;
    }
    const seen = JSON.stringify(mailbox.map((m) => `${m.kind} to ${m.rcpt}`));
    assert.ok(Date.now() < deadline, `a ${kind} mail to ${to} within 10 s (in the mailbox: ${seen})`);
    await sleep(50);
  }
}

// The link of a mail: {APP_URL}/<page>?token=<43 characters of base64url>, in the text part
// and the same in the HTML part.
function linkIn(mail, page) {
  const escaped = SPA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const found = new RegExp(`${escaped}/([a-z-]+)\\?token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])`).exec(mail.text);
  assert.ok(found, `a link to ${SPA}/${page}?token=... in the ${mail.kind} mail's text: ${mail.text}`);
  assert.equal(found[1], page, `the ${mail.kind} mail's link opens ${page}`);
  assert.ok(mail.html.includes(found[0]), `the ${mail.kind} mail's HTML part has the same link`);
  return found[0];
}

// Opens a mail's link in a new tab of the context, as a click in a mail client would (with
// ?api= added, as every page of this test has), and checks that the page sent nothing to
// the API on its own and took the token out of the address bar.
async function openLink(context, link) {
  const page = await context.newPage();
  openPages.add(page);
  page.on('pageerror', (error) => pageErrors.push(error));
  const sent = [];
  page.on('request', (request) => sent.push(request));
  await page.goto(`${link}&api=${encodeURIComponent(API)}`);
  await settled(page);
  await sleep(300); // what the page would send on its own has gone out by now
  assert.deepEqual(
    sent.filter((r) => apiPath(r.url())).map((r) => `${r.method()} ${apiPath(r.url())}`),
    [],
    'opening the link sends nothing to the API',
  );
  assert.deepEqual(sent.filter((r) => r.method() !== 'GET').map((r) => r.url()), [], 'nor any POST');
  assert.doesNotMatch(page.url(), /token/, 'the token has left the address bar');
  assert.equal(await page.getAttribute('meta[name="referrer"]', 'content'), 'no-referrer');
  return page;
}

// Clicks, and resolves with the answer of the API call that the click sent to `path`: the
// last one, when auth.js refreshed an expired session and sent the call again.
async function clickForAnswer(page, selector, path, method = 'POST') {
  const answers = [];
  const listen = (r) => {
    if (apiPath(r.url()) === path && r.request().method() === method) answers.push(r);
  };
  page.on('response', listen);
  try {
    await click(page, selector);
    const deadline = Date.now() + 2000; // the response event may come a moment after the page's
    while (answers.length === 0 && Date.now() < deadline) await sleep(20);
  } finally {
    page.off('response', listen);
  }
  assert.ok(answers.length > 0, `the click on ${selector} sent ${method} ${path}`);
  return answers.at(-1);
}

// ---- an authenticator app -----------------------------------------------------------------
// What Google Authenticator and the like compute from the QR code's key (RFC 6238: HMAC-SHA1
// of the 30-second step, 6 digits). The server accepts the steps t-1..t+1 around its clock,
// each step once per user, and only a step later than the last one used: so the app below
// never repeats a step, and takes the next one (t+1) when the current one is used up, instead
// of sleeping until the clock gets there. That gives two codes within one 30 s step; the test
// uses recovery codes for the rest.

const STEP_MS = 30_000;
const stepNow = () => Math.floor(Date.now() / STEP_MS);

// RFC 4648 base32, as in the otpauth URI's secret (no padding, upper case).
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of text.replace(/=+$/, '').toUpperCase()) {
    const value = alphabet.indexOf(char);
    assert.ok(value >= 0, `a base32 character: ${char}`);
    bits += value.toString(2).padStart(5, '0');
  }
  const bytes = bits.match(/.{8}/g) ?? []; // the leftover bits (< 8) are padding
  return Buffer.from(bytes.map((byte) => parseInt(byte, 2)));
}

function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f; // dynamic truncation (RFC 4226 §5.3)
  const number = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 1_000_000).padStart(6, '0');
}

function authenticatorApp(secret) {
  let lastStep = -Infinity;
  return {
    secret,
    /** The code of the current step, or of the next one when the current one was used. */
    nextCode() {
      const now = stepNow();
      const step = Math.max(now, lastStep + 1);
      assert.ok(step <= now + 1, 'two codes per 30 s at most: the test uses recovery codes for more');
      lastStep = step;
      return totp(secret, step);
    },
    /** A 6-digit code that no step the server accepts now has. */
    wrongCode() {
      const now = stepNow();
      const valid = [now - 1, now, now + 1, now + 2].map((step) => totp(secret, step));
      for (let n = 0; ; n += 1) {
        const code = String(n).padStart(6, '0');
        if (!valid.includes(code)) return code;
      }
    },
  };
}

// Reads a QR code from the page's pixels, as a phone's camera would: a screenshot of the
// element, decoded with jsQR.
async function readQrCode(page, selector) {
  const png = PNG.sync.read(await page.locator(selector).screenshot());
  const found = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  assert.ok(found, `a QR code in the pixels of ${selector}`);
  return found.data;
}

// ---- helpers ------------------------------------------------------------------------

const pageErrors = [];

async function newContext(browser, { withoutWebLocks = false, userAgent } = {}) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 }, userAgent });
  if (withoutWebLocks) {
    // An older browser: auth.js falls back to refreshing without the cross-tab lock.
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
    });
  }
  return context;
}

// Opens the SPA in a new tab and records what the tab sends to the API.
async function openTab(context) {
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error));
  page.net = { refreshes: [], answers: [] };
  page.on('request', (request) => {
    if (request.method() === 'POST' && apiPath(request.url()) === '/api/auth/refresh') {
      page.net.refreshes.push({ request, sentAt: performance.now() });
    }
  });
  page.on('response', (response) => {
    const path = apiPath(response.url());
    if (!path || response.request().method() === 'OPTIONS') return;
    const answer = { path, status: response.status(), code: null, at: performance.now() };
    page.net.answers.push(answer);
    if (response.status() >= 400) {
      answer.body = response.json().then((body) => (answer.code = body.code), () => {});
    }
    if (path === '/api/auth/refresh') {
      const refresh = page.net.refreshes.find((r) => r.request === response.request());
      if (refresh) refresh.answeredAt = answer.at;
    }
  });
  await page.goto(APP_URL);
  await settled(page);
  return page;
}

// The answers to GET /api/users/me, as "401 token_expired", "200".
function meAnswers(answers) {
  return answers.filter((a) => a.path === '/api/users/me').map((a) => `${a.status} ${a.code ?? ''}`.trim());
}

function apiPath(url) {
  return url.startsWith(`${API}/`) ? new URL(url).pathname : null;
}

// What the tab's network saw since the last call, with the error codes read.
async function takeNet(page) {
  const { refreshes, answers } = page.net;
  page.net = { refreshes: [], answers: [] };
  await Promise.all(answers.map((a) => a.body));
  return { refreshes, answers };
}

// Waits until no user action of the app is running (app.js counts them in <body data-busy>).
async function settled(page) {
  // Polls on a timer, not on animation frames, which a tab behind another one gets slowly.
  await page.waitForFunction(() => document.body.dataset.busy === '0', null, { polling: 20 });
}

async function visibleView(page) {
  const views = [
    'login',
    'login-code',
    'register',
    'forgot',
    'profile',
    'verify-email',
    'reset-password',
    'confirm-email',
  ];
  for (const id of views.map((view) => `view-${view}`)) {
    if (await page.locator(`#${id}`).isVisible()) return id;
  }
  return null;
}

// Playwright's click waits for the element to be stable over animation frames, and a tab
// behind another one gets them slowly (a second per click, here): bring it to the front.
// Then waits for the action the click started.
async function click(page, selector) {
  await page.bringToFront();
  await page.click(selector);
  await settled(page);
}

const text = (page, selector) => page.locator(selector).innerText();

async function assertSignedIn(page, label = 'the tab', email = EMAIL) {
  assert.equal(await visibleView(page), 'view-profile', `${label} shows the signed-in view`);
  assert.equal(await text(page, '#profile-name'), NAME, `${label} shows the user's name`);
  assert.equal(await text(page, '#profile-email'), email, `${label} shows the user's email`);
}

function jwtExpiry(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp * 1000;
}

async function accessCookie(context) {
  const cookie = (await context.cookies(API)).find((c) => c.name === 'access_token');
  assert.ok(cookie, 'the browser holds an access_token cookie');
  return cookie;
}

// When the current access token will have expired and the browser will have dropped its
// cookie (its Max-Age is the token's lifetime).
async function accessGoneAt(context) {
  const cookie = await accessCookie(context);
  const at = Math.max(jwtExpiry(cookie.value), cookie.expires * 1000) + 300;
  assert.ok(
    at - Date.now() < 30_000,
    'the access token lives too long for this test: run the service with ACCESS_TOKEN_EXPIRED_IN=3s',
  );
  return at;
}

// (A browser without the access cookie has dropped it already.)
async function waitPastAccessExpiry(context) {
  const cookie = (await context.cookies(API)).find((c) => c.name === 'access_token');
  if (cookie) await sleepUntil(await accessGoneAt(context));
}

const sleepUntil = (at) => sleep(Math.max(0, at - Date.now()));

// The sessions list as shown, top to bottom: [{id, device, agent (its tooltip), ip,
// current (the "This device" mark)}].
async function sessionRows(page) {
  assert.ok(await page.locator('#sessions').isVisible(), 'the sessions section shows');
  return page.$$eval('#sessions-list tr', (rows) =>
    rows.map((row) => ({
      id: row.dataset.sessionId,
      device: row.querySelector('.user-agent').innerText,
      agent: row.querySelector('.user-agent').title,
      ip: row.querySelector('.ip').innerText,
      current: row.querySelector('.this-device')?.innerText === 'This device',
    })),
  );
}

// Clicks the selector in every tab at the same wall-clock instant (within a millisecond
// or so), from inside the pages rather than one CDP round trip after the other.
async function clickAllAtOnce(pages, selector) {
  const at = Date.now() + 250;
  await Promise.all(
    pages.map((page) =>
      page.evaluate(
        ({ at, selector }) =>
          new Promise((resolve) => {
            setTimeout(() => {
              document.querySelector(selector).click();
              resolve();
            }, at - Date.now());
          }),
        { at, selector },
      ),
    ),
  );
  await Promise.all(pages.map(settled));
}

async function signIn(page, { password = PASSWORD } = {}) {
  await page.fill('#login-email', EMAIL);
  await page.fill('#login-password', password);
  await click(page, '#login-submit');
  await assertSignedIn(page);
}

// The password step of a sign-in; resolves with the API's answer.
async function submitPassword(page, email, password) {
  await page.fill('#login-email', email);
  await page.fill('#login-password', password);
  return clickForAnswer(page, '#login-submit', '/api/auth/login');
}

// The code step of a sign-in; resolves with the API's answer.
async function submitCode(page, code) {
  await page.fill('#login-code', code);
  return clickForAnswer(page, '#login-code-submit', '/api/auth/login/mfa');
}

// The amr claim (RFC 8176) of the access token in the browser's cookie jar.
async function accessAmr(context) {
  const cookie = await accessCookie(context);
  return JSON.parse(Buffer.from(cookie.value.split('.')[1], 'base64url')).amr;
}

const openPages = new Set();
let failed = false;

async function step(name, body) {
  const started = performance.now();
  try {
    await body();
    assert.deepEqual(pageErrors.map(String), [], 'no uncaught error in the page');
  } catch (error) {
    failed = true;
    console.log(`not ok - ${name}`);
    for (const page of openPages) {
      if (page.isClosed()) continue;
      const shown = await page
        .evaluate(() => ({
          view: document.querySelector('main > section:not([hidden])')?.id,
          notice: document.querySelector('#notice:not([hidden])')?.innerText,
          error: document.querySelector('#error:not([hidden])')?.innerText,
        }))
        .catch(() => null);
      console.log(`  a tab at ${page.url()} shows: ${JSON.stringify(shown)}`);
    }
    throw error;
  }
  console.log(`ok - ${name} (${Math.round(performance.now() - started)} ms)`);
}

// ---- the test -------------------------------------------------------------------------

const server = await serve({ port: SPA_PORT });
const smtp = await startSmtp(SMTP_PORT);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
console.log(`SPA ${APP_URL}, API ${API}, mail to smtp://127.0.0.1:${SMTP_PORT}, user ${EMAIL}`);

try {
  const context = await newContext(browser);
  const tab = await openTab(context);
  openPages.add(tab);

  await step('a first visit shows the sign-in view', async () => {
    assert.equal(await visibleView(tab), 'view-login');
  });

  await step("register shows the API's validation errors next to the fields", async () => {
    await click(tab, '#show-register');
    await tab.fill('#register-name', NAME);
    await tab.fill('#register-email', EMAIL);
    await tab.fill('#register-password', 'short');
    await tab.fill('#register-password-confirm', 'different');
    await click(tab, '#register-submit');
    assert.equal(await visibleView(tab), 'view-register');
    assert.equal(await text(tab, '#error-message'), 'the request is invalid');
    assert.notEqual(await text(tab, '#register-form [data-error-for="password"]'), '', 'the password rule is shown');
    assert.equal(await text(tab, '#register-form [data-error-for="passwordConfirm"]'), 'must match password');
  });

  let firstLink;

  await step('registers through the form; the address gets a verification link', async () => {
    await tab.fill('#register-password', PASSWORD);
    await tab.fill('#register-password-confirm', PASSWORD);
    const answer = await clickForAnswer(tab, '#register-submit', '/api/auth/register');
    assert.equal(answer.status(), 202, 'REQUIRE_VERIFIED_EMAIL=true: 202, no user');
    assert.equal(await visibleView(tab), 'view-login', 'register does not log in');
    assert.match(await text(tab, '#notice'), /^Check your mail at /);
    assert.equal(await tab.inputValue('#login-email'), EMAIL);
    firstLink = linkIn(await waitForMail({ to: EMAIL, kind: 'verify_email' }), 'verify-email');
  });

  await step("a wrong password shows the API's message", async () => {
    await tab.fill('#login-password', 'not the password');
    await click(tab, '#login-submit');
    assert.equal(await visibleView(tab), 'view-login');
    assert.equal(await text(tab, '#error-message'), 'invalid email or password');
  });

  let secondLink;

  await step('the right password before verifying: 403, and a new link can be asked for', async () => {
    await tab.fill('#login-password', PASSWORD);
    const login = await clickForAnswer(tab, '#login-submit', '/api/auth/login');
    assert.equal(login.status(), 403);
    assert.equal((await login.json()).code, 'email_not_verified');
    assert.equal(await visibleView(tab), 'view-login');
    assert.ok(await tab.locator('#resend-verification').isVisible(), 'the resend button shows');
    const resend = await clickForAnswer(tab, '#resend-submit', '/api/auth/verify-email/resend');
    assert.equal(resend.status(), 202);
    assert.equal(await text(tab, '#notice'), (await resend.json()).message);
    assert.ok(await tab.locator('#resend-verification').isHidden());
    secondLink = linkIn(await waitForMail({ to: EMAIL, kind: 'verify_email' }), 'verify-email');
    assert.notEqual(secondLink, firstLink);
  });

  await step('the first link, superseded by the second, is refused with a hint', async () => {
    const page = await openLink(context, firstLink);
    assert.equal(await visibleView(page), 'view-verify-email');
    const answer = await clickForAnswer(page, '#verify-submit', '/api/auth/verify-email');
    assert.equal(answer.status(), 400);
    assert.equal((await answer.json()).code, 'link_invalid');
    assert.equal(await visibleView(page), 'view-verify-email');
    assert.equal(await text(page, '#error-message'), (await answer.json()).message);
    assert.ok(await page.locator('#view-verify-email .link-hint').isVisible(), 'how to get a new link');
    await page.close();
  });

  await step('opening the second link sends nothing; its button verifies the address', async () => {
    const page = await openLink(context, secondLink);
    assert.equal(await visibleView(page), 'view-verify-email');
    // The token is still good after the page load: the button's POST is its first use.
    const answer = await clickForAnswer(page, '#verify-submit', '/api/auth/verify-email');
    assert.equal(answer.status(), 200);
    assert.equal((await answer.json()).data.user.verified, true);
    assert.equal(await text(page, '#notice'), `Thank you: ${EMAIL} is verified.`);
    assert.equal(await visibleView(page), 'view-login', 'verifying does not log in');
    assert.equal(await page.inputValue('#login-email'), EMAIL);
    assert.equal(new URL(page.url()).pathname, '/', "back on the app's own address");
    await page.close();
  });

  const desktopAgent = await tab.evaluate(() => navigator.userAgent);
  let desktopSession;

  await step("logs in through the form, shows the user's name and this session", async () => {
    await signIn(tab);
    const rows = await sessionRows(tab);
    assert.equal(rows.length, 1, 'one session');
    [desktopSession] = rows;
    assert.equal(desktopSession.current, true, 'marked as this device');
    assert.match(desktopSession.device, / on /, 'a short name for the browser');
    assert.equal(desktopSession.agent, desktopAgent, "the browser's user agent");
    assert.equal(desktopSession.ip, '127.0.0.1');
  });

  await step("the page's script sees logged_in but never a token", async () => {
    const cookie = await tab.evaluate(() => document.cookie);
    assert.match(cookie, /(^|; )logged_in=true(;|$)/);
    assert.doesNotMatch(cookie, /access_token|refresh_token/);
    assert.doesNotMatch(cookie, /eyJ/, 'no JWT-looking string');
    const storage = await tab.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }]));
    assert.doesNotMatch(storage, /eyJ/, 'no token in web storage');
    // The session does run on cookies, HTTP-only ones.
    const jar = await context.cookies();
    for (const name of ['access_token', 'refresh_token']) {
      const found = jar.find((c) => c.name === name);
      assert.ok(found?.httpOnly, `${name} is an HTTP-only cookie`);
    }
  });

  const phoneContext = await newContext(browser, { userAgent: PHONE_AGENT });
  const phone = await openTab(phoneContext);
  openPages.add(phone);
  let phoneSession;
  let phoneAccessGoneAt;

  await step('another device signs in: after a reload, the list shows both sessions', async () => {
    await signIn(phone);
    phoneAccessGoneAt = await accessGoneAt(phoneContext);
    await click(tab, '#reload-profile');
    const rows = await sessionRows(tab);
    // Newest first: the phone's, then this one.
    assert.deepEqual(
      rows.map((r) => [r.agent, r.current]),
      [
        [PHONE_AGENT, false],
        [desktopAgent, true],
      ],
    );
    [phoneSession] = rows;
    assert.equal(phoneSession.device, 'Chrome on Android');
    assert.equal(rows[1].id, desktopSession.id);
    // The phone sees the same two sessions, with its own marked as the current one.
    const phoneRows = await sessionRows(phone);
    assert.deepEqual(
      phoneRows.map((r) => [r.id, r.current]),
      [
        [phoneSession.id, true],
        [desktopSession.id, false],
      ],
    );
    assert.equal(phoneRows[0].device, 'Chrome on Android');
  });

  await step('screenshot of the signed-in view', async () => {
    await tab.evaluate(() => document.activeElement?.blur());
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await tab.screenshot({ path: SCREENSHOT });
    console.log(`  saved ${SCREENSHOT}`);
  });

  await step("ending the phone's session removes it, and the phone is signed out", async () => {
    await takeNet(tab);
    await click(tab, `tr[data-session-id="${phoneSession.id}"] .end-session`);
    assert.equal(await text(tab, '#notice'), 'Session ended.');
    assert.deepEqual(
      (await sessionRows(tab)).map((r) => r.id),
      [desktopSession.id],
      'the list is reloaded without it',
    );
    const { answers } = await takeNet(tab);
    const ended = answers.filter((a) => a.path === `/api/users/me/sessions/${phoneSession.id}`);
    assert.equal(ended.at(-1)?.status, 200);
    await assertSignedIn(tab);
    // The phone still shows the signed-in view. Once its access token has expired, its next
    // call tries a refresh, which the server refuses: the session is over.
    await sleepUntil(phoneAccessGoneAt);
    await takeNet(phone);
    await click(phone, '#reload-profile');
    assert.equal(await visibleView(phone), 'view-login', 'the phone is back on the sign-in view');
    assert.equal(await text(phone, '#notice'), 'Your session has ended. Please sign in again.');
    const { refreshes, answers: phoneAnswers } = await takeNet(phone);
    assert.equal(refreshes.length, 1, 'one POST /api/auth/refresh');
    const refreshed = phoneAnswers.filter((a) => a.path === '/api/auth/refresh');
    assert.deepEqual(
      refreshed.map((a) => `${a.status} ${a.code}`),
      ['401 session_revoked'],
    );
    assert.deepEqual(await phoneContext.cookies(), [], "the phone's cookies are cleared");
    await phoneContext.close();
  });

  await step('after the access token expires, Reload profile refreshes once and goes on', async () => {
    await waitPastAccessExpiry(context);
    await takeNet(tab);
    await click(tab, '#reload-profile');
    await assertSignedIn(tab);
    const { refreshes, answers } = await takeNet(tab);
    assert.equal(refreshes.length, 1, 'exactly one POST /api/auth/refresh');
    // The browser dropped the expired access cookie, so the first call carried no token.
    assert.deepEqual(meAnswers(answers), ['401 not_logged_in', '200']);
  });

  await step('token_expired (an access cookie that outlives its token): refresh and retry', async () => {
    // As with ACCESS_TOKEN_MAXAGE longer than the token's lifetime: keep the cookie alive.
    const cookie = await accessCookie(context);
    await sleep(Math.max(0, jwtExpiry(cookie.value) - Date.now() + 300));
    await context.addCookies([{ ...cookie, expires: Math.round(Date.now() / 1000) + 3600 }]);
    await takeNet(tab);
    await click(tab, '#reload-profile');
    await assertSignedIn(tab);
    const { refreshes, answers } = await takeNet(tab);
    assert.equal(refreshes.length, 1, 'exactly one POST /api/auth/refresh');
    assert.deepEqual(meAnswers(answers), ['401 token_expired', '200']);
  });

  await step('concurrent calls in one tab share a single refresh', async () => {
    await waitPastAccessExpiry(context);
    await takeNet(tab);
    const emails = await tab.evaluate(async (api) => {
      const { createAuthClient } = await import('/auth.js');
      const client = createAuthClient({ baseUrl: api });
      const users = await Promise.all([client.me(), client.me(), client.me()]);
      return users.map((user) => user.email);
    }, API);
    assert.deepEqual(emails, [EMAIL, EMAIL, EMAIL]);
    const { refreshes } = await takeNet(tab);
    assert.equal(refreshes.length, 1, 'one POST /api/auth/refresh for three calls');
  });

  const second = await openTab(context);
  openPages.add(second);

  await step('two tabs refreshing at the same moment both stay signed in', async () => {
    await assertSignedIn(second, 'the second tab'); // chosen from the logged_in cookie
    await waitPastAccessExpiry(context);
    await takeNet(tab);
    await takeNet(second);
    await clickAllAtOnce([tab, second], '#reload-profile');
    await assertSignedIn(tab, 'the first tab');
    await assertSignedIn(second, 'the second tab');
    const refreshes = [...(await takeNet(tab)).refreshes, ...(await takeNet(second)).refreshes];
    assert.ok([1, 2].includes(refreshes.length), `one refresh per tab at most: ${refreshes.length}`);
    for (const r of refreshes) assert.equal((await r.request.response())?.status(), 200);
    if (refreshes.length === 2) {
      // The Web Lock made them take turns: the second started after the first answered.
      const [a, b] = refreshes.sort((x, y) => x.sentAt - y.sentAt);
      assert.ok(b.sentAt >= a.answeredAt, 'the two refreshes did not overlap');
      console.log('  (each tab refreshed, one after the other)');
    } else {
      console.log('  (one tab refreshed; the other one found the new cookies already there)');
    }
    // And the session is still alive afterwards, in both.
    await clickAllAtOnce([tab, second], '#reload-profile');
    await assertSignedIn(tab, 'the first tab');
    await assertSignedIn(second, 'the second tab');
  });

  await step('without Web Locks, two tabs refreshing at once both stay signed in (grace window)', async () => {
    const old = await newContext(browser, { withoutWebLocks: true });
    const [one, two] = [await openTab(old), await openTab(old)];
    openPages.add(one).add(two);
    assert.equal(await one.evaluate(() => navigator.locks), undefined);
    await signIn(one);
    await two.reload();
    await settled(two);
    await assertSignedIn(two, 'the second tab');
    await waitPastAccessExpiry(old);
    await takeNet(one);
    await takeNet(two);
    await clickAllAtOnce([one, two], '#reload-profile');
    await assertSignedIn(one, 'the first tab');
    await assertSignedIn(two, 'the second tab');
    const refreshes = [...(await takeNet(one)).refreshes, ...(await takeNet(two)).refreshes];
    assert.ok([1, 2].includes(refreshes.length), `one refresh per tab at most: ${refreshes.length}`);
    for (const r of refreshes) assert.equal((await r.request.response())?.status(), 200);
    const sent = await Promise.all(refreshes.map(async (r) => (await r.request.allHeaders()).cookie ?? ''));
    const [tokenOne, tokenTwo] = sent.map((cookie) => /refresh_token=([^;]+)/.exec(cookie)?.[1]);
    if (tokenOne && tokenOne === tokenTwo) {
      console.log('  (both tabs sent the same refresh token: the second was an in-grace replay)');
    }
    await clickAllAtOnce([one, two], '#reload-profile');
    await assertSignedIn(one, 'the first tab');
    await assertSignedIn(two, 'the second tab');
    await old.close();
  });

  await step('logout shows the sign-in view, clears logged_in, and /me answers not_logged_in', async () => {
    await click(tab, '#logout');
    assert.equal(await visibleView(tab), 'view-login');
    assert.doesNotMatch(await tab.evaluate(() => document.cookie), /logged_in/);
    assert.deepEqual(await context.cookies(), [], 'every cookie of the API is gone');
    const code = await tab.evaluate(async (api) => {
      const { createAuthClient } = await import('/auth.js');
      return createAuthClient({ baseUrl: api }).me().then(
        () => 'answered 200',
        (error) => error.code,
      );
    }, API);
    assert.equal(code, 'not_logged_in');
    assert.equal(await visibleView(tab), 'view-login');
    await tab.reload();
    await settled(tab);
    assert.equal(await visibleView(tab), 'view-login', 'a reload stays on the sign-in view');
  });

  await step('the other tab falls back to the sign-in view at its next call', async () => {
    await click(second, '#reload-profile');
    assert.equal(await visibleView(second), 'view-login');
    assert.equal(await text(second, '#profile-name'), '');
  });

  await step('ending this session from the list signs this tab out', async () => {
    await signIn(tab);
    const rows = await sessionRows(tab);
    const ids = rows.map((r) => r.id);
    // The session that logged out and the phone's are not listed any more.
    assert.ok(!ids.includes(desktopSession.id) && !ids.includes(phoneSession.id), 'ended sessions are gone');
    const here = rows.find((r) => r.current);
    assert.ok(here, 'this session is listed');
    await click(tab, `tr[data-session-id="${here.id}"] .end-session`);
    assert.equal(await visibleView(tab), 'view-login');
    assert.equal(await text(tab, '#notice'), 'You ended this session.');
    assert.deepEqual(await context.cookies(), [], 'every cookie of the API is gone');
    await tab.reload();
    await settled(tab);
    assert.equal(await visibleView(tab), 'view-login', 'a reload stays on the sign-in view');
  });

  // ---- the mail links, signed out and signed in --------------------------------------

  let resetLink;

  await step('forgot password: the reset link is mailed', async () => {
    await click(tab, '#show-forgot');
    assert.equal(await visibleView(tab), 'view-forgot');
    await tab.fill('#forgot-email', EMAIL);
    const answer = await clickForAnswer(tab, '#forgot-submit', '/api/auth/forgot-password');
    assert.equal(answer.status(), 202);
    assert.equal(await visibleView(tab), 'view-login');
    assert.equal(await text(tab, '#notice'), (await answer.json()).message);
    resetLink = linkIn(await waitForMail({ to: EMAIL, kind: 'reset_password' }), 'reset-password');
  });

  await step("the reset link's page sends nothing on load; its form sets a new password", async () => {
    const page = await openLink(context, resetLink);
    assert.equal(await visibleView(page), 'view-reset-password');
    await page.fill('#reset-password', NEW_PASSWORD);
    await page.fill('#reset-password-confirm', 'not the same');
    await click(page, '#reset-submit');
    assert.equal(await visibleView(page), 'view-reset-password');
    assert.equal(await text(page, '#reset-form [data-error-for="passwordConfirm"]'), 'must match password');
    await page.fill('#reset-password-confirm', NEW_PASSWORD);
    const answer = await clickForAnswer(page, '#reset-submit', '/api/auth/reset-password');
    assert.equal(answer.status(), 200);
    assert.equal(await visibleView(page), 'view-login', 'a reset does not log in');
    assert.equal(await text(page, '#notice'), 'Your password has been changed. Sign in with your new password.');
    assert.deepEqual(await context.cookies(), [], 'the reset set no cookie');
    await waitForMail({ to: EMAIL, kind: 'password_changed' });
    await page.close();
  });

  await step('signs in with the new password, not with the old one', async () => {
    await tab.fill('#login-email', EMAIL);
    await tab.fill('#login-password', PASSWORD);
    await click(tab, '#login-submit');
    assert.equal(await text(tab, '#error-message'), 'invalid email or password');
    await signIn(tab, { password: NEW_PASSWORD });
  });

  await step('change email: a wrong password is shown as such', async () => {
    await tab.fill('#email-new', NEW_EMAIL);
    await tab.fill('#email-password', 'not the password');
    const answer = await clickForAnswer(tab, '#email-submit', '/api/users/me/email');
    assert.equal(answer.status(), 401);
    assert.equal((await answer.json()).code, 'invalid_credentials');
    await assertSignedIn(tab);
    assert.equal(await text(tab, '#error-message'), 'Wrong password.');
    assert.equal(await text(tab, '#email-form [data-error-for="password"]'), 'wrong password');
  });

  let confirmLink;

  await step('change email: the new address gets a link; the address stays until it is used', async () => {
    await tab.fill('#email-new', NEW_EMAIL);
    await tab.fill('#email-password', NEW_PASSWORD);
    const answer = await clickForAnswer(tab, '#email-submit', '/api/users/me/email');
    assert.equal(answer.status(), 202);
    assert.equal(await text(tab, '#notice'), (await answer.json()).message);
    assert.equal(await tab.inputValue('#email-new'), '', 'the form is cleared');
    await click(tab, '#reload-profile');
    await assertSignedIn(tab);
    confirmLink = linkIn(await waitForMail({ to: NEW_EMAIL, kind: 'confirm_email' }), 'confirm-email');
  });

  await step("the confirm link's page sends nothing on load; its button moves the account", async () => {
    const page = await openLink(context, confirmLink);
    assert.equal(await visibleView(page), 'view-confirm-email');
    const answer = await clickForAnswer(page, '#confirm-submit', '/api/auth/confirm-email');
    assert.equal(answer.status(), 200);
    assert.equal(await text(page, '#notice'), `Your email address is now ${NEW_EMAIL}.`);
    await assertSignedIn(page, "the link's tab", NEW_EMAIL);
    await click(tab, '#reload-profile');
    await assertSignedIn(tab, 'the first tab', NEW_EMAIL);
    await waitForMail({ to: EMAIL, kind: 'email_changed' });
    await page.close();
  });

  // ---- the second factor: an authenticator app and recovery codes ---------------------
  // The user is NEW_EMAIL with NEW_PASSWORD from here on, signed in in `tab`.

  await step('two-factor panel: off; the code fields of the account forms are hidden', async () => {
    assert.ok(await tab.locator('#mfa').isVisible(), 'the two-factor panel shows');
    assert.match(await text(tab, '#mfa-status'), /^Off/);
    assert.ok(await tab.locator('#mfa-start-form').isVisible());
    assert.ok(await tab.locator('#mfa-manage-form').isHidden());
    for (const field of ['#email-code', '#password-code', '#delete-code']) {
      assert.ok(await tab.locator(field).isHidden(), `${field} is hidden`);
    }
    await tab.fill('#mfa-start-password', 'not the password');
    const answer = await clickForAnswer(tab, '#mfa-start-submit', '/api/users/me/mfa/totp');
    assert.equal(answer.status(), 401);
    assert.equal(await text(tab, '#error-message'), 'Wrong password.');
    assert.ok(await tab.locator('#mfa-enroll').isHidden(), 'no enrollment without the password');
  });

  let app; // the phone's authenticator app, set up from the QR code

  await step("enrolling shows a QR code of the otpauth URI and the same key as text", async () => {
    await tab.fill('#mfa-start-password', NEW_PASSWORD);
    const answer = await clickForAnswer(tab, '#mfa-start-submit', '/api/users/me/mfa/totp');
    assert.equal(answer.status(), 200);
    assert.ok(await tab.locator('#mfa-enroll').isVisible(), 'the enrollment shows');
    assert.ok(await tab.locator('#mfa-start-form').isHidden());
    const uri = await readQrCode(tab, '#mfa-qr');
    assert.equal(uri, (await answer.json()).data.otpauth_uri, "the QR code holds the API's otpauth URI");
    const parsed = new URL(uri);
    assert.equal(parsed.protocol, 'otpauth:');
    assert.equal(parsed.host, 'totp');
    assert.equal(decodeURIComponent(parsed.pathname), `/rs256-auth:${NEW_EMAIL}`, 'the label: issuer and account');
    const params = Object.fromEntries(parsed.searchParams);
    assert.match(params.secret, /^[A-Z2-7]{32}$/, 'a base32 key of 160 bits');
    assert.deepEqual(
      [params.issuer, params.algorithm ?? 'SHA1', params.digits ?? '6', params.period ?? '30'],
      ['rs256-auth', 'SHA1', '6', '30'],
    );
    const shown = await text(tab, '#mfa-secret');
    assert.match(shown, /^([A-Z2-7]{4} )*[A-Z2-7]{1,4}$/, 'the key is shown in groups of four');
    assert.equal(shown.replaceAll(' ', ''), params.secret, 'the key shown is the one in the QR code');
    app = authenticatorApp(params.secret);
    await tab.evaluate(() => document.activeElement?.blur());
    await mkdir(dirname(ENROLL_SCREENSHOT), { recursive: true });
    await tab.locator('#mfa').screenshot({ path: ENROLL_SCREENSHOT });
    console.log(`  saved ${ENROLL_SCREENSHOT}`);
  });

  await step('a wrong code does not turn it on', async () => {
    await tab.fill('#mfa-confirm-code', app.wrongCode());
    const answer = await clickForAnswer(tab, '#mfa-confirm-submit', '/api/users/me/mfa/totp/confirm');
    assert.equal(answer.status(), 401);
    assert.equal((await answer.json()).code, 'invalid_code');
    assert.match(await text(tab, '#error-message'), /^Wrong code/);
    assert.equal(await text(tab, '#mfa-confirm-form [data-error-for="code"]'), 'wrong code');
    assert.ok(await tab.locator('#mfa-enroll').isVisible(), 'still enrolling');
  });

  let recoveryCodes;

  await step("the app's code turns it on; the ten recovery codes show once", async () => {
    await tab.fill('#mfa-confirm-code', app.nextCode());
    const answer = await clickForAnswer(tab, '#mfa-confirm-submit', '/api/users/me/mfa/totp/confirm');
    assert.equal(answer.status(), 200);
    recoveryCodes = await tab.$$eval('#mfa-recovery-codes li', (items) => items.map((item) => item.innerText));
    assert.deepEqual(recoveryCodes, (await answer.json()).data.recovery_codes, "the API's codes, in order");
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10, 'ten different codes');
    for (const code of recoveryCodes) assert.match(code, /^[0-9a-z]{5}-[0-9a-z]{5}$/);
    assert.match(await text(tab, '#mfa-recovery'), /not shown again/);
    assert.match(await text(tab, '#mfa-status'), /^On/);
    assert.match(await text(tab, '#notice'), /^Two-factor authentication is on/);
    // The key has left the page; the account forms now ask for a code.
    assert.ok(await tab.locator('#mfa-enroll').isHidden());
    assert.equal(await text(tab, '#mfa-secret'), '');
    assert.ok(await tab.locator('#mfa-manage-form').isVisible());
    for (const field of ['#email-code', '#password-code', '#delete-code']) {
      assert.ok(await tab.locator(field).isVisible(), `${field} shows`);
    }
    await click(tab, '#mfa-recovery-saved');
    assert.ok(await tab.locator('#mfa-recovery').isHidden(), 'hidden once saved');
    const page = await tab.evaluate(() => document.body.innerText);
    assert.ok(!recoveryCodes.some((code) => page.includes(code)), 'no recovery code is left in the page');
  });

  await step('signing in now takes the password, then a code; a wrong code can be retried', async () => {
    await click(tab, '#logout');
    assert.equal(await visibleView(tab), 'view-login');
    const login = await submitPassword(tab, NEW_EMAIL, NEW_PASSWORD);
    assert.equal(login.status(), 200);
    const body = await login.json();
    assert.equal(body.mfa_required, true);
    assert.equal(body.access_token, undefined, 'no token before the code');
    assert.equal(await visibleView(tab), 'view-login-code');
    assert.deepEqual(await context.cookies(), [], 'no cookie before the code');
    const wrong = await submitCode(tab, app.wrongCode());
    assert.equal(wrong.status(), 401);
    assert.equal((await wrong.json()).code, 'invalid_code');
    assert.equal(await visibleView(tab), 'view-login-code', 'the code step stays, for another try');
    assert.match(await text(tab, '#error-message'), /^That code did not work/);
    const right = await submitCode(tab, app.nextCode());
    assert.equal(right.status(), 200);
    await assertSignedIn(tab, 'the tab', NEW_EMAIL);
    assert.deepEqual(await accessAmr(context), ['pwd', 'otp'], 'the access token says: password and code');
  });

  await step('with the phone lost: a recovery code signs in, 9 are left; a used one is refused', async () => {
    await click(tab, '#logout');
    await submitPassword(tab, NEW_EMAIL, NEW_PASSWORD);
    assert.equal(await visibleView(tab), 'view-login-code');
    let answer = await submitCode(tab, recoveryCodes[0]);
    assert.equal(answer.status(), 200);
    assert.equal((await answer.json()).data.recovery_codes_left, 9);
    await assertSignedIn(tab, 'the tab', NEW_EMAIL);
    assert.match(await text(tab, '#notice'), /^Signed in with a recovery code\. 9 recovery codes left/);
    await click(tab, '#logout');
    await submitPassword(tab, NEW_EMAIL, NEW_PASSWORD);
    answer = await submitCode(tab, recoveryCodes[0]);
    assert.equal(answer.status(), 401, 'a recovery code works once');
    assert.equal(await visibleView(tab), 'view-login-code');
    // Typed in upper case, as from a sheet of paper: accepted all the same.
    answer = await submitCode(tab, recoveryCodes[1].toUpperCase());
    assert.equal(answer.status(), 200);
    assert.equal((await answer.json()).data.recovery_codes_left, 8);
    await assertSignedIn(tab, 'the tab', NEW_EMAIL);
  });

  await step('step-up: the password change asks for a code too', async () => {
    await tab.fill('#password-current', NEW_PASSWORD);
    await tab.fill('#password-new', THIRD_PASSWORD);
    await tab.fill('#password-new-confirm', THIRD_PASSWORD);
    let answer = await clickForAnswer(tab, '#password-submit', '/api/users/me/password');
    assert.equal(answer.status(), 401);
    assert.equal((await answer.json()).code, 'invalid_code');
    assert.equal(await text(tab, '#error-message'), 'This needs a code from your authenticator app, or a recovery code.');
    await tab.fill('#password-code', recoveryCodes[2]);
    answer = await clickForAnswer(tab, '#password-submit', '/api/users/me/password');
    assert.equal(answer.status(), 200);
    assert.match(await text(tab, '#notice'), /^Your password has been changed/);
    await assertSignedIn(tab, 'the tab', NEW_EMAIL);
  });

  await step('new recovery codes (password and code): ten others', async () => {
    await tab.fill('#mfa-manage-password', THIRD_PASSWORD);
    await tab.fill('#mfa-manage-code', recoveryCodes[3]);
    const answer = await clickForAnswer(tab, '#mfa-regenerate-submit', '/api/users/me/mfa/recovery-codes');
    assert.equal(answer.status(), 200);
    const fresh = await tab.$$eval('#mfa-recovery-codes li', (items) => items.map((item) => item.innerText));
    assert.deepEqual(fresh, (await answer.json()).data.recovery_codes);
    assert.equal(fresh.length, 10);
    assert.ok(!fresh.some((code) => recoveryCodes.includes(code)), 'none of the old codes');
    await click(tab, '#mfa-recovery-saved');
    recoveryCodes = fresh;
  });

  await step('turning it off (password and code): the password alone signs in again', async () => {
    await tab.fill('#mfa-manage-password', THIRD_PASSWORD);
    await tab.fill('#mfa-manage-code', recoveryCodes[0]);
    const answer = await clickForAnswer(tab, '#mfa-disable-submit', '/api/users/me/mfa/totp', 'DELETE');
    assert.equal(answer.status(), 200);
    assert.match(await text(tab, '#mfa-status'), /^Off/);
    assert.equal(await text(tab, '#notice'), 'Two-factor authentication is off.');
    assert.ok(await tab.locator('#password-code').isHidden(), 'no code field any more');
    await click(tab, '#logout');
    const login = await submitPassword(tab, NEW_EMAIL, THIRD_PASSWORD);
    assert.equal(login.status(), 200);
    assert.notEqual((await login.json()).mfa_required, true, 'no code step');
    await assertSignedIn(tab, 'the tab', NEW_EMAIL);
    assert.deepEqual(await accessAmr(context), ['pwd']);
  });

  await step('deleting the account (the password) signs out for good', async () => {
    await tab.fill('#delete-password', 'not the password');
    let answer = await clickForAnswer(tab, '#delete-submit', '/api/users/me', 'DELETE');
    assert.equal(answer.status(), 401);
    assert.equal(await text(tab, '#error-message'), 'Wrong password.');
    await tab.fill('#delete-password', THIRD_PASSWORD);
    answer = await clickForAnswer(tab, '#delete-submit', '/api/users/me', 'DELETE');
    assert.equal(answer.status(), 200);
    assert.equal(await visibleView(tab), 'view-login');
    assert.equal(await text(tab, '#notice'), 'Your account has been deleted.');
    assert.deepEqual(await context.cookies(), [], 'every cookie of the API is gone');
    const login = await submitPassword(tab, NEW_EMAIL, THIRD_PASSWORD);
    assert.equal(login.status(), 401);
  });
} catch (error) {
  if (!failed) console.log('not ok - setting up');
  console.error(error);
  process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
  smtp.close();
}
if (!process.exitCode) console.log('all passed');
