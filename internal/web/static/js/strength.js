// Password strength meter for inputs with data-strength="ID-of-output".
// It shows the server's own verdict: it asks POST /api/v1/password-check,
// the check that sign-up, reset and password change apply, so the page
// never calls a password weak that the server accepts, or the reverse. The
// context the server judges with (the email address and mobile number the
// password must not be built from, or the reset token that names the
// account) comes from the same form. The request is not logged by the
// server; nothing is stored.
(function () {
  'use strict';
  var WAIT = 300; // ms after the last keystroke

  var words = ['Too weak', 'Weak', 'Fair', 'Strong', 'Very strong'];

  function context(form) {
    var pick = function (sel) {
      var el = form && form.querySelector(sel);
      return el && el.value ? el.value : '';
    };
    return {
      email: pick('input[name="email"]') || pick('input[autocomplete="username"]'),
      mobile: pick('input[name="mobile"]') || pick('input[data-mobile]'),
      reset_token: pick('input[name="token"]')
    };
  }

  function show(out, v) {
    out.setAttribute('data-level', String(v.score));
    out.setAttribute('data-acceptable', v.acceptable ? 'yes' : 'no');
    var text = 'Strength: ' + words[Math.max(0, Math.min(4, v.score))] + '.';
    if (!v.acceptable) {
      text += ' Not accepted.';
    }
    if (v.feedback && v.feedback.length) {
      text += ' ' + v.feedback.join(' ');
    }
    out.textContent = text;
  }

  document.querySelectorAll('input[data-strength]').forEach(function (input) {
    var out = document.getElementById(input.getAttribute('data-strength'));
    if (!out) return;
    var timer = null;
    var seq = 0;
    var check = function () {
      var pw = input.value;
      var mine = ++seq;
      if (pw === '') {
        out.textContent = '';
        out.removeAttribute('data-level');
        out.removeAttribute('data-acceptable');
        return;
      }
      var body = context(input.form);
      body.password = pw;
      fetch('/api/v1/password-check', {
        method: 'POST',
        credentials: 'omit',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body)
      }).then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      }).then(function (v) {
        if (mine === seq) show(out, v);
      }).catch(function () {
        if (mine !== seq) return;
        out.removeAttribute('data-level');
        out.removeAttribute('data-acceptable');
        out.textContent = 'Strength: not checked right now; the server checks it when you submit.';
      });
    };
    var later = function () {
      clearTimeout(timer);
      timer = setTimeout(check, WAIT);
    };
    input.addEventListener('input', later);
    // The context fields change the verdict too.
    if (input.form) {
      input.form.querySelectorAll('input[name="email"], input[name="mobile"], input[name="token"]').forEach(function (el) {
        el.addEventListener('input', function () { if (input.value) later(); });
      });
    }
  });
})();
