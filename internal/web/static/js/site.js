// Every portal page loads this small script (in <head>, so the "js" class
// is set before the page is drawn):
// - the menu collapses behind a button on narrow screens;
// - focus moves to the error summary (or the form's error) after a
//   refused form, so a screen reader announces it and Tab starts there;
// - <time datetime> elements are shown in the browser's time zone and in
//   the page's language (one format everywhere); the server's text
//   (UTC) stays when Intl is unavailable.
// Nothing here sends anything anywhere.
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function localiseTimes(root) {
    if (!window.Intl || !Intl.DateTimeFormat) return;
    var lang = document.documentElement.lang || undefined;
    var opts = {
      datetime: { dateStyle: 'medium', timeStyle: 'short' },
      date: { dateStyle: 'medium' }
    };
    root.querySelectorAll('time[datetime][data-fmt]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      var o = opts[el.getAttribute('data-fmt')];
      if (isNaN(d.getTime()) || !o) return;
      try {
        el.textContent = new Intl.DateTimeFormat(lang, o).format(d);
        el.setAttribute('data-localised', '');
      } catch (e) { /* keep the server's text */ }
    });
  }

  function menu() {
    var btn = document.getElementById('menu-toggle');
    var list = document.getElementById('main-nav-list');
    if (!btn || !list) return;
    btn.hidden = false;
    btn.addEventListener('click', function () {
      var open = btn.getAttribute('aria-expanded') === 'true';
      btn.setAttribute('aria-expanded', open ? 'false' : 'true');
    });
  }

  function focusErrors() {
    var box = document.getElementById('error-summary') || document.getElementById('form-error');
    if (box) box.focus();
  }

  document.addEventListener('DOMContentLoaded', function () {
    menu();
    localiseTimes(document);
    focusErrors();
  });
})();
