// Ticket opening burst: arrivals ramp up to the peak the moment an event opens, hold there until
// the quantity is gone, then the sold-out flood keeps coming (late users, and winners pressing
// again). Every user has their own token. Expected answers: 201 (a ticket), 200 (the same ticket
// again), 409 SOLD_OUT. Never more 201s than the quantity.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e JWT_SECRET=... loadtest/k6/ticket-burst.js
//
// Knobs: QUANTITY (3000), USERS (20000), PEAK (arrivals/s at the peak, 1500), RAMP (3s),
// HOLD (5s), FLOOD (arrivals/s after, 1500), FLOOD_FOR (5s).
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { expectOneOf, mintedUsers, post, rampToPeak, ticketEvent } from './lib.js';

const QUANTITY = Number(__ENV.QUANTITY || 3000);
const USERS = Number(__ENV.USERS || 20000);
const PEAK = Number(__ENV.PEAK || 1500);
const RAMP = __ENV.RAMP || '3s';
const HOLD = __ENV.HOLD || '5s';
const FLOOD = Number(__ENV.FLOOD || 1500);
const FLOOD_FOR = __ENV.FLOOD_FOR || '5s';
const seconds = (d) => Number(d.replace('s', ''));

const users = mintedUsers('burst-users', USERS);
const issued = new Counter('tickets_issued');
const soldOut = new Counter('tickets_sold_out');

export const options = {
  scenarios: {
    opening: rampToPeak(PEAK, RAMP, HOLD),
    flood: {
      executor: 'constant-arrival-rate',
      rate: FLOOD,
      timeUnit: '1s',
      duration: FLOOD_FOR,
      startTime: `${seconds(RAMP) + seconds(HOLD)}s`,
      preAllocatedVUs: 100,
      maxVUs: 400,
    },
  },
  setupTimeout: '60s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    unexpected_status: ['rate<0.001'],
    tickets_issued: [`count<=${QUANTITY}`],
    'http_req_duration{scenario:opening}': ['p(99)<200'],
    'http_req_duration{scenario:flood}': ['p(99)<100'],
    checks: ['rate>0.999'],
  },
};

export function setup() {
  return { key: ticketEvent('burst', 'opening burst', QUANTITY) };
}

export default function (data) {
  // Opening: each arrival a new user. Flood: anyone, winners included.
  const u = exec.scenario.name === 'opening'
    ? users[exec.scenario.iterationInTest % USERS]
    : users[Math.floor(Math.random() * USERS)];
  const r = post(`/events/${data.key}/tickets`, u.tok, { userId: u.id }, 'issue');
  if (!expectOneOf(r, ['201', '200', '409 SOLD_OUT'])) return;
  if (r.status === 201) issued.add(1);
  if (r.status === 409) soldOut.add(1);
  if (r.status < 300) {
    check(r, { 'the ticket is the user\'s': (res) => res.json().userId === u.id });
  }
}
