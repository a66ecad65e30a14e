// Rewind's web UI: live fragments over server-sent events, polled
// fragments, the systems filter and the rollback form's confirmation.
// Loaded from the UI itself (the page's CSP allows no inline script).
(function () {
  'use strict';

  // parse turns an HTML fragment from the server into nodes.
  function parse(html) {
    var t = document.createElement('template');
    t.innerHTML = html.trim();
    return t.content;
  }

  // swap replaces el by node, keeping the keyboard focus on the equivalent
  // element (same id or same link) when it was inside.
  function swap(el, node) {
    var a = document.activeElement, key = null;
    if (a && a !== document.body && el.contains(a)) {
      key = a.id ? '#' + CSS.escape(a.id) : (a.getAttribute('href') ? '[href="' + CSS.escape(a.getAttribute('href')) + '"]' : null);
    }
    el.replaceWith(node);
    if (key) {
      var f = node.matches && node.matches(key) ? node : node.querySelector && node.querySelector(key);
      if (f) { f.focus(); }
    }
  }

  // Live updates of the overview and of a system page.
  var live = document.getElementById('live');
  if (live && window.EventSource) {
    var es = new EventSource(live.getAttribute('data-events'));
    es.onopen = function () { live.textContent = 'Live'; live.classList.remove('off'); };
    es.onerror = function () { live.textContent = 'Reconnecting…'; live.classList.add('off'); };
    es.onmessage = function (e) {
      var m = JSON.parse(e.data);
      if (m.sv) { window.location.reload(); return; } // systems came or went
      var f = m.f || {};
      Object.keys(f).forEach(function (id) {
        var el = document.getElementById(id);
        var node = parse(f[id]).firstElementChild;
        if (el && node) { swap(el, node); }
      });
      live.setAttribute('data-version', m.v);
      filter();
    };
  }

  // Polled fragments: data-refresh (a URL) every data-every ms. The element
  // is replaced by the answer, and polling goes on while the answer asks for
  // it; with data-mode="ids", each element of the answer replaces the
  // element with its id.
  function poll(el) {
    var every = parseInt(el.getAttribute('data-every'), 10) || 5000;
    setTimeout(function () {
      fetch(el.getAttribute('data-refresh'), { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.text();
      }).then(function (html) {
        var frag = parse(html);
        if (el.getAttribute('data-mode') === 'ids') {
          frag.querySelectorAll('[id]').forEach(function (n) {
            var old = document.getElementById(n.id);
            var up = n.parentElement;
            if (old && (!up || !up.closest("[id]"))) { swap(old, n.cloneNode(true)); }
          });
          poll(el);
          return;
        }
        var node = frag.firstElementChild;
        if (!node) { return; }
        swap(el, node);
        if (node.hasAttribute('data-refresh')) { poll(node); }
      }).catch(function () { poll(el); });
    }, every);
  }
  document.querySelectorAll('[data-refresh]').forEach(poll);

  // The overview's filter: by name, and only the systems needing attention.
  var byName = document.getElementById('filter'), onlyAttn = document.getElementById('only-attn');
  function filter() {
    if (!byName) { return; }
    var q = byName.value.trim().toLowerCase(), only = onlyAttn && onlyAttn.checked;
    document.querySelectorAll('tbody.sys').forEach(function (tb) {
      var hide = (q && tb.getAttribute('data-name').indexOf(q) < 0) || (only && !tb.hasAttribute('data-attn'));
      tb.classList.toggle('hidden', !!hide);
    });
  }
  if (byName) { byName.addEventListener('input', filter); }
  if (onlyAttn) { onlyAttn.addEventListener('change', filter); }

  // The rollback form: its button stays disabled until the system's name
  // is typed (the server checks it too).
  var confirm = document.getElementById('confirm'), button = document.getElementById('rollback-button');
  if (confirm && button) {
    var check = function () { button.disabled = confirm.value !== confirm.getAttribute('data-must'); };
    confirm.addEventListener('input', check);
    check();
  }
}());
