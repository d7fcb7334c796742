// Applies the saved theme before first paint (a classic script, so it runs
// before the page renders; CSP forbids inline scripts).
(function () {
  try {
    var t = localStorage.getItem('hubbub-theme');
    if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  } catch (e) {
    /* storage unavailable: follow the system */
  }
})();
