(function () {
  "use strict";
  // The manual-grading page's one script: check the points typed, keep a draft in this
  // browser, and download the scores as CSV for `dlgrade batch --manual-scores`. It sends
  // nothing anywhere; the page's Content-Security-Policy allows this script by its hash only.
  var page = document.getElementById("manual-grading");
  var grades = Array.prototype.slice.call(document.querySelectorAll(".grade"));
  var status = document.getElementById("grading-status");
  var button = document.getElementById("download-csv");
  var draftKey = page.getAttribute("data-draft-key");
  var csvName = page.getAttribute("data-csv-name");
  var storage = null;
  try {
    storage = window.localStorage;
    storage.getItem(draftKey);
  } catch (e) {
    storage = null; // file:// pages may have no storage: grading works, drafts are not kept
  }

  function fields(grade) {
    return {
      points: grade.querySelector("input.points"),
      comment: grade.querySelector("textarea.comment"),
      error: grade.querySelector(".field-error")
    };
  }

  function key(grade) {
    return JSON.stringify([grade.getAttribute("data-submission"),
      grade.getAttribute("data-question"), grade.getAttribute("data-item")]);
  }

  function problem(grade) {
    var text = fields(grade).points.value.trim();
    var max = Number(grade.getAttribute("data-max"));
    if (text === "") {
      return fields(grade).comment.value.trim() ? "give points too, or clear the comment" : "";
    }
    if (!/^\d+(\.\d+)?$/.test(text)) {
      return text.indexOf(",") >= 0 ? "use a dot for decimals" : "not a number";
    }
    if (Number(text) > max + 1e-9) {
      var most = grade.getAttribute("data-max");
      return "at most " + most + (most === "1" ? " point" : " points");
    }
    return "";
  }

  function check(grade) {
    var f = fields(grade);
    var message = problem(grade);
    f.points.setCustomValidity(message);
    f.error.textContent = message;
    grade.classList.toggle("invalid", message !== "");
    return message === "";
  }

  function scored(grade) {
    return fields(grade).points.value.trim() !== "";
  }

  function update() {
    var done = grades.filter(scored).length;
    var bad = grades.filter(function (g) { return g.classList.contains("invalid"); }).length;
    status.textContent = done + " of " + grades.length + " answers scored" +
      (bad ? "; " + bad + " to fix" : "");
  }

  function saveDraft() {
    if (!storage) {
      return;
    }
    var draft = {};
    grades.forEach(function (g) {
      var f = fields(g);
      if (f.points.value !== f.points.defaultValue || f.comment.value !== f.comment.defaultValue) {
        draft[key(g)] = [f.points.value, f.comment.value];
      }
    });
    try {
      storage.setItem(draftKey, JSON.stringify(draft));
    } catch (e) {
      // storage full or refused: the fields still hold the values
    }
  }

  function restoreDraft() {
    var draft = null;
    try {
      draft = storage ? JSON.parse(storage.getItem(draftKey) || "null") : null;
    } catch (e) {
      draft = null;
    }
    var restored = 0;
    grades.forEach(function (g) {
      var saved = draft && draft[key(g)];
      if (saved && saved.length === 2) {
        fields(g).points.value = String(saved[0]);
        fields(g).comment.value = String(saved[1]);
        restored += 1;
      }
    });
    return restored;
  }

  function csvCell(value) {
    var text = String(value);
    if (/^([=+\-@|\uff1d\uff0b\uff0d\uff20']|\s)/.test(text)) { // gradebook.FORMULA_START
      // a spreadsheet must not run a student's folder name as a formula; a name that starts
      // with a quote gets one too, so that the batch reads back the name written
      text = "'" + text;
    }
    if (/[",\r\n]/.test(text) || text !== text.trim()) {
      text = "\"" + text.replace(/"/g, "\"\"") + "\"";
    }
    return text;
  }

  function csv() {
    var lines = [["submission", "question", "item", "points", "max_points", "comment"]];
    grades.forEach(function (g) {
      var f = fields(g);
      if (scored(g) || f.comment.value.trim()) {
        lines.push([g.getAttribute("data-submission"), g.getAttribute("data-question"),
          g.getAttribute("data-item"), f.points.value.trim(), g.getAttribute("data-max"),
          f.comment.value.trim()]);
      }
    });
    return lines.map(function (row) { return row.map(csvCell).join(","); }).join("\r\n") + "\r\n";
  }

  function download() {
    var bad = grades.filter(function (g) { return !check(g); });
    update();
    if (bad.length) {
      status.textContent = bad.length + " field(s) to fix before downloading (in red)";
      fields(bad[0]).points.focus();
      return;
    }
    var blob = new Blob(["\ufeff" + csv()], { type: "text/csv;charset=utf-8" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = csvName;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
    status.textContent = "downloaded " + csvName + " (" + grades.filter(scored).length +
      " answers scored); merge it with dlgrade batch --manual-scores";
  }

  var restored = restoreDraft();
  grades.forEach(function (g) {
    check(g);
    g.addEventListener("input", function () {
      check(g);
      update();
      saveDraft();
    });
  });
  button.addEventListener("click", download);
  button.disabled = false;
  update();
  if (restored) {
    status.textContent += "; " + restored + " entries restored from this browser's draft";
  }
}());
