// fusionlab session page: the session time under the mouse (the x of the shared time axis) goes to the store
// "session-cursor", at most every 60 ms (plus the last position), so the video frame follows the cursor anywhere
// over the plots, not only near a drawn point. Served from the package like the stylesheet (no CDN).
(function () {
  "use strict";
  var STORE = "session-cursor";  // a dcc.Store: no DOM element, so the video image tells whether it is there
  var PERIOD_MS = 60;
  var lastSent = 0, timer = null, pendingT = null, sentT = null;

  function send() {
    timer = null;
    if (pendingT === null || pendingT === sentT || !window.dash_clientside || !window.dash_clientside.set_props) {
      return;
    }
    sentT = pendingT;
    lastSent = Date.now();
    window.dash_clientside.set_props(STORE, {data: {t: pendingT}});
  }

  document.addEventListener("mousemove", function (ev) {
    var gd = ev.target && ev.target.closest ? ev.target.closest("#session-graph .js-plotly-plot") : null;
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || !document.getElementById("session-video-img")) {
      return;
    }
    var xa = gd._fullLayout.xaxis;
    var px = ev.clientX - gd.getBoundingClientRect().left - xa._offset;
    if (px < 0 || px > xa._length) {
      return;
    }
    var t = xa.p2l(px);
    if (!isFinite(t)) {
      return;
    }
    pendingT = Math.round(t * 1000) / 1000;
    var wait = PERIOD_MS - (Date.now() - lastSent);
    if (wait <= 0) {
      send();
    } else if (timer === null) {
      timer = setTimeout(send, wait);
    }
  }, {passive: true});
})();
