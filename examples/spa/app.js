// The example's UI: the views (sign in and its code step, create an account, forgot
// password, signed in), the list of the user's sessions, the second factor (an authenticator
// app and recovery codes), the account forms, and the pages that the service's mail links
// open (verify-email, reset-password, confirm-email). Every API call goes through auth.js.
import { ApiError, createAuthClient } from './auth.js';

// Where the API lives. `?api=http://localhost:8123` overrides it (the e2e test runs the API
// on a free port), but only with a loopback host: a crafted link must not be able to send
// the password typed into this page to some other server.
const DEFAULT_API = 'http://localhost:8000';

function apiBase() {
  const override = new URLSearchParams(location.search).get('api');
  if (!override) return DEFAULT_API;
  try {
    const url = new URL(override);
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
    if (loopback && (url.protocol === 'http:' || url.protocol === 'https:')) return url.origin;
  } catch {
    // not a URL: fall through
  }
  console.warn(`ignoring ?api=${override}: only http(s) origins on localhost are accepted`);
  return DEFAULT_API;
}

const $ = (id) => document.getElementById(id);

// The error that ended the session, so that the action that ran into it does not show
// it a second time as an error.
let sessionEndedBy = null;

const client = createAuthClient({
  baseUrl: apiBase(),
  onLoggedOut(error) {
    sessionEndedBy = error;
    showSignedOut(
      {
        refresh_reused:
          'Your session was ended because its refresh token was used twice. Please sign in again.',
        session_revoked: 'Your session has ended. Please sign in again.',
      }[error.code] ?? 'Please sign in.',
    );
  },
});

// ---- views and messages -------------------------------------------------------------

const VIEWS = [
  'view-login',
  'view-login-code',
  'view-register',
  'view-forgot',
  'view-profile',
  'view-verify-email',
  'view-reset-password',
  'view-confirm-email',
];

function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== view;
  $('resend-verification').hidden = true;
}

function clearMessages() {
  $('notice').hidden = true;
  $('error').hidden = true;
  $('error-fields').replaceChildren();
  for (const slot of document.querySelectorAll('[data-error-for]')) slot.textContent = '';
}

function showNotice(text) {
  clearMessages();
  $('notice').textContent = text;
  $('notice').hidden = false;
}

// `form`, when given, is where the field errors go (the signed-in view has several forms
// with a password field); else the first visible form that has the field.
function showError(error, form) {
  clearMessages();
  $('error-message').textContent = error.message;
  for (const { field, message } of error.errors) {
    const item = document.createElement('li');
    item.textContent = `${field}: ${message}`;
    $('error-fields').append(item);
    const slot = form
      ? form.querySelector(`[data-error-for="${field}"]`)
      : document.querySelector(`:not([hidden]) > form [data-error-for="${field}"]`);
    if (slot) slot.textContent = message;
  }
  $('error').hidden = false;
}

// An error of the page's own, in the same place as the API's.
function showErrorText(message) {
  showError({ message, errors: [] });
}

function showSignedOut(message) {
  $('profile-name').textContent = '';
  $('profile-email').textContent = '';
  $('sessions').hidden = true;
  // Nothing of the account stays in the page: not the key being enrolled, not the recovery
  // codes, not what was typed into the account forms.
  clearEnrollment();
  hideRecoveryCodes();
  for (const form of $('view-profile').querySelectorAll('form')) form.reset();
  pendingLogin = null;
  show('view-login');
  showNotice(message);
}

// Runs a user action: clears the last message, counts the action in <body data-busy> (the
// e2e test waits on that), disables the buttons meanwhile, and shows the API's error if
// it fails (its field errors in `form`, when given).
async function action(task, form) {
  const body = document.body;
  body.dataset.busy = String(Number(body.dataset.busy) + 1);
  for (const button of document.querySelectorAll('button')) button.disabled = true;
  clearMessages();
  try {
    await task();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error !== sessionEndedBy) showError(error, form); // onLoggedOut has said it already
  } finally {
    body.dataset.busy = String(Number(body.dataset.busy) - 1);
    if (body.dataset.busy === '0') {
      for (const button of document.querySelectorAll('button')) button.disabled = false;
    }
  }
}

// ---- signed in ----------------------------------------------------------------------

async function loadProfile() {
  const user = await client.me();
  $('profile-name').textContent = user.name;
  $('profile-email').textContent = user.email;
  $('profile-unverified').hidden = user.verified !== false;
  showMfa(user);
  show('view-profile');
  await loadSessions();
}

// A wrong password or code on a form of the signed-in view: said above the form and next to
// the field, which is selected for another try. False for any other error.
function explainWrong(form, error, passwordField = 'password') {
  let field, message, note;
  if (error.code === 'invalid_credentials') {
    [field, message, note] = [passwordField, 'Wrong password.', 'wrong password'];
  } else if (error.code === 'invalid_code') {
    field = 'code';
    note = 'wrong code';
    message = form.elements.code?.value.trim()
      ? 'Wrong code: enter the code that your authenticator app shows now, or a recovery code.'
      : 'This needs a code from your authenticator app, or a recovery code.';
  } else {
    return false;
  }
  if (!form.elements[field]) return false;
  // A factor turned on in another tab: the code field was hidden until now.
  form.elements[field].closest('label').hidden = false;
  showErrorText(message);
  form.querySelector(`[data-error-for="${field}"]`).textContent = note;
  form.elements[field].select();
  return true;
}

// ---- sessions -----------------------------------------------------------------------
//   GET    /api/users/me/sessions → 200 {"status":"success","data":{"sessions":[{id,
//          created_at, last_used_at, user_agent, ip, current}]}}, newest first
//   DELETE /api/users/me/sessions/{id} → 200 {"status":"success"} (ending the current
//          session clears the cookies, as logout does); 404 not_found for an id that is
//          not a live session of this user.
// An older API without these routes answers 404 not_found to the list: the section then
// stays hidden.

async function loadSessions() {
  let sessions;
  try {
    ({ sessions } = (await client.request('/api/users/me/sessions')).data);
  } catch (error) {
    if (error.code === 'not_found') {
      $('sessions').hidden = true;
      return;
    }
    if (error === sessionEndedBy) throw error;
    $('sessions-error').textContent = `Sessions: ${error.message}`;
    $('sessions-error').hidden = false;
    $('sessions').hidden = false;
    return;
  }
  $('sessions-error').hidden = true;
  $('sessions-list').replaceChildren(...sessions.map(sessionRow));
  $('sessions').hidden = false;
}

// A short name for a user agent, like "Firefox on Windows"; the tooltip shows all of it.
function deviceName(userAgent) {
  const pick = (names) => names.find(([pattern]) => pattern.test(userAgent))?.[1];
  const browser = pick([
    [/Edg(e|A|iOS)?\//, 'Edge'],
    [/OPR\//, 'Opera'],
    [/Firefox\/|FxiOS\//, 'Firefox'],
    [/HeadlessChrome\//, 'Headless Chrome'],
    [/Chrome\/|CriOS\//, 'Chrome'],
    [/Safari\//, 'Safari'],
  ]);
  const system = pick([
    [/Android/, 'Android'],
    [/iPhone|iPad|iPod/, 'iOS'],
    [/Windows/, 'Windows'],
    [/CrOS/, 'ChromeOS'],
    [/Mac OS X|Macintosh/, 'macOS'],
    [/Linux/, 'Linux'],
  ]);
  if (browser && system) return `${browser} on ${system}`;
  return userAgent || 'Unknown device';
}

// "Dec 2, 4:32 PM" in the user's locale; the tooltip has the full date.
const SHORT_TIME = { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' };

function sessionRow(session) {
  const row = document.createElement('tr');
  row.dataset.sessionId = session.id;
  row.classList.toggle('current', session.current);
  const cell = (text = '') => {
    const td = document.createElement('td');
    td.textContent = text;
    row.append(td);
    return td;
  };
  const device = cell();
  device.className = 'device';
  const name = document.createElement('span');
  name.className = 'user-agent';
  name.textContent = deviceName(session.user_agent);
  name.title = session.user_agent;
  device.append(name);
  if (session.current) {
    const here = document.createElement('small');
    here.className = 'this-device';
    here.textContent = 'This device';
    device.append(here);
  }
  cell(session.ip).className = 'ip';
  for (const at of [session.created_at, session.last_used_at]) {
    const date = new Date(at);
    const time = cell(date.toLocaleString([], SHORT_TIME));
    time.className = 'time';
    time.title = date.toLocaleString();
  }
  const end = document.createElement('button');
  end.type = 'button';
  end.className = 'secondary end-session';
  end.textContent = 'End';
  end.addEventListener('click', () => action(() => endSession(session)));
  cell().append(end);
  return row;
}

async function endSession(session) {
  try {
    await client.request(`/api/users/me/sessions/${encodeURIComponent(session.id)}`, {
      method: 'DELETE',
    });
  } catch (error) {
    if (error.code !== 'not_found') throw error;
    showNotice('That session had already ended.');
    await loadSessions();
    return;
  }
  if (session.current) {
    showSignedOut('You ended this session.');
  } else {
    showNotice('Session ended.');
    await loadSessions();
  }
}

// ---- mail: forgot password, change email, resend the verification link -------------
//   POST /api/auth/forgot-password {email}, /api/auth/verify-email/resend {email} → 202 with
//        a message that is the same for every address (the mail goes out in the background)
//   POST /api/users/me/email {email, password, code?} → 202; the address changes once the
//        link mailed to the new address is used. A wrong password is 401
//        invalid_credentials; `code` is the step-up while a second factor is on.

async function changeEmail(form) {
  const { email, password, code } = Object.fromEntries(new FormData(form));
  let message;
  try {
    message = await client.changeEmail({ email, password, code: code.trim() });
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  form.reset();
  showNotice(message);
}

async function resendVerification(email) {
  const message = await client.resendVerification(email);
  $('resend-verification').hidden = true;
  showNotice(message);
}

// ---- the account: password change, deletion -----------------------------------------
//   POST   /api/users/me/password {currentPassword, newPassword, newPasswordConfirm, code?}
//          → 200; every other session of the user ends
//   DELETE /api/users/me {password, code?} → 200, cookies cleared
// `code` only while a second factor is on (step-up): missing or wrong, 401 invalid_code.

async function changePassword(form) {
  const fields = Object.fromEntries(new FormData(form));
  try {
    await client.changePassword({ ...fields, code: fields.code.trim() });
  } catch (error) {
    if (explainWrong(form, error, 'currentPassword')) return;
    throw error;
  }
  form.reset();
  showNotice('Your password has been changed. Your other devices have been signed out.');
}

async function deleteAccount(form) {
  const { password, code } = Object.fromEntries(new FormData(form));
  try {
    await client.deleteAccount({ password, code: code.trim() });
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  showSignedOut('Your account has been deleted.');
}

// ---- the second factor --------------------------------------------------------------
//   POST   /api/users/me/mfa/totp {password} → {secret, otpauth_uri}: enrollment starts
//   POST   /api/users/me/mfa/totp/confirm {code} → {recovery_codes: [10]}: the factor is on,
//          every other session ends
//   DELETE /api/users/me/mfa/totp {password, code} → off, the recovery codes die
//   POST   /api/users/me/mfa/recovery-codes {password, code} → {recovery_codes: [10 new]}
//   POST   /api/auth/login/mfa {mfa_token, code} → the login's answer and cookies, with
//          data.recovery_codes_left when a recovery code was used
// A code is the authenticator app's 6 digits or a recovery code, everywhere one is asked.

// The QR code encoder: qrcode-generator (MIT) from the npm registry, which `npm ci` in this
// folder installs and serve.mjs serves. Loaded on first use, so that the rest of the app works
// without it (the key is then shown as text only).
const QR_ENCODER = './node_modules/qrcode-generator/dist/qrcode.mjs';

function showMfa(user) {
  // Users of an API without a second factor have no "mfa": no panel, no code fields.
  const known = typeof user.mfa === 'boolean';
  $('mfa').hidden = !known;
  for (const field of document.querySelectorAll('.step-up')) field.hidden = user.mfa !== true;
  if (!known) return;
  $('mfa-status').textContent = user.mfa
    ? 'On: signing in asks for a code from your authenticator app.'
    : 'Off: your password alone signs you in.';
  $('mfa-status').dataset.on = String(user.mfa);
  if (user.mfa) clearEnrollment(); // turned on meanwhile, in another tab say
  $('mfa-start-form').hidden = user.mfa || !$('mfa-enroll').hidden;
  $('mfa-manage-form').hidden = !user.mfa;
}

async function startEnrollment(form) {
  const { password } = Object.fromEntries(new FormData(form));
  let enrollment;
  try {
    enrollment = await client.startTotp(password);
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  form.reset();
  form.hidden = true;
  $('mfa-secret').textContent = groupedForReading(enrollment.secret);
  await drawQrCode($('mfa-qr'), enrollment.otpauthUri);
  $('mfa-enroll').hidden = false;
  $('mfa-confirm-code').focus();
}

// "JBSW Y3DP EHPK 3PXP": a key typed by hand is read in groups. Apps ignore the spaces.
function groupedForReading(secret) {
  return secret.match(/.{1,4}/g).join(' ');
}

async function drawQrCode(canvas, text) {
  let qrcode;
  try {
    ({ default: qrcode } = await import(QR_ENCODER));
  } catch {
    canvas.hidden = true;
    $('mfa-qr-missing').hidden = false;
    return;
  }
  const qr = qrcode(0, 'M'); // version 0: the smallest that holds the text
  qr.addData(text);
  qr.make();
  // Whole pixels per module, and the quiet zone of 4 modules that scanners need around it.
  const cell = 4;
  const quiet = 4;
  const modules = qr.getModuleCount();
  const size = (modules + 2 * quiet) * cell;
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, size, size);
  context.fillStyle = '#000';
  for (let row = 0; row < modules; row += 1) {
    for (let col = 0; col < modules; col += 1) {
      if (qr.isDark(row, col)) context.fillRect((col + quiet) * cell, (row + quiet) * cell, cell, cell);
    }
  }
  canvas.hidden = false;
  $('mfa-qr-missing').hidden = true;
}

// The key leaves the page once the factor is on, or enrollment is cancelled.
function clearEnrollment() {
  const canvas = $('mfa-qr');
  canvas.width = 0;
  canvas.height = 0;
  $('mfa-secret').textContent = '';
  $('mfa-confirm-form').reset();
  $('mfa-enroll').hidden = true;
}

async function confirmEnrollment(form) {
  const code = new FormData(form).get('code').trim();
  let recoveryCodes;
  try {
    recoveryCodes = await client.confirmTotp(code);
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  clearEnrollment();
  await loadProfile();
  showRecoveryCodes(recoveryCodes);
  showNotice('Two-factor authentication is on. Your other devices have been signed out.');
}

function showRecoveryCodes(codes) {
  $('mfa-recovery-codes').replaceChildren(
    ...codes.map((code) => {
      const item = document.createElement('li');
      const text = document.createElement('code');
      text.textContent = code;
      item.append(text);
      return item;
    }),
  );
  $('mfa-recovery').hidden = false;
}

function hideRecoveryCodes() {
  $('mfa-recovery-codes').replaceChildren();
  $('mfa-recovery').hidden = true;
}

async function newRecoveryCodes(form) {
  const { password, code } = Object.fromEntries(new FormData(form));
  let recoveryCodes;
  try {
    recoveryCodes = await client.newRecoveryCodes({ password, code: code.trim() });
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  form.reset();
  showRecoveryCodes(recoveryCodes);
  showNotice('New recovery codes: the old ones no longer work.');
}

async function turnOffMfa(form) {
  const { password, code } = Object.fromEntries(new FormData(form));
  try {
    await client.disableTotp({ password, code: code.trim() });
  } catch (error) {
    if (explainWrong(form, error)) return;
    throw error;
  }
  form.reset();
  hideRecoveryCodes();
  await loadProfile();
  showNotice('Two-factor authentication is off.');
}

// ---- sign-in, second step -----------------------------------------------------------
// The mfa_token of a sign-in waiting for its code: kept in this variable only, never in
// storage. The API lets it live 5 minutes and kills it at the 5th wrong code, answering
// invalid_code from then on; counting here lets the page say so and go back to the
// password instead of refusing every code.

const MFA_TOKEN_LIFETIME = 5 * 60 * 1000;
const MFA_TOKEN_TRIES = 5;

let pendingLogin = null; // {mfaToken, email, startedAt, wrongCodes}

function startCodeStep(mfaToken, email) {
  pendingLogin = { mfaToken, email, startedAt: Date.now(), wrongCodes: 0 };
  show('view-login-code');
  $('login-code').value = '';
  $('login-code').focus();
}

function backToPassword(message) {
  const email = pendingLogin?.email ?? '';
  pendingLogin = null;
  show('view-login');
  $('login-email').value = email;
  $('login-password').focus();
  if (message) showErrorText(message);
}

async function finishLogin(form) {
  if (!pendingLogin) return backToPassword('Sign in again.');
  const code = new FormData(form).get('code').trim();
  let recoveryCodesLeft;
  try {
    ({ recoveryCodesLeft } = await client.loginWithCode({ mfaToken: pendingLogin.mfaToken, code }));
  } catch (error) {
    // Others (429 rate_limited, a network error) are shown as they are, and the code step stays.
    if (error.code !== 'invalid_code') throw error;
    pendingLogin.wrongCodes += 1;
    if (Date.now() - pendingLogin.startedAt > MFA_TOKEN_LIFETIME) {
      return backToPassword('The sign-in took too long: enter your password again.');
    }
    if (pendingLogin.wrongCodes >= MFA_TOKEN_TRIES) {
      return backToPassword('Too many wrong codes: enter your password again.');
    }
    showErrorText(
      'That code did not work. Enter the code that your app shows now (each code works once), or a recovery code.',
    );
    $('login-code').select();
    return;
  }
  pendingLogin = null;
  form.reset();
  await loadProfile();
  if (recoveryCodesLeft !== null) {
    showNotice(
      `Signed in with a recovery code. ${recoveryCodesLeft} recovery codes left: each works once. ` +
        'Make new ones below when you run low.',
    );
  }
}

// ---- the pages of the mail links ----------------------------------------------------
// {APP_URL}/verify-email?token=T, /reset-password?token=T, /confirm-email?token=T. Opening
// one must not use it: mail scanners and link previews open links too. So the page only
// reads the token and shows a button; the button's POST is the one use of the token. The
// token leaves the address bar at once, so that it stays out of the history and of any
// Referer (the page also says no-referrer).

const LINK_PAGES = {
  '/verify-email': 'view-verify-email',
  '/reset-password': 'view-reset-password',
  '/confirm-email': 'view-confirm-email',
};

// The token of the link this page was opened with, until it is used.
let linkToken = null;

function openLinkPage(view) {
  const url = new URL(location.href);
  linkToken = url.searchParams.get('token');
  url.searchParams.delete('token');
  history.replaceState(null, '', url);
  show(view);
  if (!linkToken) {
    $(view).querySelector('.actions, form').hidden = true;
    showErrorText('This link is incomplete: open the whole link from the mail, or copy all of it.');
  }
}

// Back to the app's own address (keeping ?api=), once the link has done its work.
function leaveLinkPage() {
  linkToken = null;
  const url = new URL(location.href);
  url.pathname = '/';
  url.searchParams.delete('token');
  history.replaceState(null, '', url);
}

// Posts the token; on link_invalid (used, expired, superseded, unknown) the page's hint
// says how to get a new link.
async function useLink(view, post) {
  try {
    return await post(linkToken);
  } catch (error) {
    if (error.code === 'link_invalid') $(view).querySelector('.link-hint').hidden = false;
    throw error;
  }
}

// After a link that leaves the user as they were: the signed-in view when this browser has
// a session, else the sign-in view; with the message on top either way.
async function afterLink(message, email) {
  leaveLinkPage();
  show('view-login');
  $('login-email').value = email;
  if (hasSessionCookie()) {
    try {
      await loadProfile();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error; // the link did its work all the same
    }
  }
  showNotice(message);
}

async function verifyEmail() {
  const user = await useLink('view-verify-email', client.verifyEmail);
  await afterLink(`Thank you: ${user.email} is verified.`, user.email);
}

async function confirmEmail() {
  const user = await useLink('view-confirm-email', client.confirmEmail);
  await afterLink(`Your email address is now ${user.email}.`, user.email);
}

// A reset ends every session of the user and sets no cookie: sign in again.
async function resetPassword(form) {
  const { password, passwordConfirm } = Object.fromEntries(new FormData(form));
  await useLink('view-reset-password', (token) => client.resetPassword({ token, password, passwordConfirm }));
  form.reset();
  leaveLinkPage();
  show('view-login');
  showNotice('Your password has been changed. Sign in with your new password.');
  $('login-email').focus();
}

// ---- wiring -------------------------------------------------------------------------

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const { email, password } = Object.fromEntries(new FormData(form));
  action(async () => {
    let answer;
    try {
      answer = await client.login({ email, password }); // the access token in the answer is not kept
    } catch (error) {
      // REQUIRE_VERIFIED_EMAIL: the right password, an address not verified yet.
      if (error.code === 'email_not_verified') $('resend-verification').hidden = false;
      throw error;
    }
    form.reset();
    // A second factor: no session yet, the code comes first.
    if (answer.mfaRequired) return startCodeStep(answer.mfaToken, email.trim());
    await loadProfile();
  });
});

$('login-code-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => finishLogin(form), form);
});

$('login-code-cancel').addEventListener('click', (event) => {
  event.preventDefault();
  clearMessages();
  backToPassword();
});

$('register-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = Object.fromEntries(new FormData(form));
  action(async () => {
    const user = await client.register(fields);
    form.reset();
    show('view-login');
    if (user) {
      $('login-email').value = user.email;
      showNotice(`Account created for ${user.email}. Sign in with your password.`);
    } else {
      // REQUIRE_VERIFIED_EMAIL: the same answer for a new and a taken address.
      $('login-email').value = fields.email.trim().toLowerCase();
      showNotice(
        `Check your mail at ${$('login-email').value}: open the link in it to verify the address, then sign in.`,
      );
    }
    $('login-password').focus();
  });
});

$('reload-profile').addEventListener('click', () => action(loadProfile));

$('logout').addEventListener('click', () =>
  action(async () => {
    await client.logout();
    showSignedOut('You have logged out.');
  }),
);

$('show-register').addEventListener('click', (event) => {
  event.preventDefault();
  clearMessages();
  show('view-register');
  $('register-name').focus();
});

$('show-login').addEventListener('click', (event) => {
  event.preventDefault();
  clearMessages();
  show('view-login');
  $('login-email').focus();
});

$('show-forgot').addEventListener('click', (event) => {
  event.preventDefault();
  clearMessages();
  $('forgot-email').value = $('login-email').value;
  show('view-forgot');
  $('forgot-email').focus();
});

$('forgot-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(async () => {
    const message = await client.forgotPassword(new FormData(form).get('email'));
    $('login-email').value = $('forgot-email').value;
    form.reset();
    show('view-login');
    showNotice(message);
  });
});

$('resend-submit').addEventListener('click', () => action(() => resendVerification($('login-email').value)));

$('profile-resend').addEventListener('click', () =>
  action(() => resendVerification($('profile-email').textContent)),
);

$('email-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => changeEmail(form), form);
});

$('password-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => changePassword(form), form);
});

$('delete-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => deleteAccount(form), form);
});

$('mfa-start-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => startEnrollment(form), form);
});

$('mfa-confirm-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => confirmEnrollment(form), form);
});

// The secret stays pending on the server until a confirm, or until the next start replaces it.
$('mfa-enroll-cancel').addEventListener('click', () => {
  clearMessages();
  clearEnrollment();
  $('mfa-start-form').hidden = false;
});

$('mfa-recovery-saved').addEventListener('click', () => {
  clearMessages();
  hideRecoveryCodes();
});

// One form, two buttons: Enter in a field presses the first one, "New recovery codes".
$('mfa-manage-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const turnOff = event.submitter?.id === 'mfa-disable-submit';
  action(() => (turnOff ? turnOffMfa(form) : newRecoveryCodes(form)), form);
});

$('verify-submit').addEventListener('click', () => action(verifyEmail));

$('confirm-submit').addEventListener('click', () => action(confirmEmail));

$('reset-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  action(() => resetPassword(form));
});

// "Back to sign in" / "Back to the app", from the forgot-password view and the link pages.
for (const link of document.querySelectorAll('.to-app')) {
  link.addEventListener('click', (event) => {
    event.preventDefault();
    leaveLinkPage();
    clearMessages();
    if (hasSessionCookie()) {
      show('view-profile');
      action(loadProfile);
    } else {
      show('view-login');
      $('login-email').focus();
    }
  });
}

// `logged_in` is the one cookie scripts may read: it says a session exists, without any
// token. Only used to pick the first view; the API has the last word. (Cookies belong to a
// host, whatever the port, so this page sees the API's cookie when both are on localhost.)
function hasSessionCookie() {
  return document.cookie.split('; ').some((pair) => pair.startsWith('logged_in=') && pair !== 'logged_in=');
}

// A link page sends nothing on load, not even the profile call (a refresh is a POST).
const linkPage = LINK_PAGES[location.pathname.replace(/\/+$/, '')];
if (linkPage) {
  openLinkPage(linkPage);
} else if (hasSessionCookie()) {
  show('view-profile');
  action(loadProfile);
} else {
  show('view-login');
}
