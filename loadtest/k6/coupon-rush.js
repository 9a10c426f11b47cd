// Coupon rush: a first-come SELF coupon batch opens and arrivals ramp to the peak; a share of
// arrivals are users who already got one and press again (409 COUPON_ALREADY_ISSUED, naming the
// coupon they hold). Expected answers: 201, 409 COUPON_SOLD_OUT, 409 COUPON_ALREADY_ISSUED,
// 409 DAILY_LIMIT_REACHED (when DAILY is set). Never more 201s than the batch's count.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e JWT_SECRET=... loadtest/k6/coupon-rush.js
//
// Knobs: COUNT (2000), DAILY (daily limit, none), USERS (10000), PEAK (arrivals/s, 1200),
// RAMP (3s), HOLD (7s), RETRY_SHARE (0.2).
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import { couponBatch, expectOneOf, mintedUsers, post, rampToPeak } from './lib.js';

const COUNT = Number(__ENV.COUNT || 2000);
const DAILY = __ENV.DAILY ? Number(__ENV.DAILY) : null;
const USERS = Number(__ENV.USERS || 10000);
const PEAK = Number(__ENV.PEAK || 1200);
const RETRY_SHARE = Number(__ENV.RETRY_SHARE || 0.2);

const users = mintedUsers('rush-users', USERS);
const issued = new Counter('coupons_issued');
const again = new Counter('coupons_already_issued');

export const options = {
  scenarios: {
    rush: rampToPeak(PEAK, __ENV.RAMP || '3s', __ENV.HOLD || '7s'),
  },
  setupTimeout: '60s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    unexpected_status: ['rate<0.001'],
    coupons_issued: [`count<=${COUNT}`],
    'http_req_duration{name:issue}': ['p(99)<200'],
  },
};

export function setup() {
  return { batch: couponBatch('rush', COUNT, DAILY) };
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  // A retry is an earlier arrival pressing again.
  const u = n > 0 && Math.random() < RETRY_SHARE
    ? users[Math.floor(Math.random() * Math.min(n, USERS))]
    : users[n % USERS];
  const r = post(`/api/v1/coupons/${data.batch}/issue`, u.tok, { userId: u.id }, 'issue');
  const allowed = ['201', '409 COUPON_SOLD_OUT', '409 COUPON_ALREADY_ISSUED', '409 DAILY_LIMIT_REACHED'];
  if (!expectOneOf(r, allowed)) return;
  if (r.status === 201) issued.add(1);
  if (r.status === 409 && r.json().code === 'COUPON_ALREADY_ISSUED') again.add(1);
}
