// dispatchd — the dashboard's "Nearest riders" list for the selected order: each rider with
// its status, distance and an Assign button. dashboard.js fetches the list and assigns.
(function () {
  'use strict';
  const C = window.DCommon;
  const { el, fmtDist, reconcile } = C;

  function setText(node, v) { v = v == null ? '' : String(v); if (node.textContent !== v) node.textContent = v; }

  /**
   * Renders `list` (GET /riders/nearby) into `ul`. `riders` is the dashboard's rider map
   * (for names), `currentRiderId` the selected order's rider, `onAssign(riderId, li)` the
   * button's action.
   */
  function render(ul, list, { riders, currentRiderId, onAssign }) {
    reconcile(ul, list, (r) => r.rider_id, () => {
      const li = el('li', { class: 'nearby-rider' },
        el('span', { class: 'ellipsis' }, el('span', { class: 'rid' }), el('span', { class: 'muted name', style: 'margin-left:6px;font-size:12px' })),
        el('span', { class: 'chip' }),
        el('span', { class: 'dist' }),
        el('button', { type: 'button', class: 'assign small primary' }, 'Assign'));
      li.querySelector('button.assign').addEventListener('click', () => onAssign(li.dataset.id, li));
      return li;
    }, (li, r) => {
      setText(li.querySelector('.rid'), r.rider_id);
      const known = riders.get(r.rider_id);
      setText(li.querySelector('.name'), (known && known.name) || '');
      const chip = li.querySelector('.chip');
      chip.className = 'chip ' + r.status;
      setText(chip, r.status);
      setText(li.querySelector('.dist'), fmtDist(r.distance_m));
      li.dataset.status = r.status;
      const current = !!currentRiderId && currentRiderId === r.rider_id;
      const btn = li.querySelector('button.assign');
      if (!btn.dataset.busy) {
        btn.disabled = current;
        setText(btn, current ? 'Assigned' : 'Assign');
      }
    }, 'No available rider within 20 km.');
  }

  window.DNearby = { render };
})();
