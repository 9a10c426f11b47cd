// An opening behind a waiting room: USERS users join during the pre-queue (PREQUEUE seconds),
// LATE of them (a share) only after the start; at the start the room draws the pre-queue's order
// and admits RATE a second. Everyone polls when told (pollAfterMs) and issues with their pass once
// admitted, until the QUANTITY is gone and each waiter is told SOLD_OUT at their next poll. PROBE
// users in a thousand also try to issue without a pass after the start: 403 ADMISSION_REQUIRED.
//
//   k6 run --console-output opening.log -e BASE_URL=... -e JWT_SECRET=... loadtest/k6/opening.js
//   loadtest/opening-check opening.log     (the order, the rate and the sold-out news)
//
// k6 cannot hold 50,000 virtual users on a small machine, so each of VUS virtual users plays
// USERS / VUS users, each polling on their own schedule. For the check after the run it logs
// (console, one line each): the event, every user's join, their last WAITING answer and the one
// that admitted them, each issue, each user's SOLD_OUT news with the poll interval they had been
// told and when they had asked before, and samples of the admitted count with the time they were
// asked and answered.
//
// Knobs: USERS (50000), VUS (200), PREQUEUE (10 s), LATE (0.1), RATE (1000/s), QUANTITY
// (5000), PASS_TTL (30 s), PROBE (5 per thousand).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { BASE, adminPost, base, expectOneOf, mintedUsers, params } from './lib.js';

const USERS = Number(__ENV.USERS || 50000);
const VUS = Number(__ENV.VUS || 200);
const PREQUEUE = Number(__ENV.PREQUEUE || 10);
const LATE = Number(__ENV.LATE || 0.1);
const RATE = Number(__ENV.RATE || 1000);
const QUANTITY = Number(__ENV.QUANTITY || 5000);
const PASS_TTL = Number(__ENV.PASS_TTL || 30);
const PROBE = Number(__ENV.PROBE || 5);

const users = mintedUsers('opening-users', USERS);
const issued = new Counter('tickets_issued');
const withoutPass = new Counter('issued_without_pass');
const soldOutNews = new Counter('told_sold_out');
const lateness = new Trend('poll_lateness_ms', true);

export const options = {
  scenarios: {
    room: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '10m' },
  },
  batchPerHost: 32,
  setupTimeout: '120s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    unexpected_status: ['rate<0.001'],
    tickets_issued: [`count<=${QUANTITY}`],
    issued_without_pass: ['count<1'],
    // As k6 sees it, on the same cores as the api: mostly k6's own queueing at this rate (the
    // api's histogram, in loadtest/run's table, shows the api's part).
    'http_req_duration{name:poll}': ['p(99)<1000'],
    'http_req_duration{name:join}': ['p(99)<1000'],
    checks: ['rate>0.999'],
  },
};

const iso = (ms) => new Date(ms).toISOString();

export function setup() {
  const now = Date.now();
  const eventKey = `opening-${now}`;
  const start = now + PREQUEUE * 1000;
  adminPost('/events', {
    eventKey,
    name: 'opening behind a waiting room',
    totalQuantity: QUANTITY,
    startAt: iso(start),
    endAt: iso(now + 86400000),
    admission: {
      enabled: true,
      prequeueOpensAt: iso(now - 1000),
      admitPerSecond: RATE,
      passTtlSeconds: PASS_TTL,
    },
  });
  console.log(`EVENT ${eventKey} ${start} ${RATE} ${QUANTITY}`);
  return { key: eventKey, start };
}

// One request of the batch for a user's next step.
function request(u, key) {
  const p = params(u.tok, u.step);
  switch (u.step) {
    case 'join':
      return ['POST', `${base()}/events/${key}/queue`, JSON.stringify({ userId: u.id }), p];
    case 'poll':
      return ['GET', `${base()}/events/${key}/queue/${u.id}`, null, p];
    case 'probe':
      return ['POST', `${base()}/events/${key}/tickets`, JSON.stringify({ userId: u.id }), params(u.tok, 'issue')];
    default: {
      p.headers['X-Admission-Pass'] = u.pass;
      return ['POST', `${base()}/events/${key}/tickets`, JSON.stringify({ userId: u.id }), p];
    }
  }
}

let lastSample = 0;

// Reads a join or poll answer.
function place(u, r, sent, got) {
  if (!expectOneOf(r, ['200'])) {
    u.step = 'done';
    return;
  }
  const b = r.json();
  if (got - lastSample >= 100) {
    lastSample = got;
    console.log(`ADM ${sent} ${got} ${b.admitted}`);
  }
  if (u.step === 'join') console.log(`JOIN ${u.id} ${sent} ${got}`);
  switch (b.state) {
    case 'PREQUEUE':
    case 'WAITING':
      if (b.state === 'WAITING') u.waiting = `${b.admitted} ${b.position}`;
      u.advice = b.pollAfterMs;
      u.asked = sent;
      u.step = 'poll';
      u.next = got + b.pollAfterMs;
      return;
    case 'ADMITTED':
      console.log(`ADMIT ${u.id} ${u.waiting || '- -'} ${b.admitted}`);
      check(b, { 'an admitted user gets a pass': (x) => typeof x.pass === 'string' });
      u.pass = b.pass;
      u.step = 'issue';
      u.next = got;
      return;
    case 'SOLD_OUT':
      soldOutNews.add(1);
      console.log(`SOLD ${u.id} ${sent} ${got} ${u.advice || 0} ${u.asked || 0}`);
      u.step = 'done';
      return;
    default:
      expectOneOf(r, []);
      u.step = 'done';
  }
}

export default function (data) {
  const vu = __VU - 1;
  const now = Date.now();
  const mine = [];
  for (let i = vu; i < USERS; i += VUS) {
    const late = (i * 7919) % 1000 < LATE * 1000;
    const at = late
      ? data.start + Math.random() * 3000
      : now + Math.random() * Math.max(0, data.start - now - 500);
    mine.push({ id: users[i].id, tok: users[i].tok, step: 'join', next: at, probe: (i * 104729) % 1000 < PROBE });
  }
  let left = mine.length;
  while (left > 0) {
    const t = Date.now();
    const due = [];
    let soonest = Infinity;
    for (const u of mine) {
      if (u.step === 'done') continue;
      if (u.probe && u.step === 'poll' && t >= data.start + 500) {
        u.probe = false;
        u.resume = u.next;
        u.step = 'probe';
        u.next = t;
      }
      if (u.next <= t && due.length < 64) due.push(u);
      else soonest = Math.min(soonest, u.next);
    }
    if (due.length === 0) {
      sleep(Math.min(0.05, Math.max(0.005, (soonest - t) / 1000)));
      continue;
    }
    for (const u of due) if (u.step === 'poll') lateness.add(t - u.next);
    const sent = Date.now();
    const answers = http.batch(due.map((u) => request(u, data.key)));
    const got = Date.now();
    due.forEach((u, i) => {
      const r = answers[i];
      if (u.step === 'join' || u.step === 'poll') {
        place(u, r, sent, got);
      } else if (u.step === 'probe') {
        if (r.status === 201 || r.status === 200) withoutPass.add(1);
        expectOneOf(r, ['403 ADMISSION_REQUIRED']);
        u.step = 'poll';
        u.next = u.resume;
      } else if (expectOneOf(r, ['201', '409 SOLD_OUT'])) {
        if (r.status === 201) {
          issued.add(1);
          console.log(`ISSUED ${u.id} ${sent} ${got}`);
        } else {
          console.log(`SOLD ${u.id} ${sent} ${got} 0 0`);
        }
        u.step = 'done';
      } else {
        u.step = 'done';
      }
      if (u.step === 'done') left -= 1;
    });
  }
}

// The seed, for the check after the run.
export function teardown(data) {
  const r = http.get(`${BASE}/events/${data.key}/queue/seed`);
  check(r, { 'the seed is revealed after the start': (x) => x.status === 200 });
  console.log(`SEED ${r.body}`);
}
