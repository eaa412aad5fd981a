// Runs before first paint (a classic, blocking script in <head>): apply the remembered theme so
// the page never flashes the wrong palette. Dark is the default.
(function () {
  var theme = "dark";
  try {
    var saved = window.localStorage.getItem("theme");
    if (saved === "light" || saved === "dark") theme = saved;
  } catch (e) { /* storage blocked: keep the default */ }
  document.documentElement.setAttribute("data-theme", theme);
})();
