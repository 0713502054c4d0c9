/* The drag-and-drop uploader (templates/assets/_uploader.html): an Uppy Dashboard on each
   form[data-uploader], sending files with tus to /v1/uploads in chunks.  tus-js-client retries
   after a network error (HEAD for the offset, then PATCH from there), so an upload survives a
   dropped connection or a restart of Core; the Dashboard shows per-file and total progress,
   pause/resume and retry.  Kind, entity and role come from the form and travel as tus metadata;
   the session's CSRF token goes in the X-CSRF-Token header (the cookie goes by itself).  When
   uploads finish, the list named by data-refresh-target is refreshed with htmx.

   The Attachments tab may be swapped in by htmx more than once, and this script comes with it
   each time: the first run installs everything (window.ffUploader), later runs only mount new
   forms.  Each form is mounted once (data-uploader-state); its Uppy is destroyed when htmx
   removes the form.  The vendored Uppy bundle (data-uppy-script) is loaded once, on demand.

   window.ffUploaderOptions, if set before a form is mounted, overrides Tus options (e.g.
   chunkSize): the browser tests use small chunks to have many requests to cut. */
(function () {
  "use strict";
  if (window.ffUploader) {
    window.ffUploader.mountAll(document);
    return;
  }

  var MiB = 1024 * 1024;
  var TUS_OPTIONS = {
    chunkSize: 8 * MiB,
    // after a network error: retry at once, then back off; ~2 minutes in all covers a restart
    retryDelays: [0, 1000, 3000, 5000, 10000, 15000, 20000, 30000, 30000],
    removeFingerprintOnSuccess: true,
    limit: 3,
  };
  var META_KEYS = ["kind", "entity_id", "role"];
  var ENTITY_ID = /^[0-9a-f]{64}$/;
  var STORAGE_PREFIX = "ffUploads::";
  var loading = null;

  function loadUppy(src) {
    if (window.Uppy) return Promise.resolve(window.Uppy);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = function () {
          if (window.Uppy && window.Uppy.Uppy) resolve(window.Uppy);
          else reject(new Error("the Uppy bundle defined no window.Uppy"));
        };
        script.onerror = function () {
          loading = null;
          reject(new Error("could not load " + src));
        };
        document.head.append(script);
      });
    }
    return loading;
  }

  /* The message of the server's error envelope {"error": {"message"}} (or its status), or
     null when no answer came (a network error: Uppy's own message says so). */
  function serverMessage(error) {
    var response = error && (error.originalResponse || (error.cause && error.cause.originalResponse));
    if (!response || !response.getStatus()) return null;
    try {
      var body = JSON.parse(response.getBody());
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not the error envelope */ }
    return "the server answered HTTP " + response.getStatus();
  }

  /* What the form says now: tus metadata values (only those given), or a problem. */
  function formMeta(form) {
    var meta = {};
    var entity = form.dataset.entityId ||
      (form.elements.entity_id ? form.elements.entity_id.value.trim().toLowerCase() : "");
    var kind = form.elements.kind.value;
    var role = form.elements.role.value.trim();
    if (entity && !ENTITY_ID.test(entity)) {
      return { problem: "An entity id is 64 hexadecimal characters." };
    }
    if (role && !entity) {
      return { problem: "A role is the role of a link: give an entity to link the files to." };
    }
    if (entity) meta.entity_id = entity;
    if (kind) meta.kind = kind;
    if (role) meta.role = role;
    return { meta: meta };
  }

  function sameMeta(a, b) {
    return META_KEYS.every(function (key) { return (a || {})[key] === (b || {})[key]; });
  }

  /* tus-js-client's URL storage (localStorage, as its own), except that it only offers to
     resume an earlier upload of the same file made with the same kind, entity and role: a
     file dropped again on another entity must not finish the first one's upload. */
  function resumeStore(meta) {
    var storage;
    try { storage = window.localStorage; } catch (e) { storage = null; }
    function entries(prefix) {
      var found = [];
      if (!storage) return found;
      for (var i = 0; i < storage.length; i += 1) {
        var key = storage.key(i);
        if (key && key.indexOf(prefix) === 0) {
          try {
            var upload = JSON.parse(storage.getItem(key));
            upload.urlStorageKey = key;
            found.push(upload);
          } catch (e) { /* not ours */ }
        }
      }
      return found;
    }
    return {
      findAllUploads: function () { return Promise.resolve(entries(STORAGE_PREFIX)); },
      findUploadsByFingerprint: function (fingerprint) {
        return Promise.resolve(entries(STORAGE_PREFIX + fingerprint + "::").filter(
          function (upload) { return sameMeta(upload.metadata, meta); }));
      },
      removeUpload: function (key) {
        if (storage) storage.removeItem(key);
        return Promise.resolve();
      },
      addUpload: function (fingerprint, upload) {
        var key = STORAGE_PREFIX + fingerprint + "::" + Math.round(Math.random() * 1e12);
        if (storage) {
          try { storage.setItem(key, JSON.stringify(upload)); } catch (e) { /* full: no resume */ }
        }
        return Promise.resolve(key);
      },
    };
  }

  /* The Uppy meta of a file given the form's: its own name and type, plus ours (a key the
     form no longer gives is dropped, so it is not sent). */
  function fileWithMeta(file, meta) {
    var own = { name: file.meta.name, type: file.meta.type };
    if (!own.type) delete own.type;
    var tus = { urlStorage: resumeStore(meta) };
    // an upload already created with other metadata is not resumed with the new
    if (file.tus && file.tus.uploadUrl && sameMeta(file.meta, meta)) {
      tus.uploadUrl = file.tus.uploadUrl;
    }
    return Object.assign({}, file, { meta: Object.assign(own, meta), tus: tus });
  }

  function refresh(form) {
    var selector = form.dataset.refreshTarget;
    var target = selector && document.querySelector(selector);
    if (!target) return;
    var url = target.dataset.url || window.location.pathname + window.location.search;
    if (!window.htmx) {
      window.location.assign(url);
      return;
    }
    var outer = form.dataset.refreshSwap === "outer";
    window.htmx.ajax("GET", url, outer
      ? { target: selector, select: selector, swap: "outerHTML" }
      : { target: selector, swap: "innerHTML" });
  }

  function start(Uppy, form) {
    var dashboard = document.getElementById(form.id + "-dashboard");
    var uppy = new Uppy.Uppy({
      id: form.id,
      autoProceed: false,
      onBeforeUpload: function (files) {
        var given = formMeta(form);
        if (given.problem) {
          uppy.info(given.problem, "error", 8000);
          clearErrors();
          sayError(given.problem);
          return false;
        }
        var out = {};
        Object.keys(files).forEach(function (id) { out[id] = fileWithMeta(files[id], given.meta); });
        return out;
      },
    });
    uppy.use(Uppy.Dashboard, {
      inline: true,
      target: dashboard,
      width: "100%",
      height: Number(form.dataset.height) || 300,
      theme: "auto",
      hideProgressDetails: false,
      hidePauseResumeButton: false,
      hideRetryButton: false,
      hideProgressAfterFinish: false,
      showLinkToFileUploadResult: true,
      fileManagerSelectionType: "both",
      proudlyDisplayPoweredByUppy: false,
      note: "Files or whole folders; an upload resumes where it stopped after a dropped connection.",
    });
    uppy.use(Uppy.Tus, Object.assign({}, TUS_OPTIONS, window.ffUploaderOptions || {}, {
      endpoint: form.dataset.tusEndpoint,
      headers: { "X-CSRF-Token": form.dataset.csrfToken },
      allowedMetaFields: true,
      // the Dashboard shows error.message (the file's error, the informer's details): make
      // it the server's words rather than tus-js-client's account of the request
      onError: function (error) {
        var message = serverMessage(error);
        if (message) error.message = message;
      },
    }));

    // A retry (the Dashboard's button) skips onBeforeUpload: files not under way take the
    // form's values as they change, so a corrected entity or kind is what a retry sends.
    form.addEventListener("change", function () {
      var given = formMeta(form);
      if (given.problem) return;
      uppy.getFiles().forEach(function (file) {
        var busy = file.progress.uploadStarted && !file.error;  // or paused: it resumes as it was
        if (!file.progress.uploadComplete && !busy) {
          var updated = fileWithMeta(file, given.meta);
          uppy.setFileState(file.id, { meta: updated.meta, tus: updated.tus });
        }
      });
    });
    // Enter in a field starts the uploads rather than posting the fallback form.
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (uppy.getFiles().length) uppy.upload().catch(function () { /* shown by the Dashboard */ });
    });

    // Uppy's informer shows an upload's error behind a "?": say it in the page too
    var errors = document.getElementById(form.id + "-error");
    function clearErrors() {
      errors.textContent = "";
      errors.hidden = true;
    }
    function sayError(text) {
      var line = document.createElement("span");
      line.className = "upload-error";
      line.textContent = text;
      if (errors.childNodes.length) errors.append(document.createElement("br"));
      errors.append(line);
      errors.hidden = false;
    }
    uppy.on("upload", clearErrors);
    uppy.on("upload-retry", clearErrors);
    uppy.on("retry-all", clearErrors);
    uppy.on("upload-error", function (file, error) {
      if (file && error) sayError(file.name + ": " + error.message);
    });
    uppy.on("upload-success", function (file, response) {
      var xhr = response && response.body && response.body.xhr;
      var assetId = xhr && xhr.getResponseHeader && xhr.getResponseHeader("FaceForge-Asset-Id");
      if (file && assetId) {
        uppy.setFileState(file.id, { uploadURL: "/ui/assets/" + assetId, assetId: assetId });
      }
    });
    uppy.on("complete", function (result) {
      if (result && result.successful && result.successful.length) refresh(form);
    });

    form.querySelectorAll(".upload-fallback").forEach(function (element) {
      element.hidden = true;
    });
    if (form.elements.file) form.elements.file.disabled = true;
    form.hidden = false;
    dashboard.hidden = false;
    form.ffUppy = uppy;
    form.dataset.uploaderState = "ready";
  }

  function mount(form) {
    if (form.dataset.uploaderState) return;
    form.dataset.uploaderState = "loading";
    loadUppy(form.dataset.uppyScript).then(function (Uppy) {
      if (form.isConnected) start(Uppy, form);
    }).catch(function (error) {
      form.dataset.uploaderState = "failed";
      var note = document.getElementById(form.id + "-error");
      if (note) {
        note.textContent = "The drag-and-drop uploader could not start (" + error.message +
          ")." + (form.elements.file ? " The plain form below still uploads." : "");
        note.hidden = false;
      }
    });
  }

  function mountAll(root) {
    if (root.matches && root.matches("form[data-uploader]")) mount(root);
    root.querySelectorAll("form[data-uploader]").forEach(mount);
  }

  window.ffUploader = { mountAll: mountAll };
  document.addEventListener("htmx:load", function (event) { mountAll(event.detail.elt); });
  // htmx removes the form (the tab is swapped again): stop its uploads and listeners
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var form = event.target;
    if (form && form.ffUppy) {
      form.ffUppy.destroy();
      form.ffUppy = null;
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { mountAll(document); });
  } else {
    mountAll(document);
  }
})();
