// dispatchd — the API reference page: renders /api/v1/openapi.json and the socket frames'
// JSON Schema here, with nothing loaded from any other site.
(function () {
  'use strict';

  const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const refName = (ref) => ref.split('/').pop();
  const anchor = (name) => 'schema-' + name;

  /** Joins nodes with a separator, as one span. */
  function joined(nodes, sep) {
    const out = el('span');
    nodes.forEach((n, i) => { if (i) out.append(sep); out.append(n); });
    return out;
  }

  /** A schema as a one-line type: `OrderId`, `integer | null`, `Order[]`, `"online" | "offline"`. */
  function typeOf(s) {
    if (!s || (typeof s === 'object' && Object.keys(s).length === 0)) return el('span', {}, 'any');
    if (s.$ref) return el('a', { href: '#' + anchor(refName(s.$ref)) }, refName(s.$ref));
    if (s.oneOf || s.anyOf) return joined((s.oneOf || s.anyOf).map(typeOf), ' | ');
    if (s.allOf) return joined(s.allOf.map(typeOf), ' & ');
    if (s.enum) return el('span', {}, s.enum.map((v) => JSON.stringify(v)).join(' | '));
    const types = Array.isArray(s.type) ? s.type : [s.type || 'object'];
    return joined(types.map((t) => {
      if (t === 'array') return el('span', {}, typeOf(s.items), '[]');
      if (t === 'object' && s.properties) {
        return el('span', {}, '{', Object.keys(s.properties).join(', '), '}');
      }
      return el('span', {}, t);
    }), ' | ');
  }

  function limits(s) {
    const out = [];
    if (s.minimum !== undefined) out.push('≥ ' + s.minimum);
    if (s.maximum !== undefined) out.push('≤ ' + s.maximum);
    if (s.pattern) out.push('pattern ' + s.pattern);
    return out.join(', ');
  }

  function propsTable(s) {
    const required = new Set(s.required || []);
    const rows = Object.entries(s.properties || {}).map(([name, p]) => el('tr', {},
      el('td', {}, el('code', {}, name), required.has(name) ? el('span', { class: 'api-req' }, ' required') : null),
      el('td', { class: 'api-type' }, typeOf(p)),
      el('td', {}, [p.description, limits(p)].filter(Boolean).join(' — '))));
    if (!rows.length) return el('p', { class: 'muted' }, 'no fields');
    return el('table', { class: 'api-table' },
      el('tr', {}, el('th', {}, 'field'), el('th', {}, 'type'), el('th', {}, 'notes')), rows);
  }

  /** The `type` tag of a variant of an internally tagged union, if it has one. */
  function variantTag(v) {
    const parts = v.allOf || [v];
    for (const p of parts) {
      const t = p.properties && p.properties.type;
      if (t && t.enum && t.enum.length === 1) return t.enum[0];
    }
    return null;
  }

  /** A schema in full: its fields, or one block per variant of a union. */
  function schemaBody(s) {
    const variants = s.oneOf || s.anyOf;
    if (variants && variants.some(variantTag)) {
      return el('div', {}, variants.map((v) => {
        const tag = variantTag(v);
        const parts = v.allOf || [v];
        const body = parts.map((p) => (p.$ref
          ? el('p', {}, 'every field of ', typeOf(p), ', and:')
          : propsTable(p)));
        return el('div', { class: 'api-variant' },
          el('h3', {}, tag ? el('code', {}, 'type: "' + tag + '"') : typeOf(v)),
          v.description ? el('p', { class: 'muted' }, v.description) : null, body);
      }));
    }
    if (s.properties) return propsTable(s);
    return el('p', { class: 'api-type' }, typeOf(s), limits(s) ? ' (' + limits(s) + ')' : '');
  }

  function bodyType(content) {
    if (!content) return '';
    return joined(Object.entries(content).map(([type, media]) =>
      el('span', {}, typeOf(media.schema), el('span', { class: 'muted' }, ' (' + type + ')'))), ', ');
  }

  function operation(path, method, op) {
    const id = 'op-' + op.operationId;
    const params = (op.parameters || []).map((p) => el('tr', {},
      el('td', {}, el('code', {}, p.name), p.required ? el('span', { class: 'api-req' }, ' required') : null),
      el('td', {}, p.in), el('td', { class: 'api-type' }, typeOf(p.schema)), el('td', {}, p.description || '')));
    const responses = Object.entries(op.responses || {}).map(([status, r]) => el('tr', {},
      el('td', {}, el('code', {}, status)), el('td', {}, r.description || ''),
      el('td', { class: 'api-type' }, bodyType(r.content))));
    const auth = (op.security || []).flatMap((req) => Object.keys(req));
    const socket = op['x-socket-frames'];
    return el('section', { class: 'card api-op', id },
      el('div', { class: 'detail-head' },
        el('span', { class: 'method ' + method }, method), el('code', {}, path),
        el('span', { class: 'muted' }, op.operationId)),
      op.description || op.summary ? el('p', {}, op.description || op.summary) : null,
      el('p', { class: 'muted' }, auth.length ? 'Auth: ' + auth.join(' or ') : 'No token needed'),
      params.length ? el('table', { class: 'api-table' },
        el('tr', {}, el('th', {}, 'parameter'), el('th', {}, 'in'), el('th', {}, 'type'), el('th', {}, 'notes')), params) : null,
      op.requestBody ? el('p', {}, 'Body: ', el('span', { class: 'api-type' }, bodyType(op.requestBody.content))) : null,
      el('table', { class: 'api-table' },
        el('tr', {}, el('th', {}, 'status'), el('th', {}, 'meaning'), el('th', {}, 'body')), responses),
      socket ? el('p', {}, 'Frames: server → client ',
        el('span', { class: 'api-type' }, typeOf({ $ref: socket.server_to_client })),
        socket.client_to_server ? [', client → server ', el('span', { class: 'api-type' }, typeOf({ $ref: socket.client_to_server }))] : '',
        ' (', el('a', { href: '#sockets' }, 'below'), ')') : null);
  }

  function render(doc, frames) {
    document.getElementById('api-version').textContent = 'v' + doc.info.version + ' · OpenAPI ' + doc.openapi;
    const nav = document.getElementById('api-nav');
    const body = document.getElementById('api-body');
    body.replaceChildren(el('section', { class: 'card' },
      el('h3', {}, doc.info.title), el('p', {}, doc.info.description || '')));

    const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push({ path, method, op });
      }
    }
    for (const { tag, ops } of byTag.values()) {
      if (!ops.length) continue;
      nav.append(el('h2', {}, tag.name));
      body.append(el('h2', { id: 'tag-' + tag.name }, tag.name + (tag.description ? ' — ' + tag.description : '')));
      for (const { path, method, op } of ops) {
        nav.append(el('a', { href: '#op-' + op.operationId, 'data-path': path },
          el('span', { class: 'method ' + method }, method), el('span', { class: 'ellipsis' }, path)));
        body.append(operation(path, method, op));
      }
    }

    nav.append(el('h2', {}, el('a', { href: '#sockets' }, 'socket frames')));
    body.append(el('h2', { id: 'sockets' }, 'Socket frames (' + (frames.title || 'JSON Schema') + ')'));
    for (const [path, f] of Object.entries(frames['x-sockets'] || {})) {
      const card = el('section', { class: 'card api-schema' }, el('div', { class: 'detail-head' },
        el('span', { class: 'method get' }, 'ws'), el('code', {}, path)));
      for (const [label, ref] of [['server → client', f.server_to_client], ['client → server', f.client_to_server]]) {
        if (!ref) continue;
        const name = refName(ref);
        card.append(el('h3', {}, label + ': ', el('span', { class: 'api-type' }, typeOf({ $ref: ref }))),
          schemaBody(frames.$defs[name] || {}));
      }
      body.append(card);
    }

    nav.append(el('h2', {}, el('a', { href: '#schemas' }, 'schemas')));
    body.append(el('h2', { id: 'schemas' }, 'Schemas'));
    const schemas = (doc.components && doc.components.schemas) || {};
    for (const name of Object.keys(schemas).sort()) {
      const s = schemas[name];
      body.append(el('section', { class: 'card api-schema', id: anchor(name) },
        el('h3', {}, name), s.description ? el('p', { class: 'muted' }, s.description) : null, schemaBody(s)));
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  Promise.all(['/api/v1/openapi.json', '/api/v1/socket-frames.schema.json'].map((url) =>
    fetch(url, { headers: { Accept: 'application/json' } }).then((r) => {
      if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
      return r.json();
    })))
    .then(([doc, frames]) => render(doc, frames))
    .catch((e) => {
      document.getElementById('api-body').replaceChildren(el('p', { class: 'result err' }, String(e.message || e)));
    });
})();
