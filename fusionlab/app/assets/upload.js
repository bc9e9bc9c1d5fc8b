// fusionlab sessions page: send the chosen recording to the login-protected upload route as the raw request body
// (streamed to disk by the server, no base64 through a Dash callback), with the upload progress in the status line.
// The ingest job that follows is shown by the page's polling callback (dcc.Interval).
(function () {
  "use strict";
  function status(text) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props("upload-status", {children: text});
    }
  }
  function value(id) {
    var el = document.getElementById(id);
    return el ? el.value : "";
  }
  var chosen = null;  // the File picked with the "Choose file" button
  // the picker's <input type=file> lives outside Dash's tree (Dash has no such component); tests set its files
  var picker = null;
  function getPicker(accept) {
    if (!picker) {
      picker = document.createElement("input");
      picker.type = "file";
      picker.id = "upload-file-input";
      picker.style.display = "none";
      picker.addEventListener("change", function () {
        chosen = picker.files && picker.files[0] ? picker.files[0] : null;
        if (chosen) {
          status("chosen: " + chosen.name + " (" + (chosen.size / 1e6).toFixed(1) + " MB)");
        }
      });
      document.body.appendChild(picker);
    }
    picker.accept = accept || "";
    return picker;
  }
  document.addEventListener("click", function (ev) {
    var choose = ev.target && ev.target.closest ? ev.target.closest("#upload-file") : null;
    if (choose) {
      ev.preventDefault();
      getPicker(choose.getAttribute("data-accept")).click();
      return;
    }
    var btn = ev.target && ev.target.closest ? ev.target.closest("#upload-button") : null;
    if (!btn) {
      return;
    }
    ev.preventDefault();
    var file = chosen;
    if (!file) {
      status("Choose a recording first.");
      return;
    }
    var max = Number(btn.getAttribute("data-max-bytes") || "0");
    if (max && file.size > max) {  // the server checks again (413)
      status(file.name + " is " + (file.size / 1e6).toFixed(1) + " MB; the limit is " + (max / 1e6).toFixed(1) + " MB.");
      return;
    }
    var proc = document.querySelector("#upload-process input[type=checkbox]");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/_fusionlab/upload");
    xhr.setRequestHeader("X-Requested-With", "fusionlab-upload");
    xhr.setRequestHeader("X-Upload-Name", encodeURIComponent(file.name));
    xhr.setRequestHeader("X-Upload-Target", value("upload-target") || "new");
    xhr.setRequestHeader("X-Upload-Subject", encodeURIComponent(value("upload-subject")));
    xhr.setRequestHeader("X-Upload-Date", encodeURIComponent(value("upload-date")));
    xhr.setRequestHeader("X-Upload-Process", proc && proc.checked ? "1" : "0");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        status("uploading " + file.name + ": " + Math.round(100 * e.loaded / e.total) + " %");
      }
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      status(body.message || body.error || ("upload failed (HTTP " + xhr.status + ")"));
      btn.disabled = false;
      if (xhr.status === 202) {
        chosen = null;
        if (picker) { picker.value = ""; }
      }
    };
    xhr.onerror = function () {
      status("upload failed: the connection was lost.");
      btn.disabled = false;
    };
    btn.disabled = true;
    status("uploading " + file.name + " ...");
    xhr.send(file);
  });
})();
