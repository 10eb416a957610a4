// imagegen gallery: a little vanilla JavaScript, no build step. Everything it shows is
// set with textContent or attributes, never parsed as HTML.
(function () {
  'use strict';

  function byId(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function errorMessage(body, status) {
    if (body && body.error && body.error.message) { return body.error.message; }
    return 'The gateway answered ' + status + '.';
  }

  // ---- The grid: new images arrive without a reload. ----
  var grid = byId('grid');
  if (grid && grid.dataset.feed) {
    var since = Number(grid.dataset.since) || Date.now();
    var feed = grid.dataset.feed;
    var poll = function () {
      if (document.hidden) { return; }
      fetch(feed + 'since=' + encodeURIComponent(since), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body || !body.tiles) { return; }
          var known = {};
          Array.prototype.forEach.call(grid.querySelectorAll('li.tile > a'), function (a) { known[a.getAttribute('href')] = true; });
          // Newest first: prepend the oldest first so the newest ends on top.
          body.tiles.slice().reverse().forEach(function (tile) {
            if (tile.created_at_ms > since) { since = tile.created_at_ms; }
            if (known[tile.href]) { return; }
            var li = el('li', { class: 'tile new' });
            var a = el('a', { href: tile.href });
            a.appendChild(el('img', { src: tile.thumb, alt: tile.alt, loading: 'lazy', width: '256', height: '256' }));
            a.appendChild(el('span', { class: 'caption' }, tile.caption));
            li.appendChild(a);
            grid.insertBefore(li, grid.firstChild);
          });
          var empty = byId('empty');
          if (empty && grid.querySelector('li.tile')) { empty.remove(); }
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ });
    };
    window.setInterval(poll, 3000);
  }

  // ---- Generate: estimate as the choices change, then run and follow. ----
  var form = byId('generate');
  if (!form) { return; }
  var prompt = byId('prompt');
  var shape = byId('shape');
  var count = byId('count');
  var model = byId('model');
  var quality = byId('quality');
  var style = byId('style');
  var moodboard = byId('moodboard');
  var kolboOptions = byId('kolbo-options');
  var references = byId('references');
  var referenceFields = byId('reference-fields');
  var addReference = byId('add-reference');
  var submit = byId('submit');
  var plans = byId('plans');
  var tbody = plans.querySelector('tbody');
  var estimateStatus = byId('estimate-status');
  var bar = byId('bar');
  var status = byId('status');
  var result = byId('result');

  function body(forEstimate) {
    var text = prompt.value.trim();
    var request = { prompt: text || (forEstimate ? 'an image' : '') };
    if (shape.value) { request.size = shape.value; }
    var n = parseInt(count.value, 10);
    request.n = isNaN(n) ? 1 : Math.min(Math.max(n, 1), 4);
    if (model.value && model.value !== 'auto') { request.model = model.value; }
    if (quality.value && quality.value !== 'auto') { request.quality = quality.value; }
    if (style.value) { request.style = style.value; }
    var refs = listOf('reference_images', false);
    if (refs.length) { request.reference_images = refs; }
    if (moodboard && moodboard.value.trim()) { request.moodboard_id = moodboard.value.trim(); }
    var dna = listOf('visual_dna_ids', true);
    if (dna.length) { request.visual_dna_ids = dna; }
    return request;
  }

  // The values of the fields named `name` (ticked boxes only; text split at commas when
  // `split`), trimmed, once each.
  function listOf(name, split) {
    var out = [];
    Array.prototype.forEach.call(form.querySelectorAll('[name="' + name + '"]'), function (field) {
      if (field.type === 'checkbox' && !field.checked) { return; }
      (split ? field.value.split(',') : [field.value]).forEach(function (value) {
        var text = value.trim();
        if (text && out.indexOf(text) < 0) { out.push(text); }
      });
    });
    return out;
  }

  // Marks the fields a refused request's `param` names (the form's names are the API's)
  // as invalid; the message itself is in an aria-live status. No param: nothing marked.
  function markInvalid(answerBody) {
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid]'), function (field) { field.removeAttribute('aria-invalid'); });
    var error = answerBody && answerBody.error;
    if (!error || !error.param) { return; }
    var fields = Array.prototype.filter.call(form.querySelectorAll('[name="' + error.param + '"]'), function (field) {
      return field.type === 'checkbox' ? field.checked : true;
    });
    // Of several fields, those whose value the message names; else every filled one.
    if (fields.length > 1) {
      var named = fields.filter(function (field) { return field.value.trim() && String(error.message || '').indexOf(field.value.trim()) >= 0; });
      fields = named.length ? named : fields.filter(function (field) { return field.value.trim(); });
    }
    fields.forEach(function (field) { field.setAttribute('aria-invalid', 'true'); });
  }

  function post(path, request) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(request)
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (json) { return { status: r.status, ok: r.ok, body: json }; });
    });
  }

  function price(value) { return value === null || value === undefined ? '—' : String(value); }

  function modelName(c) { return c.provider + '/' + (c.model || 'auto'); }

  var sequence = 0;
  function estimate() {
    var mine = ++sequence;
    estimateStatus.textContent = 'Estimating…';
    post('/v1/estimate', body(true)).then(function (answer) {
      if (mine !== sequence) { return; }
      while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
      markInvalid(answer.ok ? null : answer.body);
      if (!answer.ok || !answer.body) {
        estimateStatus.textContent = errorMessage(answer.body, answer.status);
        return;
      }
      var candidates = answer.body.candidates || [];
      var eligible = candidates.filter(function (c) { return c.eligible; });
      candidates.forEach(function (c) {
        var row = el('tr', { class: c.eligible ? 'plan' : 'excluded' });
        row.appendChild(el('td', {}, c.eligible ? String(c.rank || '') : '–'));
        row.appendChild(el('td', {}, modelName(c)));
        row.appendChild(el('td', { class: 'credits' }, price(c.total_credits)));
        row.appendChild(el('td', { class: 'usd' }, c.total_usd === null || c.total_usd === undefined ? 'unknown' : '$' + c.total_usd));
        var why = c.reason || '';
        if (c.warnings && c.warnings.length) { why += ' (' + c.warnings.join('; ') + ')'; }
        row.appendChild(el('td', {}, why));
        tbody.appendChild(row);
      });
      if (eligible.length) {
        var best = eligible[0];
        estimateStatus.textContent = 'Would run on ' + modelName(best) + ' for ' + price(best.total_credits) + ' credits' +
          (best.total_usd !== null && best.total_usd !== undefined ? ' ($' + best.total_usd + ')' : '') + '.';
      } else {
        estimateStatus.textContent = 'No model can take this request as it stands: see why below.';
      }
    }).catch(function () {
      if (mine === sequence) { estimateStatus.textContent = 'The estimate could not be reached.'; }
    });
  }

  var timer = null;
  function later() {
    if (timer) { window.clearTimeout(timer); }
    timer = window.setTimeout(estimate, 400);
  }
  [prompt, count].forEach(function (field) { field.addEventListener('input', later); });
  [shape, count, model, quality, style].forEach(function (field) { field.addEventListener('change', later); });
  [kolboOptions, references].forEach(function (box) {
    if (!box) { return; }
    box.addEventListener('change', later);
    box.addEventListener('input', later);
  });
  if (addReference && referenceFields) {
    var maxReferences = parseInt(references.dataset.max, 10) || 1;
    addReference.addEventListener('click', function () {
      var number = referenceFields.querySelectorAll('input[name="reference_images"]').length + 1;
      if (number > maxReferences) { return; }
      var id = 'ref-' + number;
      var line = el('p');
      line.appendChild(el('label', { for: id }, 'Reference image ' + number + ' URL'));
      var input = el('input', { id: id, name: 'reference_images', type: 'url', inputmode: 'url', placeholder: 'https://…', 'aria-describedby': 'references-hint' });
      line.appendChild(input);
      referenceFields.appendChild(line);
      addReference.disabled = number >= maxReferences;
      input.focus();
    });
  }
  estimate();

  function setProgress(percent) {
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    bar.value = value;
    bar.setAttribute('aria-valuenow', String(value));
  }

  function showImages(response) {
    while (result.firstChild) { result.removeChild(result.firstChild); }
    var images = (response && response.imagegen && response.imagegen.images) || [];
    images.forEach(function (image, i) {
      var href = image.detail || '#';
      var link = el('a', { class: 'image-link', href: href });
      var alt = image.alt || prompt.value.trim() || ('Image ' + (i + 1));
      var url = image.url || '';
      var path = url.indexOf('/v1/files/') >= 0 ? url.slice(url.indexOf('/v1/files/')) : url;
      link.appendChild(el('img', { src: path, alt: alt }));
      link.appendChild(el('span', {}, 'Image ' + (i + 1) + ' (' + image.provider + '/' + (image.model || 'auto') + ')'));
      result.appendChild(link);
    });
  }

  function finished(generation) {
    submit.disabled = false;
    var response = generation && generation.response;
    if (generation && generation.status === 'succeeded') {
      setProgress(100);
      var credits = response && response.imagegen ? response.imagegen.credits : null;
      status.textContent = 'Done: ' + ((response && response.data) ? response.data.length : 0) + ' image(s) for ' + price(credits) + ' credits.';
      showImages(response);
    } else {
      status.textContent = 'Failed: ' + errorMessage(response, generation ? generation.http_status : '?');
      showImages(response);
    }
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var request = body(false);
    if (!request.prompt) { status.textContent = 'Write a prompt first.'; prompt.focus(); return; }
    submit.disabled = true;
    setProgress(0);
    while (result.firstChild) { result.removeChild(result.firstChild); }
    status.textContent = 'Sending…';
    post('/v1/generations', request).then(function (answer) {
      if (answer.status !== 202 || !answer.body || !answer.body.id) {
        markInvalid(answer.body);
        submit.disabled = false;
        status.textContent = 'Refused: ' + errorMessage(answer.body, answer.status);
        return;
      }
      status.textContent = 'Queued.';
      var events = new EventSource('/v1/generations/' + encodeURIComponent(answer.body.id) + '/events');
      events.addEventListener('progress', function (message) {
        try {
          var progress = JSON.parse(message.data);
          if (typeof progress.percent === 'number') { setProgress(progress.percent); }
          status.textContent = 'Generating on ' + (progress.provider || '?') + ': ' + (progress.state || 'running') +
            (typeof progress.percent === 'number' ? ' (' + progress.percent + '%)' : '') + '.';
        } catch (e) { /* a malformed event is skipped */ }
      });
      events.addEventListener('done', function (message) {
        events.close();
        var generation = null;
        try { generation = JSON.parse(message.data); } catch (e) { generation = null; }
        finished(generation);
      });
      events.onerror = function () {
        if (events.readyState === EventSource.CLOSED) {
          submit.disabled = false;
          status.textContent = 'Lost the connection to the gateway; the generation goes on: see the gallery.';
        }
      };
    }).catch(function () {
      submit.disabled = false;
      status.textContent = 'The gateway could not be reached.';
    });
  });
}());
