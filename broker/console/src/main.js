// main.js — the console's shell: sign-in, navigation (hash routes), one page at a time.
import * as api from './api.js';
import { h, clear } from './dom.js';
import * as traffic from './traffic.js';
import * as peering from './peering.js';
import * as networks from './networks.js';
import * as live from './live.js';
import * as gateways from './gateways.js';
import * as audit from './audit.js';
import './app.css';

const PAGES = { traffic, peering, networks, live, gateways, audit };
let current = null;

const $ = (id) => document.getElementById(id);

function showSignIn(reason) {
  if (current) current.leave();
  current = null;
  $('page').hidden = true;
  clear($('page'));
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('signin').hidden = false;
  $('signin-error').textContent = reason || '';
  $('apikey').focus();
}

async function route() {
  if (location.hash && !location.hash.startsWith('#/')) return; // in-page anchors (skip link)
  if (!api.signedIn()) { showSignIn(); return; }
  const name = (location.hash.replace(/^#\//, '') || 'traffic').split('?')[0];
  const page = PAGES[name] || traffic;
  if (current) current.leave();
  current = page;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const root = clear($('page'));
  root.hidden = false;
  $('signin').hidden = true;
  try {
    await page.render(root);
  } catch (e) {
    if (e.status !== 401) root.append(h('p', { class: 'error', role: 'alert' }, 'Could not load this page: ' + e.message));
  }
  root.dataset.ready = name;
  const h1 = root.querySelector('h1');
  if (h1) { h1.tabIndex = -1; h1.focus(); }
}

function start() {
  api.setSignedOutHandler((reason) => showSignIn(reason));
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    $('signin-error').textContent = '';
    try {
      const me = await api.signIn($('apikey').value);
      $('apikey').value = '';
      $('who').textContent = me.operator ? 'operator (' + me.key_id + ')' : 'network ' + me.net_id + (me.tenant_id ? '/' + me.tenant_id : '') + ' (' + me.key_id + ')';
      $('nav').hidden = false;
      $('signout').hidden = false;
      await route();
    } catch (err) {
      $('signin-error').textContent = 'Sign-in failed: ' + err.message;
    }
  });
  $('signout').addEventListener('click', () => api.signOut(''));
  window.addEventListener('hashchange', route);
  showSignIn();
}

start();
