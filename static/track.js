// dispatchd — customer order tracking page: /track/{order_id}?token=<customer token>,
// or /s/<share token> from a share link (no account: the link is the credential).
//
// WebSocket /ws/orders/{id}/track (or /ws/share?token=… for a share link): `snapshot`
// (order), then `status` and `rider_location`. Reconnects with backoff until the order
// reaches a final state, or the share link stops working.
(function () {
  'use strict';
  const C = window.DCommon;
  const { el, api, fmtClock, fmtMoney, FINAL } = C;
  const $ = (id) => document.getElementById(id);
  function setText(node, v) { v = v == null ? '' : String(v); if (node.textContent !== v) node.textContent = v; }

  const STEPS = ['pending_payment', 'paid', 'accepted', 'assigned', 'picked_up', 'delivered'];
  const STEP_LABEL = {
    pending_payment: 'Order placed', paid: 'Payment received', accepted: 'Restaurant accepted',
    assigned: 'Rider assigned', picked_up: 'Picked up', delivered: 'Delivered',
    cancelled: 'Cancelled', failed: 'Delivery failed',
  };
  const HEADLINE = {
    pending_payment: 'Waiting for payment', paid: 'Waiting for the restaurant to confirm',
    accepted: 'The restaurant is preparing your order', assigned: 'A rider is heading to the restaurant',
    picked_up: 'Your order is on its way', delivered: 'Delivered — enjoy your meal!',
    cancelled: 'Your order was cancelled', failed: 'The delivery failed',
  };
  const RIDER_VISIBLE = new Set(['assigned', 'picked_up']);

  const sm = window.location.pathname.match(/^\/s\/([^/?#]+)/);
  const shareToken = sm ? decodeURIComponent(sm[1]) : null;
  const m = window.location.pathname.match(/\/track\/([^/?#]+)/);
  let orderId = m ? decodeURIComponent(m[1]) : C.params.get('order');
  const token = shareToken ? null : (C.tokenFromUrlOrStorage(null) || C.tokenFromUrlOrStorage('dispatch_token'));

  const st = {
    order: null,
    status: null,
    times: new Map(), // status -> latest at_ms
    rider: null, // {lat, lon, ts_ms}
    trail: [],
    eta_s: null,
    etaAt: 0,
    notAllowed: false,
  };
  window.trackState = st;

  // ------------------------------------------------------------ map
  const map = new DMap($('map'), { autoFit: false, minFitSpanM: 600, fitPadding: 60 });
  const pickupList = () => (st.order && st.order.pickup ? [st.order.pickup] : []);
  const dropoffList = () => (st.order && st.order.dropoff ? [st.order.dropoff] : []);
  const riderList = () => (st.rider ? [st.rider] : []);
  function* trailSegments() {
    for (let i = 1; i < st.trail.length; i++) yield [st.trail[i - 1], st.trail[i]];
  }
  map.setLines('route', {
    items: () => (st.order && st.order.pickup && st.order.dropoff ? [st.order] : []),
    from: (o) => o.pickup, to: (o) => o.dropoff, color: () => 'rgba(79,70,229,0.35)', width: 2, dash: [6, 6], z: 0,
  });
  map.setLines('trail', { items: trailSegments, from: (s) => s[0], to: (s) => s[1], color: () => 'rgba(37,99,235,0.6)', width: 3, z: 1 });
  map.setLayer('pickup', {
    items: pickupList, pos: (p) => p, color: () => '#7c3aed', shape: 'square', radius: 7, z: 2,
    stroke: '#fff', strokeWidth: 2, label: (p) => p.name || 'Restaurant',
  });
  map.setLayer('dropoff', {
    items: dropoffList, pos: (p) => p, color: () => '#dc2626', radius: 7, z: 3, stroke: '#fff', strokeWidth: 2,
    label: () => 'You',
  });
  map.setLayer('rider', {
    items: riderList, pos: (p) => p, color: () => '#2563eb', radius: 8, z: 4, stroke: '#fff', strokeWidth: 3,
    label: () => 'Rider',
  });
  function fitAll() {
    const pts = [...pickupList(), ...dropoffList(), ...riderList()];
    if (pts.length) map.fit(pts);
  }
  $('fit').addEventListener('click', fitAll);

  // ------------------------------------------------------------ state changes
  function setStatus(status, atMs) {
    if (!status) return;
    if (atMs != null) {
      const prev = st.times.get(status);
      if (prev == null || atMs >= prev) st.times.set(status, atMs);
    } else if (!st.times.has(status)) {
      st.times.set(status, null);
    }
    st.status = status;
    if (st.order) st.order.status = status;
    if (!RIDER_VISIBLE.has(status)) {
      st.rider = null;
      st.trail = [];
      st.eta_s = null;
    }
  }
  function applySnapshot(order) {
    const first = !st.order;
    if (shareToken && order.order_id) { orderId = order.order_id; setText($('order-id'), orderId); }
    st.order = Object.assign({}, order);
    st.times.clear();
    for (const t of order.timeline || []) {
      const prev = st.times.get(t.status);
      if (prev == null || (t.at_ms != null && t.at_ms >= prev)) st.times.set(t.status, t.at_ms);
    }
    setStatus(order.status, st.times.get(order.status) != null ? st.times.get(order.status) : order.updated_ms);
    if (order.eta_s != null && RIDER_VISIBLE.has(order.status)) { st.eta_s = order.eta_s; st.etaAt = Date.now(); }
    if (first) fitAll();
  }
  function applyRiderLocation(msg) {
    if (st.status && FINAL.has(st.status)) return; // a late fix after delivery: the rider stays hidden
    if (!Number.isFinite(msg.lat) || !Number.isFinite(msg.lon)) return;
    if (st.rider && msg.ts_ms != null && st.rider.ts_ms != null && msg.ts_ms < st.rider.ts_ms) return;
    const firstFix = !st.rider;
    st.rider = { lat: msg.lat, lon: msg.lon, ts_ms: msg.ts_ms };
    st.trail.push({ lat: msg.lat, lon: msg.lon });
    if (st.trail.length > 500) st.trail.splice(0, st.trail.length - 500);
    if (msg.eta_s != null) { st.eta_s = msg.eta_s; st.etaAt = Date.now(); }
    if (firstFix && !map.isVisible(msg.lat, msg.lon, 30)) fitAll();
  }
  function onMessage(msg) {
    if (msg.type === 'snapshot' && msg.order) applySnapshot(msg.order);
    else if (msg.type === 'status') { if (!msg.order_id || msg.order_id === orderId) setStatus(msg.status, msg.at_ms); }
    else if (msg.type === 'rider_location') applyRiderLocation(msg);
    else if (msg.type === 'order_updated' && msg.order) applySnapshot(msg.order);
    else return;
    map.invalidate();
    render();
  }

  // ------------------------------------------------------------ rendering
  function etaText() {
    if (st.eta_s == null || !RIDER_VISIBLE.has(st.status)) return '';
    const left = st.eta_s - (Date.now() - st.etaAt) / 1000;
    return Math.max(1, Math.ceil(left / 60)) + ' min';
  }
  function render() {
    const s = st.status;
    const statusEl = $('status');
    setText(statusEl, s || '');
    statusEl.className = 'chip ' + (s || '');
    statusEl.dataset.status = s || '';
    statusEl.classList.toggle('hidden', !s);
    setText($('status-label'), st.notAllowed ? 'Not allowed' : (s ? HEADLINE[s] || s : 'Loading…'));
    const eta = etaText();
    setText($('eta'), eta);
    $('eta-box').classList.toggle('hidden', !eta);
    setText($('rider-pos'), st.rider ? st.rider.lat + ',' + st.rider.lon : '');
    renderTimeline();
    renderOrder();
    document.title = (s ? (STEP_LABEL[s] || s) + ' · ' : '') + 'Track your order';
  }
  function renderTimeline() {
    const ol = $('timeline');
    const bad = st.status === 'cancelled' || st.status === 'failed';
    const steps = STEPS.slice();
    if (bad) {
      // Show the steps that happened, then the final bad one.
      const reached = STEPS.filter((x) => st.times.has(x));
      steps.length = 0;
      steps.push(...reached, st.status);
    }
    const cur = st.status ? steps.indexOf(st.status) : -1;
    const key = steps.join(',');
    if (ol.dataset.key !== key) {
      ol.dataset.key = key;
      ol.replaceChildren(...steps.map((s) => el('li', { 'data-status': s }, el('span', { class: 't' }), el('span', { class: 'l' }, STEP_LABEL[s] || s))));
    }
    for (const li of ol.children) {
      const s = li.dataset.status;
      const i = steps.indexOf(s);
      const at = st.times.get(s);
      const done = cur >= 0 && i <= cur;
      li.classList.toggle('done', done);
      li.classList.toggle('current', i === cur);
      li.classList.toggle('bad', (s === 'cancelled' || s === 'failed'));
      setText(li.querySelector('.t'), done && at != null ? fmtClock(at) : '');
      if (done && at != null) li.dataset.at = String(at); else delete li.dataset.at;
    }
  }
  function renderOrder() {
    const o = st.order;
    if (!o) return;
    setText($('merchant-name'), (o.pickup && o.pickup.name) || o.merchant_id || '');
    const key = JSON.stringify(o.items || []);
    if ($('items').dataset.key !== key) {
      $('items').dataset.key = key;
      $('items').replaceChildren(...(o.items || []).map((it) => el('li', null, it.qty + ' × ' + it.name)));
    }
    setText($('total'), fmtMoney(o.total_cents));
  }

  // ------------------------------------------------------------ connection
  function setConn(kind, text) {
    const n = $('conn-state');
    n.dataset.state = kind;
    setText(n, text);
  }
  function notAllowed(why) {
    st.notAllowed = true;
    const box = $('error');
    setText(box, (shareToken ? 'This link does not work' : 'Not allowed') + (why ? ' — ' + why : ''));
    box.classList.remove('hidden');
    for (const card of document.querySelectorAll('.side .card')) card.classList.add('hidden');
    setConn('unauthorized', 'not allowed');
    render();
  }
  let sock = null;
  let waitingUntil = 0;
  // A share link: ask GET /shared why the socket closed (410 expired / revoked / order
  // finished, 404 unknown); a final order is shown as it ended.
  async function shareStillWorks(ev, opened) {
    if (opened && ev.code !== 1008) return !(st.status && FINAL.has(st.status));
    try {
      const r = await api('GET', '/shared?token=' + encodeURIComponent(shareToken));
      if (r && r.order) { applySnapshot(r.order); map.invalidate(); render(); }
      return true;
    } catch (e) {
      if (e.status === 404 || e.status === 410) { notAllowed(e.message); return false; }
      return true;
    }
  }
  async function shouldReconnect(ev, opened) {
    if (shareToken) return shareStillWorks(ev, opened);
    if (st.status && FINAL.has(st.status)) return false;
    if (opened && ev.code !== 1008 && ev.code !== 4001 && ev.code !== 4003) return true;
    // A refused upgrade (401/403) is invisible to the browser: ask the REST API.
    try {
      const o = await api('GET', '/orders/' + encodeURIComponent(orderId), undefined, token);
      if (o && o.status && FINAL.has(o.status)) { applySnapshot(o); map.invalidate(); render(); return false; }
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403 || e.status === 404) {
        notAllowed(e.status === 404 ? 'no such order for this account' : 'this link is not valid for this order');
        return false;
      }
      return true;
    }
  }
  function start() {
    if (!shareToken) {
      if (!orderId) { notAllowed('no order id in the address'); return; }
      setText($('order-id'), orderId);
      if (!token) { notAllowed('missing token'); return; }
    }
    const url = shareToken
      ? () => C.wsUrl('/ws/share', shareToken)
      : () => C.wsUrl('/ws/orders/' + encodeURIComponent(orderId) + '/track', token);
    sock = new C.ReconnectingSocket({
      url,
      onMessage,
      shouldReconnect,
      onState: (s, info) => {
        if (st.notAllowed) return;
        if (s === 'open') setConn('open', 'live');
        else if (s === 'connecting') setConn('connecting', 'connecting…');
        else if (s === 'waiting') { waitingUntil = info.retryAt; tick(); }
        else if (s === 'stopped') setConn('stopped', st.status && FINAL.has(st.status) ? 'finished' : 'disconnected');
      },
    });
    sock.start();
  }
  function tick() {
    if (sock && sock.state === 'waiting' && !st.notAllowed) {
      setConn('waiting', 'reconnecting in ' + Math.max(0, Math.ceil((waitingUntil - Date.now()) / 1000)) + ' s');
    }
    setText($('eta'), etaText());
    $('eta-box').classList.toggle('hidden', !etaText());
  }
  setInterval(tick, 1000);
  render();
  start();
})();
