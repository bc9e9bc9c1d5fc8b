// fusionlab: skip plotly re-layouts that would change nothing. dcc.Graph calls Plotly.Plots.resize once right
// after the first draw (and on container size changes); plotly then deletes the layout's size and re-lays the whole
// figure out (~0.1-0.2 s for the session overview on a 2-core machine) even when the graph's size is unchanged.
// Here a resize whose graph already has the size plotly would compute (its computed width and height) resolves at
// once; any real size change (window resize, video panel) still goes to plotly. Served from the package.
(function () {
  "use strict";
  function install(P) {
    if (!P || !P.Plots || !P.Plots.resize || P.Plots.resize.__fusionlab) {
      return;
    }
    var orig = P.Plots.resize;
    var patched = function (gd) {
      var el = typeof gd === "string" ? document.getElementById(gd) : gd;
      var fl = el && el._fullLayout;
      if (fl && el.layout && !el._redrawTimer) {
        var cs = window.getComputedStyle(el);
        var w = parseFloat(cs.width), h = parseFloat(cs.height);
        if (w && h && Math.abs(w - fl.width) < 0.5 && Math.abs(h - fl.height) < 0.5) {
          return Promise.resolve(el);
        }
      }
      return orig.apply(this, arguments);
    };
    patched.__fusionlab = true;
    P.Plots.resize = patched;
  }
  if (window.Plotly) {
    install(window.Plotly);
  } else {  // plotly.js loaded later (lazily): patch it when it arrives
    var poll = setInterval(function () {
      if (window.Plotly) {
        clearInterval(poll);
        install(window.Plotly);
      }
    }, 50);
    setTimeout(function () { clearInterval(poll); }, 60000);
  }
})();
