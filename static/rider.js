// dispatchd — rider simulator: /rider?token=<rider token>
//
// Speaks the rider protocol over /ws/rider: goes online/offline, sends GPS fixes (map click,
// keep-alive every location_interval_s, or a simulated straight-line route), answers offers
// and walks orders through picked_up / delivered / release.
(function () {
  'use strict';
  const C = window.DCommon;
  const { el, api, fmtClock, fmtDist, FINAL } = C;
  const $ = (id) => document.getElementById(id);
  function setText(node, v) { v = v == null ? '' : String(v); if (node.textContent !== v) node.textContent = v; }

  const TOKEN_KEY = 'rider_token';
  const SIM_STEP_MS = 2000;
  const DEFAULT_KEEPALIVE_S = 10;
  const LOG_MAX = 300;

  let token = C.tokenFromUrlOrStorage(TOKEN_KEY);

  const st = {
    riderId: null,
    online: false,
    serverStatus: null, // last status the server told us (welcome or a `status` frame)
    pos: null, // {lat, lon}
    lastFixAt: 0,
    lastTs: 0,
    fixesSent: 0,
    keepAliveS: DEFAULT_KEEPALIVE_S,
    offer: null,
    offerReceivedAt: 0,
    offerPending: false,
    orders: new Map(),
    pendingActions: new Map(), // order_id -> action sent, awaiting an answer
    simulate: false,
  };
  window.riderApp = { state: st };

  // ------------------------------------------------------------ map
  const startLat = parseFloat(C.params.get('lat'));
  const startLon = parseFloat(C.params.get('lon'));
  const map = new DMap($('map'), {
    autoFit: false, minFitSpanM: 800, fitPadding: 60,
    lat: Number.isFinite(startLat) ? startLat : undefined,
    lon: Number.isFinite(startLon) ? startLon : undefined,
    onClick: (ev) => setPosition(ev.lat, ev.lon, 'map'),
  });
  map.setView(map.lat0, map.lon0, 4000);
  map.fitted = false;
  function* orderPickups() { for (const o of st.orders.values()) if (o.pickup) yield o.pickup; }
  function* orderDropoffs() { for (const o of st.orders.values()) if (o.dropoff) yield o.dropoff; }
  map.setLines('offer-route', {
    items: () => (st.offer && st.offer.pickup && st.offer.dropoff ? [st.offer] : []),
    from: (o) => o.pickup, to: (o) => o.dropoff, color: () => 'rgba(245,158,11,0.8)', width: 2, dash: [5, 5], z: 0,
  });
  map.setLines('order-routes', {
    items: () => st.orders.values(), from: (o) => o.pickup, to: (o) => o.dropoff,
    color: () => 'rgba(79,70,229,0.45)', width: 2, dash: [6, 6], z: 0,
  });
  map.setLines('to-target', {
    items: () => { const t = currentTarget(); return t && st.pos ? [{ a: st.pos, b: t.pos }] : []; },
    from: (s) => s.a, to: (s) => s.b, color: () => 'rgba(37,99,235,0.8)', width: 2, z: 1,
  });
  map.setLayer('offer-points', {
    items: () => (st.offer ? [st.offer.pickup, st.offer.dropoff].filter(Boolean) : []),
    pos: (p) => p, color: () => '#f59e0b', radius: 6, z: 2, stroke: '#fff', strokeWidth: 2,
    label: (p) => (p.name ? 'offer: ' + p.name : 'offer drop-off'),
  });
  map.setLayer('pickups', {
    items: orderPickups, pos: (p) => p, color: () => '#7c3aed', shape: 'square', radius: 6, z: 3, stroke: '#fff',
    strokeWidth: 2, label: (p) => p.name || 'pickup',
  });
  map.setLayer('dropoffs', {
    items: orderDropoffs, pos: (p) => p, color: () => '#dc2626', radius: 6, z: 3, stroke: '#fff', strokeWidth: 2,
    label: () => 'drop-off',
  });
  map.setLayer('me', {
    items: () => (st.pos ? [st.pos] : []), pos: (p) => p, color: () => '#2563eb', radius: 8, z: 5, stroke: '#fff',
    strokeWidth: 3, label: () => 'you',
  });
  function fitAll() {
    const pts = [];
    if (st.pos) pts.push(st.pos);
    for (const p of orderPickups()) pts.push(p);
    for (const p of orderDropoffs()) pts.push(p);
    if (st.offer) { if (st.offer.pickup) pts.push(st.offer.pickup); if (st.offer.dropoff) pts.push(st.offer.dropoff); }
    if (pts.length) map.fit(pts);
    return pts.length > 0;
  }
  $('fit').addEventListener('click', fitAll);

  // ------------------------------------------------------------ log
  function log(kind, text) {
    const ul = $('log');
    const atBottom = ul.scrollTop + ul.clientHeight >= ul.scrollHeight - 4;
    ul.append(el('li', { class: kind }, el('span', { class: 't' }, fmtClock(Date.now())), text));
    while (ul.children.length > LOG_MAX) ul.firstChild.remove();
    if (atBottom) ul.scrollTop = ul.scrollHeight;
  }
  $('log-clear').addEventListener('click', () => $('log').replaceChildren());

  // ------------------------------------------------------------ sending
  let sock = null;
  function send(obj, quiet) {
    if (!sock || !sock.send(obj)) {
      log('error', 'not connected — could not send ' + obj.type);
      return false;
    }
    if (!quiet) log('out', '→ ' + JSON.stringify(obj));
    return true;
  }
  function sendFix(reason) {
    if (!st.pos) return false;
    let ts = Date.now();
    if (ts <= st.lastTs) ts = st.lastTs + 1;
    const msg = { type: 'location', lat: round6(st.pos.lat), lon: round6(st.pos.lon), ts_ms: ts };
    const speed = Number($('speed').value);
    if (reason === 'route' && Number.isFinite(speed)) msg.speed_mps = speed;
    if (!send(msg, reason === 'keepalive' || reason === 'route')) return false;
    if (reason === 'keepalive' || reason === 'route') log('out', '→ location ' + msg.lat + ',' + msg.lon + ' (' + reason + ')');
    st.lastTs = ts;
    st.lastFixAt = Date.now();
    st.fixesSent++;
    if (st.serverStatus === 'stale') st.serverStatus = null;
    renderStatus();
    return true;
  }
  function round6(x) { return Math.round(x * 1e6) / 1e6; }
  function setPosition(lat, lon, why) {
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return false;
    st.pos = { lat, lon };
    try { if (st.riderId) localStorage.setItem('rider_pos_' + st.riderId, JSON.stringify(st.pos)); } catch (_) { /* ignore */ }
    if (!map.isVisible(lat, lon, 20)) map.centerOn(lat, lon);
    map.invalidate();
    renderStatus();
    return sendFix(why || 'manual');
  }
  function goOnline() { if (send({ type: 'status', status: 'online' })) { st.online = true; st.serverStatus = null; if (st.pos) sendFix('keepalive'); renderStatus(); } }
  function goOffline() { if (send({ type: 'status', status: 'offline' })) { st.online = false; st.serverStatus = null; setSimulate(false); renderStatus(); } }
  $('go-online').addEventListener('click', goOnline);
  $('go-offline').addEventListener('click', goOffline);
  $('pos-set').addEventListener('click', () => {
    const m = $('pos-input').value.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (m.length !== 2 || !m.every(Number.isFinite)) { log('error', 'position must be "lat,lon"'); return; }
    setPosition(m[0], m[1], 'manual');
  });
  $('pos-input').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('pos-set').click(); });

  // ------------------------------------------------------------ route simulation
  function currentTarget() {
    for (const o of st.orders.values()) {
      if (o.status === 'assigned' && o.pickup) return { pos: o.pickup, what: 'pickup ' + (o.pickup.name || ''), order: o };
      if (o.status === 'picked_up' && o.dropoff) return { pos: o.dropoff, what: 'drop-off of ' + o.order_id, order: o };
    }
    return null;
  }
  let simTimer = 0;
  let simLast = 0;
  function setSimulate(on) {
    st.simulate = !!on;
    $('simulate').setAttribute('aria-pressed', String(st.simulate));
    clearInterval(simTimer);
    simTimer = 0;
    if (st.simulate) {
      simLast = Date.now();
      simTimer = setInterval(simStep, SIM_STEP_MS);
      log('info', 'route simulation on');
    }
  }
  $('simulate').addEventListener('click', () => setSimulate(!st.simulate));
  function simStep() {
    const now = Date.now();
    const dt = Math.min(10, (now - simLast) / 1000);
    simLast = now;
    const t = currentTarget();
    if (!t || !st.pos) return;
    const speed = Math.max(0.5, Math.min(60, Number($('speed').value) || 8));
    const d = DMap.haversine(st.pos, t.pos);
    const step = speed * dt;
    if (d <= step || d < 1) {
      st.pos = { lat: t.pos.lat, lon: t.pos.lon };
    } else {
      const f = step / d;
      st.pos = { lat: st.pos.lat + (t.pos.lat - st.pos.lat) * f, lon: st.pos.lon + (t.pos.lon - st.pos.lon) * f };
    }
    map.invalidate();
    sendFix('route');
  }

  // keep-alive: a fix every location_interval_s (≤ 10 s) while online
  setInterval(() => {
    if (st.online && st.pos && sock && sock.isOpen && Date.now() - st.lastFixAt >= st.keepAliveS * 1000) sendFix('keepalive');
    renderOfferCountdown();
  }, 250);

  // ------------------------------------------------------------ receiving
  function putOrder(o) {
    if (!o || !o.order_id) return;
    st.pendingActions.delete(o.order_id);
    if (FINAL.has(o.status)) {
      if (st.orders.delete(o.order_id)) log('info', 'order ' + o.order_id + ' ' + o.status);
    } else {
      st.orders.set(o.order_id, Object.assign({}, st.orders.get(o.order_id), o));
    }
  }
  function dropOrder(id, why) {
    st.pendingActions.delete(id);
    if (st.orders.delete(id)) log('info', 'order ' + id + ' removed (' + why + ')');
  }
  function onMessage(msg) {
    if (msg.type !== 'error') log('in', '← ' + summarise(msg));
    switch (msg.type) {
      case 'welcome': {
        st.riderId = msg.rider_id;
        st.serverStatus = msg.status;
        st.online = msg.status !== 'offline';
        if (Number.isFinite(msg.location_interval_s) && msg.location_interval_s > 0) {
          st.keepAliveS = Math.min(DEFAULT_KEEPALIVE_S, msg.location_interval_s);
        }
        st.orders.clear();
        st.pendingActions.clear();
        for (const o of msg.orders || []) putOrder(o);
        setOffer(msg.offer || null);
        if (!st.pos) {
          try {
            const saved = JSON.parse(localStorage.getItem('rider_pos_' + st.riderId) || 'null');
            if (saved && DMap.validPos(saved)) st.pos = saved;
          } catch (_) { /* ignore */ }
        }
        setText($('rider-id'), st.riderId || '');
        if (!map.fitted) fitAll();
        break;
      }
      case 'status': // not in the protocol; accepted if a server sends it
        if (msg.status) { st.serverStatus = msg.status; st.online = msg.status !== 'offline'; }
        break;
      case 'offer':
        setOffer(msg);
        if (!msg.pickup || !map.isVisible(msg.pickup.lat, msg.pickup.lon, 20)) fitAll();
        break;
      case 'offer_closed':
        if (st.offer && st.offer.offer_id === msg.offer_id) setOffer(null);
        break;
      case 'assigned':
        if (msg.order) {
          putOrder(msg.order);
          if (st.offer && st.offer.order_id === msg.order.order_id) setOffer(null);
          log('info', 'order ' + msg.order.order_id + ' assigned to you');
        }
        break;
      case 'order_updated':
        putOrder(msg.order);
        break;
      case 'order_cancelled':
        dropOrder(msg.order_id, 'cancelled');
        if (st.offer && st.offer.order_id === msg.order_id) setOffer(null);
        break;
      case 'unassigned':
        dropOrder(msg.order_id, 'unassigned: ' + msg.reason);
        break;
      case 'reminder':
        log('info', 'reminder for ' + msg.order_id + ': ' + msg.message);
        break;
      case 'error':
        log('error', '← error ' + msg.code + ': ' + msg.message);
        if (msg.code === 'invalid_location') log('info', 'hint: a jump faster than the server\'s gps.max_speed_mps is refused — move in smaller steps or use "Simulate route"');
        if (msg.code === 'offer_not_available') setOffer(null);
        st.pendingActions.clear();
        st.offerPending = false;
        break;
      default:
        break;
    }
    map.invalidate();
    render();
  }
  function summarise(msg) {
    const s = JSON.stringify(msg);
    return s.length > 300 ? s.slice(0, 300) + '…' : s;
  }

  // ------------------------------------------------------------ offers
  function setOffer(o) {
    st.offer = o && o.offer_id ? o : null;
    st.offerReceivedAt = Date.now();
    st.offerPending = false;
    renderOffer();
  }
  $('accept').addEventListener('click', () => {
    if (!st.offer || st.offerPending) return;
    if (send({ type: 'accept', offer_id: st.offer.offer_id })) { st.offerPending = true; renderOffer(); }
  });
  $('decline').addEventListener('click', () => {
    if (!st.offer || st.offerPending) return;
    if (send({ type: 'decline', offer_id: st.offer.offer_id, reason: 'declined in simulator' })) setOffer(null);
    map.invalidate();
  });
  function renderOffer() {
    const box = $('offer');
    const o = st.offer;
    box.classList.toggle('hidden', !o);
    if (!o) { delete box.dataset.offerId; return; }
    box.dataset.offerId = o.offer_id;
    box.dataset.orderId = o.order_id;
    setText($('offer-order'), o.order_id);
    setText($('offer-pickup'), ((o.pickup && o.pickup.name) || '') + ' (' + C.fmtLatLon(o.pickup) + ')');
    setText($('offer-dropoff'), C.fmtLatLon(o.dropoff));
    const fromHere = st.pos && o.pickup ? DMap.haversine(st.pos, o.pickup) : null;
    setText($('offer-distance'), fmtDist(o.distance_m) + ' to pickup' +
      (o.pickup && o.dropoff ? ', then ' + fmtDist(DMap.haversine(o.pickup, o.dropoff)) : '') +
      (fromHere != null && o.distance_m == null ? ' (' + fmtDist(fromHere) + ')' : ''));
    setText($('offer-ready'), o.ready_at_ms ? fmtClock(o.ready_at_ms) : '—');
    $('accept').disabled = st.offerPending;
    $('decline').disabled = st.offerPending;
    setText($('accept'), st.offerPending ? 'Accepting…' : 'Accept');
    renderOfferCountdown();
  }
  function renderOfferCountdown() {
    const o = st.offer;
    if (!o) return;
    const left = (o.expires_at_ms || 0) - Date.now();
    const total = Math.max(1, (o.expires_at_ms || 0) - st.offerReceivedAt);
    setText($('offer-countdown'), left > 0 ? Math.ceil(left / 1000) + ' s' : 'expired');
    $('offer-bar').style.width = Math.max(0, Math.min(100, (left / total) * 100)) + '%';
    if (left < -5000 && !st.offerPending) { setOffer(null); map.invalidate(); } // the server's offer_closed got lost
  }

  // ------------------------------------------------------------ orders
  function orderAction(id, type) {
    const msg = { type, order_id: id };
    if (type === 'failed') msg.reason = 'could not deliver (simulator)';
    if (send(msg)) { st.pendingActions.set(id, type); renderOrders(); }
  }
  function renderOrders() {
    const ul = $('orders');
    setText($('orders-count'), st.orders.size ? String(st.orders.size) : '');
    const seen = new Set();
    for (const o of st.orders.values()) {
      seen.add(o.order_id);
      let li = ul.querySelector('.order[data-id="' + CSS.escape(o.order_id) + '"]');
      if (!li) {
        li = el('li', { class: 'order rider-order', 'data-id': o.order_id },
          el('div', { class: 'head' }, el('b', { class: 'mono' }, o.order_id), el('span', { class: 'chip' }), el('span', { class: 'muted ready', style: 'font-size:12px' })),
          el('div', { class: 'where', style: 'font-size:13px' }),
          el('div', { class: 'muted what', style: 'font-size:12px' }),
          el('div', { class: 'actions' },
            el('button', { type: 'button', class: 'picked-up primary small', onclick: () => orderAction(o.order_id, 'picked_up') }, 'Picked up'),
            el('button', { type: 'button', class: 'delivered ok small', onclick: () => orderAction(o.order_id, 'delivered') }, 'Delivered'),
            el('button', { type: 'button', class: 'release small', onclick: () => orderAction(o.order_id, 'release') }, 'Release'),
            el('button', { type: 'button', class: 'fail danger small', onclick: () => orderAction(o.order_id, 'failed') }, 'Failed')));
        ul.append(li);
      }
      li.dataset.status = o.status;
      const chip = li.querySelector('.chip');
      chip.className = 'chip ' + o.status;
      setText(chip, o.status);
      setText(li.querySelector('.ready'), o.ready ? 'food ready' : (o.ready_at_ms ? 'ready ' + fmtClock(o.ready_at_ms) : ''));
      const p = o.pickup || {};
      const tgt = o.status === 'picked_up' ? o.dropoff : o.pickup;
      const dist = st.pos && tgt ? ' · ' + fmtDist(DMap.haversine(st.pos, tgt)) + ' away' : '';
      setText(li.querySelector('.where'), (o.status === 'picked_up' ? 'Deliver to ' + C.fmtLatLon(o.dropoff) : 'Pick up at ' + (p.name || p.merchant_id || '') ) + dist);
      setText(li.querySelector('.what'), (o.items || []).map((it) => it.qty + '× ' + it.name).join(', '));
      const pending = st.pendingActions.has(o.order_id);
      const show = (cls, on) => { const b = li.querySelector('button.' + cls); b.classList.toggle('hidden', !on); b.disabled = pending; };
      show('picked-up', o.status === 'assigned');
      show('release', o.status === 'assigned');
      show('delivered', o.status === 'picked_up');
      show('fail', o.status === 'picked_up');
    }
    for (const li of Array.from(ul.children)) if (!li.dataset.id || !seen.has(li.dataset.id)) li.remove();
    if (!st.orders.size) ul.append(el('li', { class: 'empty' }, 'No orders in hand.'));
  }

  // ------------------------------------------------------------ status
  function displayStatus() {
    if (!st.riderId) return 'offline';
    if (!st.online) return 'offline';
    if (st.serverStatus === 'stale') return 'stale';
    if (st.orders.size) return 'busy';
    if (st.offer) return 'offered';
    return 'idle';
  }
  function renderStatus() {
    const s = displayStatus();
    const n = $('rider-status');
    setText(n, s);
    n.className = 'chip ' + s;
    n.dataset.status = s;
    $('go-online').disabled = !sock || !sock.isOpen || st.online;
    $('go-offline').disabled = !sock || !sock.isOpen || !st.online;
    setText($('position'), st.pos ? C.fmtLatLon(st.pos) : 'unknown — click the map');
    setText($('last-fix'), st.lastFixAt ? fmtClock(st.lastFixAt) + ' (' + st.fixesSent + ' sent)' : '—');
    const t = currentTarget();
    setText($('target'), t ? t.what + (st.pos ? ' · ' + fmtDist(DMap.haversine(st.pos, t.pos)) : '') : '—');
  }
  function render() {
    renderStatus();
    renderOffer();
    renderOrders();
  }

  // ------------------------------------------------------------ connection
  function setConn(kind, text) {
    const n = $('conn-state');
    n.dataset.state = kind;
    setText(n, text);
  }
  let waitingUntil = 0;
  async function shouldReconnect(ev, opened) {
    if (opened && ev.code !== 1008 && ev.code !== 4001 && ev.code !== 4003) return true;
    // The browser hides why an upgrade failed: a rider token gets 403 here, a bad one 401.
    try {
      await api('GET', '/riders/nearby?lat=0&lon=0', undefined, token);
      setConn('unauthorized', 'not a rider token');
      showLogin('This is not a rider token.');
      return false;
    } catch (e) {
      if (e.status === 401) {
        setConn('unauthorized', 'unauthorized');
        showLogin('The server rejected this token.');
        return false;
      }
      return true;
    }
  }
  function connect() {
    if (sock) sock.stop();
    sock = new C.ReconnectingSocket({
      url: () => C.wsUrl('/ws/rider', token),
      onMessage,
      shouldReconnect,
      onOpen: () => log('info', 'connected'),
      onClose: (ev, opened) => { if (opened) log('info', 'disconnected (' + ev.code + ')'); renderStatus(); },
      onState: (s, info) => {
        if (s === 'open') setConn('open', 'connected');
        else if (s === 'connecting') setConn('connecting', 'connecting…');
        else if (s === 'waiting') { waitingUntil = info.retryAt; tickConn(); }
        else if (s === 'stopped' && $('conn-state').dataset.state !== 'unauthorized') setConn('stopped', 'disconnected');
        renderStatus();
      },
    });
    sock.start();
  }
  function tickConn() {
    if (sock && sock.state === 'waiting') setConn('waiting', 'retry in ' + Math.max(0, Math.ceil((waitingUntil - Date.now()) / 1000)) + ' s');
  }
  setInterval(tickConn, 1000);
  function showLogin(err) {
    $('login').classList.remove('hidden');
    setText($('login-error'), err || '');
    setTimeout(() => $('token-input').focus(), 0);
  }
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token-input').value.trim();
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
    setSimulate(false);
    Object.assign(st, { riderId: null, online: false, offer: null });
    st.orders.clear();
    setText($('rider-id'), '');
    render();
    setConn('stopped', 'signed out');
    showLogin('');
  });

  Object.assign(window.riderApp, {
    setPosition, sendFix, send, goOnline, goOffline, setSimulate,
    accept: () => $('accept').click(), decline: () => $('decline').click(),
  });

  render();
  if (token) connect();
  else { setConn('stopped', 'not signed in'); showLogin(''); }
})();
