// networks.js — Networks and routing: networks (with the gateway visibility setting), tenants,
// DevAddr blocks, join routes, endpoints and each endpoint's health (GET /endpoint-health:
// circuit breaker state, recent failures and their reasons, latency).
import * as api from './api.js';
import { h, clear, table } from './dom.js';

const VIS = [
  ['GATEWAY_VISIBILITY_HIDDEN', 'hidden from other members'],
  ['GATEWAY_VISIBILITY_APPROXIMATE', 'shown, approximate location'],
  ['GATEWAY_VISIBILITY_EXACT', 'shown, exact location'],
];

async function safeList(kind) {
  try { return await api.list(kind); } catch (e) { return { error: e.message }; }
}

function section(title, id, cols, rows) {
  if (rows && rows.error) return [h('h2', {}, title), h('p', { class: 'muted', id }, 'Not available to your key: ' + rows.error)];
  return [h('h2', {}, title), table(title, cols, rows, { id })];
}

function canWriteNetwork(me, netId) {
  const r = me.rights || [];
  return (me.operator || me.net_id === netId) && (r.includes('RIGHT_ADMIN') || r.includes('RIGHT_WRITE_NETWORK'));
}

function visibilityControl(root, me, n) {
  const id = 'vis-' + n.net_id;
  const cur = n.gateway_visibility || 'GATEWAY_VISIBILITY_HIDDEN';
  if (!canWriteNetwork(me, n.net_id)) return (VIS.find(([k]) => k === cur) || [cur, cur])[1];
  const sel = h('select', { id, 'aria-label': 'Gateway visibility of ' + n.net_id }, VIS.map(([k, t]) => h('option', { value: k }, t)));
  sel.value = cur;
  const prec = h('input', { type: 'number', id: id + '-m', min: 100, max: 1000000, step: 100, value: n.gateway_precision_m || 10000, 'aria-label': 'Approximation grid in metres for ' + n.net_id, size: 8 });
  const msg = h('span', { role: 'status', class: 'muted' });
  const save = h('button', { type: 'button', class: 'secondary', id: id + '-save' }, 'Save');
  save.addEventListener('click', async () => {
    try {
      const rec = await api.get('/networks/' + n.net_id);
      rec.gateway_visibility = sel.value;
      rec.gateway_precision_m = Number(prec.value) || 0;
      await api.put('/networks/' + n.net_id, rec);
      msg.textContent = 'saved';
    } catch (e) {
      msg.textContent = e.message;
    }
  });
  return h('span', {}, sel, ' ', prec, ' m ', save, ' ', msg);
}

function circuit(e) {
  return h('span', { class: 'badge ' + e.circuit }, e.circuit.replace('_', '-'));
}

export async function render(root) {
  const me = api.me();
  root.append(h('h1', {}, 'Networks and routing'), h('div', { id: 'networks-body' }, h('p', {}, 'Loading…')));
  const [nets, tenants, blocks, routes, endpoints] = await Promise.all(
    ['networks', 'tenants', 'devaddr-blocks', 'join-routes', 'endpoints'].map(safeList));
  let health = { endpoints: [] };
  try { health = await api.get('/endpoint-health'); } catch (e) { health = { endpoints: [], error: e.message }; }
  const body = clear(root.querySelector('#networks-body'));
  body.append(...[].concat(
    section('Networks', 'networks-table', [
      { label: 'NetID', key: 'net_id' }, { label: 'name', key: 'name' },
      { label: 'listed in catalog', get: (n) => (n.listed ? 'yes' : 'no') },
      { label: 'delegated NetIDs', get: (n) => (n.delegated_net_ids || []).join(', ') },
      { label: 'gateways on the map for others', get: (n) => visibilityControl(root, me, n) }], nets),
    section('Tenants', 'tenants-table', [
      { label: 'NetID', key: 'net_id' }, { label: 'tenant', key: 'tenant_id' }, { label: 'name', key: 'name' },
      { label: 'listed', get: (t) => (t.listed ? 'yes' : 'no') }], tenants),
    section('DevAddr blocks', 'blocks-table', [
      { label: 'prefix', key: 'prefix' }, { label: 'owner NetID', key: 'net_id' }, { label: 'tenant', key: 'tenant_id' },
      { label: 'cluster', key: 'cluster_id' }], blocks),
    section('Join routes', 'routes-table', [
      { label: 'JoinEUI prefix', key: 'join_eui' }, { label: 'DevEUI prefix', key: 'dev_eui' },
      { label: 'home NetID', key: 'home_net_id' }, { label: 'home tenant', key: 'home_tenant_id' },
      { label: 'Join Server endpoint', key: 'join_server_id' }], routes),
    section('Endpoints', 'endpoints-table', [
      { label: 'ID', key: 'id' }, { label: 'NetID', key: 'net_id' }, { label: 'tenant', key: 'tenant_id' },
      { label: 'URL', key: 'url' }, { label: 'protocol', key: 'protocol_version' },
      { label: 'answers', get: (e) => (e.async_answers ? 'asynchronous' : 'synchronous') },
      { label: 'timeout ms', key: 'timeout_ms', num: true }], endpoints),
    h('h2', {}, 'Endpoint health'),
    health.error ? h('p', { class: 'muted' }, 'Not available to your key: ' + health.error)
      : table('Endpoint health (circuit breaker across ' + health.workers + ' workers; failures and latency over the last ' + ((health.endpoints[0] && health.endpoints[0].recent.minutes) || 15) + ' minutes)', [
        { label: 'endpoint', key: 'id' }, { label: 'NetID', key: 'net_id' },
        { label: 'circuit', get: circuit },
        { label: 'consecutive failures', key: 'consecutive_failures', num: true },
        { label: 'in flight', key: 'in_flight', num: true },
        { label: 'messages', get: (e) => e.recent.messages, num: true },
        { label: 'failed', get: (e) => e.recent.failed, num: true },
        { label: 'recent failure reasons', get: (e) => (e.recent.failure_reasons.length ? h('ul', {}, e.recent.failure_reasons.map((r) => h('li', {}, r.reason + ' × ' + r.count + ' (last ' + r.last_minute + ')'))) : 'none') },
        { label: 'p50 ms', get: (e) => e.recent.latency_p50_ms.toFixed(2), num: true },
        { label: 'p99 ms', get: (e) => e.recent.latency_p99_ms.toFixed(2), num: true }], health.endpoints, { id: 'health-table' })));
}

export function leave() {}
