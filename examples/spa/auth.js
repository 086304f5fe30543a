// A small browser client for rs256-auth. It has no UI and no dependencies: copy this file
// into your app, call createAuthClient once, and send every API call through it.
//
// The tokens live in HTTP-only cookies that this code never sees. Every request goes out
// with `credentials: 'include'` so the browser attaches them, and when the access token
// has run out the client refreshes it (once, for every request waiting on it) and
// retries.

const REFRESH_PATH = '/api/auth/refresh';

// Shared by every tab of this origin, for the Web Locks API.
const REFRESH_LOCK = 'rs256-auth-refresh';

// 401 codes that a refresh can cure. `not_logged_in` is here because the access cookie's
// Max-Age is the token's lifetime by default: the browser drops the cookie at the moment
// the token expires, so an expired session usually shows up as "no token at all", not as
// `token_expired`. The refresh cookie lives longer, so try it before giving up.
const REFRESHABLE = new Set(['token_expired', 'not_logged_in']);

// 401 codes that mean the session is gone for good: back to the login page.
const SESSION_OVER = new Set(['not_logged_in', 'session_revoked', 'refresh_reused']);

/** A failed call, carrying the API's error envelope {status: "fail", code, message, errors?}. */
export class ApiError extends Error {
  constructor(httpStatus, envelope) {
    super(envelope.message);
    this.name = 'ApiError';
    this.httpStatus = httpStatus; // 0 when the server could not be reached
    this.envelope = envelope;
    this.code = envelope.code;
    this.errors = envelope.errors ?? []; // [{field, message}] for validation_failed
  }
}

/**
 * @param {object} options
 * @param {string} [options.baseUrl] the API's origin, e.g. "http://localhost:8000"; '' for same-origin
 * @param {(error: ApiError) => void} [options.onLoggedOut] called when the session has ended
 */
export function createAuthClient({ baseUrl = '', onLoggedOut = () => {} } = {}) {
  baseUrl = baseUrl.replace(/\/+$/, '');

  // The refresh in flight in this tab, if any: concurrent callers all wait on this one.
  let refreshing = null;
  // Counts this tab's successful refreshes. A call that went out before the latest one
  // finished carried the old cookies: it is retried without refreshing again.
  let generation = 0;

  // One HTTP call, no refresh logic. Resolves with the JSON body, rejects with ApiError.
  async function send(path, { method = 'GET', body } = {}) {
    const init = { method, credentials: 'include', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(baseUrl + path, init);
    } catch {
      // A network failure, or a response that CORS withheld from the page.
      const api = baseUrl || location.origin;
      throw new ApiError(0, {
        status: 'fail',
        code: 'network_error',
        message: `cannot reach the API at ${api} (is it running, with this page's origin in CLIENT_ORIGIN?)`,
      });
    }
    const data = await response.json().catch(() => null);
    if (response.ok) return data ?? { status: 'success' };
    if (data?.status === 'fail' && typeof data.code === 'string') {
      throw new ApiError(response.status, data);
    }
    // Not the service's envelope: a proxy in between, most likely.
    throw new ApiError(response.status, {
      status: 'fail',
      code: `http_${response.status}`,
      message: `the API answered ${response.status} ${response.statusText}`.trim(),
    });
  }

  // Other tabs of this origin share the browser's cookie jar. The lock makes them take
  // turns, so that a second tab refreshes with the refresh token the first one just
  // received instead of replaying the old one. The server would accept that replay
  // anyway (inside REFRESH_REUSE_GRACE it answers with the same new tokens), so the lock
  // only saves a replay; without the Web Locks API we simply go ahead.
  function acrossTabs(task) {
    const locks = globalThis.navigator?.locks;
    return locks ? locks.request(REFRESH_LOCK, task) : task();
  }

  // A refresh whose answer was lost (the network, a 5xx) may have rotated the token all
  // the same: sent again at once, inside REFRESH_REUSE_GRACE, it gets the same new tokens;
  // sent much later it would look like a stolen copy and end the session.
  async function refreshOnce() {
    try {
      return await send(REFRESH_PATH, { method: 'POST' });
    } catch (error) {
      if (error.httpStatus !== 0 && error.httpStatus < 500) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return send(REFRESH_PATH, { method: 'POST' });
    }
  }

  function refresh() {
    refreshing ??= acrossTabs(refreshOnce)
      .then((answer) => {
        generation += 1;
        return answer;
      })
      .catch((error) => {
        // A 401 from refresh means the server ended the session and cleared the cookies.
        // Anything else (a 503, the network) leaves the session alone: try again later.
        if (error.httpStatus === 401) onLoggedOut(error);
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  /**
   * Calls the API: `path` like "/api/users/me", options {method, body} (body is sent as
   * JSON). Resolves with the JSON body; rejects with an ApiError.
   */
  async function request(path, options = {}) {
    const sentIn = generation;
    try {
      return await send(path, options);
    } catch (error) {
      // The auth routes are never retried: their 401s are final answers.
      const retry = REFRESHABLE.has(error.code) && !path.startsWith('/api/auth/');
      if (!retry) throw sessionCheck(error);
    }
    // Rejects (having called onLoggedOut) when the session is over.
    if (generation === sentIn) await refresh();
    try {
      return await send(path, options);
    } catch (error) {
      throw sessionCheck(error);
    }
  }

  function sessionCheck(error) {
    if (error.httpStatus === 401 && SESSION_OVER.has(error.code)) onLoggedOut(error);
    return error;
  }

  return {
    request,
    refresh,

    /**
     * Starts a session; the cookies are set by the response. The token in the body is ignored.
     * Resolves with {mfaRequired: false} when signed in, or, for an account with a second
     * factor, with {mfaRequired: true, mfaToken}: no session yet, finish with loginWithCode.
     */
    async login({ email, password }) {
      const answer = await request('/api/auth/login', { method: 'POST', body: { email, password } });
      if (answer.mfa_required) return { mfaRequired: true, mfaToken: answer.mfa_token };
      return { mfaRequired: false };
    },

    /**
     * The second step of a login: the mfa_token from login() and a code from the
     * authenticator app or a recovery code. Sets the cookies as login does. Resolves with
     * {recoveryCodesLeft}: a number when a recovery code was used, else null. A wrong code,
     * or an mfa_token that is used, expired or dead after 5 wrong codes, rejects with 401
     * invalid_code.
     */
    async loginWithCode({ mfaToken, code }) {
      const answer = await request('/api/auth/login/mfa', {
        method: 'POST',
        body: { mfa_token: mfaToken, code },
      });
      return { recoveryCodesLeft: answer.data?.recovery_codes_left ?? null };
    },

    /**
     * Creates an account (does not log in). Resolves with the new user, or with null when
     * the service requires verified addresses (REQUIRE_VERIFIED_EMAIL): it then answers 202
     * alike for a new and a taken address, and the link in the mail tells them apart.
     */
    async register({ name, email, password, passwordConfirm }) {
      const answer = await request('/api/auth/register', {
        method: 'POST',
        body: { name, email, password, passwordConfirm },
      });
      return answer.data?.user ?? null;
    },

    /** Ends the session and clears the cookies. Safe to call when already logged out. */
    async logout() {
      await request('/api/auth/logout', { method: 'POST' });
    },

    /** The logged-in user. */
    async me() {
      const answer = await request('/api/users/me');
      return answer.data.user;
    },

    // ---- mail: each link's token is used by one POST, from a button, never on page load.
    // The 202 answers say the same for every address; they resolve with the API's message.

    /** Uses a verify-email link's token. Resolves with the user, now verified. */
    async verifyEmail(token) {
      const answer = await request('/api/auth/verify-email', { method: 'POST', body: { token } });
      return answer.data.user;
    },

    /** Asks for a new verification link. */
    async resendVerification(email) {
      const answer = await request('/api/auth/verify-email/resend', { method: 'POST', body: { email } });
      return answer.message;
    },

    /** Asks for a password reset link. */
    async forgotPassword(email) {
      const answer = await request('/api/auth/forgot-password', { method: 'POST', body: { email } });
      return answer.message;
    },

    /** Uses a reset-password link's token. Ends every session of the user; sets no cookie. */
    async resetPassword({ token, password, passwordConfirm }) {
      await request('/api/auth/reset-password', {
        method: 'POST',
        body: { token, password, passwordConfirm },
      });
    },

    /**
     * Starts an address change: the new address gets a link. Needs the current password, and
     * `code` (authenticator or recovery code) while a second factor is on.
     */
    async changeEmail({ email, password, code }) {
      const answer = await request('/api/users/me/email', {
        method: 'POST',
        body: withCode({ email, password }, code),
      });
      return answer.message;
    },

    /** Uses a confirm-email link's token. Resolves with the user, with the new address. */
    async confirmEmail(token) {
      const answer = await request('/api/auth/confirm-email', { method: 'POST', body: { token } });
      return answer.data.user;
    },

    // ---- the account: the password, deletion. While a second factor is on, both need a
    // `code` too (a TOTP or a recovery code); a missing or wrong one is 401 invalid_code.

    /** Changes the password; every other session of the user ends, this one goes on. */
    async changePassword({ currentPassword, newPassword, newPasswordConfirm, code }) {
      await request('/api/users/me/password', {
        method: 'POST',
        body: withCode({ currentPassword, newPassword, newPasswordConfirm }, code),
      });
    },

    /** Deletes the account and every session of it; the cookies are cleared. */
    async deleteAccount({ password, code }) {
      await request('/api/users/me', { method: 'DELETE', body: withCode({ password }, code) });
    },

    // ---- the second factor: an authenticator app (TOTP), and ten single-use recovery codes.
    // `code` is always a 6-digit code of the app or a recovery code ("xxxxx-xxxxx").

    /**
     * Starts enrollment (the password again): resolves with {secret, otpauthUri}, for the
     * app's QR code. Not active until confirmTotp; calling again replaces the secret.
     */
    async startTotp(password) {
      const answer = await request('/api/users/me/mfa/totp', { method: 'POST', body: { password } });
      return { secret: answer.data.secret, otpauthUri: answer.data.otpauth_uri };
    },

    /**
     * Turns the factor on with a first code from the app. Resolves with the ten recovery
     * codes, which the API shows this once. Every other session of the user ends.
     */
    async confirmTotp(code) {
      const answer = await request('/api/users/me/mfa/totp/confirm', { method: 'POST', body: { code } });
      return answer.data.recovery_codes;
    },

    /** Turns the factor off (password and code); the recovery codes die with it. */
    async disableTotp({ password, code }) {
      await request('/api/users/me/mfa/totp', { method: 'DELETE', body: { password, code } });
    },

    /** Ten new recovery codes (password and code); the old ones stop working. */
    async newRecoveryCodes({ password, code }) {
      const answer = await request('/api/users/me/mfa/recovery-codes', {
        method: 'POST',
        body: { password, code },
      });
      return answer.data.recovery_codes;
    },
  };
}

// A body with `code` added when one was given (an account without a second factor needs none).
function withCode(body, code) {
  return code ? { ...body, code } : body;
}
