// Small DOM helpers: every page builds its elements with these (text is always set as
// text, never parsed as HTML, so recorded data cannot inject markup).

/**
 * h('tag.class#id', {attr: value, onclick: fn}, ...children) → Element.
 * Attributes starting with "on" become listeners; `hidden`/`disabled` booleans are honoured.
 */
export function h(spec, attrs = {}, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][A-Za-z0-9_-]+)*)$/.exec(spec);
  if (!m) throw new Error(`bad element spec ${spec}`);
  const el = document.createElement(m[1]);
  for (const part of m[2].match(/[.#][A-Za-z0-9_-]+/g) ?? []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A local, readable time of an RFC 3339 string. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** A definition list from [term, value] pairs (values may be nodes). */
export function facts(pairs) {
  return h(
    'dl.facts',
    {},
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** Page heading, focused so that keyboard and screen-reader users land on the new content. */
export function heading(text) {
  const el = h('h1', { tabindex: '-1' }, text);
  queueMicrotask(() => el.focus());
  return el;
}
