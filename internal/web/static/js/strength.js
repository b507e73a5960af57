// Password strength hint for inputs with data-strength="ID-of-output".
// It runs only in this page: the password is never sent anywhere by it.
// The hint is advice; the server enforces the real rule (length).
(function () {
  'use strict';
  var MIN = 10;

  function score(pw) {
    var n = Array.from(pw).length;
    if (n === 0) return -1;
    if (n < MIN) return 0;
    var kinds = 0;
    if (/[a-z]/.test(pw)) kinds++;
    if (/[A-Z]/.test(pw)) kinds++;
    if (/[0-9]/.test(pw)) kinds++;
    if (/[^A-Za-z0-9]/.test(pw)) kinds++;
    var distinct = new Set(Array.from(pw)).size;
    var s = 1;
    if (n >= 14) s++;
    if (n >= 20) s++;
    if (kinds >= 3) s++;
    if (distinct < 5) s = 1;
    return Math.min(s, 4);
  }

  var words = [
    'Too short: at least ' + MIN + ' characters.',
    'Weak: make it longer, or mix letters, digits and symbols.',
    'Fair: a few more characters would make it stronger.',
    'Strong.',
    'Very strong.'
  ];

  document.querySelectorAll('input[data-strength]').forEach(function (input) {
    var out = document.getElementById(input.getAttribute('data-strength'));
    if (!out) return;
    input.addEventListener('input', function () {
      var s = score(input.value);
      if (s < 0) {
        out.textContent = '';
        out.removeAttribute('data-level');
        return;
      }
      out.setAttribute('data-level', String(s));
      out.textContent = 'Strength: ' + words[s];
    });
  });
})();
