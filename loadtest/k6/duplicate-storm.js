// Duplicate storm: a crowd of users each pressing the button again and again, several tabs at
// once (VUs share users). Each user ends with at most one ticket, always the same one; the
// per-user rate limit answers the excess with 429. Expected answers: 201, 200 (the same ticket),
// 409 SOLD_OUT, 429 RATE_LIMITED.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e JWT_SECRET=... loadtest/k6/duplicate-storm.js
//
// A tab presses every 100-300 ms (a person hammering the button), so two tabs press about ten
// times a second: twice the per-user limit.
//
// Knobs: USERS (200), TABS (VUs per user, 2), QUANTITY (150, fewer than the users), DURATION (10s).
import { sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { expectOneOf, mintedUsers, post, ticketEvent } from './lib.js';

const USERS = Number(__ENV.USERS || 200);
const TABS = Number(__ENV.TABS || 2);
const QUANTITY = Number(__ENV.QUANTITY || 150);

const users = mintedUsers('storm-users', USERS);
const issued = new Counter('tickets_issued');
const limited = new Counter('rate_limited');
const changed = new Counter('ticket_changed');

export const options = {
  scenarios: {
    storm: {
      executor: 'constant-vus',
      vus: USERS * TABS,
      duration: __ENV.DURATION || '10s',
    },
  },
  setupTimeout: '60s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    unexpected_status: ['rate<0.001'],
    tickets_issued: [`count<=${QUANTITY}`],
    ticket_changed: ['count==0'],
    'http_req_duration{name:issue}': ['p(99)<200'],
  },
};

export function setup() {
  return { key: ticketEvent('storm', 'duplicate storm', QUANTITY) };
}

// The ticket this VU saw for its user: a different one later would be a second ticket.
let mine = null;

export default function (data) {
  const u = users[(exec.vu.idInTest - 1) % USERS];
  const r = post(`/events/${data.key}/tickets`, u.tok, { userId: u.id }, 'issue');
  if (!expectOneOf(r, ['201', '200', '409 SOLD_OUT', '429 RATE_LIMITED'])) return;
  if (r.status === 429) limited.add(1);
  if (r.status === 201) issued.add(1);
  if (r.status === 200 || r.status === 201) {
    const id = r.json().ticketId;
    if (mine !== null && mine !== id) changed.add(1);
    mine = id;
  }
  sleep(0.1 + Math.random() * 0.2);
}
