// live.js — Live traffic: the hub's capture stream (GET /capture?follow=true as Server-Sent
// Events): one row per relayed-message event (no keys, tokens or payloads), newest first, with
// filters by network, class and outcome.
import * as api from './api.js';
import { h, clear, select } from './dom.js';

const MAX_ROWS = 300;
let stop = null;
const filters = { net: '', cls: '', outcome: '' };
const CLASSES = ['join_request', 'uplink_mac', 'uplink_app', 'join_accept', 'downlink_mac', 'downlink_app', 'other'];
const OUTCOMES = ['forwarded', 'policy_denied', 'no_route', 'receiver_error', 'timeout', 'malformed', 'unauthorized', 'unreachable', 'rate_limited'];

function matches(e) {
  return (!filters.net || e.forwarder === filters.net || e.home === filters.net) &&
    (!filters.cls || e.class === filters.cls) && (!filters.outcome || e.outcome === filters.outcome);
}

export async function render(root) {
  const controls = h('form', { class: 'controls', id: 'live-controls' },
    h('label', { for: 'f-net' }, 'Network (NetID)'), h('input', { id: 'f-net', size: 8, maxlength: 6, placeholder: 'any', spellcheck: 'false' }),
    select('f-cls', 'Class', [['', 'any']].concat(CLASSES.map((c) => [c, c.replace('_', ' ')])), ''),
    select('f-outcome', 'Outcome', [['', 'any']].concat(OUTCOMES.map((o) => [o, o.replace('_', ' ')])), ''),
    h('button', { type: 'button', id: 'live-pause', class: 'secondary', 'aria-pressed': 'false' }, 'Pause'),
    h('span', { class: 'live-status', id: 'live-status', role: 'status' }, 'connecting…'));
  const tbody = h('tbody', { id: 'live-rows' });
  root.append(h('h1', {}, 'Live traffic'),
    h('p', { class: 'muted' }, 'Events appear as the hub relays messages (metadata only: no keys, tokens or payloads). Newest first; the last ' + MAX_ROWS + ' are kept.'),
    controls,
    h('table', { class: 'live', id: 'live-table', 'aria-live': 'off' },
      h('caption', {}, 'Relayed messages'),
      h('thead', {}, h('tr', {}, ['time (UTC)', 'forwarder', 'home', 'message type', 'class', 'outcome', 'ResultCode', 'latency ms', 'sender'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody));
  const f = filters;
  controls.querySelector('#f-net').value = f.net;
  controls.addEventListener('input', () => {
    f.net = controls.querySelector('#f-net').value.trim().toUpperCase();
    f.cls = controls.querySelector('#f-cls').value;
    f.outcome = controls.querySelector('#f-outcome').value;
    for (const tr of tbody.children) tr.hidden = !matches(JSON.parse(tr.dataset.event));
  });
  controls.addEventListener('submit', (e) => e.preventDefault());
  let paused = false;
  const pause = controls.querySelector('#live-pause');
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
  });
  const status = controls.querySelector('#live-status');
  let count = 0;
  stop = api.follow((e) => {
    if (paused) return;
    count++;
    const tr = h('tr', { dataset: { event: JSON.stringify({ forwarder: e.forwarder, home: e.home, class: e.class, outcome: e.outcome }), outcome: e.outcome, cls: e.class } },
      h('td', {}, e.time.replace('T', ' ')), h('td', {}, e.forwarder), h('td', {}, e.home),
      h('td', {}, e.message_type), h('td', {}, e.class), h('td', {}, e.outcome), h('td', {}, e.result_code || ''),
      h('td', { class: 'num' }, (e.latency_us / 1000).toFixed(1)), h('td', {}, e.sender));
    tr.hidden = !matches(e);
    tbody.prepend(tr);
    while (tbody.children.length > MAX_ROWS) tbody.lastChild.remove();
    status.textContent = 'live — ' + count + ' events';
  }, (s) => { status.textContent = s === 'live' ? 'live — ' + count + ' events' : s; });
  void clear;
}

export function leave() {
  if (stop) stop();
  stop = null;
}
