// Switchboard panel behaviour. No inline scripts (the CSP forbids them): everything is
// wired here through data- attributes.
(function () {
  "use strict";

  // Destructive actions ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  }, true);

  // "Select all" checkboxes.
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (box.dataset && box.dataset.checkAll) {
      document.querySelectorAll('input[name="' + box.dataset.checkAll + '"]').forEach(function (c) {
        c.checked = box.checked;
      });
    }
    if (box.dataset && box.dataset.output) {
      var out = document.getElementById(box.dataset.output);
      if (out) out.textContent = box.value;
    }
  });
  document.addEventListener("input", function (e) {
    var el = e.target;
    if (el.dataset && el.dataset.output) {
      var out = document.getElementById(el.dataset.output);
      if (out) out.textContent = el.value;
    }
  });

  // Formatting toolbar: wrap the selection of the target textarea in a Telegram HTML tag
  // and switch the answer to HTML formatting.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-wrap]");
    if (!btn) return;
    var bar = btn.closest("[data-format-toolbar]");
    var area = document.getElementById(bar.dataset.formatToolbar);
    var tag = btn.dataset.wrap;
    var start = area.selectionStart, end = area.selectionEnd;
    var selected = area.value.slice(start, end) || "";
    var open = "<" + tag + ">", close = "</" + tag + ">";
    if (tag === "a") {
      var href = window.prompt("URL", "https://");
      if (!href) return;
      open = '<a href="' + href.replace(/"/g, "%22") + '">';
    }
    area.setRangeText(open + selected + close, start, end, "select");
    var html = document.getElementById("f-format");
    if (html && !html.checked) { html.checked = true; html.dispatchEvent(new Event("change", { bubbles: true })); }
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  });

  // Buttons editor -------------------------------------------------------------------
  function editors() { return document.querySelectorAll("[data-rows]"); }

  function syncTargets(item) {
    var action = item.querySelector("[data-action]").value;
    item.querySelectorAll("[data-target-for]").forEach(function (el) {
      var on = el.dataset.targetFor === action;
      el.classList.toggle("d-none", !on);
    });
  }

  function currentTarget(item) {
    var action = item.querySelector("[data-action]").value;
    var el = item.querySelector('[data-target-for="' + action + '"]');
    return el ? el.value : "";
  }

  function renderPreview(editor) {
    var box = editor.parentElement.querySelector("[data-preview]");
    if (!box) return;
    box.innerHTML = "";
    var textEl = document.querySelector("[data-preview-text]") || document.getElementById("f-answer");
    var bubble = document.createElement("div");
    bubble.className = "tg-bubble";
    bubble.textContent = textEl ? textEl.value : "";
    box.appendChild(bubble);
    editor.querySelectorAll("[data-row]").forEach(function (row) {
      var line = document.createElement("div");
      line.className = "tg-row";
      row.querySelectorAll("[data-button]").forEach(function (item) {
        var label = item.querySelector('[name="b_label"]').value.trim();
        if (!label) return;
        var b = document.createElement("span");
        b.className = "tg-button";
        b.textContent = label;
        line.appendChild(b);
      });
      if (line.children.length) box.appendChild(line);
    });
  }

  function wire(editor) {
    editor.querySelectorAll("[data-button]").forEach(syncTargets);
    if (window.Sortable) {
      Sortable.create(editor, { handle: ".drag-handle", animation: 120, onEnd: function () { renderPreview(editor); } });
      editor.querySelectorAll("[data-buttons]").forEach(function (list) {
        if (!list._sortable) {
          list._sortable = Sortable.create(list, { group: "buttons", animation: 120, onEnd: function () { renderPreview(editor); } });
        }
      });
    }
    renderPreview(editor);
  }

  function container(el) { return el.closest("form") || document; }

  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-add-row],[data-add-button],[data-remove-row],[data-remove-button],[data-row-up],[data-row-down]");
    if (!t) return;
    var root = container(t);
    var editor = root.querySelector("[data-rows]");
    if (t.hasAttribute("data-add-row")) {
      var rowTpl = root.querySelector("template[data-row-template]");
      editor.appendChild(rowTpl.content.cloneNode(true));
      var row = editor.lastElementChild;
      row.querySelector("[data-buttons]").appendChild(root.querySelector("template[data-button-template]").content.cloneNode(true));
      wire(editor);
      row.querySelector('[name="b_label"]').focus();
    } else if (t.hasAttribute("data-add-button")) {
      var list = t.closest("[data-row]").querySelector("[data-buttons]");
      list.appendChild(root.querySelector("template[data-button-template]").content.cloneNode(true));
      wire(editor);
      list.lastElementChild.querySelector('[name="b_label"]').focus();
    } else if (t.hasAttribute("data-remove-row")) {
      t.closest("[data-row]").remove();
    } else if (t.hasAttribute("data-remove-button")) {
      t.closest("[data-button]").remove();
    } else if (t.hasAttribute("data-row-up")) {
      var r = t.closest("[data-row]");
      if (r.previousElementSibling) r.parentNode.insertBefore(r, r.previousElementSibling);
    } else if (t.hasAttribute("data-row-down")) {
      var r2 = t.closest("[data-row]");
      if (r2.nextElementSibling) r2.parentNode.insertBefore(r2.nextElementSibling, r2);
    }
    renderPreview(editor);
  });

  document.addEventListener("change", function (e) {
    var item = e.target.closest("[data-button]");
    if (item && e.target.matches("[data-action]")) syncTargets(item);
  });
  document.addEventListener("input", function (e) {
    var editor = document.querySelector("[data-rows]");
    if (editor && (e.target.closest("[data-rows]") || e.target.matches("[data-preview-text],#f-answer"))) renderPreview(editor);
  });

  // Before a form with an editor is sent: number the rows and copy each button's target.
  document.addEventListener("submit", function (e) {
    var editor = e.target.querySelector && e.target.querySelector("[data-rows]");
    if (!editor) return;
    editor.querySelectorAll("[data-row]").forEach(function (row, i) {
      row.querySelectorAll("[data-button]").forEach(function (item) {
        item.querySelector('[name="b_row"]').value = String(i);
        item.querySelector('[name="b_target"]').value = currentTarget(item);
      });
    });
  }, true);

  function init() {
    editors().forEach(wire);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();

  // The "Try it" chat: empty the box after sending, keep the newest message in view.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.target.closest && e.target.closest("[data-reset-on-send]");
    if (form && e.detail.successful) {
      form.reset();
      var input = form.querySelector("input[name=text]");
      if (input) input.focus();
    }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var t = document.getElementById("transcript");
    if (t) t.scrollTop = t.scrollHeight;
  });
})();
