// audit.js — Audit: who changed what, when (GET /audit; operator keys with RIGHT_ADMIN).
import * as api from './api.js';
import { h, table, fmtTime } from './dom.js';

export async function render(root) {
  root.append(h('h1', {}, 'Audit'));
  let items;
  try {
    items = (await api.get('/audit?limit=1000')).items || [];
  } catch (e) {
    root.append(h('p', { class: 'muted', id: 'audit-unavailable' }, 'The audit log is for operator keys with RIGHT_ADMIN: ' + e.message));
    return;
  }
  items.sort((a, b) => b.at - a.at);
  root.append(table('Changes, newest first (' + items.length + ')', [
    { label: 'when (UTC)', get: (a) => fmtTime(a.at) }, { label: 'who (key ID)', key: 'actor' },
    { label: 'action', key: 'action' }, { label: 'record kind', key: 'kind' }, { label: 'record', key: 'key' }], items, { id: 'audit-table' }));
}

export function leave() {}
