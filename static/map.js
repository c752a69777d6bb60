// dispatchd — a tiny canvas map (no tiles, no dependencies).
//
// Local equirectangular projection around a centre (good to well under 1 % error over a
// city), pan by dragging, zoom with the wheel (around the cursor), a light metric grid and
// a scale bar. Data is given as layers whose items are read lazily at draw time, so callers
// just mutate their own Maps and call `invalidate()`; the map redraws at most once per
// animation frame and only when something is dirty. Markers of one layer are batched per
// colour into a single path, which keeps 5,000+ riders smooth.
//
//   const map = new DMap(canvas, { onSelect(hit) {}, onClick({lat, lon, hit}) {} });
//   map.setLayer('riders', { items: () => riders.values(), pos: r => r.location,
//                            color: r => '#0a0', shape: 'circle', radius: 3, z: 10,
//                            selectable: true, id: r => r.rider_id });
//   map.setLines('routes', { items: () => orders.values(), from: o => o.pickup,
//                            to: o => o.dropoff, color: () => '#999', width: 1, z: 1 });
//   map.setHighlight('orders', 'o_123');
//   map.invalidate();
(function (global) {
  'use strict';

  const R = 6371008.8; // mean Earth radius, metres
  const DEG = Math.PI / 180;
  const NICE = [1, 2, 5];

  function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }
  function validPos(p) {
    return p != null && isNum(p.lat) && isNum(p.lon) && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
  }
  function niceStep(approx) {
    if (!(approx > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(approx)));
    for (const n of NICE) if (n * p >= approx) return n * p;
    return 10 * p;
  }
  function fmtDist(m) {
    if (m >= 1000) return (m / 1000) + ' km';
    return m + ' m';
  }

  class DMap {
    constructor(canvas, opts) {
      opts = opts || {};
      this.canvas = canvas;
      this.ctx = canvas.getContext('2d', { alpha: false });
      this.onSelect = opts.onSelect || null;
      this.onClick = opts.onClick || null;
      this.onFrame = opts.onFrame || null;
      this.autoFit = opts.autoFit !== false;
      this.fitPadding = opts.fitPadding != null ? opts.fitPadding : 40;
      this.minFitSpanM = opts.minFitSpanM != null ? opts.minFitSpanM : 800;
      this.background = opts.background || '#f7f8fa';
      this.gridColor = opts.gridColor || '#e4e7ec';
      this.gridMajorColor = opts.gridMajorColor || '#d3d8e0';
      this.cursorLatLon = opts.showCursor !== false;
      // view
      this.lat0 = isNum(opts.lat) ? opts.lat : 31.2304;
      this.lon0 = isNum(opts.lon) ? opts.lon : 121.4737;
      this.cosLat = Math.cos(this.lat0 * DEG);
      this.scale = isNum(opts.scale) ? opts.scale : 0.1; // pixels per metre
      this.cx = 0; // view centre in local metres (x east, y north) relative to lat0/lon0
      this.cy = 0;
      this.fitted = false;
      this.layers = new Map();
      this.highlight = []; // [{layer, id}]
      this.cursor = null;
      this.dirty = true;
      this.rafId = 0;
      this.width = 0;
      this.height = 0;
      this.dpr = 1;
      this.stats = { frames: 0, avgFrameMs: 0, maxFrameMs: 0, lastFrameMs: 0, totalFrameMs: 0, lastDrawAt: 0, pointsDrawn: 0 };
      this._bucket = new Map();
      this._attach();
      this._resize();
      this.invalidate();
    }

    // ---------- projection ----------
    _toLocal(lat, lon) {
      return [(lon - this.lon0) * DEG * R * this.cosLat, (lat - this.lat0) * DEG * R];
    }
    project(lat, lon) {
      const x = (lon - this.lon0) * DEG * R * this.cosLat;
      const y = (lat - this.lat0) * DEG * R;
      return [this.width / 2 + (x - this.cx) * this.scale, this.height / 2 - (y - this.cy) * this.scale];
    }
    unproject(sx, sy) {
      const x = (sx - this.width / 2) / this.scale + this.cx;
      const y = -(sy - this.height / 2) / this.scale + this.cy;
      return { lat: this.lat0 + y / (R * DEG), lon: this.lon0 + x / (R * DEG * this.cosLat) };
    }
    _recentre(lat, lon) {
      // Move the projection origin (keeps distortion low when the data is far from the start).
      this.lat0 = lat; this.lon0 = lon; this.cosLat = Math.cos(lat * DEG); this.cx = 0; this.cy = 0;
    }

    // ---------- public API ----------
    setLayer(name, spec) {
      const layer = Object.assign({
        kind: 'points', z: 0, shape: 'circle', radius: 3, selectable: false,
        visible: true, stroke: null, pos: (o) => o.location || o, id: (o) => o.id,
        color: () => '#333', items: () => [],
      }, spec, { name });
      if (layer.kind !== 'lines') layer.kind = 'points';
      this.layers.set(name, layer);
      this.invalidate();
      return layer;
    }
    setLines(name, spec) {
      return this.setLayer(name, Object.assign({ width: 1, dash: null, color: () => '#888' }, spec, { kind: 'lines' }));
    }
    removeLayer(name) { this.layers.delete(name); this.invalidate(); }
    /** Highlight one item (`setHighlight(layer, id)`) or several (`setHighlight([{layer, id}, …])`). */
    setHighlight(layer, id) {
      if (Array.isArray(layer)) this.highlight = layer.filter((h) => h && h.id != null);
      else this.highlight = id == null ? [] : [{ layer, id }];
      this.invalidate();
    }
    setView(lat, lon, metresAcross) {
      this._recentre(lat, lon);
      if (isNum(metresAcross) && metresAcross > 0) this.scale = Math.max(1e-4, this.width / metresAcross);
      this.fitted = true;
      this.invalidate();
    }
    centerOn(lat, lon) {
      const [x, y] = this._toLocal(lat, lon);
      this.cx = x; this.cy = y;
      this.invalidate();
    }
    isVisible(lat, lon, marginPx) {
      const [sx, sy] = this.project(lat, lon);
      const m = marginPx || 0;
      return sx >= m && sy >= m && sx <= this.width - m && sy <= this.height - m;
    }
    /** Fit the view to the given points (array of {lat, lon}) or to every layer's data. */
    fit(points) {
      let minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity, n = 0;
      const add = (p) => {
        if (!validPos(p)) return;
        n++;
        if (p.lat < minLat) minLat = p.lat; if (p.lat > maxLat) maxLat = p.lat;
        if (p.lon < minLon) minLon = p.lon; if (p.lon > maxLon) maxLon = p.lon;
      };
      if (points) {
        for (const p of points) add(p);
      } else {
        for (const layer of this.layers.values()) {
          if (!layer.visible || layer.fit === false) continue;
          for (const o of layer.items()) {
            if (layer.kind === 'lines') { add(layer.from(o)); add(layer.to(o)); } else add(layer.pos(o));
          }
        }
      }
      if (n === 0 || this.width === 0 || this.height === 0) return false;
      this._recentre((minLat + maxLat) / 2, (minLon + maxLon) / 2);
      const [x1, y1] = this._toLocal(minLat, minLon);
      const [x2, y2] = this._toLocal(maxLat, maxLon);
      const spanX = Math.max(Math.abs(x2 - x1), this.minFitSpanM);
      const spanY = Math.max(Math.abs(y2 - y1), this.minFitSpanM);
      const pad = this.fitPadding * 2;
      this.scale = Math.min((this.width - pad) / spanX, (this.height - pad) / spanY);
      if (!(this.scale > 0)) this.scale = 0.1;
      this.fitted = true;
      this.invalidate();
      return true;
    }
    invalidate() {
      this.dirty = true;
      if (!this.rafId) this.rafId = requestAnimationFrame(() => this._frame());
    }
    /** The marker nearest to screen point (sx, sy) within maxPx, over selectable layers. */
    hitTest(sx, sy, maxPx) {
      const lim = (maxPx || 12) ** 2;
      let best = null, bestD = lim, bestZ = -Infinity;
      for (const layer of this.layers.values()) {
        if (!layer.visible || !layer.selectable || layer.kind !== 'points') continue;
        for (const o of layer.items()) {
          const p = layer.pos(o);
          if (!validPos(p)) continue;
          const [px, py] = this.project(p.lat, p.lon);
          const dx = px - sx, dy = py - sy;
          const d = dx * dx + dy * dy;
          if (d < bestD || (d === bestD && layer.z > bestZ)) {
            bestD = d; bestZ = layer.z;
            best = { layer: layer.name, id: layer.id(o), item: o, lat: p.lat, lon: p.lon };
          }
        }
      }
      return best;
    }

    // ---------- events ----------
    _attach() {
      const c = this.canvas;
      c.style.touchAction = 'none';
      let drag = null;
      c.addEventListener('pointerdown', (e) => {
        if (e.button !== 0) return;
        drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy, moved: false, id: e.pointerId };
        try { c.setPointerCapture(e.pointerId); } catch (_) { /* ignore */ }
      });
      c.addEventListener('pointermove', (e) => {
        const r = c.getBoundingClientRect();
        if (this.cursorLatLon) { this.cursor = this.unproject(e.clientX - r.left, e.clientY - r.top); this.invalidate(); }
        if (!drag) return;
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (!drag.moved && dx * dx + dy * dy < 16) return;
        drag.moved = true;
        c.classList.add('dragging');
        this.cx = drag.cx - dx / this.scale;
        this.cy = drag.cy + dy / this.scale;
        this.fitted = true;
        this.invalidate();
      });
      const end = (e) => {
        if (!drag) return;
        const d = drag; drag = null;
        c.classList.remove('dragging');
        try { c.releasePointerCapture(d.id); } catch (_) { /* ignore */ }
        if (d.moved || e.type === 'pointercancel') return;
        const r = c.getBoundingClientRect();
        const sx = e.clientX - r.left, sy = e.clientY - r.top;
        const hit = this.hitTest(sx, sy, 12);
        const ll = this.unproject(sx, sy);
        if (hit && this.onSelect) this.onSelect(hit);
        if (this.onClick) this.onClick({ lat: ll.lat, lon: ll.lon, hit });
      };
      c.addEventListener('pointerup', end);
      c.addEventListener('pointercancel', end);
      c.addEventListener('pointerleave', () => { if (this.cursor) { this.cursor = null; this.invalidate(); } });
      c.addEventListener('wheel', (e) => {
        e.preventDefault();
        const r = c.getBoundingClientRect();
        const sx = e.clientX - r.left, sy = e.clientY - r.top;
        const before = this.unproject(sx, sy);
        const k = Math.exp(-Math.max(-300, Math.min(300, e.deltaY * (e.deltaMode === 1 ? 33 : 1))) * 0.0015);
        this.scale = Math.max(1e-4, Math.min(50, this.scale * k));
        // keep the point under the cursor fixed
        const [bx, by] = this._toLocal(before.lat, before.lon);
        this.cx = bx - (sx - this.width / 2) / this.scale;
        this.cy = by + (sy - this.height / 2) / this.scale;
        this.fitted = true;
        this.invalidate();
      }, { passive: false });
      if (typeof ResizeObserver !== 'undefined') {
        this._ro = new ResizeObserver(() => { this._resize(); this.invalidate(); });
        this._ro.observe(c);
      } else {
        window.addEventListener('resize', () => { this._resize(); this.invalidate(); });
      }
    }
    _resize() {
      const r = this.canvas.getBoundingClientRect();
      const dpr = Math.min(window.devicePixelRatio || 1, 2);
      const w = Math.max(1, Math.round(r.width)), h = Math.max(1, Math.round(r.height));
      if (w === this.width && h === this.height && dpr === this.dpr) return;
      this.width = w; this.height = h; this.dpr = dpr;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }

    // ---------- drawing ----------
    _frame() {
      this.rafId = 0;
      if (!this.dirty) return;
      this.dirty = false;
      const t0 = performance.now();
      if (!this.fitted && this.autoFit) this.fit();
      this._draw();
      const dt = performance.now() - t0;
      const s = this.stats;
      s.frames++;
      s.lastFrameMs = dt;
      s.totalFrameMs += dt;
      s.avgFrameMs = s.totalFrameMs / s.frames;
      if (dt > s.maxFrameMs) s.maxFrameMs = dt;
      s.lastDrawAt = t0;
      if (this.onFrame) this.onFrame(s, t0);
    }
    _draw() {
      const ctx = this.ctx, w = this.width, h = this.height;
      ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      ctx.fillStyle = this.background;
      ctx.fillRect(0, 0, w, h);
      this._drawGrid();
      const layers = Array.from(this.layers.values()).filter((l) => l.visible).sort((a, b) => a.z - b.z);
      let n = 0;
      for (const layer of layers) n += layer.kind === 'lines' ? this._drawLines(layer) : this._drawPoints(layer);
      this.stats.pointsDrawn = n;
      this._drawHighlight();
      this._drawScale();
      this._drawCursor();
    }
    _drawGrid() {
      const ctx = this.ctx, w = this.width, h = this.height;
      const step = niceStep(60 / this.scale); // metres between grid lines, ≥ 60 px apart
      const major = step * 5;
      const left = this.cx - (w / 2) / this.scale, right = this.cx + (w / 2) / this.scale;
      const bottom = this.cy - (h / 2) / this.scale, top = this.cy + (h / 2) / this.scale;
      if ((right - left) / step > 400 || (top - bottom) / step > 400) return;
      ctx.lineWidth = 1;
      for (const pass of [0, 1]) {
        ctx.beginPath();
        for (let x = Math.floor(left / step) * step; x <= right; x += step) {
          const isMajor = Math.abs(Math.round(x / major) * major - x) < step / 2;
          if ((pass === 1) !== isMajor) continue;
          const sx = Math.round(w / 2 + (x - this.cx) * this.scale) + 0.5;
          ctx.moveTo(sx, 0); ctx.lineTo(sx, h);
        }
        for (let y = Math.floor(bottom / step) * step; y <= top; y += step) {
          const isMajor = Math.abs(Math.round(y / major) * major - y) < step / 2;
          if ((pass === 1) !== isMajor) continue;
          const sy = Math.round(h / 2 - (y - this.cy) * this.scale) + 0.5;
          ctx.moveTo(0, sy); ctx.lineTo(w, sy);
        }
        ctx.strokeStyle = pass ? this.gridMajorColor : this.gridColor;
        ctx.stroke();
      }
    }
    _drawLines(layer) {
      const ctx = this.ctx, w = this.width, h = this.height;
      const buckets = this._bucket; buckets.clear();
      let n = 0;
      for (const o of layer.items()) {
        const a = layer.from(o), b = layer.to(o);
        if (!validPos(a) || !validPos(b)) continue;
        const [x1, y1] = this.project(a.lat, a.lon);
        const [x2, y2] = this.project(b.lat, b.lon);
        if ((x1 < 0 && x2 < 0) || (y1 < 0 && y2 < 0) || (x1 > w && x2 > w) || (y1 > h && y2 > h)) continue;
        const col = layer.color(o);
        let arr = buckets.get(col);
        if (!arr) { arr = []; buckets.set(col, arr); }
        arr.push(x1, y1, x2, y2);
        n++;
      }
      ctx.lineWidth = layer.width;
      ctx.setLineDash(layer.dash || []);
      for (const [col, arr] of buckets) {
        ctx.beginPath();
        for (let i = 0; i < arr.length; i += 4) { ctx.moveTo(arr[i], arr[i + 1]); ctx.lineTo(arr[i + 2], arr[i + 3]); }
        ctx.strokeStyle = col;
        ctx.stroke();
      }
      ctx.setLineDash([]);
      return n;
    }
    _drawPoints(layer) {
      const ctx = this.ctx, w = this.width, h = this.height;
      const buckets = this._bucket; buckets.clear();
      const r = typeof layer.radius === 'function' ? layer.radius(this.scale) : layer.radius;
      let n = 0;
      for (const o of layer.items()) {
        const p = layer.pos(o);
        if (!validPos(p)) continue;
        const [x, y] = this.project(p.lat, p.lon);
        if (x < -r || y < -r || x > w + r || y > h + r) continue;
        const col = layer.color(o);
        let arr = buckets.get(col);
        if (!arr) { arr = []; buckets.set(col, arr); }
        arr.push(x, y);
        n++;
      }
      for (const [col, arr] of buckets) {
        ctx.beginPath();
        if (layer.shape === 'square') {
          for (let i = 0; i < arr.length; i += 2) ctx.rect(arr[i] - r, arr[i + 1] - r, 2 * r, 2 * r);
        } else if (layer.shape === 'diamond') {
          for (let i = 0; i < arr.length; i += 2) {
            const x = arr[i], y = arr[i + 1];
            ctx.moveTo(x, y - r - 1); ctx.lineTo(x + r + 1, y); ctx.lineTo(x, y + r + 1); ctx.lineTo(x - r - 1, y); ctx.closePath();
          }
        } else {
          for (let i = 0; i < arr.length; i += 2) { ctx.moveTo(arr[i] + r, arr[i + 1]); ctx.arc(arr[i], arr[i + 1], r, 0, 2 * Math.PI); }
        }
        ctx.fillStyle = col;
        ctx.fill();
        if (layer.stroke) { ctx.lineWidth = layer.strokeWidth || 1; ctx.strokeStyle = layer.stroke; ctx.stroke(); }
      }
      if (layer.label) {
        ctx.font = '12px system-ui, sans-serif';
        ctx.textBaseline = 'middle';
        for (const o of layer.items()) {
          const text = layer.label(o);
          const p = layer.pos(o);
          if (!text || !validPos(p)) continue;
          const [x, y] = this.project(p.lat, p.lon);
          if (x < -200 || y < -20 || x > w + 20 || y > h + 20) continue;
          ctx.lineWidth = 3; ctx.strokeStyle = 'rgba(255,255,255,0.9)';
          ctx.strokeText(text, x + r + 4, y);
          ctx.fillStyle = '#1f2937';
          ctx.fillText(text, x + r + 4, y);
        }
      }
      return n;
    }
    _drawHighlight() {
      for (const hl of this.highlight) this._drawOneHighlight(hl);
    }
    _drawOneHighlight(hl) {
      const layer = this.layers.get(hl.layer);
      if (!layer) return; // drawn even when the layer itself is hidden
      const ctx = this.ctx;
      const found = layer.get ? layer.get(hl.id) : undefined;
      const items = found !== undefined ? (found ? [found] : []) : layer.items();
      for (const o of items) {
        if (layer.id(o) !== hl.id) continue;
        if (layer.kind === 'lines') {
          const a = layer.from(o), b = layer.to(o);
          if (!validPos(a) || !validPos(b)) return;
          const [x1, y1] = this.project(a.lat, a.lon);
          const [x2, y2] = this.project(b.lat, b.lon);
          ctx.lineWidth = 3; ctx.strokeStyle = layer.highlightColor || '#7c3aed';
          ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
          ctx.lineWidth = 2.5; // ring around the pickup, so the merchant's own marker stays visible
          ctx.beginPath(); ctx.arc(x1, y1, 9, 0, 2 * Math.PI); ctx.stroke();
          ctx.fillStyle = layer.highlightColor || '#7c3aed';
          ctx.beginPath(); ctx.arc(x2, y2, 6, 0, 2 * Math.PI); ctx.fill();
        } else {
          const p = layer.pos(o);
          if (!validPos(p)) return;
          const [x, y] = this.project(p.lat, p.lon);
          ctx.lineWidth = 2.5; ctx.strokeStyle = layer.highlightColor || '#7c3aed';
          const r = typeof layer.radius === 'function' ? layer.radius(this.scale) : layer.radius;
          ctx.beginPath(); ctx.arc(x, y, r + 6, 0, 2 * Math.PI); ctx.stroke();
        }
        return;
      }
    }
    _drawScale() {
      const ctx = this.ctx, h = this.height;
      const m = niceStep(100 / this.scale);
      const px = m * this.scale;
      const x = 12, y = h - 14;
      ctx.fillStyle = 'rgba(255,255,255,0.85)';
      ctx.fillRect(x - 6, y - 20, px + 70, 28);
      ctx.strokeStyle = '#374151'; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x, y - 6); ctx.lineTo(x, y); ctx.lineTo(x + px, y); ctx.lineTo(x + px, y - 6); ctx.stroke();
      ctx.fillStyle = '#374151'; ctx.font = '12px system-ui, sans-serif'; ctx.textBaseline = 'alphabetic';
      ctx.fillText(fmtDist(m), x + px + 8, y);
    }
    _drawCursor() {
      if (!this.cursor) return;
      const ctx = this.ctx, w = this.width;
      const t = this.cursor.lat.toFixed(5) + ', ' + this.cursor.lon.toFixed(5);
      ctx.font = '11px ui-monospace, monospace';
      const tw = ctx.measureText(t).width;
      ctx.fillStyle = 'rgba(255,255,255,0.85)';
      ctx.fillRect(w - tw - 18, 6, tw + 12, 20);
      ctx.fillStyle = '#4b5563'; ctx.textBaseline = 'middle';
      ctx.fillText(t, w - tw - 12, 16);
    }
  }

  DMap.haversine = function (a, b) {
    const dLat = (b.lat - a.lat) * DEG, dLon = (b.lon - a.lon) * DEG;
    const s = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * DEG) * Math.cos(b.lat * DEG) * Math.sin(dLon / 2) ** 2;
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(s)));
  };
  DMap.validPos = validPos;
  global.DMap = DMap;
})(window);
