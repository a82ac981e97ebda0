// dom.js — building the page without ever parsing strings as HTML: every text from the hub
// (names, descriptions, IDs) becomes a Text node, so nothing it contains can become markup or
// script. Attributes are set one by one; "on*" attributes and inline styles are refused (the
// Content-Security-Policy forbids inline code anyway).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (/^on/i.test(k) || k === 'style') throw new Error('h: attribute ' + k + ' not allowed');
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (/^on/i.test(k) || k === 'style') throw new Error('svg: attribute ' + k + ' not allowed');
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A table: columns [{label, key | get(row), num}], rows; caption for screen readers.
export function table(caption, columns, rows, attrs) {
  return h('table', attrs || {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, columns.map((c) => {
      const v = c.get ? c.get(r) : r[c.key];
      return h('td', c.num ? { class: 'num' } : {}, v instanceof Node ? v : (v === undefined || v === null ? '' : String(v)));
    }))) : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'nothing to show'))));
}

export function select(id, label, options, value) {
  const s = h('select', { id }, options.map(([v, text]) => h('option', { value: v }, text)));
  s.value = value;
  return [h('label', { for: id }, label), s];
}

export function fmtTime(v) {
  const d = typeof v === 'number' ? new Date(v) : new Date(String(v));
  return isNaN(d) ? String(v) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
