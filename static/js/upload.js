// Large uploads with a progress bar: the form posts with XMLHttpRequest so the browser reports bytes sent.
// Without JavaScript the form still works as a plain multipart POST.
(function () {
  "use strict";
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    var bar = form.querySelector("[role=progressbar]");
    var fill = form.querySelector(".progress-fill");
    var status = form.querySelector("[data-upload-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("Accept", "application/json");
      // The CSRF token in a header is checked before the server reads the body (in the form it is checked after).
      var token = form.querySelector("input[name=csrfmiddlewaretoken]");
      if (token) { request.setRequestHeader("X-CSRFToken", token.value); }
      bar.hidden = false;
      status.textContent = "Uploading...";
      request.upload.addEventListener("progress", function (progress) {
        if (!progress.lengthComputable) { return; }
        var percent = Math.round((progress.loaded / progress.total) * 100);
        bar.setAttribute("aria-valuenow", String(percent));
        fill.style.width = percent + "%";
        status.textContent = percent < 100 ? "Uploading: " + percent + "%" : "Checking and encrypting...";
      });
      request.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(request.responseText); } catch (ignored) { body = {}; }
        if (request.status < 300 && body.url) {
          status.textContent = body.message || "Uploaded.";
          window.location.assign(body.url);
        } else {
          var message = body.error ? body.error.message : "The upload failed (" + request.status + ").";
          status.textContent = message;
          status.setAttribute("role", "alert");
          fill.style.width = "0%";
        }
      });
      request.addEventListener("error", function () {
        status.textContent = "The connection failed during the upload.";
        status.setAttribute("role", "alert");
      });
      request.send(new FormData(form));
    });
  });
})();
