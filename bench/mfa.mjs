// The two steps of a login with a second factor, under load: the password step (argon2, then
// an mfa_token) and the code step (a TOTP or a recovery code, then the session). Prints
// req/s, p50 and p99 of each step.
//
//   node bench/mfa.mjs http://127.0.0.1:8000 [users=64] [concurrency=16]
//
// Needs a running service whose LOGIN_ATTEMPTS_IP_LIMIT is above the number of logins (every
// request here comes from one IP). Each user gets one TOTP login (the code of the current
// step: each step's code works once per user) and ten recovery-code logins, so a run makes
// 11 x users second steps without waiting for a step.
import { createHmac } from 'node:crypto';

const [base = 'http://127.0.0.1:8000', usersArg = '64', concurrencyArg = '16'] = process.argv.slice(2);
const users = Number(usersArg);
const concurrency = Number(concurrencyArg);
const password = 'correct horse battery';
const run = Date.now().toString(36);

async function post(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(base + path, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238 with SHA-1, 6 digits, 30-second steps, as an authenticator app computes it.
function totp(secret, offset = 0) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const at = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1000000).padStart(6, '0');
}

async function inParallel(items, work) {
  const times = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const item = items[next++];
      const t0 = performance.now();
      await work(item);
      times.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return { n: times.length, rate: times.length / seconds, p50: at(0.5), p99: at(0.99) };
}

function show(name, r) {
  console.log(`${name.padEnd(28)} ${String(r.n).padStart(5)} requests  ${r.rate.toFixed(1).padStart(7)} req/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms`);
}

const accounts = [];
await inParallel(Array.from({ length: users }, (_, i) => i), async (i) => {
  const email = `mfa-bench-${run}-${i}@example.com`;
  await post('/api/auth/register', { name: 'Bench', email, password, passwordConfirm: password });
  const { access_token } = await post('/api/auth/login', { email, password });
  const { data } = await post('/api/users/me/mfa/totp', { password }, access_token);
  const confirmed = await post('/api/users/me/mfa/totp/confirm', { code: totp(data.secret) }, access_token);
  accounts.push({ email, secret: data.secret, recovery: confirmed.data.recovery_codes });
});

// One login per account per round: a TOTP round (the next step's code, unused so far), then
// ten recovery-code rounds.
const logins = [];
for (const a of accounts) logins.push({ email: a.email, code: () => totp(a.secret, 1) });
for (let k = 0; k < 10; k++) for (const a of accounts) logins.push({ email: a.email, code: () => a.recovery[k] });

const tokens = new Map();
show('password step (mfa_required)', await inParallel(logins.map((l, i) => ({ ...l, i })), async (l) => {
  const answer = await post('/api/auth/login', { email: l.email, password });
  if (!answer.mfa_required) throw new Error('no mfa_required');
  tokens.set(l.i, answer.mfa_token);
}));
const totpRound = logins.slice(0, accounts.length).map((l, i) => ({ ...l, i }));
const recoveryRounds = logins.slice(accounts.length).map((l, i) => ({ ...l, i: i + accounts.length }));
const finish = async (l) => {
  const answer = await post('/api/auth/login/mfa', { mfa_token: tokens.get(l.i), code: l.code() });
  if (!answer.access_token) throw new Error('no access token');
};
show('code step, TOTP', await inParallel(totpRound, finish));
show('code step, recovery code', await inParallel(recoveryRounds, finish));
