// dispatchd — dispatcher dashboard.
//
// One WebSocket (/ws/dispatch): a `snapshot` then `updates` holding only what changed,
// merged by id. The map redraws at most once per animation frame; the side panel is
// re-rendered at most every RENDER_MIN_MS with keyed list updates (elements are reused, so
// a click never lands on a node that was just replaced).
(function () {
  'use strict';
  const C = window.DCommon;
  const { el, api, fmtAge, fmtDist, fmtClock, fmtMoney, FINAL, reconcile } = C;

  const TOKEN_KEY = 'dispatch_token';
  const RENDER_MIN_MS = 200;
  const NEARBY_REFRESH_MS = 5000;
  const MAX_ORDERS_LISTED = 250;
  const TRACE_SHOWN = 6;
  const RIDER_COLORS = { idle: '#16a34a', offered: '#f59e0b', busy: '#2563eb', stale: '#dc2626', offline: '#9ca3af' };
  const ORDER_COLORS = { pending_payment: '#9ca3af', paid: '#6366f1', accepted: '#d97706', assigned: '#2563eb', picked_up: '#0891b2' };
  const ORDER_STATUSES = ['pending_payment', 'paid', 'accepted', 'assigned', 'picked_up'];
  const RIDER_STATUSES = ['idle', 'offered', 'busy', 'stale', 'offline'];

  const state = {
    riders: new Map(),
    orders: new Map(),
    escalations: new Map(),
    merchants: new Map(),
    derivedMerchants: new Map(), // from order pickups, when the server sends no merchants
    stats: null,
    selectedOrderId: null,
    selectedOrder: null, // last known copy (kept after the order leaves the live view)
    connection: 'idle',
    lastMessageAt: 0,
  };
  const frameStats = { frames: 0, avgFrameMs: 0, maxFrameMs: 0, lastUpdateLagMs: null };
  window.dashboardState = state;
  window.dashboardFrameStats = frameStats;

  const $ = (id) => document.getElementById(id);
  function setText(node, v) { v = v == null ? '' : String(v); if (node.textContent !== v) node.textContent = v; }

  let token = C.tokenFromUrlOrStorage(TOKEN_KEY);
  if (token && C.params.get('token')) C.storeToken(TOKEN_KEY, token);

  // ---------------------------------------------------------------- map
  let pendingUpdateSince = null;
  const map = new DMap($('map'), {
    onSelect: onMapSelect,
    onClick: (ev) => { if (!ev.hit) hideTip(); },
    onFrame: (s) => {
      frameStats.frames = s.frames;
      frameStats.avgFrameMs = s.avgFrameMs;
      frameStats.maxFrameMs = s.maxFrameMs;
      frameStats.lastFrameMs = s.lastFrameMs;
      if (pendingUpdateSince != null) {
        frameStats.lastUpdateLagMs = performance.now() - pendingUpdateSince;
        pendingUpdateSince = null;
      }
    },
  });
  function* merchantItems() {
    yield* state.merchants.values();
    for (const [id, m] of state.derivedMerchants) if (!state.merchants.has(id)) yield m;
  }
  const routes = map.setLines('routes', {
    items: () => state.orders.values(), from: (o) => o.pickup, to: (o) => o.dropoff,
    color: (o) => (o.rider_id ? 'rgba(37,99,235,0.30)' : 'rgba(217,119,6,0.40)'), width: 1, z: 1,
    id: (o) => o.order_id, get: (id) => state.orders.get(id) || state.selectedOrder || null,
    highlightColor: '#7c3aed',
  });
  map.setLayer('dropoffs', {
    items: () => state.orders.values(), pos: (o) => o.dropoff, color: (o) => ORDER_COLORS[o.status] || '#6b7280',
    radius: (scale) => Math.max(1.5, Math.min(3.5, 1.5 + scale * 4)), z: 2, selectable: true,
    id: (o) => o.order_id, get: (id) => state.orders.get(id) || null,
  });
  map.setLayer('merchants', {
    items: merchantItems, pos: (m) => m.location, color: (m) => (m.open === false ? '#c4b5fd' : '#7c3aed'),
    shape: 'square', radius: 4, z: 5, selectable: true, id: (m) => m.merchant_id, stroke: '#ffffff', strokeWidth: 1.5,
  });
  map.setLayer('riders', {
    items: () => state.riders.values(), pos: (r) => r.location, color: (r) => RIDER_COLORS[r.status] || '#6b7280',
    radius: (scale) => Math.max(1.5, Math.min(4, 1.5 + scale * 5)), z: 4, selectable: true,
    id: (r) => r.rider_id, get: (id) => state.riders.get(id) || null,
    highlightColor: '#7c3aed',
  });
  $('fit').addEventListener('click', () => map.fit());
  $('toggle-routes').addEventListener('click', (e) => {
    routes.visible = !routes.visible;
    e.currentTarget.setAttribute('aria-pressed', String(routes.visible));
    map.invalidate();
  });

  function onMapSelect(hit) {
    if (hit.layer === 'dropoffs') { hideTip(); selectOrder(hit.id, false); return; }
    if (hit.layer === 'riders') showRiderTip(hit.item);
    else if (hit.layer === 'merchants') showMerchantTip(hit.item);
  }
  function hideTip() { $('map-tip').classList.add('hidden'); }
  function showTip(...children) {
    const tip = $('map-tip');
    tip.replaceChildren(...children.filter(Boolean), el('div', { style: 'margin-top:6px' },
      el('button', { type: 'button', class: 'small', onclick: hideTip }, 'Close')));
    tip.classList.remove('hidden');
  }
  function showRiderTip(r) {
    const orders = (r.order_ids || []).map((id) => el('button', {
      type: 'button', class: 'small', style: 'margin:2px 4px 0 0', onclick: () => selectOrder(id, true),
    }, id));
    showTip(
      el('div', { class: 'detail-head' }, el('b', { class: 'mono' }, r.rider_id), el('span', { class: 'chip ' + r.status }, r.status)),
      el('div', null, r.name || ''),
      el('div', { class: 'muted' }, 'last seen ' + (r.last_seen_ms ? fmtAge((Date.now() - r.last_seen_ms) / 1000) + ' ago' : 'never')),
      orders.length ? el('div', null, 'orders: ', ...orders) : null,
      DOffers.riderLine(r),
    );
  }
  function showMerchantTip(m) {
    showTip(
      el('div', { class: 'detail-head' }, el('b', null, m.name || m.merchant_id),
        m.open === false ? el('span', { class: 'chip cancelled' }, 'closed') : el('span', { class: 'chip idle' }, 'open')),
      el('div', { class: 'mono muted' }, m.merchant_id),
      m.prep_time_s != null ? el('div', { class: 'muted' }, 'prep ' + Math.round(m.prep_time_s / 60) + ' min') : null,
    );
  }

  // ---------------------------------------------------------------- data
  function noteMerchantFromOrder(o) {
    const p = o.pickup;
    if (!p || !p.merchant_id || state.merchants.has(p.merchant_id) || state.derivedMerchants.has(p.merchant_id)) return;
    state.derivedMerchants.set(p.merchant_id, { merchant_id: p.merchant_id, name: p.name, location: { lat: p.lat, lon: p.lon } });
  }
  function putOrder(o) {
    if (!o || !o.order_id) return;
    const prev = state.orders.get(o.order_id);
    const merged = prev ? Object.assign({}, prev, o) : o;
    if (FINAL.has(merged.status)) {
      state.orders.delete(o.order_id);
    } else {
      state.orders.set(o.order_id, merged);
      noteMerchantFromOrder(merged);
    }
    if (state.selectedOrderId === o.order_id) state.selectedOrder = merged;
  }
  function putRider(r) {
    if (!r || !r.rider_id) return;
    const prev = state.riders.get(r.rider_id);
    state.riders.set(r.rider_id, prev ? Object.assign(prev, r) : r);
  }
  function putEscalation(e) {
    if (!e || !e.escalation_id) return;
    if (e.resolved_ms != null) state.escalations.delete(e.escalation_id);
    else {
      const prev = state.escalations.get(e.escalation_id);
      state.escalations.set(e.escalation_id, prev ? Object.assign({}, prev, e) : e);
    }
  }
  function putMerchant(m) {
    if (!m || !m.merchant_id) return;
    const prev = state.merchants.get(m.merchant_id);
    state.merchants.set(m.merchant_id, prev ? Object.assign({}, prev, m) : m);
  }
  function applyFrame(msg) {
    if (msg.type === 'snapshot') {
      state.riders.clear(); state.orders.clear(); state.escalations.clear();
      state.merchants.clear(); state.derivedMerchants.clear();
    } else if (msg.type !== 'updates') {
      return false;
    }
    for (const m of msg.merchants || []) putMerchant(m);
    for (const r of msg.riders || []) putRider(r);
    for (const o of msg.orders || []) putOrder(o);
    for (const e of msg.escalations || []) putEscalation(e);
    if (msg.stats) state.stats = Object.assign({}, state.stats, msg.stats);
    if (msg.type === 'snapshot' && state.selectedOrderId && !state.orders.has(state.selectedOrderId) && state.selectedOrder
        && !FINAL.has(state.selectedOrder.status)) {
      // Missed the final frame while disconnected: we no longer know what became of it.
      state.selectedOrder = Object.assign({}, state.selectedOrder, { status: 'gone' });
    }
    return true;
  }
  function onMessage(msg, recvAt) {
    if (!applyFrame(msg)) return;
    state.lastMessageAt = Date.now();
    if (pendingUpdateSince == null) pendingUpdateSince = recvAt;
    map.invalidate();
    scheduleRender();
  }

  // ---------------------------------------------------------------- connection
  let sock = null;
  let waitingUntil = 0;
  function setConn(kind, text) {
    state.connection = kind;
    const n = $('conn-state');
    n.dataset.state = kind;
    setText(n, text);
  }
  function onSockState(s, info) {
    if (s === 'open') setConn('open', 'connected');
    else if (s === 'connecting') setConn('connecting', info.attempt > 1 ? 'reconnecting…' : 'connecting…');
    else if (s === 'waiting') { waitingUntil = info.retryAt; updateWaiting(); }
    else if (s === 'stopped' && state.connection !== 'unauthorized') setConn('stopped', 'disconnected');
  }
  function updateWaiting() {
    if (state.connection === 'open' || !sock || sock.state !== 'waiting') return;
    const s = Math.max(0, Math.ceil((waitingUntil - Date.now()) / 1000));
    setConn('waiting', 'disconnected · retry in ' + s + ' s');
  }
  async function shouldReconnect(ev, opened) {
    if (opened && ev.code !== 1008 && ev.code !== 4001 && ev.code !== 4003) return true;
    // The browser hides the HTTP status of a refused upgrade: ask the REST API about the token.
    try {
      await api('GET', '/escalations?open=true', undefined, token);
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        setConn('unauthorized', e.status === 401 ? 'unauthorized' : 'forbidden');
        showLogin(e.status === 401 ? 'The server rejected this token.' : 'This token is not a dispatcher token.');
        return false;
      }
      return true;
    }
  }
  function connect() {
    if (sock) sock.stop();
    sock = new C.ReconnectingSocket({
      url: () => C.wsUrl('/ws/dispatch', token),
      onMessage, onState: onSockState, shouldReconnect,
    });
    sock.start();
  }
  function showLogin(err) {
    $('login').classList.remove('hidden');
    setText($('login-error'), err || '');
    setTimeout(() => $('login-token').focus(), 0);
  }
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('login-token').value.trim();
    if (!t) return;
    token = t;
    C.storeToken(TOKEN_KEY, token);
    $('login').classList.add('hidden');
    connect();
  });
  $('logout').addEventListener('click', () => {
    if (sock) sock.stop();
    sock = null;
    token = null;
    C.storeToken(TOKEN_KEY, null);
    state.riders.clear(); state.orders.clear(); state.escalations.clear(); state.merchants.clear(); state.derivedMerchants.clear();
    state.stats = null;
    selectOrder(null);
    map.invalidate(); scheduleRender();
    setConn('stopped', 'signed out');
    showLogin('');
  });

  // ---------------------------------------------------------------- rendering
  let renderTimer = 0;
  let lastRender = 0;
  function scheduleRender() {
    if (renderTimer) return;
    const wait = Math.max(0, RENDER_MIN_MS - (performance.now() - lastRender));
    renderTimer = setTimeout(() => { renderTimer = 0; lastRender = performance.now(); render(); }, wait);
  }
  function render() {
    renderCounters();
    renderEscalations();
    renderOrders();
    renderSelected();
  }

  function renderCounters() {
    const counts = { idle: 0, offered: 0, busy: 0, stale: 0, offline: 0 };
    let onMap = 0;
    for (const r of state.riders.values()) {
      counts[r.status] = (counts[r.status] || 0) + 1;
      if (DMap.validPos(r.location)) onMap++;
    }
    setText($('rider-count'), onMap);
    setText($('stat-online'), state.riders.size - counts.offline);
    for (const s of RIDER_STATUSES) setText($('stat-' + s), counts[s] || 0);

    const oc = {};
    for (const o of state.orders.values()) oc[o.status] = (oc[o.status] || 0) + 1;
    setText($('stat-orders-live'), state.orders.size + ' live');
    const box = $('order-status-counts');
    const chips = ORDER_STATUSES.map((s) => s + ':' + (oc[s] || 0)).join('|');
    if (box.dataset.key !== chips) {
      box.dataset.key = chips;
      box.replaceChildren(...ORDER_STATUSES.map((s) => el('span', { class: 'chip ' + s, 'data-status': s, id: 'stat-orders-' + s },
        s.replace('_', ' ') + ' ' + (oc[s] || 0))));
    }
    const st = state.stats || {};
    setText($('stat-offers-accepted'), st.offers_accepted != null ? st.offers_accepted : '—');
    setText($('stat-offers-expired'), st.offers_expired != null ? st.offers_expired : '—');
    const oc2 = DOffers.counts(state.riders);
    setText($('stat-offers-open'), oc2.open);
    setText($('stat-offers-bundles'), oc2.bundles ? oc2.bundles + ' (' + oc2.bundledOrders + ' orders)' : '0');
    setText($('stat-offers-next-job'), oc2.nextJob);
    const med = st.median_assign_s;
    setText($('stat-median-assign'), med == null || !Number.isFinite(med) ? '—' : (med < 120 ? med.toFixed(1) + ' s' : fmtAge(med)));
  }

  // escalations
  function escalationSubject(e) {
    const parts = [];
    if (e.order_id) parts.push('order ' + e.order_id);
    if (e.rider_id) parts.push('rider ' + e.rider_id);
    return parts.join(' · ') || '—';
  }
  function renderEscalations() {
    const list = Array.from(state.escalations.values()).sort((a, b) => (b.opened_ms || 0) - (a.opened_ms || 0));
    setText($('esc-count'), list.length ? String(list.length) : '');
    reconcile($('escalations'), list, (e) => e.escalation_id, (e) => {
      const li = el('li', { class: 'escalation' },
        el('div', null, el('span', { class: 'kind' }), ' ', el('span', { class: 'chip level' })),
        el('button', { type: 'button', class: 'resolve small', title: 'Mark as resolved' }, 'Resolve'),
        el('div', { class: 'meta' }, el('span', { class: 'subject' }), ' · ', el('span', { class: 'age' })),
        el('div', { class: 'msg' }),
      );
      li.querySelector('button.resolve').addEventListener('click', () => resolveEscalation(li.dataset.id, li));
      li.querySelector('.subject').addEventListener('click', () => {
        const esc = state.escalations.get(li.dataset.id);
        if (esc && esc.order_id) selectOrder(esc.order_id, true);
      });
      return li;
    }, (li, e) => {
      setText(li.querySelector('.kind'), e.kind);
      setText(li.querySelector('.chip.level'), 'L' + (e.level != null ? e.level : '?'));
      setText(li.querySelector('.subject'), escalationSubject(e));
      li.querySelector('.subject').style.cursor = e.order_id ? 'pointer' : '';
      li.dataset.opened = e.opened_ms || '';
      li.dataset.kind = e.kind || '';
      if (e.order_id) li.dataset.orderId = e.order_id;
      if (e.rider_id) li.dataset.riderId = e.rider_id;
      setText(li.querySelector('.age'), e.opened_ms ? fmtAge((Date.now() - e.opened_ms) / 1000) : '');
      if (!li.dataset.error) setText(li.querySelector('.msg'), e.message || '');
    }, 'No open escalations.');
  }
  function tickAges() {
    for (const li of $('escalations').children) {
      const t = Number(li.dataset.opened);
      if (!t) continue;
      setText(li.querySelector('.age'), fmtAge((Date.now() - t) / 1000));
    }
  }
  async function resolveEscalation(id, li) {
    const btn = li.querySelector('button.resolve');
    btn.disabled = true;
    setText(btn, 'Resolving…');
    try {
      const esc = await api('POST', '/escalations/' + encodeURIComponent(id) + '/resolve', {}, token);
      putEscalation(Object.assign({ escalation_id: id, resolved_ms: Date.now() }, esc || {}));
      if (state.escalations.has(id) && (!esc || esc.resolved_ms == null)) state.escalations.delete(id);
    } catch (e) {
      if (e.status === 404) state.escalations.delete(id);
      else {
        li.dataset.error = '1';
        setText(li.querySelector('.msg'), 'Resolve failed: ' + e.message);
        btn.disabled = false;
        setText(btn, 'Resolve');
      }
    }
    scheduleRender();
  }

  // orders
  function orderMatches(o, q, st) {
    if (st && o.status !== st) return false;
    if (!q) return true;
    const hay = [o.order_id, o.status, o.rider_id, o.merchant_id, o.customer_id, o.pickup && o.pickup.name].join(' ').toLowerCase();
    return hay.includes(q);
  }
  function renderOrders() {
    const q = $('order-filter').value.trim().toLowerCase();
    const st = $('order-status-filter').value;
    const all = [];
    for (const o of state.orders.values()) if (orderMatches(o, q, st)) all.push(o);
    all.sort((a, b) => (b.created_ms || 0) - (a.created_ms || 0) || (a.order_id < b.order_id ? 1 : -1));
    const shown = all.length > MAX_ORDERS_LISTED ? all.slice(0, MAX_ORDERS_LISTED) : all;
    setText($('orders-shown'), all.length > shown.length ? shown.length + ' of ' + all.length : String(all.length));
    reconcile($('orders'), shown, (o) => o.order_id, () => {
      const li = el('li', { class: 'order', tabindex: '0', role: 'button' },
        el('span', { class: 'chip' }),
        el('span', { class: 'ellipsis' }, el('span', { class: 'oid' }), el('span', { class: 'muted merchant', style: 'margin-left:6px;font-size:12px' })),
        el('span', { class: 'rider' }));
      li.addEventListener('click', () => selectOrder(li.dataset.id, true));
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectOrder(li.dataset.id, true); } });
      return li;
    }, (li, o) => {
      const chip = li.firstChild;
      const cls = 'chip ' + o.status;
      if (chip.className !== cls) chip.className = cls;
      setText(chip, o.status);
      li.dataset.status = o.status;
      setText(li.querySelector('.oid'), o.order_id);
      setText(li.querySelector('.merchant'), (o.pickup && o.pickup.name) || '');
      setText(li.querySelector('.rider'), o.rider_id || '—');
      li.classList.toggle('selected', o.order_id === state.selectedOrderId);
    }, state.orders.size ? 'No order matches the filter.' : 'No live orders.');
  }
  $('order-filter').addEventListener('input', scheduleRender);
  $('order-status-filter').addEventListener('change', scheduleRender);

  // selected order
  let nearbyKey = '';
  let nearbyTimer = 0;
  let traceTimer = 0;
  let traceKey = '';
  let nearbySeq = 0;
  let cancelArmed = false;
  let highlightKey = '';
  function selectOrder(id, focusMap) {
    if (id !== state.selectedOrderId) {
      setText($('assign-result'), '');
      $('assign-result').className = 'result';
      $('nearby').replaceChildren();
      nearbyKey = '';
      cancelArmed = false;
      stopTrace();
      $('trace').replaceChildren();
    }
    state.selectedOrderId = id || null;
    state.selectedOrder = id ? (state.orders.get(id) || (state.selectedOrder && state.selectedOrder.order_id === id ? state.selectedOrder : null)) : null;
    if (id && !state.selectedOrder) {
      // Not in the live view (e.g. from a rider tooltip): fetch it.
      api('GET', '/orders/' + encodeURIComponent(id), undefined, token).then((o) => {
        if (state.selectedOrderId === id && o) { state.selectedOrder = o; renderSelected(); }
      }).catch(() => {});
    }
    if (focusMap) focusOrder(state.selectedOrder);
    renderOrders();
    renderSelected();
  }
  /** Bring an order into view: fly to it when it is off-screen or too small to see. */
  function focusOrder(o) {
    if (!o || !DMap.validPos(o.pickup)) return;
    const pts = [o.pickup];
    if (DMap.validPos(o.dropoff)) pts.push(o.dropoff);
    const r = o.rider_id && state.riders.get(o.rider_id);
    if (r && DMap.validPos(r.location)) pts.push(r.location);
    const [x1, y1] = map.project(o.pickup.lat, o.pickup.lon);
    const [x2, y2] = pts[1] ? map.project(pts[1].lat, pts[1].lon) : [x1, y1];
    const allVisible = pts.every((p) => map.isVisible(p.lat, p.lon, 30));
    if (allVisible && Math.hypot(x2 - x1, y2 - y1) >= 40) return;
    const span = Math.max(3000, ...pts.map((p) => DMap.haversine(o.pickup, p) * 1.6));
    map.setView((Math.min(...pts.map((p) => p.lat)) + Math.max(...pts.map((p) => p.lat))) / 2,
      (Math.min(...pts.map((p) => p.lon)) + Math.max(...pts.map((p) => p.lon))) / 2, span);
  }
  $('sel-close').addEventListener('click', () => selectOrder(null));

  function renderSelected() {
    const card = $('selected-card');
    const id = state.selectedOrderId;
    const o = id ? (state.orders.get(id) || state.selectedOrder) : null;
    const hk = o ? o.order_id + '|' + (o.rider_id || '') : '';
    if (hk !== highlightKey) {
      highlightKey = hk;
      map.setHighlight(o ? [{ layer: 'routes', id: o.order_id }, o.rider_id ? { layer: 'riders', id: o.rider_id } : null] : []);
    }
    if (!id) { card.classList.add('hidden'); stopNearby(); stopTrace(); return; }
    if (traceKey !== id + '|' + (o ? o.version : '')) {
      traceKey = id + '|' + (o ? o.version : '');
      DOffers.loadTrace(token, id, $('trace'), TRACE_SHOWN);
    }
    if (!traceTimer) {
      traceTimer = setInterval(() => {
        if (state.selectedOrderId) DOffers.loadTrace(token, state.selectedOrderId, $('trace'), TRACE_SHOWN);
      }, NEARBY_REFRESH_MS);
    }
    card.classList.remove('hidden');
    setText($('sel-id'), id);
    const status = o ? o.status : 'loading';
    const chip = $('sel-status');
    chip.className = 'chip ' + status;
    setText(chip, status);
    card.dataset.orderId = id;
    card.dataset.status = status;
    if (!o) return;

    const rows = [
      ['Merchant', (o.pickup && o.pickup.name ? o.pickup.name + ' ' : '') + '(' + o.merchant_id + ')'],
      ['Customer', o.customer_id],
      ['Rider', o.rider_id || '—'],
      ['Offer', DOffers.orderRow(state.riders, o.order_id)],
      ['Total', fmtMoney(o.total_cents)],
      ['Created', fmtClock(o.created_ms) + (o.created_ms ? ' (' + fmtAge((Date.now() - o.created_ms) / 1000) + ' ago)' : '')],
      ['Food ready', o.ready ? 'yes' : (o.ready_at_ms ? 'at ' + fmtClock(o.ready_at_ms) : '—')],
      ['ETA', o.eta_s != null ? Math.max(1, Math.round(o.eta_s / 60)) + ' min' : '—'],
    ];
    const dl = $('sel-details');
    const key = JSON.stringify(rows);
    if (dl.dataset.key !== key) {
      dl.dataset.key = key;
      dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
    }
    const itemsKey = JSON.stringify(o.items || []);
    if ($('sel-items').dataset.key !== itemsKey) {
      $('sel-items').dataset.key = itemsKey;
      $('sel-items').replaceChildren(...(o.items || []).map((it) => el('li', null, it.qty + ' × ' + it.name + ' ', el('span', { class: 'muted' }, fmtMoney(it.price_cents)))));
    }
    $('sel-unassign').classList.toggle('hidden', o.status !== 'assigned');
    const cancellable = ['pending_payment', 'paid', 'accepted', 'assigned'].includes(o.status);
    $('sel-cancel').classList.toggle('hidden', !cancellable);
    setText($('sel-cancel'), cancelArmed ? 'Confirm cancel' : 'Cancel order');

    const canAssign = o.status === 'accepted' || o.status === 'assigned';
    $('nearby-section').classList.toggle('hidden', !canAssign);
    if (canAssign) {
      const k = o.order_id + '|' + o.status + '|' + (o.rider_id || '');
      if (k !== nearbyKey) { nearbyKey = k; loadNearby(); }
      if (!nearbyTimer) nearbyTimer = setInterval(loadNearby, NEARBY_REFRESH_MS);
    } else {
      stopNearby();
    }
  }
  function stopTrace() {
    if (traceTimer) { clearInterval(traceTimer); traceTimer = 0; }
    traceKey = '';
  }
  function stopNearby() {
    if (nearbyTimer) { clearInterval(nearbyTimer); nearbyTimer = 0; }
    nearbyKey = '';
  }
  async function loadNearby() {
    const o = state.selectedOrderId && (state.orders.get(state.selectedOrderId) || state.selectedOrder);
    if (!o || !o.pickup || !DMap.validPos(o.pickup)) return;
    const seq = ++nearbySeq;
    const q = '/riders/nearby?lat=' + o.pickup.lat + '&lon=' + o.pickup.lon + '&radius_m=20000&limit=10';
    let list;
    try {
      list = await api('GET', q, undefined, token);
    } catch (e) {
      if (seq !== nearbySeq) return;
      $('nearby').replaceChildren(el('li', { class: 'empty' }, 'Could not load riders: ' + e.message));
      return;
    }
    if (seq !== nearbySeq || state.selectedOrderId !== o.order_id) return;
    renderNearby(Array.isArray(list) ? list : []);
  }
  function renderNearby(list) {
    const o = state.selectedOrderId && (state.orders.get(state.selectedOrderId) || state.selectedOrder);
    DNearby.render($('nearby'), list, { riders: state.riders, currentRiderId: o && o.rider_id, onAssign: assignTo });
  }
  async function assignTo(riderId, li) {
    const orderId = state.selectedOrderId;
    if (!orderId) return;
    const btn = li.querySelector('button.assign');
    const out = $('assign-result');
    btn.disabled = true; btn.dataset.busy = '1';
    out.className = 'result info';
    setText(out, 'Assigning ' + orderId + ' to ' + riderId + '…');
    try {
      const o = await api('POST', '/orders/' + encodeURIComponent(orderId) + '/assign', { rider_id: riderId }, token);
      if (o && o.order_id) putOrder(o);
      out.className = 'result ok';
      out.dataset.outcome = 'ok';
      setText(out, 'Assigned ' + orderId + ' to ' + riderId + '.');
    } catch (e) {
      out.className = 'result err';
      out.dataset.outcome = 'error';
      setText(out, 'Assign failed — ' + e.code + ': ' + e.message);
    } finally {
      delete btn.dataset.busy;
      btn.disabled = false;
      nearbyKey = '';
      renderSelected();
      scheduleRender();
    }
  }
  async function orderAction(path, body, label) {
    const orderId = state.selectedOrderId;
    if (!orderId) return;
    const out = $('assign-result');
    out.className = 'result info';
    setText(out, label + '…');
    try {
      const o = await api('POST', '/orders/' + encodeURIComponent(orderId) + path, body, token);
      if (o && o.order_id) putOrder(o);
      out.className = 'result ok';
      setText(out, label + ': done (' + ((o && o.status) || 'ok') + ').');
    } catch (e) {
      out.className = 'result err';
      setText(out, label + ' failed — ' + e.code + ': ' + e.message);
    }
    renderSelected();
    scheduleRender();
  }
  $('sel-unassign').addEventListener('click', () => orderAction('/unassign', {}, 'Unassign'));
  $('sel-cancel').addEventListener('click', () => {
    if (!cancelArmed) { cancelArmed = true; renderSelected(); setTimeout(() => { cancelArmed = false; renderSelected(); }, 4000); return; }
    cancelArmed = false;
    orderAction('/cancel', { reason: 'cancelled by dispatcher' }, 'Cancel');
  });

  // For tests and the console: feed frames through the same path as the socket.
  window.dashboardApp = { map, state, selectOrder, feed: (msg) => onMessage(msg, performance.now()) };

  // ---------------------------------------------------------------- start
  setInterval(() => { tickAges(); updateWaiting(); }, 1000);
  render();
  if (token) connect();
  else { setConn('stopped', 'not signed in'); showLogin(''); }
})();
