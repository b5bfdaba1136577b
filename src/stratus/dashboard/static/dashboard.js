// Stratus dashboard: the few live parts of the pages (hand-written, no framework).
// Every value from the APIs goes into the page as text (textContent), never as HTML.
"use strict";

function csrfToken() {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

// Instances: refresh status, task, fault and addresses every 2 s without a reload.
function liveInstances(table) {
  var url = table.getAttribute("data-status-url");
  function cell(row, cls, text) {
    var el = row.querySelector("." + cls);
    if (el && el.textContent !== text) { el.textContent = text; }
  }
  function addRow(s) {
    var tbody = table.querySelector("tbody");
    var row = document.createElement("tr");
    row.setAttribute("data-id", s.id);
    ["name", "image", "flavor", "addresses", "status", "task", "actions"].forEach(function (c) {
      var td = document.createElement("td");
      td.className = c;
      row.appendChild(td);
    });
    tbody.appendChild(row);
    return row;
  }
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401) { window.location = "/auth/login/"; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body) { return; }
        var seen = {};
        body.servers.forEach(function (s) {
          seen[s.id] = true;
          var row = table.querySelector('tr[data-id="' + s.id + '"]') || addRow(s);
          cell(row, "name", s.name);
          cell(row, "status", s.status);
          cell(row, "addresses", s.addresses.join(", "));
          var task = row.querySelector(".task");
          if (task) {
            var text = s.task_state + (s.fault ? " " + s.fault : "");
            if (task.textContent !== text) { task.textContent = text; }
          }
        });
        table.querySelectorAll("tbody tr[data-id]").forEach(function (row) {
          if (!seen[row.getAttribute("data-id")]) { row.parentNode.removeChild(row); }
        });
      })
      .catch(function () {})
      .then(function () { window.setTimeout(tick, 2000); });
  }
  window.setTimeout(tick, 2000);
}

// Images: create the record, then send the file with a progress bar (streamed through
// the dashboard to the image API).
function imageUpload(form) {
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = form.querySelector('input[type="file"]').files[0];
    var state = document.getElementById("upload-state");
    var bar = document.getElementById("upload-progress");
    if (!file) { state.textContent = "Choose a file."; return; }
    var data = new URLSearchParams();
    ["csrfmiddlewaretoken", "name", "disk_format"].forEach(function (n) {
      data.append(n, form.elements[n].value);
    });
    state.textContent = "Creating the image...";
    fetch(form.getAttribute("data-create-url"), {
      method: "POST", credentials: "same-origin", body: data,
      headers: {"Accept": "application/json"}
    }).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (res) {
      if (!res.ok) { state.textContent = res.body.error; return; }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", "/project/images/" + res.body.id + "/data");
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) {
          bar.value = Math.round(100 * e.loaded / e.total);
          bar.setAttribute("data-max-seen", bar.value);
        }
      };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = 100;
          state.textContent = "Uploaded.";
          window.setTimeout(function () { window.location.reload(); }, 500);
        } else {
          var msg = "The upload failed.";
          try { msg = JSON.parse(xhr.responseText).error; } catch (e) { /* not JSON */ }
          state.textContent = msg;
        }
      };
      xhr.onerror = function () { state.textContent = "The upload failed."; };
      state.textContent = "Uploading...";
      xhr.send(file);
    });
  });
}

// Containers: send a file as an object, streamed through the dashboard to the object
// store, with a progress bar; the name is the folder's prefix and the given name (or
// the file's own).
function objectUpload(form) {
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = form.querySelector('input[type="file"]').files[0];
    var state = document.getElementById("object-state");
    var bar = document.getElementById("object-progress");
    if (!file) { state.textContent = "Choose a file."; return; }
    var name = (form.getAttribute("data-prefix") || "") +
      (form.elements.name.value || file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("PUT", form.getAttribute("data-url") + "?name=" + encodeURIComponent(name));
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        state.textContent = "Uploaded.";
        window.setTimeout(function () { window.location.reload(); }, 500);
      } else {
        var msg = "The upload failed.";
        try { msg = JSON.parse(xhr.responseText).error; } catch (e) { /* not JSON */ }
        state.textContent = msg;
      }
    };
    xhr.onerror = function () { state.textContent = "The upload failed."; };
    state.textContent = "Uploading...";
    xhr.send(file);
  });
}

// Network topology: reload the SVG every few seconds, so it stays current.
function liveTopology(img) {
  var base = img.getAttribute("src");
  var every = parseInt(img.getAttribute("data-refresh"), 10) || 5000;
  window.setInterval(function () { img.src = base + "?t=" + Date.now(); }, every);
}

document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("instances");
  if (table) { liveInstances(table); }
  var upload = document.getElementById("image-upload");
  if (upload) { imageUpload(upload); }
  var objects = document.getElementById("object-upload");
  if (objects) { objectUpload(objects); }
  var topo = document.getElementById("topology");
  if (topo) { liveTopology(topo); }
  document.querySelectorAll("button.danger").forEach(function (b) {
    b.addEventListener("click", function (ev) {
      if (!window.confirm("Really " + b.textContent.toLowerCase() + "?")) { ev.preventDefault(); }
    });
  });
});
