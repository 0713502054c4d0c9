/* The Attachments tab's uploader: each chosen file goes to /v1/assets/upload in its own
   XMLHttpRequest (a few at a time) with a <progress> bar fed by upload.onprogress; the
   session's CSRF token travels in the X-CSRF-Token header. When every file has finished, the
   attachment list is refreshed with htmx. Without JavaScript the form posts to the UI route.

   The tab may be swapped in by htmx more than once: the submit handler is installed once, on
   the document, and finds the form by its id. */
(function () {
  "use strict";
  if (window.ffAssetUploads) return;
  window.ffAssetUploads = true;
  var PARALLEL = 3;

  function apiError(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not the error envelope */ }
    return xhr.status ? "HTTP " + xhr.status : "the connection failed";
  }

  function addRow(list, file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    var bar = document.createElement("progress");
    var status = document.createElement("span");
    item.className = "upload-item";
    item.dataset.state = "waiting";
    name.className = "upload-name";
    name.textContent = file.name;
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    status.className = "upload-status";
    status.textContent = "waiting";
    item.append(name, bar, status);
    list.append(item);
    return { item: item, bar: bar, status: status };
  }

  function send(form, file, row) {
    return new Promise(function (resolve) {
      var data = new FormData();
      var kind = form.elements.kind.value;
      var role = form.elements.role.value.trim();
      if (kind) data.append("kind", kind);
      if (role) data.append("role", role);
      data.append("entity_id", form.dataset.entityId);
      data.append("file", file, file.name);

      function finish(ok, text) {
        row.item.dataset.state = ok ? "done" : "failed";
        row.status.textContent = text;
        if (ok) row.bar.value = 100;
        resolve(ok);
      }

      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.uploadApi);
      xhr.setRequestHeader("X-CSRF-Token", form.elements.csrf_token.value);
      xhr.upload.onprogress = function (event) {
        if (!event.lengthComputable) return;
        row.bar.value = Math.round((event.loaded * 100) / event.total);
        row.status.textContent = row.bar.value + "%";
      };
      xhr.onload = function () {
        if (xhr.status !== 200 && xhr.status !== 201) {
          finish(false, "failed: " + apiError(xhr));
          return;
        }
        var asset = JSON.parse(xhr.responseText);
        row.item.dataset.assetId = asset.asset_id;
        finish(true, asset.deduplicated ? "done (already stored)" : "done");
      };
      xhr.onerror = function () { finish(false, "failed: the connection failed"); };
      xhr.onabort = function () { finish(false, "cancelled"); };
      row.item.dataset.state = "sending";
      row.status.textContent = "0%";
      xhr.send(data);
    });
  }

  /* The list as it is now shown (its kind filter), from its first page. */
  function refresh() {
    var list = document.getElementById("attachment-list");
    var url = list ? list.dataset.url : window.location.href;
    if (window.htmx && list) {
      window.htmx.ajax("GET", url, {
        target: "#attachment-list", select: "#attachment-list", swap: "outerHTML",
      });
    } else {
      window.location.assign(url);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "attachment-upload") return;
    var files = Array.prototype.slice.call(form.elements.file.files);
    if (!files.length || !window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    var list = document.getElementById("upload-progress");
    var summary = document.getElementById("upload-summary");
    var button = form.querySelector("button[type=submit]");
    var queue = files.map(function (file) { return [file, addRow(list, file)]; });
    var ok = 0;
    button.disabled = true;
    summary.textContent = "Uploading " + files.length + (files.length === 1 ? " file…" : " files…");

    function worker() {
      var next = queue.shift();
      if (!next) return Promise.resolve();
      return send(form, next[0], next[1]).then(function (done) {
        if (done) ok += 1;
        return worker();
      });
    }

    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL, files.length); i += 1) workers.push(worker());
    Promise.all(workers).then(function () {
      button.disabled = false;
      form.elements.file.value = "";
      var failed = files.length - ok;
      summary.textContent = ok + (ok === 1 ? " file" : " files") + " uploaded" +
        (failed ? ", " + failed + " failed." : ".");
      summary.dataset.state = failed ? "failed" : "done";
      if (ok) refresh();
    });
  });
})();
