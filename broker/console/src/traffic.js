// traffic.js — Traffic page: per-minute charts (uPlot) of relayed messages by class and by
// outcome, and latency p50/p99, for a period, a pair of networks and the protocols they spoke
// (TS002, Packet Broker, bridged either way); the same figures as a table (with a column per
// protocol path) and as CSV (from GET /api/v1/stats).
import uPlot from 'uplot';
import * as api from './api.js';
import { h, clear, table, select } from './dom.js';

const CLASSES = [
  ['join_request', 'join-request', (c) => c === 'join_request'],
  ['mac_data', 'MAC data', (c) => c === 'uplink_mac'],
  ['application_data', 'application data', (c) => c === 'uplink_app'],
  ['downlinks', 'downlinks', (c) => c === 'join_accept' || c === 'downlink_mac' || c === 'downlink_app'],
  ['other', 'other', (c) => c === 'other'],
];
const OUTCOMES = [
  ['forwarded', 'forwarded', (o) => o === 'forwarded'],
  ['policy_denied', 'denied by policy', (o) => o === 'policy_denied'],
  ['no_route', 'no route', (o) => o === 'no_route'],
  ['receiver_failed', 'receiver failed', (o) => o === 'receiver_error' || o === 'timeout' || o === 'unreachable'],
  ['refused', 'refused (malformed, unauthorized)', (o) => o === 'malformed' || o === 'unauthorized'],
  ['rate_limited', 'rate-limited', (o) => o === 'rate_limited'],
];
// Which protocols the two sides spoke (the rows' forwarder_protocol -> home_protocol): the
// table's columns, and the choices of the protocol filter (the API's query parameters).
const PATHS = [
  ['ts002', 'TS002', (f, h) => f === 'ts002' && h === 'ts002'],
  ['packet_broker', 'Packet Broker', (f, h) => f === 'packet_broker' && h === 'packet_broker'],
  ['bridged', 'bridged', (f, h) => f !== h],
];
const PROTOCOLS = [
  ['', 'any', {}],
  ['ts002', 'TS002 only', { forwarder_protocol: 'ts002', home_protocol: 'ts002' }],
  ['packet_broker', 'Packet Broker only', { forwarder_protocol: 'packet_broker', home_protocol: 'packet_broker' }],
  ['ts002-pb', 'bridged TS002 → Packet Broker', { forwarder_protocol: 'ts002', home_protocol: 'packet_broker' }],
  ['pb-ts002', 'bridged Packet Broker → TS002', { forwarder_protocol: 'packet_broker', home_protocol: 'ts002' }],
  ['any-pb', 'any with Packet Broker', { protocol: 'packet_broker' }],
];
const COLORS = ['#0b4fa8', '#c0392b', '#1e8449', '#8e44ad', '#b9770e', '#34495e'];
const PERIODS = [['hour', 'last hour'], ['day', 'last day'], ['30d', 'last 30 days']];

const state = { period: 'hour', forwarder: '', home: '', protocol: '' };
let timer = null;
let plots = [];
let drawn = 0; // the latest draw started: an older one finishing later must not overwrite it

function periodParams() {
  const now = Math.floor(Date.now() / 1000);
  if (state.period === 'day') return { from: now - 86400, to: now + 60, by: 'minute', step: 60 };
  if (state.period === '30d') return { from: now - 30 * 86400, to: now + 3600, by: 'hour', step: 3600 };
  return { from: now - 3600, to: now + 60, by: 'minute', step: 60 };
}

function query(extra) {
  const p = periodParams();
  const q = new URLSearchParams({ from: String(p.from), to: String(p.to), by: p.by });
  if (state.forwarder) q.set('forwarder', state.forwarder);
  if (state.home) q.set('home', state.home);
  const proto = PROTOCOLS.find(([v]) => v === state.protocol);
  for (const [k, v] of Object.entries(proto ? proto[2] : {})) q.set(k, v);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q;
}

function emptyEntry(t) {
  const e = { t, cls: {}, out: {}, path: {}, total: 0, p50w: 0, p50n: 0, p99: 0 };
  for (const [k] of CLASSES) e.cls[k] = 0;
  for (const [k] of OUTCOMES) e.out[k] = 0;
  for (const [k] of PATHS) e.path[k] = 0;
  return e;
}

// Rows of /stats -> one entry per period of the range (zeros where nothing flowed): counts by
// class, by outcome and by protocol path, latency.
export function aggregate(items, range) {
  const by = new Map();
  if (range) {
    for (let t = Math.floor(range.from / range.step) * range.step; t <= range.to - range.step; t += range.step) by.set(t, emptyEntry(t));
  }
  for (const it of items) {
    const t = Math.floor(Date.parse(it.period_start) / 1000);
    let e = by.get(t);
    if (!e) {
      e = emptyEntry(t);
      by.set(t, e);
    }
    const c = CLASSES.find(([, , f]) => f(it.class));
    const o = OUTCOMES.find(([, , f]) => f(it.outcome));
    if (c) e.cls[c[0]] += it.count;
    if (o) e.out[o[0]] += it.count;
    // rows counted before the protocol was a dimension have none: they read as TS002
    const p = PATHS.find(([, , f]) => f(it.forwarder_protocol || 'ts002', it.home_protocol || 'ts002'));
    if (p) e.path[p[0]] += it.count;
    e.total += it.count;
    if (it.latency_ms && it.count) {
      e.p50w += it.latency_ms.p50 * it.count;
      e.p50n += it.count;
      e.p99 = Math.max(e.p99, it.latency_ms.p99);
    }
  }
  return [...by.values()].sort((a, b) => a.t - b.t).map((e) => Object.assign(e, { p50: e.p50n ? e.p50w / e.p50n : 0 }));
}

function chart(title, id, rows, series, width, range) {
  const fig = h('figure', { id, role: 'group', 'aria-label': title + ' (the table below holds the same figures)' }, h('figcaption', {}, title));
  const xs = rows.map((r) => r.t);
  const data = [xs, ...series.map((s) => rows.map(s.get))];
  const totals = {};
  series.forEach((s, i) => { totals[s.key] = data[i + 1].reduce((a, b) => a + (b || 0), 0); });
  fig.dataset.totals = JSON.stringify(totals);
  const opts = {
    width, height: 220,
    scales: { x: { time: true, range: [range.from, range.to] }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: { show: false } }))],
    axes: [{}, { size: 60 }],
  };
  plots.push(new uPlot(opts, data, fig));
  return fig;
}

async function draw(root) {
  const mine = ++drawn;
  const range = periodParams();
  const stats = await api.get('/stats?' + query());
  if (mine !== drawn) return; // the choice changed (or a refresh started) meanwhile
  const rows = aggregate(stats.items || [], range);
  for (const p of plots) p.destroy();
  plots = [];
  const area = clear(root.querySelector('#traffic-body'));
  const w = Math.max(360, Math.min(600, (area.clientWidth || 900) / 2 - 16));
  const total = rows.reduce((a, r) => a + r.total, 0);
  const step = periodParams().step === 60 ? 'minute' : 'hour';
  area.append(h('p', { id: 'traffic-summary' }, total + ' messages in the period (per ' + step + ', refreshed every 5 s).'));
  const charts = h('div', { class: 'charts' },
    chart('Messages per ' + step + ' by class', 'chart-class', rows, CLASSES.map(([key, label]) => ({ key, label, get: (r) => r.cls[key] })), w, range),
    chart('Messages per ' + step + ' by outcome', 'chart-outcome', rows, OUTCOMES.map(([key, label]) => ({ key, label, get: (r) => r.out[key] })), w, range),
    chart('Latency (ms): p50 and p99', 'chart-latency', rows, [
      { key: 'p50', label: 'p50 ms', get: (r) => (r.p50n ? +r.p50.toFixed(3) : null) },
      { key: 'p99', label: 'p99 ms', get: (r) => (r.p50n ? +r.p99.toFixed(3) : null) }], w, range));
  area.append(charts);
  const cols = [{ label: 'period start (UTC)', get: (r) => new Date(r.t * 1000).toISOString().replace('.000Z', 'Z') }]
    .concat(CLASSES.map(([k, l]) => ({ label: l, num: true, get: (r) => r.cls[k] })))
    .concat(OUTCOMES.map(([k, l]) => ({ label: l, num: true, get: (r) => r.out[k] })))
    .concat(PATHS.map(([k, l]) => ({ label: l, num: true, get: (r) => r.path[k] })))
    .concat([{ label: 'p50 ms', num: true, get: (r) => (r.p50n ? r.p50.toFixed(3) : '') },
      { label: 'p99 ms (max of rows)', num: true, get: (r) => (r.p50n ? r.p99.toFixed(3) : '') }]);
  // the table lists the periods in which something flowed (all of them would be mostly zeros)
  area.append(table('The figures behind the charts (periods with traffic, newest first)', cols,
    rows.filter((r) => r.total > 0).reverse(), { id: 'traffic-table' }));
}

async function downloadCsv() {
  const text = await api.getText('/stats?' + query({ format: 'csv' }));
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = h('a', { href: url, download: 'roamhub-stats.csv' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function render(root) {
  const nets = await networkChoices();
  const me = api.me();
  const controls = h('form', { class: 'controls', id: 'traffic-controls' },
    select('period', 'Period', PERIODS, state.period),
    select('forwarder', 'Forwarder', [['', 'any']].concat(nets), state.forwarder),
    select('home', 'Home network', [['', 'any']].concat(nets), state.home),
    select('protocol', 'Protocol', PROTOCOLS.map(([v, l]) => [v, l]), state.protocol),
    h('button', { type: 'button', id: 'csv', class: 'secondary' }, 'Download CSV'));
  root.append(h('h1', {}, 'Traffic'),
    h('p', { class: 'muted' }, me.operator ? 'All traffic relayed by the hub.' : 'Only traffic where your network ' + me.net_id + ' is the forwarder or the home network is counted.'),
    controls, h('div', { id: 'traffic-body' }));
  controls.addEventListener('change', (e) => {
    state[e.target.id] = e.target.value;
    draw(root).catch((err) => showError(root, err));
  });
  controls.addEventListener('submit', (e) => e.preventDefault());
  root.querySelector('#csv').addEventListener('click', () => downloadCsv().catch((err) => showError(root, err)));
  await draw(root);
  timer = setInterval(() => draw(root).catch(() => {}), 5000);
}

function showError(root, err) {
  const b = root.querySelector('#traffic-body');
  if (b) b.prepend(h('p', { class: 'error', role: 'alert' }, String(err.message || err)));
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
  for (const p of plots) p.destroy();
  plots = [];
}

// NetIDs the key may choose: its own networks and the public catalog.
export async function networkChoices() {
  const seen = new Map();
  try {
    for (const n of await api.list('networks')) seen.set(n.net_id, n.name);
  } catch (e) { /* a key without RIGHT_READ_NETWORK */ }
  try {
    const c = await api.get('/catalog');
    for (const n of c.networks || []) if (!seen.has(n.net_id)) seen.set(n.net_id, n.name);
  } catch (e) { /* ignore */ }
  return [...seen.entries()].sort().map(([id, name]) => [id, id + (name ? ' — ' + name : '')]);
}
