// dispatchd — the dashboard's view of open offers (bundles, next-job offers) and of an
// order's decision trace. Plain functions over the dashboard's state; dashboard.js calls
// them while rendering.
(function () {
  'use strict';
  const C = window.DCommon;
  const { el, fmtDist, fmtClock } = C;

  /** The rider holding an open offer for this order, and that offer, or null. */
  function offerFor(riders, orderId) {
    for (const r of riders.values()) {
      const o = r.offer;
      if (o && Array.isArray(o.order_ids) && o.order_ids.includes(orderId)) return { rider: r, offer: o };
    }
    return null;
  }

  /** Counts of open offers by kind, for the counters panel. */
  function counts(riders) {
    let open = 0;
    let bundles = 0;
    let bundledOrders = 0;
    let nextJob = 0;
    for (const r of riders.values()) {
      const o = r.offer;
      if (!o) continue;
      open++;
      const n = Array.isArray(o.order_ids) ? o.order_ids.length : 1;
      if (n > 1) { bundles++; bundledOrders += n; }
      if (o.next_job) nextJob++;
    }
    return { open, bundles, bundledOrders, nextJob };
  }

  /** One line describing an offer: its kind, its orders and when it expires. */
  function describe(offer, exceptOrderId) {
    const ids = (offer.order_ids || []).filter((id) => id !== exceptOrderId);
    const parts = [];
    if ((offer.order_ids || []).length > 1) {
      parts.push('bundle of ' + offer.order_ids.length + (ids.length ? ' (with ' + ids.join(', ') + ')' : ''));
    } else {
      parts.push('single order');
    }
    if (offer.next_job) parts.push('next job: rider still delivering');
    const left = Math.round((offer.expires_at_ms - Date.now()) / 1000);
    parts.push(left > 0 ? 'expires in ' + left + ' s' : 'expiring');
    return parts.join(' · ');
  }

  /** The rider tooltip's offer line, or null. */
  function riderLine(r) {
    if (!r.offer) return null;
    return el('div', { class: 'offer-line', 'data-offer-id': r.offer.offer_id },
      el('b', null, r.offer.next_job ? 'Next-job offer ' : 'Offer '),
      el('span', { class: 'mono' }, (r.offer.order_ids || []).join(', ')),
      el('div', { class: 'muted' }, describe(r.offer)));
  }

  /** The selected order's "Offer" row text. */
  function orderRow(riders, orderId) {
    const hit = offerFor(riders, orderId);
    if (!hit) return '—';
    return hit.rider.rider_id + ': ' + describe(hit.offer, orderId);
  }

  /** Renders the latest decisions of an order's trace, newest first. */
  function renderTrace(list, trace, limit) {
    const decisions = (trace && Array.isArray(trace.decisions) ? trace.decisions : []).slice(-limit).reverse();
    if (!decisions.length) {
      list.replaceChildren(el('li', { class: 'empty' }, 'No dispatch decisions yet.'));
      return;
    }
    list.replaceChildren(...decisions.map((d) => {
      const cands = (d.candidates || []).slice(0, 6).map((c) => el('li', { class: 'cand ' + (c.decision || '') },
        el('span', { class: 'mono' }, c.rider_id), ' ',
        el('span', { class: 'muted' }, fmtDist(c.distance_m)
          + (c.cost_s != null ? ' · cost ' + Math.round(c.cost_s) + ' s' : '')),
        c.decision && c.decision !== 'candidate' ? el('b', null, ' ' + c.decision) : null));
      return el('li', { class: 'decision' },
        el('div', null, el('span', { class: 'muted' }, fmtClock(d.at_ms) + ' '), d.event || ''),
        cands.length ? el('ul', { class: 'cands' }, ...cands) : null);
    }));
  }

  let traceSeq = 0;
  /** Fetches an order's trace and renders it into `list` (the latest answer wins). */
  async function loadTrace(token, orderId, list, limit) {
    const seq = ++traceSeq;
    let trace;
    try {
      trace = await C.api('GET', '/orders/' + encodeURIComponent(orderId) + '/trace', undefined, token);
    } catch (e) {
      if (seq === traceSeq) list.replaceChildren(el('li', { class: 'empty' }, 'Could not load the trace: ' + e.message));
      return;
    }
    if (seq === traceSeq) renderTrace(list, trace, limit);
  }

  window.DOffers = { offerFor, counts, describe, riderLine, orderRow, renderTrace, loadTrace };
})();
