// codenv console: filters, the identifier check, confirmations, unsaved edits, live build logs.
"use strict";

function filterTables() {
  document.querySelectorAll("input[data-filter]").forEach(function (box) {
    var table = document.querySelector(box.dataset.filter);
    if (!table) return;
    var empty = table.closest(".scroll") ? table.closest(".scroll").nextElementSibling : null;
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().trim();
      var shown = 0;
      table.querySelectorAll("tr[data-row]").forEach(function (row) {
        var match = row.textContent.toLowerCase().indexOf(words) !== -1;
        row.hidden = !match;
        if (match) shown += 1;
      });
      if (empty && empty.hasAttribute("data-empty")) empty.hidden = shown !== 0;
    });
  });
}

function checkName() {
  var input = document.querySelector("input[data-check-name]");
  if (!input) return;
  var message = document.getElementById(input.getAttribute("aria-describedby"));
  var timer = null;
  var asked = 0;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var ticket = ++asked;
      var url = input.dataset.checkName + "?name=" + encodeURIComponent(input.value);
      fetch(url, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (ticket !== asked) return;
          message.textContent = answer.message;
          message.classList.toggle("error", !answer.ok);
          message.classList.toggle("ok", answer.ok);
          input.setAttribute("aria-invalid", answer.ok ? "false" : "true");
        })
        .catch(function () {});
    }, 200);
  });
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

function busyForms() {
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var pressed = event.submitter;
      if (pressed && pressed.name) {
        // The pressed button's value must still reach the server once buttons are disabled.
        var kept = document.createElement("input");
        kept.type = "hidden";
        kept.name = pressed.name;
        kept.value = pressed.value;
        form.appendChild(kept);
      }
      form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
      if (pressed) pressed.textContent = form.dataset.busy;
    });
  });
}

function dirtyWarning() {
  document.querySelectorAll("form[data-dirty-warning]").forEach(function (form) {
    var dirty = false;
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("change", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
    window.addEventListener("beforeunload", function (event) {
      if (dirty) { event.preventDefault(); event.returnValue = ""; }
    });
  });
}

function followLog() {
  var log = document.getElementById("log");
  if (!log || log.dataset.finished === "true") return;
  var offset = Number(log.dataset.offset || "0");
  function poll() {
    fetch("/api/v1/builds/" + log.dataset.build + "/log?offset=" + offset, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("log: " + response.status);
        var finished = response.headers.get("X-Build-Finished") === "true";
        offset = Number(response.headers.get("X-Log-Offset") || offset);
        return response.text().then(function (text) { return { text: text, finished: finished }; });
      })
      .then(function (part) {
        if (part.text) {
          var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.textContent += part.text;
          if (atEnd) log.scrollTop = log.scrollHeight;
        }
        if (part.finished) {
          log.dataset.finished = "true";
          // Statuses, revisions and sizes changed: show them.
          window.location.reload();
        } else {
          setTimeout(poll, 500);
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
}

document.addEventListener("DOMContentLoaded", function () {
  filterTables();
  checkName();
  confirmations();
  busyForms();
  dirtyWarning();
  followLog();
});
