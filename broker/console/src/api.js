// api.js — the console's only way to the hub: /api/v1/ with a Bearer token held in this module's
// memory (never in a cookie, localStorage or sessionStorage; a reload signs out).

let token = null;
let whoami = null;
let onSignedOut = () => {};

export function setSignedOutHandler(fn) { onSignedOut = fn; }
export function me() { return whoami; }
export function signedIn() { return token !== null; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function signIn(apiKey) {
  const k = apiKey.trim();
  const colon = k.indexOf(':');
  if (colon <= 0) throw new ApiError(400, 'expected the key as id:secret');
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: k.slice(0, colon), client_secret: k.slice(colon + 1) });
  const r = await fetch('/api/v1/oauth/token', { method: 'POST', body, credentials: 'omit', cache: 'no-store' });
  const j = await r.json().catch(() => ({}));
  // the token endpoint answers RFC 6749 §5.2 errors: {error: code, error_description: text}
  if (!r.ok) throw new ApiError(r.status, j.error_description || (j.error && j.error.message) || ('HTTP ' + r.status));
  token = j.access_token;
  try {
    whoami = await get('/whoami');
  } catch (e) {
    token = null;
    throw e;
  }
  return whoami;
}

export function signOut(reason) {
  token = null;
  whoami = null;
  onSignedOut(reason || '');
}

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + token }, extra || {});
}

async function call(method, path, body, accept) {
  if (!token) throw new ApiError(401, 'not signed in');
  const init = { method, headers: headers(accept ? { Accept: accept } : {}), credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const r = await fetch('/api/v1' + path, init);
  if (r.status === 401) {
    signOut('Your session ended (token expired or key revoked): sign in again.');
    throw new ApiError(401, 'signed out');
  }
  if (r.status === 204) return null;
  if (accept === 'text/csv') {
    const t = await r.text();
    if (!r.ok) throw new ApiError(r.status, t);
    return t;
  }
  const j = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, (j && j.error && j.error.message) || ('HTTP ' + r.status));
  return j;
}

export const get = (p) => call('GET', p);
export const put = (p, b) => call('PUT', p, b);
export const getText = (p) => call('GET', p, undefined, 'text/csv');

// Lists every page of a record listing.
export async function list(kind, query) {
  const out = [];
  let tokenParam = '';
  for (let i = 0; i < 100; i++) {
    const q = new URLSearchParams(Object.assign({ page_size: '1000' }, query || {}));
    if (tokenParam) q.set('page_token', tokenParam);
    const j = await get('/' + kind + '?' + q);
    out.push(...(j.items || []));
    tokenParam = j.next_page_token || '';
    if (!tokenParam) break;
  }
  return out;
}

// The live capture stream: calls onEvent(obj) per event, onState(text) on changes. Returns
// a function that stops it. fetch() with a streamed body (EventSource cannot send the
// Authorization header, and the token must not go into a URL).
export function follow(onEvent, onState) {
  const ctl = new AbortController();
  (async () => {
    try {
      const r = await fetch('/api/v1/capture?follow=true', { headers: headers({ Accept: 'text/event-stream' }), signal: ctl.signal, credentials: 'omit', cache: 'no-store' });
      if (r.status === 401) { signOut('Your session ended: sign in again.'); return; }
      if (!r.ok) {
        const j = await r.json().catch(() => null);
        onState('error: ' + ((j && j.error && j.error.message) || r.status));
        return;
      }
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let event = 'message';
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (data.length) {
              let obj = null;
              try { obj = JSON.parse(data.join('\n')); } catch (e) { obj = null; }
              if (event === 'start') onState('live');
              else if (event === 'end') onState('ended: ' + ((obj && obj.summary && obj.summary.reason) || ''));
              else if (obj) onEvent(obj);
            }
            event = 'message';
            data = [];
          } else if (line.startsWith('data:')) {
            data.push(line.slice(5).replace(/^ /, ''));
          } else if (line.startsWith('event:')) {
            event = line.slice(6).trim();
          }
        }
      }
      onState('ended');
    } catch (e) {
      if (e.name !== 'AbortError') onState('error: ' + e.message);
    }
  })();
  return () => ctl.abort();
}
