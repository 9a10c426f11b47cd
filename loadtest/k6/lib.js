// Shared by the k6 scenarios: tokens minted here (HS256 with JWT_SECRET, as `api token` does),
// JSON requests, and the setup calls of the admin API.
import http from 'k6/http';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { SharedArray } from 'k6/data';
import { Rate } from 'k6/metrics';

// BASE_URL is one api, one load balancer in front of several, or a comma-separated list of api
// processes: each virtual user then sends everything to one of them (by its number), so the
// users spread evenly and each user's requests reach one process, as nginx's hash does
// (ops/nginx). Setup calls go to the first.
const BASES = (__ENV.BASE_URL || 'http://127.0.0.1:8080').split(',').map((b) => b.trim()).filter((b) => b);
export const BASE = BASES[0];

// The api this virtual user talks to.
export function base() {
  return BASES[(typeof __VU === 'number' ? __VU : 0) % BASES.length];
}
const SECRET = __ENV.JWT_SECRET;
if (!SECRET) {
  throw new Error('set JWT_SECRET (-e JWT_SECRET=...) to the api\'s secret');
}

function b64(obj) {
  return encoding.b64encode(JSON.stringify(obj), 'rawurl');
}

// A bearer token for `user` (an admin's when `admin`), valid for a day.
export function token(user, admin = false) {
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({
    sub: String(user),
    roles: admin ? ['ROLE_USER', 'ROLE_ADMIN'] : ['ROLE_USER'],
    exp: Math.floor(Date.now() / 1000) + 86400,
  });
  const sig = crypto.hmac('sha256', SECRET, `${head}.${body}`, 'base64rawurl');
  return `${head}.${body}.${sig}`;
}

export function params(tok, name) {
  return {
    headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
    tags: { name },
  };
}

export function post(path, tok, body, name) {
  return http.post(`${base()}${path}`, body === undefined ? null : JSON.stringify(body), params(tok, name));
}

// An admin call in setup: fails the run when it does not answer `status`.
export function adminPost(path, body, status = 201) {
  const r = post(path, token(1, true), body, 'setup');
  if (r.status !== status) {
    throw new Error(`setup ${path}: ${r.status} ${r.body}`);
  }
  return r.json();
}

// An opening: arrivals ramp from none to `peak` a second over `ramp`, then hold there for `hold`.
export function rampToPeak(peak, ramp, hold) {
  return {
    executor: 'ramping-arrival-rate',
    startRate: 0,
    timeUnit: '1s',
    preAllocatedVUs: 100,
    maxVUs: 400,
    stages: [
      { target: peak, duration: ramp },
      { target: peak, duration: hold },
    ],
  };
}

// Creates a golden-ticket event open from 2020 to 2099 with `quantity` tickets; returns its key.
export function ticketEvent(prefix, name, quantity) {
  const eventKey = `${prefix}-${Date.now()}`;
  adminPost('/events', {
    eventKey,
    name,
    totalQuantity: quantity,
    startAt: '2020-01-01T00:00:00Z',
    endAt: '2099-01-01T00:00:00Z',
  });
  return eventKey;
}

// Creates a first-come (SELF) coupon batch of `count` coupons worth 1,000 off, open from 2020
// to 2099, with an event and an inventory of its own; returns its id.
export function couponBatch(name, count, dailyLimit = null) {
  const period = { fromAt: '2020-01-01T00:00:00', untilAt: '2099-01-01T00:00:00' };
  const event = adminPost('/api/v1/admin/events', { eventName: `${name} ${Date.now()}`, ...period });
  const inventory = adminPost('/api/v1/admin/coupon-inventories', {
    eventId: event.eventId,
    inventoryName: name,
    totalCount: count,
    inventoryStatus: 'READY',
    usableFromAt: period.fromAt,
    usableUntilAt: period.untilAt,
    discount: { type: 'AMOUNT', value: 1000 },
  });
  return adminPost('/api/v1/admin/coupon-batches', {
    inventoryId: inventory.inventoryId,
    batchName: name,
    issueCount: count,
    dailyLimit,
    issueType: 'SELF',
    batchStatus: 'READY',
    validFromAt: period.fromAt,
    validUntilAt: period.untilAt,
  }).batchId;
}

// Creates `n` users in parallel batches; returns their ids.
export function createUsers(n, prefix) {
  const ids = [];
  const admin = token(1, true);
  for (let start = 0; start < n; start += 50) {
    const reqs = [];
    for (let i = start; i < Math.min(n, start + 50); i++) {
      reqs.push(['POST', `${BASE}/api/v1/admin/users`, JSON.stringify({ name: `${prefix}-${i}` }), params(admin, 'setup')]);
    }
    for (const r of http.batch(reqs)) {
      if (r.status !== 201) throw new Error(`setup users: ${r.status} ${r.body}`);
      ids.push(r.json().userId);
    }
  }
  return ids;
}

// `n` users, each with a token of their own, minted once in the init context and shared by every
// VU. Ids start at USER_BASE, or at a base drawn per run, so that runs against one stack never
// meet each other's users. Ticket and coupon users need no row of their own.
export function mintedUsers(name, n) {
  return new SharedArray(name, () => {
    const base = Number(__ENV.USER_BASE || 1e9 + (Date.now() % 1e6) * 1e4);
    const users = [];
    for (let i = 0; i < n; i++) {
      users.push({ id: base + i, tok: token(base + i) });
    }
    return users;
  });
}

// Answers a scenario did not expect (any status or error code outside `allowed`).
export const unexpected = new Rate('unexpected_status');

// Records whether `r` answered one of `allowed` (`"201"`, or `"409 SOLD_OUT"` for a status with
// its error code); logs the first few surprises.
let surprises = 0;
export function expectOneOf(r, allowed) {
  let code = '';
  if (r.status >= 400) {
    try {
      code = r.json().code;
    } catch (_) {
      code = '?';
    }
  }
  const fine = allowed.includes(String(r.status)) || allowed.includes(`${r.status} ${code}`);
  unexpected.add(!fine);
  if (!fine && surprises++ < 10) {
    console.warn(`${r.request.method} ${r.url}: ${r.status} ${r.body}`);
  }
  return fine;
}
