// Checkout flow: each iteration charges points, places an order and pays it (charge → order →
// pay), the shopper's real sequence. A share of orders (UNPAID_SHARE) is left unpaid to expire.
// A share of shoppers (COUPON_SHARE) first get a first-come coupon (1,000 off) and use it in the
// order at once, before the drain has necessarily written it; an expired order gives it back.
// Products run short near the end on purpose: OUT_OF_STOCK is an expected answer, and so is
// ORDER_EXPIRED for a payment that comes too late. Anything else is unexpected.
//
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e JWT_SECRET=... loadtest/k6/checkout.js
//
// Knobs: VUS (32), DURATION (20s), USERS (VUS × 4), PRODUCTS (20), STOCK per product (2000),
// UNPAID_SHARE (0.05), COUPON_SHARE (0.3).
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { adminPost, couponBatch, createUsers, expectOneOf, post, token } from './lib.js';

const VUS = Number(__ENV.VUS || 32);
const USERS = Number(__ENV.USERS || VUS * 4);
const PRODUCTS = Number(__ENV.PRODUCTS || 20);
const STOCK = Number(__ENV.STOCK || 2000);
const UNPAID_SHARE = Number(__ENV.UNPAID_SHARE || 0.05);
const COUPON_SHARE = Number(__ENV.COUPON_SHARE || 0.3);

const ordersPaid = new Counter('orders_paid');
const ordersUnpaid = new Counter('orders_left_unpaid');
const outOfStock = new Counter('orders_out_of_stock');
const withCoupon = new Counter('orders_with_coupon');

export const options = {
  scenarios: {
    checkout: {
      executor: 'constant-vus',
      vus: VUS,
      duration: __ENV.DURATION || '20s',
    },
  },
  setupTimeout: '120s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)', 'max'],
  thresholds: {
    unexpected_status: ['rate<0.001'],
    'http_req_duration{name:charge}': ['p(99)<250'],
    'http_req_duration{name:order}': ['p(99)<250'],
    'http_req_duration{name:pay}': ['p(99)<250'],
    'http_req_duration{name:coupon}': ['p(99)<250'],
  },
};

export function setup() {
  // A first-come batch with a coupon for every user (one each).
  const batch = couponBatch('checkout', USERS);
  // PRODUCTS_JSON ([{id, price}]) names products made beforehand, so that a stock baseline can
  // be taken before the run; otherwise they are made here.
  if (__ENV.PRODUCTS_JSON) {
    const users = createUsers(USERS, 'checkout');
    return { batch, products: JSON.parse(__ENV.PRODUCTS_JSON), users: users.map((id) => ({ id, tok: token(id) })) };
  }
  const products = [];
  for (let i = 0; i < PRODUCTS; i++) {
    const price = 1000 * (1 + (i % 5));
    const p = adminPost('/api/v1/admin/products', { name: `checkout-${i}`, price, stock: STOCK });
    products.push({ id: p.productId, price });
  }
  const users = createUsers(USERS, 'checkout');
  return { batch, products, users: users.map((id) => ({ id, tok: token(id) })) };
}

// Users whose coupon this VU got already (each user belongs to one VU).
const couponTaken = new Set();

// Whether `r` answered `ok`; any status outside `ok` and `allowed` counts as unexpected.
function expect(r, ok, allowed = []) {
  expectOneOf(r, [String(ok), ...allowed]);
  return r.status === ok;
}

export default function (data) {
  // Users are spread over VUs so that two VUs rarely share a wallet.
  const u = data.users[((__VU - 1) + VUS * (__ITER % Math.max(1, Math.floor(USERS / VUS)))) % data.users.length];
  const lines = [];
  const first = Math.floor(Math.random() * data.products.length);
  lines.push({ p: data.products[first], qty: 1 + Math.floor(Math.random() * 3) });
  if (Math.random() < 0.5) {
    lines.push({ p: data.products[(first + 1) % data.products.length], qty: 1 });
  }
  const total = lines.reduce((s, l) => s + l.p.price * l.qty, 0);

  const charged = post(`/api/v1/points/${u.id}`, u.tok, { amount: total }, 'charge');
  // A wallet near its cap (unpaid orders leave points behind) refuses the charge: expected.
  expect(charged, 200, ['409 POINT_LIMIT_EXCEEDED']);

  let couponIssueId;
  if (!couponTaken.has(u.id) && Math.random() < COUPON_SHARE) {
    couponTaken.add(u.id);
    const got = post(`/api/v1/coupons/${data.batch}/issue`, u.tok, { userId: u.id }, 'coupon');
    if (expect(got, 201)) couponIssueId = got.json().couponIssueId;
  }

  const placed = post('/api/v1/orders', u.tok, {
    userId: u.id,
    items: lines.map((l) => ({ productId: l.p.id, qty: l.qty })),
    couponIssueId,
  }, 'order');
  if (!expect(placed, 201, ['409 OUT_OF_STOCK'])) {
    if (placed.status === 409) outOfStock.add(1);
    return;
  }
  const orderId = placed.json().orderId;
  if (couponIssueId) withCoupon.add(1);
  if (Math.random() < UNPAID_SHARE) {
    ordersUnpaid.add(1);
    return;
  }
  const paid = post('/api/v1/payments', u.tok, { userId: u.id, orderId }, 'pay');
  if (expect(paid, 200)) {
    ordersPaid.add(1);
    check(paid, { 'paid order is PAID': (r) => r.json().status === 'PAID' });
  }
}
