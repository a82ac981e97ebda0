// peering.js — Peering page: the routing-policy matrix, forwarders (rows) x home networks
// (columns) plus each forwarder's default; each cell shows the effective uplink and downlink
// flags and where they come from (own record, the forwarder's default, a tenant record);
// editing a cell writes the policy through PUT /policies/{forwarder}/{home}. A tenant key sees
// its tenant's effective policies (its row as forwarder tenant, its column as home tenant) and
// edits its tenant's records, as the API lets it.
import * as api from './api.js';
import { h, clear, table } from './dom.js';
import { networkChoices } from './traffic.js';

const UP = [['join_request', 'J', 'join-request'], ['mac_data', 'M', 'MAC data'], ['application_data', 'A', 'application data']];
const UP_EXTRA = [['signal_quality', 'signal quality (RSSI/SNR)'], ['localization', 'localization (gateway location)']];
const DOWN = [['join_accept', 'J', 'join-accept'], ['mac_data', 'M', 'MAC data'], ['application_data', 'A', 'application data']];
const SOURCES = {
  'netid->home_netid': 'own record',
  'netid->default': 'inherits the forwarder default',
  'netid->home_tenant': 'record for a home tenant',
  'tenant->home_tenant': 'tenant record',
  'tenant->home_netid': 'tenant record',
  'tenant->default': 'tenant default',
};

function flags(dir, defs, f) {
  return h('span', { class: 'flags' }, dir + ': ', defs.map(([k, letter, name]) => h('span', {
    class: f && f[k] ? 'flag-on' : 'flag-off', title: name + (f && f[k] ? ' allowed' : ' not allowed'),
  }, f && f[k] ? letter : letter.toLowerCase(), ' ')));
}

function describe(p) {
  if (!p) return 'no policy: nothing flows';
  const up = UP.filter(([k]) => p.uplink && p.uplink[k]).map(([, , n]) => n).join(', ') || 'none';
  const dn = DOWN.filter(([k]) => p.downlink && p.downlink[k]).map(([, , n]) => n).join(', ') || 'none';
  return 'uplink: ' + up + '; downlink: ' + dn + '; ' + (SOURCES[p.source] || p.source || 'explicit record');
}

// The tenant parameters of a pair for the signed-in key: a tenant key is the forwarder tenant of
// its own NetID's row and the home tenant of its own NetID's column.
function tenantParams(me, fwd, home) {
  const q = new URLSearchParams();
  if (me.tenant_id && fwd === me.net_id) q.set('forwarder_tenant_id', me.tenant_id);
  if (me.tenant_id && home === me.net_id) q.set('home_tenant_id', me.tenant_id);
  return q;
}

async function effective(me, fwd, home) {
  const q = tenantParams(me, fwd, home);
  q.set('forwarder_net_id', fwd);
  q.set('home_net_id', home);
  try {
    return await api.get('/policies/effective?' + q);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

async function defaultOf(me, fwd) {
  const q = tenantParams(me, fwd, '').toString();
  try {
    return await api.get('/policies/' + fwd + '/default' + (q ? '?' + q : ''));
  } catch (e) {
    if (e.status === 404 || e.status === 403) return null;
    throw e;
  }
}

function mayWrite(me, fwd) {
  const rights = me.rights || [];
  const ok = rights.includes('RIGHT_ADMIN') || rights.includes('RIGHT_WRITE_ROUTING_POLICY');
  return ok && (me.operator || me.net_id === fwd);
}

function editor(root, me, fwd, home, current, onSaved) {
  const dlg = h('dialog', { 'aria-labelledby': 'edit-title', id: 'policy-editor' });
  const box = (id, label, checked) => h('div', {}, h('input', { type: 'checkbox', id, checked: !!checked }), h('label', { for: id }, label));
  const up = (current && current.uplink) || {};
  const dn = (current && current.downlink) || {};
  const form = h('form', { method: 'dialog' },
    h('h2', { id: 'edit-title' }, 'Policy ' + fwd + (me.tenant_id && fwd === me.net_id ? '/' + me.tenant_id : '') + ' → ' + (home === 'default' ? 'default (every home network)' : home)),
    h('p', { class: 'muted' }, current ? 'Now: ' + describe(current) : 'No policy yet.'),
    h('fieldset', {}, h('legend', {}, 'Uplink (forwarder → home)'),
      UP.map(([k, , n]) => box('up-' + k, n, up[k])), UP_EXTRA.map(([k, n]) => box('up-' + k, n, up[k]))),
    h('fieldset', {}, h('legend', {}, 'Downlink (home → forwarder)'), DOWN.map(([k, , n]) => box('down-' + k, n, dn[k]))),
    h('p', { class: 'error', role: 'alert', id: 'edit-error' }),
    h('div', { class: 'controls' },
      h('button', { type: 'submit', id: 'edit-save', value: 'save' }, 'Save policy'),
      h('button', { type: 'button', id: 'edit-cancel', class: 'secondary' }, 'Cancel')));
  dlg.append(form);
  root.append(dlg);
  form.querySelector('#edit-cancel').addEventListener('click', () => { dlg.close(); dlg.remove(); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { uplink: {}, downlink: {} };
    for (const [k] of UP.concat(UP_EXTRA)) body.uplink[k] = form.querySelector('#up-' + k).checked;
    for (const [k] of DOWN) body.downlink[k] = form.querySelector('#down-' + k).checked;
    try {
      // a tenant key writes its tenant's record (only the forwarder tenant: its own row)
      const q = me.tenant_id ? '?forwarder_tenant_id=' + encodeURIComponent(me.tenant_id) : '';
      await api.put('/policies/' + fwd + '/' + home + q, body);
      dlg.close();
      dlg.remove();
      onSaved();
    } catch (err) {
      form.querySelector('#edit-error').textContent = err.message;
    }
  });
  dlg.showModal();
  form.querySelector('input').focus();
}

async function draw(root) {
  const me = api.me();
  const nets = await networkChoices();
  const ids = nets.map(([id]) => id);
  const names = new Map(nets.map(([id, label]) => [id, (label.startsWith(id + ' — ') ? label.slice(id.length + 3) : '')])); // the name only
  const fwds = me.operator ? ids : ids.filter((x) => x === me.net_id).concat(ids.filter((x) => x !== me.net_id));
  const body = clear(root.querySelector('#peering-body'));
  const rows = [];
  for (const f of fwds) {
    const cells = [];
    for (const hm of ids) {
      if (hm === f) { cells.push(h('td', { class: 'muted' }, '—')); continue; }
      const visible = me.operator || f === me.net_id || hm === me.net_id;
      if (!visible) { cells.push(h('td', { class: 'muted', title: 'not visible to your key' }, '·')); continue; }
      const p = await effective(me, f, hm);
      const label = describe(p);
      const btn = h('button', {
        type: 'button', class: 'cell', 'aria-label': f + ' to ' + hm + ': ' + label,
        dataset: { fwd: f, home: hm, up: UP.filter(([k]) => p && p.uplink[k]).map(([k]) => k).join(','), source: (p && p.source) || 'none' },
        disabled: !mayWrite(me, f),
      }, flags('up', UP, p && p.uplink), h('br'), flags('down', DOWN, p && p.downlink),
      h('span', { class: 'src' }, p ? (SOURCES[p.source] || p.source) : 'no policy'));
      btn.addEventListener('click', () => editor(root, me, f, hm, p, () => draw(root)));
      cells.push(h('td', {}, btn));
    }
    const visibleDefault = me.operator || f === me.net_id;
    let dcell = h('td', { class: 'muted' }, '·');
    if (visibleDefault) {
      const d = await defaultOf(me, f);
      const btn = h('button', {
        type: 'button', class: 'cell', 'aria-label': f + ' default: ' + describe(d && Object.assign({ source: 'netid->default' }, d)),
        dataset: { fwd: f, home: 'default' }, disabled: !mayWrite(me, f),
      }, flags('up', UP, d && d.uplink), h('br'), flags('down', DOWN, d && d.downlink), h('span', { class: 'src' }, d ? 'default record' : 'no default'));
      btn.addEventListener('click', () => editor(root, me, f, 'default', d, () => draw(root)));
      dcell = h('td', {}, btn);
    }
    const rowName = f + (me.tenant_id && f === me.net_id ? '/' + me.tenant_id : '');
    rows.push(h('tr', {}, h('th', { scope: 'row' }, rowName, h('br'), h('span', { class: 'src' }, names.get(f) || '')), cells, dcell));
  }
  body.append(h('table', { class: 'matrix', id: 'policy-matrix' },
    h('caption', {}, 'Effective routing policy: rows are forwarders, columns home networks. Capital letter = allowed (J join-request/join-accept, M MAC data, A application data), small letter = not allowed.'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'forwarder \\ home'), ids.map((x) => h('th', { scope: 'col' }, x, h('br'), h('span', { class: 'src' }, names.get(x) || ''))), h('th', { scope: 'col' }, 'default'))),
    h('tbody', {}, rows)));
  // tenant-level records: inheritance is visible in the effective cells above; the records here
  let records = [];
  try { records = await api.list('policies'); } catch (e) { /* no right */ }
  const tenantRecs = records.filter((p) => p.forwarder_tenant_id || p.home_tenant_id);
  body.append(h('h2', {}, 'Tenant policy records'),
    h('p', { class: 'muted' }, 'A tenant record takes precedence over its NetID\'s record, a per-home record over the default; a record with every flag off means "route nothing".'),
    table('Tenant policy records', [
      { label: 'forwarder', get: (p) => p.forwarder_net_id + (p.forwarder_tenant_id ? '/' + p.forwarder_tenant_id : '') },
      { label: 'home', get: (p) => (p.home_net_id || 'default') + (p.home_tenant_id ? '/' + p.home_tenant_id : '') },
      { label: 'uplink', get: (p) => flags('up', UP, p.uplink) },
      { label: 'downlink', get: (p) => flags('down', DOWN, p.downlink) }], tenantRecs, { id: 'tenant-policies' }));
}

export async function render(root) {
  root.append(h('h1', {}, 'Peering'),
    h('p', { class: 'muted' }, 'Select a cell to change the policy (with the right to write it). Changes apply to the next message.'),
    h('div', { id: 'peering-body' }));
  await draw(root);
}

export function leave() {}
