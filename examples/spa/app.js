// The example's UI: the views (sign in, create an account, forgot password, signed in),
// the list of the user's sessions, and the pages that the service's mail links open
// (verify-email, reset-password, confirm-email). Every API call goes through auth.js.
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

function showError(error) {
  clearMessages();
  $('error-message').textContent = error.message;
  for (const { field, message } of error.errors) {
    const item = document.createElement('li');
    item.textContent = `${field}: ${message}`;
    $('error-fields').append(item);
    const slot = document.querySelector(`:not([hidden]) > form [data-error-for="${field}"]`);
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
  show('view-login');
  showNotice(message);
}

// Runs a user action: clears the last message, counts the action in <body data-busy> (the
// e2e test waits on that), disables the buttons meanwhile, and shows the API's error if
// it fails.
async function action(task) {
  const body = document.body;
  body.dataset.busy = String(Number(body.dataset.busy) + 1);
  for (const button of document.querySelectorAll('button')) button.disabled = true;
  clearMessages();
  try {
    await task();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error !== sessionEndedBy) showError(error); // onLoggedOut has said it already
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
  show('view-profile');
  await loadSessions();
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
//   POST /api/users/me/email {email, password} → 202; the address changes once the link
//        mailed to the new address is used. A wrong password is 401 invalid_credentials.

async function changeEmail(form) {
  const { email, password } = Object.fromEntries(new FormData(form));
  let message;
  try {
    message = await client.changeEmail({ email, password });
  } catch (error) {
    if (error.code !== 'invalid_credentials') throw error;
    showErrorText('Wrong password.');
    document.querySelector('#email-form [data-error-for="password"]').textContent = 'wrong password';
    $('email-password').select();
    return;
  }
  form.reset();
  showNotice(message);
}

async function resendVerification(email) {
  const message = await client.resendVerification(email);
  $('resend-verification').hidden = true;
  showNotice(message);
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
    try {
      await client.login({ email, password }); // the access token in the answer is not kept
    } catch (error) {
      // REQUIRE_VERIFIED_EMAIL: the right password, an address not verified yet.
      if (error.code === 'email_not_verified') $('resend-verification').hidden = false;
      throw error;
    }
    form.reset();
    await loadProfile();
  });
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
  action(() => changeEmail(form));
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
