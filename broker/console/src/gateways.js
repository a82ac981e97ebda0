// gateways.js — Gateways: a map of the gateways the hub has seen in GWInfo or in Packet Broker
// Mapper updates (GET /gateways, each forwarder's visibility setting applied by the hub), on a Web Mercator projection: plain (a
// graticule) offline, or over base-map tiles when the hub's configuration gives a tile URL.
// The table below the map lists the same gateways (keyboard and screen-reader access).
import * as api from './api.js';
import { h, svg, clear, table, fmtTime } from './dom.js';

const TILE = 256;

// "online" / "offline" / "" (unknown: no Mapper update said) and the sources as words.
export function statusText(g) { return g.online === true ? 'online' : g.online === false ? 'offline' : ''; }
export function sourceText(g) {
  return (g.sources || ['gwinfo']).map((s) => (s === 'mapper' ? 'Packet Broker Mapper' : 'GWInfo')).join(' + ');
}

function mercX(lon) { return (lon + 180) / 360; }
function mercY(lat) {
  const s = Math.sin(Math.max(-85, Math.min(85, lat)) * Math.PI / 180);
  return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
}

// The view: world-fraction bounds around the points, as a zoom level and the top-left pixel.
function view(points, wpx, hpx) {
  if (!points.length) return { z: 1, x0: 0, y0: 0 };
  let minX = 1, maxX = 0, minY = 1, maxY = 0;
  for (const p of points) {
    const x = mercX(p.lon), y = mercY(p.lat);
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  const spanX = Math.max(maxX - minX, 1e-5), spanY = Math.max(maxY - minY, 1e-5);
  let z = Math.floor(Math.log2(Math.min(wpx / (spanX * TILE), hpx / (spanY * TILE)) * 0.6));
  z = Math.max(1, Math.min(15, z));
  const world = TILE * 2 ** z;
  const cx = (minX + maxX) / 2 * world, cy = (minY + maxY) / 2 * world;
  return { z, x0: cx - wpx / 2, y0: cy - hpx / 2 };
}

function drawMap(el, points, settings) {
  clear(el);
  const wpx = el.clientWidth || 900, hpx = el.clientHeight || 506;
  const v = view(points, wpx, hpx);
  const world = TILE * 2 ** v.z;
  if (settings.tile_url) {
    const n = 2 ** v.z;
    for (let ty = Math.floor(v.y0 / TILE); ty * TILE < v.y0 + hpx; ty++) {
      for (let tx = Math.floor(v.x0 / TILE); tx * TILE < v.x0 + wpx; tx++) {
        if (ty < 0 || ty >= n) continue;
        const x = ((tx % n) + n) % n;
        const src = settings.tile_url.replace('{z}', v.z).replace('{x}', x).replace('{y}', ty);
        const img = h('img', { class: 'tile', src, alt: '', width: TILE, height: TILE });
        // positions through CSSOM (allowed by the CSP, unlike style attributes)
        img.style.left = (tx * TILE - v.x0) + 'px';
        img.style.top = (ty * TILE - v.y0) + 'px';
        el.append(img);
      }
    }
    if (settings.tile_attribution) el.append(h('span', { class: 'attribution' }, settings.tile_attribution));
  }
  const s = svg('svg', { viewBox: '0 0 ' + wpx + ' ' + hpx, role: 'img', 'aria-label': points.length + ' gateways on a map; the table below lists them' });
  if (!settings.tile_url) {
    // graticule: a "nice" step giving a handful of lines across the view
    const spanLon = (wpx / world) * 360;
    const nice = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 45];
    const step = nice.find((n) => spanLon / n <= 8) || 45;
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    const lon0 = (v.x0 / world) * 360 - 180, lon1 = ((v.x0 + wpx) / world) * 360 - 180;
    for (let lon = Math.ceil(Math.max(lon0, -180) / step) * step; lon <= Math.min(lon1, 180); lon += step) {
      const x = mercX(lon) * world - v.x0;
      s.append(svg('line', { x1: x, y1: 0, x2: x, y2: hpx, stroke: '#9fb7cc', 'stroke-width': 1 }));
      s.append(svg('text', { x: x + 2, y: hpx - 4, 'font-size': 11, fill: '#234' }, lon.toFixed(digits) + '°'));
    }
    const latOf = (py) => (Math.atan(Math.sinh(Math.PI * (1 - 2 * py / world))) * 180) / Math.PI;
    const latTop = latOf(v.y0), latBottom = latOf(v.y0 + hpx);
    for (let lat = Math.ceil(Math.max(latBottom, -85) / step) * step; lat <= Math.min(latTop, 85); lat += step) {
      const y = mercY(lat) * world - v.y0;
      s.append(svg('line', { x1: 0, y1: y, x2: wpx, y2: y, stroke: '#9fb7cc', 'stroke-width': 1 }));
      s.append(svg('text', { x: 2, y: y - 2, 'font-size': 11, fill: '#234' }, lat.toFixed(digits) + '°'));
    }
  }
  for (const p of points) {
    const x = mercX(p.lon) * world - v.x0, y = mercY(p.lat) * world - v.y0;
    const st = statusText(p);
    const label = (p.id || 'gateway (approximate)') + ' — ' + p.net_id + (p.network ? ' ' + p.network : '') +
      (st ? ', ' + st : '') + ', ' + p.uplinks + ' uplinks, last seen ' + fmtTime(p.last_seen) + ' (' + sourceText(p) + ')';
    const g = svg('g', { class: 'gw' + (st ? ' ' + st : ''), 'data-net': p.net_id, 'data-id': p.id || '', 'data-online': st || 'unknown', 'data-sources': (p.sources || []).join(' ') },
      svg('title', {}, label),
      p.precision_m ? svg('circle', { cx: x, cy: y, r: Math.max(6, p.precision_m / 2 / (40075016 / world)), fill: 'rgba(192,57,43,0.15)', stroke: '#c0392b' }) : null,
      // offline: a hollow marker in the network's colour; online or unknown: filled
      svg('circle', { cx: x, cy: y, r: 6, fill: st === 'offline' ? '#fff' : (p.own ? '#0b4fa8' : '#c0392b'), stroke: st === 'offline' ? (p.own ? '#0b4fa8' : '#c0392b') : '#fff', 'stroke-width': 2 }),
      svg('text', { x: x + 9, y: y + 4, 'font-size': 12, fill: '#111' }, p.id || p.net_id));
    s.append(g);
  }
  el.append(s);
  el.dataset.zoom = String(v.z);
}

let timer = null;

export async function render(root) {
  let settings = {};
  try { settings = await api.get('/console'); } catch (e) { settings = {}; }
  root.append(h('h1', {}, 'Gateways'),
    h('p', { class: 'muted' }, 'Gateways whose location the hub has seen in the GWInfo of relayed uplinks or in Packet Broker Mapper updates. A forwarder decides whether its gateways are shown to other members and how precisely (Networks page). Blue: yours; red: other networks\'; a hollow marker: offline (as its Packet Broker Mapper updates say); a shaded circle marks an approximate location.'),
    h('div', { class: 'map', id: 'gateway-map' }), h('div', { id: 'gateway-list' }));
  const draw = async () => {
    const j = await api.get('/gateways');
    drawMap(root.querySelector('#gateway-map'), j.gateways, settings);
    const list = clear(root.querySelector('#gateway-list'));
    list.append(table(j.count + ' gateways shown' + (j.not_shown ? ', ' + j.not_shown + ' hidden by their network\'s setting' : ''), [
      { label: 'gateway ID', get: (g) => (g.id ? g.id + (g.pb_id ? ' (' + g.pb_id + ')' : '') : '(approximate)') },
      { label: 'NetID', key: 'net_id' }, { label: 'tenant', key: 'tenant_id' }, { label: 'network', key: 'network' },
      { label: 'latitude', key: 'lat', num: true }, { label: 'longitude', key: 'lon', num: true },
      { label: 'precision', get: (g) => (g.precision_m ? '±' + g.precision_m / 2 + ' m' : 'exact') },
      { label: 'status', get: (g) => statusText(g) || 'unknown' }, { label: 'source', get: sourceText },
      { label: 'uplinks', key: 'uplinks', num: true },
      { label: 'rx/h', get: (g) => (g.rx_rate === undefined ? '' : g.rx_rate), num: true },
      { label: 'last seen (UTC)', get: (g) => fmtTime(g.last_seen) }], j.gateways, { id: 'gateway-table' }));
  };
  await draw();
  timer = setInterval(() => draw().catch(() => {}), 5000);
}

export function leave() {
  if (timer) clearInterval(timer);
  timer = null;
}
