// Celeriac's dashboard: a single-page app on hash routes, live through server-sent events.
// Vanilla JS, no build step, nothing loaded from elsewhere. Every value from the server reaches the page
// as text (textContent), never as markup.
'use strict';

(function () {
  // The dashboard may be mapped under any prefix: index.html is served at P/, so P/ is the path up to the last slash.
  const BASE = location.pathname.replace(/[^/]*$/, '');
  const PAGE_SIZE = 50;
  const READY_STATES = new Set(['SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED']);
  const STATES = ['SUCCESS', 'FAILURE', 'RETRY', 'REVOKED', 'RECEIVED'];
  const STATE_COLORS = { SUCCESS: '#2e7d32', FAILURE: '#c62828', RETRY: '#ef6c00', REVOKED: '#6a1b9a', RECEIVED: '#546e7a', STARTED: '#1565c0', PENDING: '#90a4ae', REJECTED: '#6a1b9a' };
  const PALETTE = ['#1565c0', '#2e7d32', '#c62828', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#455a64', '#9e9d24'];

  const main = document.getElementById('main');
  let info = { read_only: true, version: '', broker: '', auth: false };
  let view = null; // the current page: { onTask(t), onWorker(w), refresh(), dispose() }

  // ---------- small helpers ----------

  // h('td', { class: 'x', dataset: { uuid } }, 'text', child) builds an element; null/false children are skipped.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'testid') el.dataset.testid = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  // Replaces el's children; null/false children are skipped (the native append would print them).
  function fill(el, ...children) { return append(clear(el), children); }

  function api(path, options) {
    return fetch(BASE + path, Object.assign({ headers: { Accept: 'application/json' } }, options)).then(async (r) => {
      const text = await r.text();
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
      if (!r.ok) {
        const message = body && (body.error || body.message) ? (body.error || body.message) : (typeof body === 'string' && body) || r.statusText;
        const err = new Error(`${r.status}: ${message}`);
        err.status = r.status;
        throw err;
      }
      return body;
    });
  }

  function post(path) { return api(path, { method: 'POST' }); }

  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') p.set(k, v);
    const s = p.toString();
    return s ? '?' + s : '';
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  function fmtTime(ts) {
    if (ts === null || ts === undefined || ts === '') return '';
    const d = typeof ts === 'number' ? new Date(ts * 1000) : new Date(ts);
    if (isNaN(d.getTime())) return String(ts);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // Today's times without the date: a column of them stays narrow and readable.
  function fmtShortTime(ts) {
    if (typeof ts !== 'number') return fmtTime(ts);
    const d = new Date(ts * 1000);
    const today = new Date();
    return d.toDateString() === today.toDateString() ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : fmtTime(ts);
  }

  function fmtClock(ts) {
    const d = new Date(ts * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function fmtAgo(ts) {
    if (!ts) return '';
    const s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || s === '') return '';
    const n = Number(s);
    if (!isFinite(n)) return String(s);
    if (n === 0) return '0';
    if (Number.isInteger(n) && n < 120) return `${n} s`;
    if (n < 0.001) return `${(n * 1e6).toFixed(0)} µs`;
    if (n < 1) return `${(n * 1000).toFixed(n < 0.01 ? 2 : 0)} ms`;
    if (n < 120) return `${n.toFixed(n < 10 ? 2 : 1)} s`;
    return `${(n / 60).toFixed(1)} min`;
  }

  function fmtNum(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'); }

  // Flower's task dict carries args/kwargs/result as Python reprs (strings); a JSON value is shown as JSON.
  function text(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function badge(state) { return h('span', { class: 'badge st-' + String(state || 'PENDING').toLowerCase() }, state || 'PENDING'); }

  function taskLink(id, label) { return h('a', { href: '#/task/' + encodeURIComponent(id), class: 'mono' }, label || id); }

  function workerLink(host) { return host ? h('a', { href: '#/worker/' + encodeURIComponent(host) }, host) : ''; }

  function toast(message, kind) {
    const box = document.getElementById('toasts');
    const el = h('div', { class: 'toast ' + (kind || 'ok'), testid: 'toast', role: 'status' }, message);
    box.append(el);
    setTimeout(() => el.remove(), kind === 'error' ? 10000 : 6000);
  }

  // An action button (class "action"); in read-only mode there are no actions at all, so this returns null.
  function actionButton(testid, label, run, opts) {
    if (info.read_only) return null;
    const o = opts || {};
    const b = h('button', { type: 'button', class: 'action' + (o.danger ? ' danger' : ''), testid, title: o.title }, label);
    b.addEventListener('click', async () => {
      if (o.confirm && !(await confirmInline(b, o.confirm))) return;
      b.disabled = true;
      try {
        const r = await run();
        if (r !== undefined && o.done) o.done(r);
      } catch (e) {
        toast(`${label}: ${e.message}`, 'error');
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  // A confirmation next to the button instead of window.confirm: explicit, and visible in screenshots.
  function confirmInline(button, question) {
    return new Promise((resolve) => {
      const box = h('span', { class: 'confirm', testid: 'confirm' }, question + ' ');
      const finish = (v) => { box.remove(); button.hidden = false; resolve(v); };
      box.append(
        h('button', { type: 'button', class: 'action danger', testid: 'confirm-yes', onclick: () => finish(true) }, 'Yes'),
        ' ',
        h('button', { type: 'button', class: 'action', testid: 'confirm-no', onclick: () => finish(false) }, 'No'));
      button.hidden = true;
      button.after(box);
    });
  }

  function input(attrs) { return h('input', Object.assign({ type: 'text' }, attrs)); }

  function messageOf(r) {
    if (r && typeof r === 'object') return r.message || r.error || JSON.stringify(r);
    return String(r);
  }

  // Calls fn at most once per `ms`, trailing: bursts of events become one refresh.
  function debounce(fn, ms) {
    let t = null;
    const d = () => { if (t === null) t = setTimeout(() => { t = null; fn(); }, ms); };
    d.cancel = () => { if (t !== null) clearTimeout(t); t = null; };
    return d;
  }

  // Keeps tbody's rows in the order of `items`, reusing the row of each key: rows are patched in place, not rebuilt.
  function syncRows(tbody, items, keyOf, rowAttr, make, patch) {
    const existing = new Map();
    for (const tr of Array.from(tbody.children)) if (tr.dataset[rowAttr] !== undefined) existing.set(tr.dataset[rowAttr], tr);
    let prev = null;
    for (const item of items) {
      const key = keyOf(item);
      let tr = existing.get(key);
      if (tr) { existing.delete(key); patch(tr, item); } else tr = make(item);
      const next = prev ? prev.nextSibling : tbody.firstChild;
      if (tr !== next) tbody.insertBefore(tr, next);
      prev = tr;
    }
    for (const tr of existing.values()) tr.remove();
    for (const tr of Array.from(tbody.children)) if (tr.dataset[rowAttr] === undefined) tr.remove();
  }

  function setCell(td, content) {
    const next = content instanceof Node ? content : document.createTextNode(content === null || content === undefined ? '' : String(content));
    if (td.childNodes.length === 1 && !(content instanceof Node) && td.firstChild.nodeType === 3) {
      if (td.firstChild.nodeValue !== next.nodeValue) td.firstChild.nodeValue = next.nodeValue;
      return;
    }
    fill(td, next);
  }

  function emptyRow(cols, message) { return h('tr', { class: 'empty' }, h('td', { colspan: cols }, message)); }

  function pageHead(title, ...extra) { return h('div', { class: 'page-head' }, h('h1', {}, title), ...extra); }

  function errorBox(e) { return h('div', { class: 'error', testid: 'error' }, e.message || String(e)); }

  // ---------- Workers ----------

  const WORKER_COLS = ['Worker', 'Status', 'Active', 'Processed', 'Succeeded', 'Failed', 'Retried', 'Load (1/5/15)', 'Pool', 'Queues', 'Heartbeat'];

  function workerCells(w) {
    return [
      workerLink(w.hostname),
      h('span', { class: 'status ' + (w.online ? 'on' : 'off') }, w.online ? 'online' : 'offline'),
      fmtNum(w.active), fmtNum(w.processed), fmtNum(w.succeeded), fmtNum(w.failed), fmtNum(w.retried),
      Array.isArray(w.loadavg) ? w.loadavg.map((x) => Number(x).toFixed(2)).join(' / ') : '',
      fmtNum(w.pool_size),
      (w.queues || []).join(', '),
      fmtAgo(w.last_heartbeat),
    ];
  }

  function makeWorkerRow(w) {
    const tr = h('tr', { testid: 'worker-row', dataset: { hostname: w.hostname } });
    const classes = ['', 'c-status', 'num', 'num', 'num', 'num', 'num', 'num nowrap', 'num', 'queues', 'nowrap muted'];
    classes.forEach((c, i) => tr.append(h('td', { class: c, testid: i === 1 ? 'worker-status' : null })));
    patchWorkerRow(tr, w);
    return tr;
  }

  function patchWorkerRow(tr, w) {
    tr.classList.toggle('offline', !w.online);
    tr._worker = w;
    const cells = workerCells(w);
    Array.from(tr.children).forEach((td, i) => {
      if (i === 1) {
        const s = td.firstChild;
        if (s && s.textContent === (w.online ? 'online' : 'offline')) return;
      }
      if (i === 0 && td.firstChild) return; // the hostname never changes
      setCell(td, cells[i]);
    });
  }

  function workersView() {
    const summary = h('div', { class: 'summary', testid: 'workers-summary' });
    const tbody = h('tbody');
    const table = h('table', { class: 'grid', testid: 'workers-table' },
      h('thead', {}, h('tr', {}, WORKER_COLS.map((c, i) => h('th', { class: i >= 2 && i <= 8 ? 'num' : '' }, c)))), tbody);
    const err = h('div');
    fill(main, pageHead('Workers', summary), err, table);
    const workers = new Map();

    function render() {
      const list = Array.from(workers.values()).sort((a, b) => (b.online - a.online) || a.hostname.localeCompare(b.hostname));
      if (!list.length) { fill(tbody, emptyRow(WORKER_COLS.length, 'No worker has been seen yet. Workers show up once they send events (celeriac worker -E, celery worker -E).')); return; }
      syncRows(tbody, list, (w) => w.hostname, 'hostname', makeWorkerRow, patchWorkerRow);
      const online = list.filter((w) => w.online).length;
      fill(summary, 
        h('span', { class: 'pill' }, `${online} online`), h('span', { class: 'pill muted' }, `${list.length - online} offline`),
        h('span', { class: 'pill' }, `${fmtNum(list.reduce((s, w) => s + (w.active || 0), 0))} active`),
        h('span', { class: 'pill' }, `${fmtNum(list.reduce((s, w) => s + (w.processed || 0), 0))} processed`));
    }

    async function refresh() {
      try {
        const list = await api('api/dashboard/workers');
        workers.clear();
        for (const w of list) workers.set(w.hostname, w);
        clear(err);
        render();
      } catch (e) { fill(err, errorBox(e)); }
    }

    // Heartbeats arrive through the stream; the poll re-reads the list so a worker that stopped sending them is
    // shown as the server sees it, and the "ago" column moves on.
    const timer = setInterval(refresh, 5000);
    refresh();
    return {
      refresh,
      onWorker(w) { workers.set(w.hostname, Object.assign(workers.get(w.hostname) || {}, w)); render(); },
      dispose() { clearInterval(timer); },
    };
  }

  // ---------- Worker detail ----------

  function kv(rows) {
    return h('table', { class: 'kv' }, h('tbody', {}, rows.filter((r) => r && r[1] !== undefined && r[1] !== null && r[1] !== '').map(([k, v]) =>
      h('tr', {}, h('th', {}, k), h('td', {}, v instanceof Node ? v : text(v))))));
  }

  function autoscalerText(a) {
    if (!a || typeof a !== 'object') return '';
    return `min ${a.min}, max ${a.max}` + (a.qty !== undefined ? ` (now ${a.qty})` : '');
  }

  function card(title, ...body) {
    const slug = String(title).toLowerCase().replace(/\(.*\)/, '').trim().replace(/[^a-z0-9]+/g, '-');
    return h('section', { class: 'card', testid: 'card-' + slug }, h('h2', {}, title), ...body);
  }

  function workerView(hostname) {
    const head = pageHead(hostname);
    const body = h('div', { class: 'cards' });
    fill(main, h('div', { class: 'crumbs' }, h('a', { href: '#/workers' }, 'Workers'), ' / ', hostname), head, body);
    let row = null;
    const status = h('span', { testid: 'worker-status', class: 'status' });
    head.append(status);

    function setStatus() {
      const online = row ? row.online : false;
      status.className = 'status ' + (online ? 'on' : 'off');
      status.textContent = row ? (online ? 'online' : 'offline') : 'unknown';
    }

    const w = encodeURIComponent(hostname);
    const done = (r) => { toast(messageOf(r)); setTimeout(refresh, 500); };

    function controls(reg) {
      if (info.read_only) return null;
      const n = input({ value: '1', size: 3, 'aria-label': 'processes', testid: 'pool-n' });
      const min = input({ value: '1', size: 3, 'aria-label': 'min', testid: 'autoscale-min' });
      const max = input({ value: '4', size: 3, 'aria-label': 'max', testid: 'autoscale-max' });
      const queue = input({ placeholder: 'queue', size: 14, 'aria-label': 'queue', testid: 'consumer-queue' });
      const list = h('datalist', { id: 'registered-tasks' }, reg.map((t) => h('option', { value: t.replace(/\s*\[.*$/, '') })));
      const rtask = input({ placeholder: 'task name', list: 'registered-tasks', size: 22, 'aria-label': 'task', testid: 'rate-limit-task' });
      const rate = input({ placeholder: '10/m', size: 6, 'aria-label': 'rate limit', testid: 'rate-limit-value' });
      const ttask = input({ placeholder: 'task name', list: 'registered-tasks', size: 22, 'aria-label': 'task', testid: 'time-limit-task' });
      const soft = input({ placeholder: 'soft s', size: 5, 'aria-label': 'soft limit', testid: 'time-limit-soft' });
      const hard = input({ placeholder: 'hard s', size: 5, 'aria-label': 'hard limit', testid: 'time-limit-hard' });
      const need = (el, what) => { if (!el.value.trim()) throw new Error(what + ' is required'); return el.value.trim(); };
      const c = card('Control', list, h('div', { class: 'forms' },
        h('div', { class: 'form-row' }, h('label', {}, 'Pool'), n,
          actionButton('pool-grow', 'Grow', () => post(`api/worker/pool/grow/${w}${qs({ n: n.value })}`), { done }),
          actionButton('pool-shrink', 'Shrink', () => post(`api/worker/pool/shrink/${w}${qs({ n: n.value })}`), { done })),
        h('div', { class: 'form-row' }, h('label', {}, 'Autoscale'), 'min', min, 'max', max,
          actionButton('autoscale', 'Apply', () => post(`api/worker/pool/autoscale/${w}${qs({ min: min.value, max: max.value })}`), { done })),
        h('div', { class: 'form-row' }, h('label', {}, 'Consumer'), queue,
          actionButton('add-consumer', 'Add', () => post(`api/worker/queue/add-consumer/${w}${qs({ queue: need(queue, 'queue') })}`), { done }),
          actionButton('cancel-consumer', 'Cancel', () => post(`api/worker/queue/cancel-consumer/${w}${qs({ queue: need(queue, 'queue') })}`), { done })),
        h('div', { class: 'form-row' }, h('label', {}, 'Rate limit'), rtask, rate,
          actionButton('rate-limit', 'Set', () => post(`api/task/rate-limit/${encodeURIComponent(need(rtask, 'task'))}${qs({ workername: hostname, ratelimit: need(rate, 'rate') })}`), { done })),
        h('div', { class: 'form-row' }, h('label', {}, 'Time limit'), ttask, soft, hard,
          actionButton('time-limit', 'Set', () => post(`api/task/timeout/${encodeURIComponent(need(ttask, 'task'))}${qs({ workername: hostname, soft: soft.value.trim(), hard: hard.value.trim() })}`), { done })),
        h('div', { class: 'form-row' }, h('label', {}, 'Shutdown'),
          actionButton('worker-shutdown', 'Shut down', () => post(`api/worker/shutdown/${w}`), { done, danger: true, confirm: `Shut down ${hostname}?` }))));
      c.classList.add('wide');
      return c;
    }

    function taskList(items) {
      if (!items || !items.length) return h('p', { class: 'muted' }, 'none');
      return h('table', { class: 'grid compact' }, h('thead', {}, h('tr', {}, h('th', {}, 'Task'), h('th', {}, 'Id'), h('th', {}, 'Args'))),
        h('tbody', {}, items.map((t) => {
          const r = t.request || t;
          return h('tr', {}, h('td', {}, r.name || ''), h('td', {}, r.id ? taskLink(r.id, r.id.slice(0, 8)) : ''), h('td', { class: 'mono clip' }, text(r.args)));
        })));
    }

    async function refresh() {
      let detail = {};
      try {
        const [rows, inspected] = await Promise.all([
          api('api/dashboard/workers'),
          api(`api/workers${qs({ workername: hostname, refresh: 1 })}`).catch((e) => ({ __error: e })),
        ]);
        row = rows.find((r) => r.hostname === hostname) || null;
        if (inspected && inspected.__error) detail = { __error: inspected.__error };
        else detail = (inspected && inspected[hostname]) || {};
      } catch (e) {
        fill(body, errorBox(e));
        return;
      }
      setStatus();
      const stats = detail.stats || {};
      const pool = stats.pool || {};
      const broker = stats.broker || {};
      const reg = (detail.registered || []).map(String);
      const conf = detail.conf || {};
      const timeouts = Array.isArray(pool.timeouts) ? pool.timeouts : [];
      const limitRows = reg.filter((t) => /\[.*(rate_limit|time_limit)/.test(t));
      fill(body, 
        detail.__error ? errorBox(new Error('Could not inspect the worker (' + detail.__error.message + '); it may be offline.')) : null,
        card('Worker', kv([
          ['Status', row ? (row.online ? 'online' : 'offline') : 'not seen'],
          ['Last heartbeat', row && row.last_heartbeat ? `${fmtTime(row.last_heartbeat)} (${fmtAgo(row.last_heartbeat)})` : ''],
          ['Software', row ? [row.sw_ident, row.sw_ver, row.sw_sys].filter(Boolean).join(' ') : ''],
          ['Active', row ? fmtNum(row.active) : ''],
          ['Processed', row ? fmtNum(row.processed) : ''],
          ['Succeeded / failed / retried', row ? `${fmtNum(row.succeeded)} / ${fmtNum(row.failed)} / ${fmtNum(row.retried)}` : ''],
          ['Load', row && Array.isArray(row.loadavg) ? row.loadavg.map((x) => Number(x).toFixed(2)).join(' / ') : ''],
          ['PID', stats.pid],
          ['Uptime', stats.uptime !== undefined ? fmtSeconds(stats.uptime) : ''],
          ['Prefetch count', stats.prefetch_count],
        ])),
        card('Pool', kv([
          ['Implementation', pool.implementation],
          ['Concurrency', pool['max-concurrency'] !== undefined ? pool['max-concurrency'] : (row ? row.pool_size : '')],
          ['Processes', Array.isArray(pool.processes) ? pool.processes.join(', ') : pool.processes],
          ['Max tasks per child', pool['max-tasks-per-child']],
          ['Soft / hard time limit', timeouts.length ? timeouts.map((x) => (x ? fmtSeconds(x) : 'none')).join(' / ') : ''],
          ['Autoscaler', autoscalerText(pool.autoscaler || stats.autoscaler)],
        ])),
        card('Broker', kv(Object.entries(broker).map(([k, v]) => [k, text(v)]))),
        controls(reg),
        card('Queues', (detail.active_queues || []).length
          ? h('table', { class: 'grid compact', testid: 'worker-queues' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Queue'), h('th', {}, 'Exchange'), h('th', {}, 'Routing key'))),
            h('tbody', {}, detail.active_queues.map((q) => h('tr', {}, h('td', {}, q.name), h('td', {}, q.exchange && q.exchange.name !== undefined ? `${q.exchange.name || '(default)'} (${q.exchange.type || ''})` : text(q.exchange)), h('td', {}, q.routing_key || '')))))
          : h('p', { class: 'muted' }, row && row.queues && row.queues.length ? row.queues.join(', ') : 'none known')),
        card(`Registered tasks (${reg.length})`, reg.length ? h('ul', { class: 'tasklist mono' }, reg.map((t) => h('li', {}, t))) : h('p', { class: 'muted' }, 'none known')),
        // conf lists only what was set (Celery's with_defaults=False): a limit it lacks is no limit.
        Object.keys(conf).length ? card('Rate and time limits', h('div', { testid: 'worker-limits' }, kv([
          ['Default rate limit', conf.task_default_rate_limit ? text(conf.task_default_rate_limit) : 'none'],
          ['Time limit (hard)', conf.task_time_limit ? fmtSeconds(conf.task_time_limit) : 'none'],
          ['Time limit (soft)', conf.task_soft_time_limit ? fmtSeconds(conf.task_soft_time_limit) : 'none'],
          ...limitRows.map((t) => [t.replace(/\s*\[.*$/, ''), t.replace(/^[^[]*\[/, '').replace(/\]$/, '')]),
        ]))) : null,
        card(`Active (${(detail.active || []).length})`, taskList(detail.active)),
        card(`Reserved (${(detail.reserved || []).length})`, taskList(detail.reserved)),
        card(`Scheduled (${(detail.scheduled || []).length})`, taskList(detail.scheduled)),
        card(`Revoked (${(detail.revoked || []).length})`, (detail.revoked || []).length ? h('ul', { class: 'tasklist mono' }, detail.revoked.map((id) => h('li', {}, taskLink(id)))) : h('p', { class: 'muted' }, 'none')),
        card('Configuration', Object.keys(conf).length
          ? h('details', {}, h('summary', {}, `${Object.keys(conf).length} settings`), kv(Object.keys(conf).sort().map((k) => [k, text(conf[k])])))
          : h('p', { class: 'muted' }, 'not known')),
        card('Stats', Object.keys(stats).length
          ? h('details', {}, h('summary', {}, 'raw inspect stats'), h('pre', {}, JSON.stringify(stats, null, 2)))
          : h('p', { class: 'muted' }, 'not known')));
      body.querySelectorAll('.card').forEach((c) => { if (c.querySelector('.kv') && !c.querySelector('.kv tr') && !c.querySelector('.forms')) c.remove(); });
    }

    refresh();
    return {
      refresh,
      onWorker(r) {
        if (r.hostname !== hostname) return;
        const wasOnline = row && row.online;
        row = Object.assign(row || {}, r);
        setStatus();
        if (wasOnline !== row.online) refresh();
      },
      dispose() {},
    };
  }

  // ---------- Tasks ----------

  const TASK_COLS = [['Task', ''], ['Id', ''], ['State', ''], ['Args', 'args'], ['Kwargs', 'args'], ['Result', 'args'], ['Received', 'nowrap'], ['Runtime', 'num'], ['Worker', '']];

  function taskCells(t) {
    return [
      t.name || '',
      taskLink(t.uuid, String(t.uuid).slice(0, 8)),
      badge(t.state),
      text(t.args), text(t.kwargs),
      t.state === 'FAILURE' ? text(t.exception) : text(t.result),
      fmtShortTime(t.received || t.sent || t.timestamp),
      t.runtime !== null && t.runtime !== undefined ? fmtSeconds(t.runtime) : '',
      t.worker ? workerLink(t.worker) : '',
    ];
  }

  function makeTaskRow(t) {
    const tr = h('tr', { testid: 'task-row', dataset: { uuid: t.uuid } });
    TASK_COLS.forEach(([, c], i) => tr.append(h('td', { class: c + (i >= 3 && i <= 5 ? ' mono clip' : ''), testid: i === 2 ? 'task-state' : null })));
    patchTaskRow(tr, t);
    return tr;
  }

  function patchTaskRow(tr, t) {
    const prev = tr._task || {};
    const next = Object.assign({}, prev, ...Object.entries(t).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => ({ [k]: v })));
    tr._task = next;
    const cells = taskCells(next);
    Array.from(tr.children).forEach((td, i) => {
      if (i === 2) {
        if (td.firstChild && td.firstChild.textContent === (next.state || 'PENDING')) return;
      } else if (i === 1 || i === 8) {
        if (td.firstChild && td.textContent === (i === 1 ? String(next.uuid).slice(0, 8) : next.worker || '')) return;
      }
      setCell(td, cells[i]);
      if (i >= 3 && i <= 5) td.title = td.textContent;
      if (i === 6) td.title = fmtTime(next.received || next.sent || next.timestamp);
    });
  }

  function tasksView(params) {
    const search = params.get('search') || '';
    const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
    const box = h('input', {
      type: 'search', testid: 'task-search', class: 'search', value: search, spellcheck: 'false',
      placeholder: 'state:FAILURE name:tasks.add args:2,3 kwargs:k=v result:… or free text — Enter to apply',
      'aria-label': 'Search tasks',
    });
    box.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); go('tasks', { search: box.value.trim() }); }
    });
    const total = h('span', { class: 'muted', testid: 'task-total' });
    const pager = h('div', { class: 'pager' });
    const tbody = h('tbody');
    const err = h('div');
    const retryAll = actionButton('retry-all-failed', 'Retry all failed matching', () => post(`api/tasks/retry${qs({ search })}`), {
      confirm: 'Re-send every FAILURE task that matches this filter?',
      done: (r) => { toast(`Retried ${(r.retried || []).length} failed task(s)`); load(); },
      title: 'Re-sends every failed task that matches the filter (at most 1,000 per click); each new task links to the one it retries',
    });
    const quick = h('span', { class: 'quick' }, ['', 'state:FAILURE', 'state:SUCCESS', 'state:STARTED', 'state:RETRY'].map((q) =>
      h('a', { href: hashFor('tasks', { search: q }), class: q === search ? 'on' : '' }, q || 'all')));
    fill(main, 
      pageHead('Tasks', total),
      h('div', { class: 'toolbar' }, box, retryAll),
      h('div', { class: 'toolbar small' }, quick, h('span', { class: 'spacer' }), pager),
      err,
      h('table', { class: 'grid tasks', testid: 'tasks-table' }, h('thead', {}, h('tr', {}, TASK_COLS.map(([c, cls]) => h('th', { class: cls.includes('num') ? 'num' : '' }, c)))), tbody));

    let knownTotal = 0;
    async function load() {
      try {
        const r = await api(`api/dashboard/tasks${qs({ search, offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE, sort_by: '-received' })}`);
        clear(err);
        knownTotal = r.total;
        const tasks = r.tasks || [];
        if (!tasks.length) fill(tbody, emptyRow(TASK_COLS.length, search ? 'No task matches this filter.' : 'No task has been seen yet.'));
        else syncRows(tbody, tasks, (t) => t.uuid, 'uuid', makeTaskRow, patchTaskRow);
        renderPager();
      } catch (e) { fill(err, errorBox(e)); }
    }

    function renderPager() {
      const first = knownTotal ? (page - 1) * PAGE_SIZE + 1 : 0;
      const last = Math.min(knownTotal, page * PAGE_SIZE);
      total.textContent = `${fmtNum(knownTotal)} task${knownTotal === 1 ? '' : 's'}${search ? ' match' : ''}`;
      const pages = Math.max(1, Math.ceil(knownTotal / PAGE_SIZE));
      fill(pager, 
        page > 1 ? h('a', { href: hashFor('tasks', { search, page: page - 1 }), testid: 'page-prev' }, '‹ prev') : h('span', { class: 'muted' }, '‹ prev'),
        h('span', {}, ` ${fmtNum(first)}–${fmtNum(last)} of ${fmtNum(knownTotal)} · page ${page} of ${pages} `),
        page < pages ? h('a', { href: hashFor('tasks', { search, page: page + 1 }), testid: 'page-next' }, 'next ›') : h('span', { class: 'muted' }, 'next ›'));
    }

    // A change to a listed task is patched into its row at once; a task not listed may belong on this page
    // (a new one, or one that now matches the filter), which only the server's search can tell: re-read, at most
    // once a second.
    const reload = debounce(load, 1000);
    load();
    return {
      refresh: load,
      onTask(t) {
        const tr = tbody.querySelector(`tr[data-uuid="${CSS.escape(t.uuid)}"]`);
        if (tr) {
          patchTaskRow(tr, t);
          if (search) reload();
        } else if (page === 1 || search) reload();
      },
      dispose() { reload.cancel(); },
    };
  }

  // ---------- Task detail ----------

  const TASK_FIELDS = ['uuid', 'name', 'state', 'args', 'kwargs', 'result', 'exception', 'worker', 'retries', 'routing_key', 'exchange', 'eta', 'expires',
    'sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected', 'runtime', 'client'];
  const TIME_FIELDS = new Set(['sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected', 'timestamp', 'eta', 'expires']);

  function fieldValue(name, t) {
    const v = t[name];
    if (name === 'state') return badge(v);
    if (name === 'worker') return workerLink(v);
    if (name === 'runtime') return v === null || v === undefined ? '' : fmtSeconds(v);
    if (TIME_FIELDS.has(name)) return typeof v === 'number' ? fmtTime(v) : text(v);
    if (['args', 'kwargs', 'result', 'exception'].includes(name)) return h('code', {}, text(v));
    return text(v);
  }

  function timeline(events) {
    if (!events.length) return h('p', { class: 'muted' }, 'no events');
    const t0 = events[0].timestamp;
    const t1 = events[events.length - 1].timestamp;
    const span = Math.max(t1 - t0, 1e-6);
    const width = 1180;
    const svg = svgEl('svg', { viewBox: `0 0 ${width} 34`, width: '100%', class: 'timeline-bar', role: 'img', 'aria-label': 'event timeline' });
    svg.append(svgEl('line', { x1: 8, x2: width - 8, y1: 17, y2: 17, stroke: '#c5cad1', 'stroke-width': 2 }));
    for (const e of events) {
      const x = 8 + ((e.timestamp - t0) / span) * (width - 16);
      const st = eventState(e.type);
      const c = svgEl('circle', { cx: x.toFixed(1), cy: 17, r: 6, fill: STATE_COLORS[st] || '#1565c0' });
      c.append(svgEl('title', {}, `${e.type} at ${fmtTime(e.timestamp)} (+${fmtSeconds(e.timestamp - t0)})`));
      svg.append(c);
    }
    return h('div', {}, svg, h('table', { class: 'grid compact', testid: 'task-events' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', { class: 'num' }, '+'), h('th', {}, 'Event'), h('th', {}, 'Host'), h('th', {}, 'Fields'))),
      h('tbody', {}, events.map((e) => h('tr', {},
        h('td', { class: 'nowrap' }, fmtTime(e.timestamp)),
        h('td', { class: 'num nowrap muted' }, fmtSeconds(e.timestamp - t0)),
        h('td', {}, h('span', { class: 'badge st-' + eventState(e.type).toLowerCase() }, e.type)),
        h('td', {}, e.hostname || ''),
        h('td', { class: 'mono clip wide' }, Object.entries(e.fields || {}).filter(([k, v]) => v !== null && v !== undefined && v !== '' && !['uuid', 'hostname', 'timestamp', 'type', 'clock', 'local_received', 'utcoffset', 'pid', 'traceback'].includes(k))
          .map(([k, v]) => `${k}=${text(v)}`).join('  ')))))));
  }

  function eventState(type) {
    const m = { 'task-sent': 'PENDING', 'task-received': 'RECEIVED', 'task-started': 'STARTED', 'task-succeeded': 'SUCCESS', 'task-failed': 'FAILURE', 'task-retried': 'RETRY', 'task-revoked': 'REVOKED', 'task-rejected': 'REJECTED' };
    return m[type] || 'PENDING';
  }

  function taskView(id) {
    const head = pageHead('Task');
    const actions = h('div', { class: 'actions', testid: 'task-actions' });
    const body = h('div');
    fill(main, h('div', { class: 'crumbs' }, h('a', { href: '#/tasks' }, 'Tasks'), ' / ', h('span', { class: 'mono' }, id)), head, actions, body);
    const tid = encodeURIComponent(id);

    function renderActions(t) {
      clear(actions);
      if (info.read_only) return;
      if (t.state === 'FAILURE') {
        actions.append(actionButton('retry-task', 'Retry', () => post(`api/task/retry/${tid}`), {
          title: 'Re-send with the same name, args, kwargs and options as a new task linked to this one',
          done: (r) => {
            const el = h('span', {}, 'Retried as ', taskLink(r['task-id']));
            toast(el);
            load();
          },
        }));
      }
      if (!READY_STATES.has(t.state)) {
        actions.append(
          actionButton('revoke-task', 'Revoke', () => post(`api/task/revoke/${tid}`), { done: (r) => { toast(messageOf(r)); load(); } }),
          actionButton('terminate-task', 'Terminate', () => post(`api/task/revoke/${tid}${qs({ terminate: 'true', signal: 'SIGTERM' })}`),
            { danger: true, confirm: 'Terminate the running task (SIGTERM)?', done: (r) => { toast(messageOf(r)); load(); } }));
      }
    }

    async function load() {
      let r;
      try { r = await api(`api/dashboard/task/${tid}`); } catch (e) {
        fill(body, errorBox(e.status === 404 ? new Error(`No task ${id} is known to the dashboard (yet).`) : e));
        clear(actions);
        return;
      }
      const t = r.task || {};
      fill(head, h('h1', {}, t.name || 'Task'), badge(t.state));
      renderActions(t);
      const rows = TASK_FIELDS.filter((f) => t[f] !== null && t[f] !== undefined && t[f] !== '' || ['uuid', 'name', 'state', 'args', 'kwargs'].includes(f))
        .map((f) => h('tr', {}, h('th', {}, f.replace(/_/g, ' ')), h('td', { testid: 'task-field-' + f }, fieldValue(f, t))));
      const links = [
        ['parent', t.parent_id ? taskLink(t.parent_id) : null, 'task-field-parent_id'],
        ['root', t.root_id && t.root_id !== t.uuid ? taskLink(t.root_id) : null, 'task-field-root_id'],
        ['retry of', r.retry_of ? taskLink(r.retry_of) : null, 'task-field-retry_of'],
        ['retried as', (r.retried_as || []).length ? r.retried_as.map((x, i) => [i ? ', ' : '', taskLink(x)]) : null, 'task-field-retried_as'],
        ['children', (r.children || []).length ? r.children.map((x, i) => [i ? ', ' : '', taskLink(x)]) : null, 'task-field-children'],
      ].filter((l) => l[1]);
      fill(body, 
        h('div', { class: 'cards two' },
          card('Details', h('table', { class: 'kv' }, h('tbody', {}, rows))),
          card('Related', links.length
            ? h('table', { class: 'kv' }, h('tbody', {}, links.map(([k, v, testid]) => h('tr', {}, h('th', {}, k), h('td', { testid }, v)))))
            : h('p', { class: 'muted' }, 'no parent, root, children or retries'))),
        t.traceback ? card('Traceback', h('pre', { class: 'traceback', testid: 'task-field-traceback' }, text(t.traceback))) : null,
        card('Timeline', timeline((r.events || []).slice().sort((a, b) => a.timestamp - b.timestamp))));
    }

    const reload = debounce(load, 300);
    load();
    return {
      refresh: load,
      onTask(t) { if (t.uuid === id || t.parent_id === id || t.root_id === id) reload(); },
      dispose() { reload.cancel(); },
    };
  }

  // ---------- Queues ----------

  function sparkline(values) {
    const W = 160, H = 22;
    const svg = svgEl('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'spark', role: 'img', 'aria-label': 'recent lengths' });
    if (values.length < 2) return svg;
    const max = Math.max(...values, 1);
    const pts = values.map((v, i) => `${((i / (SPARK_POINTS - 1)) * (W - 2) + 1).toFixed(1)},${(H - 2 - (v / max) * (H - 4)).toFixed(1)}`);
    svg.append(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: '#1565c0', 'stroke-width': 1.5 }));
    const title = svgEl('title', {}, `last ${values.length} samples, highest ${max}`);
    svg.append(title);
    return svg;
  }

  const SPARK_POINTS = 60;

  function queuesView() {
    const tbody = h('tbody');
    const err = h('div');
    const cols = ['Queue', 'Messages', 'Ready', 'Unacked', 'Consumers', 'Recent'];
    const history = new Map(); // queue -> the lengths this page has read, newest last
    clear(main);
    append(main, [pageHead('Queues', h('span', { class: 'muted' }, 'lengths as the broker reports them, every 3 s; — where the broker does not know')), err,
      h('table', { class: 'grid', testid: 'queues-table' }, h('thead', {}, h('tr', {}, cols.map((c, i) => h('th', { class: i && i < 5 ? 'num' : '' }, c)))), tbody)]);

    function make(q) {
      const tr = h('tr', { testid: 'queue-row', dataset: { queue: q.name } }, h('td', { class: 'mono' }), h('td', { class: 'num', testid: 'queue-messages' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'spark-cell' }));
      patch(tr, q);
      return tr;
    }

    function patch(tr, q) {
      [q.name, fmtNum(q.messages), fmtNum(q.ready), fmtNum(q.unacked), fmtNum(q.consumers)].forEach((v, i) => setCell(tr.children[i], v));
      fill(tr.children[5], sparkline(history.get(q.name) || []));
    }

    async function refresh() {
      try {
        const list = (await api('api/dashboard/queues')).slice().sort((a, b) => a.name.localeCompare(b.name));
        for (const q of list) {
          const h_ = history.get(q.name) || [];
          h_.push(Number(q.messages) || 0);
          if (h_.length > SPARK_POINTS) h_.shift();
          history.set(q.name, h_);
        }
        clear(err);
        if (!list.length) fill(tbody, emptyRow(cols.length, 'No queue is known yet.'));
        else syncRows(tbody, list, (q) => q.name, 'queue', make, patch);
      } catch (e) { fill(err, errorBox(e)); }
    }

    // Queue lengths are not events: they are read from the broker, every few seconds while the page is open.
    const timer = setInterval(refresh, 3000);
    refresh();
    return { refresh, dispose() { clearInterval(timer); } };
  }

  // ---------- Charts (inline SVG) ----------

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function svgEl(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const c of children) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v * (1 - 1e-9)) return m * p;
    return 10 * p;
  }

  // Gridlines at round values: 2 × 10^k splits in 4, every other nice maximum in 5.
  function tickCount(max) {
    const m = max / Math.pow(10, Math.floor(Math.log10(max)));
    return Math.abs(m - 2) < 1e-9 ? 4 : 5;
  }

  function legend(series) {
    return h('div', { class: 'legend' }, series.map((s) => h('span', {}, h('i', { style: `background:${s.color}` }), s.name)));
  }

  // A line chart over time: series [{ name, color, points: [[unixSeconds, value]] }].
  function lineChart(series, opts) {
    const W = 1180, H = opts.height || 220, L = 52, R = 26, T = 10, B = 26;
    const all = series.flatMap((s) => s.points);
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', class: 'chart', role: 'img', 'aria-label': opts.label });
    if (!all.length) return h('p', { class: 'muted' }, opts.empty || 'no data yet');
    const x0 = opts.x0 !== undefined ? opts.x0 : Math.min(...all.map((p) => p[0]));
    const x1 = opts.x1 !== undefined ? opts.x1 : Math.max(...all.map((p) => p[0]), x0 + 60);
    const yMax = niceMax(Math.max(...all.map((p) => p[1]), 1));
    const x = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const y = (v) => T + (1 - v / yMax) * (H - T - B);
    const yTicks = tickCount(yMax);
    for (let i = 0; i <= yTicks; i++) {
      const v = (yMax * i) / yTicks;
      svg.append(svgEl('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }),
        svgEl('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, Number.isInteger(v) ? v : v.toFixed(1)));
    }
    // Time ticks on whole minutes of a round step (1, 2, 5, 10, 15, 30 min, 1, 2, 6 h), at most 8 of them.
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 360].map((m) => m * 60).find((st) => (x1 - x0) / st <= 8) || 720 * 60;
    for (let t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
      svg.append(svgEl('text', { x: x(t), y: H - 8, 'text-anchor': 'middle', class: 'tick' }, fmtClock(t)));
    }
    svg.append(svgEl('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'axis' }));
    for (const s of series) {
      if (!s.points.length) continue;
      const pts = s.points.slice().sort((a, b) => a[0] - b[0]);
      svg.append(svgEl('polyline', { points: pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '), fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
      for (const p of pts) {
        if (opts.zeroMarkers === false && p[1] === 0) continue;
        const c = svgEl('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: pts.length > 30 ? 2 : 3, fill: s.color });
        c.append(svgEl('title', {}, `${s.name} at ${fmtClock(p[0])}: ${p[1]}`));
        svg.append(c);
      }
    }
    return h('div', {}, svg, legend(series));
  }

  // Horizontal grouped bars: rows [{ label, values: [n...] }] with one color per value.
  function barChart(rows, names, colors, fmt) {
    if (!rows.length) return h('p', { class: 'muted' }, 'no finished task yet');
    const W = 1180, L = 260, R = 80, band = 16 * names.length + 12;
    const H = rows.length * band + 24;
    const max = niceMax(Math.max(...rows.flatMap((r) => r.values), 1e-9));
    const x = (v) => L + (v / max) * (W - L - R);
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', class: 'chart', role: 'img', 'aria-label': 'runtime percentiles per task' });
    const xTicks = tickCount(max);
    for (let i = 0; i <= xTicks; i++) {
      const v = (max * i) / xTicks;
      svg.append(svgEl('line', { x1: x(v), x2: x(v), y1: 0, y2: H - 20, class: 'gridline' }), svgEl('text', { x: x(v), y: H - 6, 'text-anchor': 'middle', class: 'tick' }, fmt(v)));
    }
    rows.forEach((r, i) => {
      const top = i * band + 6;
      svg.append(svgEl('text', { x: L - 8, y: top + (band - 12) / 2 + 4, 'text-anchor': 'end', class: 'label' }, r.label.length > 38 ? '…' + r.label.slice(-37) : r.label));
      r.values.forEach((v, j) => {
        const yy = top + j * 16;
        const rect = svgEl('rect', { x: L, y: yy, width: Math.max(1, x(v) - L).toFixed(1), height: 12, fill: colors[j], rx: 2 });
        rect.append(svgEl('title', {}, `${r.label} ${names[j]}: ${fmt(v)}`));
        svg.append(rect, svgEl('text', { x: x(v) + 4, y: yy + 10, class: 'tick' }, fmt(v)));
      });
    });
    return h('div', {}, svg, legend(names.map((n, j) => ({ name: n, color: colors[j] }))));
  }

  function chartsView() {
    const minutesSel = h('select', { 'aria-label': 'window', testid: 'chart-window' }, [15, 60, 360, 1440].map((m) => h('option', { value: m, selected: m === 60 ? true : null }, m < 60 ? `${m} min` : `${m / 60} h`)));
    const body = h('div');
    fill(main, pageHead('Charts', h('span', { class: 'muted' }, 'last '), minutesSel), body);
    minutesSel.addEventListener('change', refresh);

    async function refresh() {
      let s;
      try { s = await api(`api/dashboard/stats${qs({ minutes: minutesSel.value })}`); } catch (e) { fill(body, errorBox(e)); return; }
      const thr = s.throughput || [];
      // Every minute of the window is on the axis; a minute without events is a zero, not a gap the line jumps.
      const minutes = Number(minutesSel.value);
      const end = Math.floor(Date.now() / 60000) * 60;
      const start = end - (minutes - 1) * 60;
      const byMinute = new Map(thr.map((p) => [p.t, p]));
      const axis = [];
      for (let t = start; t <= end; t += 60) axis.push(t);
      const throughput = STATES.map((st) => ({ name: st, color: STATE_COLORS[st], points: axis.map((t) => [t, (byMinute.get(t) || {})[st] || 0]) }))
        .filter((x) => x.points.some((p) => p[1] > 0) || x.name === 'SUCCESS' || x.name === 'FAILURE');
      const names = Array.from(new Set((s.queues || []).map((q) => q.name))).sort();
      const queues = names.map((n, i) => ({ name: n, color: PALETTE[i % PALETTE.length], points: s.queues.filter((q) => q.name === n).map((q) => [q.t, q.messages]) }));
      const runtimes = (s.runtimes || []).slice().sort((a, b) => b.count - a.count).slice(0, 20);
      fill(body, 
        card('Throughput by state (tasks per minute)', h('div', { testid: 'chart-throughput' }, lineChart(thr.length ? throughput : [], { label: 'throughput by state per minute', empty: 'no task event in this window', x0: start, x1: end, zeroMarkers: false }))),
        card('Runtime percentiles per task', h('div', { testid: 'chart-runtimes' },
          barChart(runtimes.map((r) => ({ label: `${r.task} (${fmtNum(r.count)})`, values: [r.p50, r.p90, r.p99].map((v) => Number(v) || 0) })), ['p50', 'p90', 'p99'], ['#90caf9', '#1e88e5', '#0d47a1'], fmtSeconds))),
        card('Queue lengths', h('div', { testid: 'chart-queues' }, lineChart(queues, { label: 'queue lengths over time', empty: 'no queue length sampled in this window', x0: start, x1: end + 59 }))));
    }

    const timer = setInterval(refresh, 10000);
    refresh();
    return { refresh, dispose() { clearInterval(timer); } };
  }

  // ---------- routing and the live stream ----------

  function hashFor(route, params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== null && v !== undefined && !(k === 'page' && Number(v) === 1)) p.set(k, v);
    const s = p.toString();
    return `#/${route}${s ? '?' + s : ''}`;
  }

  function go(route, params) {
    const target = hashFor(route, params);
    if (location.hash === target) route_(); else location.hash = target;
  }

  function route_() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    const [name, ...rest] = path.split('/');
    const arg = rest.length ? decodeURIComponent(rest.join('/')) : '';
    if (view && view.dispose) view.dispose();
    view = null;
    let section = name;
    if (name === 'worker' && arg) { view = workerView(arg); section = 'workers'; }
    else if (name === 'task' && arg) { view = taskView(arg); section = 'tasks'; }
    else if (name === 'tasks') view = tasksView(params);
    else if (name === 'queues') view = queuesView();
    else if (name === 'charts') view = chartsView();
    else { view = workersView(); section = 'workers'; if (name !== 'workers') history.replaceState(null, '', '#/workers'); }
    document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('on', a.dataset.route === section));
    document.title = `Celeriac · ${section[0].toUpperCase()}${section.slice(1)}`;
  }

  function connect() {
    const live = document.getElementById('live');
    const es = new EventSource(BASE + 'api/dashboard/stream');
    let wasDown = false;
    es.addEventListener('open', () => {
      live.textContent = 'live';
      live.className = 'live on';
      // Events missed while the stream was down are caught up by re-reading the page.
      if (wasDown && view && view.refresh) view.refresh();
      wasDown = false;
    });
    es.addEventListener('error', () => {
      live.textContent = 'reconnecting';
      live.className = 'live off';
      wasDown = true;
    });
    const dispatch = (kind) => (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      const fn = view && view[kind];
      if (fn) fn(data);
    };
    es.addEventListener('task', dispatch('onTask'));
    es.addEventListener('worker', dispatch('onWorker'));
  }

  async function boot() {
    try {
      info = await api('api/dashboard');
    } catch (e) {
      fill(main, errorBox(e));
      return;
    }
    const about = document.getElementById('about');
    append(about, [
      info.read_only ? h('span', { class: 'pill warn', testid: 'read-only' }, 'read-only') : null,
      info.broker ? h('span', { class: 'mono', title: 'broker' }, info.broker) : null,
      info.version ? h('span', { class: 'muted' }, 'v' + info.version) : null,
    ]);
    window.addEventListener('hashchange', route_);
    route_();
    connect();
  }

  boot();
})();
