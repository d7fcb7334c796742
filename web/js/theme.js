// The saved theme, applied before first paint (CSP forbids inline scripts).
(function () {
	try {
		var t = localStorage.getItem('hubbub-theme');
		if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
	} catch (e) {
		/* storage unavailable: follow the system */
	}
})();
