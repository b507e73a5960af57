// Add a device, or give a device a new key, with a key pair made in this
// browser (form.key-form: #add-device on /devices/new, #rotate-key on
// /devices/ID/rotate).
//
// 1. WebCrypto generates an X25519 key pair (WireGuard's curve).
// 2. Only the public key is POSTed to the form's data-action, /devices or
//    /devices/ID/key, with the form's other fields and the CSRF token.
// 3. The device's wg-quick configuration is fetched from the server with an
//    empty PrivateKey line, and the private key is filled in here.
// 4. The result is offered as a download (a Blob URL) and as a QR code drawn
//    on a canvas by the vendored qrcode-generator library.
//
// The private key is never sent to the server, never stored by it, and is
// gone when this page is closed.
(function () {
  'use strict';
  var form = document.querySelector('form.key-form');
  if (!form) return;
  // unsaved is set while the configuration is shown and has been neither
  // downloaded nor copied: leaving the page then asks first.
  var unsaved = false;
  window.addEventListener('beforeunload', function (ev) {
    if (!unsaved) return;
    ev.preventDefault();
    ev.returnValue = '';
  });
  var errorBox = document.getElementById('add-error');
  var submit = document.getElementById('add-submit');

  function b64(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function b64urlToBytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function showError(msg, field) {
    form.querySelectorAll('.field-error').forEach(function (p) { p.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
    form.querySelectorAll('.field.invalid').forEach(function (el) { el.classList.remove('invalid'); });
    var target = field && document.getElementById(field + '-error');
    if (target) {
      target.textContent = msg;
      var input = document.getElementById(field);
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.closest('.field').classList.add('invalid');
        input.focus();
      }
      errorBox.hidden = true;
    } else {
      errorBox.textContent = msg;
      errorBox.hidden = false;
    }
  }

  // newKeyPair returns {publicKey, privateKey} as WireGuard base64 strings.
  async function newKeyPair() {
    if (!window.crypto || !crypto.subtle) {
      throw new Error('This browser cannot create keys (WebCrypto is unavailable). Use the nitronet app instead.');
    }
    var kp;
    try {
      kp = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
    } catch (e) {
      throw new Error('This browser cannot create WireGuard keys (X25519). Update it, or use the nitronet app instead.');
    }
    var pub = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
    var jwk = await crypto.subtle.exportKey('jwk', kp.privateKey);
    var priv = b64urlToBytes(jwk.d);
    if (pub.length !== 32 || priv.length !== 32) throw new Error('Unexpected key size.');
    // Clamp as `wg genkey` does; X25519 clamps anyway, so the public key
    // is unchanged.
    priv[0] &= 248;
    priv[31] = (priv[31] & 127) | 64;
    return { publicKey: b64(pub), privateKey: b64(priv) };
  }

  function drawQR(canvas, text) {
    var qr = qrcode(0, 'L');
    qr.addData(text);
    qr.make();
    var n = qr.getModuleCount();
    var margin = 4;
    var cell = 6;
    var size = (n + 2 * margin) * cell;
    canvas.width = size;
    canvas.height = size;
    var ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = '#000000';
    for (var r = 0; r < n; r++) {
      for (var c = 0; c < n; c++) {
        if (qr.isDark(r, c)) ctx.fillRect((c + margin) * cell, (r + margin) * cell, cell, cell);
      }
    }
  }

  // fileName is the configuration's file name: the whole device name,
  // made safe for file systems.
  function fileName(name) {
    var s = name.toLowerCase().replace(/[^a-z0-9_=+.-]+/g, '-').replace(/^-+|-+$/g, '');
    return 'nitronet-' + (s || 'device') + '.conf';
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      // Without clipboard permission: copy from the (hidden) text area.
      var area = document.getElementById('config-text');
      var details = area.closest('details');
      var wasOpen = details.open;
      details.open = true;
      area.focus();
      area.select();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      details.open = wasOpen;
      return ok;
    }
  }

  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    submit.disabled = true;
    errorBox.hidden = true;
    try {
      var keys = await newKeyPair();
      var body = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.name !== 'csrf') body.set(el.name, el.value);
      });
      body.set('public_key', keys.publicKey);
      var resp = await fetch(form.getAttribute('data-action'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': form.elements.csrf.value, 'Accept': 'application/json' },
        body: body
      });
      var data = null;
      try { data = await resp.json(); } catch (e) { data = null; }
      if (!resp.ok) {
        if (data && data.error) {
          showError(data.error.message, data.error.field);
        } else if (resp.status === 403) {
          showError('Your session has ended or the page is out of date. Reload the page and try again.');
        } else {
          showError('The device could not be added. Try again.');
        }
        return;
      }
      var cresp = await fetch(data.config_url, { credentials: 'same-origin', headers: { 'Accept': 'text/plain' } });
      if (!cresp.ok) {
        showError('The device was added, but its configuration could not be loaded. Remove it and try again.');
        return;
      }
      var template = await cresp.text();
      if (!/^PrivateKey = $/m.test(template)) {
        showError('The configuration from the server is not in the expected form.');
        return;
      }
      var conf = template.replace(/^PrivateKey = $/m, 'PrivateKey = ' + keys.privateKey);
      keys = null;

      var blob = new Blob([conf], { type: 'text/plain' });
      var link = document.getElementById('download');
      var file = fileName(data.name);
      link.href = URL.createObjectURL(blob);
      link.download = file;
      document.getElementById('file-name').textContent = file;
      document.getElementById('result-name').textContent = data.name;
      document.title = 'Configuration for ' + data.name + ' · Nitronet';
      drawQR(document.getElementById('qr'), conf);
      document.getElementById('config-text').value = conf;
      var status = document.getElementById('copy-status');
      link.addEventListener('click', function () { unsaved = false; });
      document.getElementById('copy-config').addEventListener('click', async function () {
        if (await copyText(conf)) {
          unsaved = false;
          status.textContent = 'Copied.';
        } else {
          status.textContent = 'Copying failed: select the text below and copy it.';
        }
      });
      unsaved = true;
      form.hidden = true;
      var result = document.getElementById('result');
      result.hidden = false;
      result.focus();
    } catch (e) {
      showError(e && e.message ? e.message : 'The device could not be added.');
    } finally {
      submit.disabled = false;
    }
  });
})();
