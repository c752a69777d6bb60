// dispatchd — small helpers shared by the dashboard, tracking page and rider simulator.
(function (global) {
  'use strict';

  const params = new URLSearchParams(global.location.search);

  /** `?token=` from the URL, else localStorage[key] (if a key is given). */
  function tokenFromUrlOrStorage(key) {
    const t = params.get('token');
    if (t) return t;
    if (key) {
      try { return global.localStorage.getItem(key) || null; } catch (_) { return null; }
    }
    return null;
  }
  function storeToken(key, token) {
    try { if (token) global.localStorage.setItem(key, token); else global.localStorage.removeItem(key); } catch (_) { /* private mode */ }
  }

  function wsUrl(path, token) {
    const proto = global.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sep = path.includes('?') ? '&' : '?';
    return proto + '//' + global.location.host + path + (token ? sep + 'token=' + encodeURIComponent(token) : '');
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message || code || ('HTTP ' + status));
      this.status = status;
      this.code = code || 'http_' + status;
    }
  }

  /** JSON REST call under /api/v1. Resolves with the parsed body; rejects with ApiError. */
  async function api(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = { method, headers };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    let res;
    try {
      res = await fetch('/api/v1' + path, init);
    } catch (e) {
      throw new ApiError(0, 'network_error', 'network error: ' + e.message);
    }
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      const err = data && data.error;
      throw new ApiError(res.status, err && err.code, (err && err.message) || text || res.statusText);
    }
    return data;
  }

  /**
   * A WebSocket that reconnects by itself with exponential backoff (1 s doubling to 10 s).
   * opts: url() → string, onMessage(obj), onState(state, info), onOpen(), onClose(ev, opened),
   * shouldReconnect(ev, opened) → bool | Promise<bool>.
   * States: connecting, open, waiting (info.retryInMs), stopped.
   */
  class ReconnectingSocket {
    constructor(opts) {
      this.opts = opts;
      this.minDelay = opts.minDelayMs || 1000;
      this.maxDelay = opts.maxDelayMs || 10000;
      this.delay = this.minDelay;
      this.ws = null;
      this.stopped = false;
      this.timer = 0;
      this.attempts = 0;
      this.state = 'idle';
    }
    _setState(s, info) {
      this.state = s;
      if (this.opts.onState) this.opts.onState(s, info || {});
    }
    start() {
      this.stopped = false;
      this._connect();
      return this;
    }
    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.ws) { try { this.ws.close(1000, 'bye'); } catch (_) { /* ignore */ } }
      this.ws = null;
      this._setState('stopped');
    }
    send(obj) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
      return true;
    }
    get isOpen() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }
    reconnectNow() {
      clearTimeout(this.timer);
      if (this.ws) { try { this.ws.close(); } catch (_) { /* ignore */ } }
      else this._connect();
    }
    _connect() {
      if (this.stopped) return;
      clearTimeout(this.timer);
      this.attempts++;
      this._setState('connecting', { attempt: this.attempts });
      let ws;
      try {
        ws = new WebSocket(this.opts.url());
      } catch (e) {
        this._scheduleRetry();
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.delay = this.minDelay;
        this.attempts = 0;
        this._setState('open');
        if (this.opts.onOpen) this.opts.onOpen();
      };
      ws.onmessage = (ev) => {
        const recvAt = performance.now();
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        if (this.opts.onMessage) this.opts.onMessage(msg, recvAt);
      };
      ws.onclose = async (ev) => {
        if (this.ws === ws) this.ws = null;
        if (this.opts.onClose) this.opts.onClose(ev, opened);
        if (this.stopped) return;
        let again = true;
        if (this.opts.shouldReconnect) {
          try { again = await this.opts.shouldReconnect(ev, opened); } catch (_) { again = true; }
        }
        if (this.stopped) return;
        if (again) this._scheduleRetry();
        else { this.stopped = true; this._setState('stopped'); }
      };
    }
    _scheduleRetry() {
      const d = this.delay;
      this.delay = Math.min(this.maxDelay, this.delay * 2);
      this._setState('waiting', { retryInMs: d, retryAt: Date.now() + d });
      this.timer = setTimeout(() => this._connect(), d);
    }
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else e.setAttribute(k, v === true ? '' : v);
      }
    }
    for (const c of children) {
      if (c == null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function pad2(n) { return n < 10 ? '0' + n : '' + n; }
  function fmtClock(ms) {
    if (ms == null) return '';
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  function fmtAge(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' m ' + pad2(s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + pad2(m % 60) + ' m';
  }
  function fmtDist(m) {
    if (m == null || !Number.isFinite(m)) return '—';
    return m >= 1000 ? (m / 1000).toFixed(m >= 10000 ? 0 : 1) + ' km' : Math.round(m) + ' m';
  }
  function fmtMoney(cents) {
    if (cents == null) return '';
    return (cents / 100).toFixed(2);
  }
  function fmtLatLon(p) {
    if (!p || !Number.isFinite(p.lat) || !Number.isFinite(p.lon)) return '';
    return p.lat.toFixed(5) + ',' + p.lon.toFixed(5);
  }
  const STATUS_LABEL = {
    pending_payment: 'Awaiting payment', paid: 'Paid', accepted: 'Accepted by restaurant',
    assigned: 'Rider assigned', picked_up: 'Picked up', delivered: 'Delivered',
    cancelled: 'Cancelled', failed: 'Failed',
  };
  const FINAL = new Set(['delivered', 'cancelled', 'failed']);

  /**
   * Keyed list update: reuses the element of each key, creates missing ones, removes
   * the rest and moves nodes only where the order changed.
   */
  function reconcile(ul, items, key, create, update, emptyText) {
    const existing = new Map();
    for (const li of Array.from(ul.children)) {
      if (li.dataset.id) existing.set(li.dataset.id, li);
      else li.remove();
    }
    const keep = new Set();
    const wanted = [];
    for (const it of items) {
      const k = key(it);
      keep.add(k);
      let li = existing.get(k);
      if (!li) { li = create(it); li.dataset.id = k; }
      update(li, it);
      wanted.push(li);
    }
    for (const [k, li] of existing) if (!keep.has(k)) li.remove();
    for (let i = 0; i < wanted.length; i++) {
      if (ul.children[i] !== wanted[i]) ul.insertBefore(wanted[i], ul.children[i] || null);
    }
    if (!wanted.length && emptyText) ul.append(el('li', { class: 'empty' }, emptyText));
  }

  global.DCommon = {
    params, tokenFromUrlOrStorage, storeToken, wsUrl, api, ApiError, ReconnectingSocket, el,
    fmtClock, fmtAge, fmtDist, fmtMoney, fmtLatLon, STATUS_LABEL, FINAL, reconcile,
  };
})(window);
