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

  // Copy buttons: data-copy names the field whose value is copied.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-copy]");
    if (!btn) return;
    var field = document.getElementById(btn.dataset.copy);
    if (!field) return;
    field.select();
    var done = function () { if (btn.dataset.copied) btn.textContent = btn.dataset.copied; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done, function () {});
    else if (document.execCommand("copy")) done();
  });

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
    // The main menu comes on /start under the welcome text, which is what people see.
    var welcome = document.querySelector("template[data-welcome-text]");
    var isMain = document.getElementById("f-is_main");
    if (welcome && isMain && isMain.checked) bubble.textContent = welcome.content.textContent;
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
    var editor = document.querySelector("[data-rows]");
    if (editor && e.target.id === "f-is_main") renderPreview(editor);
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
    // A new organization takes the browser's time zone (its days in the statistics).
    document.querySelectorAll("input[data-browser-zone]").forEach(function (input) {
      try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { /* none */ }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();

  // Chats ("Try it", the desk's reply box). Only the form's own request is a send: other
  // requests from inside it (the formatting preview) bubble here too and must never touch
  // the box. After a successful send exactly what was sent leaves the box (what the person
  // typed while it was on its way stays); a refused send (the server marks it with
  // X-SB-Error) or a failed one keeps everything.
  function sendingForm(e) {
    var elt = e.detail && e.detail.elt;
    return elt && elt.matches && elt.matches("form[data-reset-on-send]") ? elt : null;
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = sendingForm(e);
    if (!form) return;
    var input = form.querySelector("[name=text]");
    form._sentText = input ? input.value : "";
    form.dataset.sending = "yes";
    var problem = form.querySelector("[data-send-problem]");
    if (problem) problem.hidden = true;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = sendingForm(e);
    if (!form) return;
    delete form.dataset.sending;
    var problem = form.querySelector("[data-send-problem]");
    if (!e.detail.successful) {
      if (problem) problem.hidden = false;
      return;
    }
    if (e.detail.xhr && e.detail.xhr.getResponseHeader("x-sb-error")) return;
    var input = form.querySelector("[name=text]");
    if (input) {
      var sent = form._sentText || "";
      if (input.value === sent) input.value = "";
      else if (sent && input.value.indexOf(sent) === 0) input.value = input.value.slice(sent.length).replace(/^\s+/, "");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    }
    var file = form.querySelector("input[type=file]");
    if (file) file.value = "";
    form.dispatchEvent(new Event("sb:reset", { bubbles: true }));
    if (input) input.focus();
  });
  var timelineWasAtBottom = true, timelineTop = 0;
  document.addEventListener("htmx:beforeSwap", function () {
    var tl = document.getElementById("timeline");
    if (tl) {
      timelineWasAtBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 60;
      timelineTop = tl.scrollTop;
    }
  });
  function scrollChats(force) {
    var t = document.getElementById("transcript");
    if (t) t.scrollTop = t.scrollHeight;
    var tl = document.getElementById("timeline");
    if (tl) tl.scrollTop = (force || timelineWasAtBottom) ? tl.scrollHeight : timelineTop;
  }
  document.addEventListener("htmx:afterSwap", function (e) {
    scrollChats(false);
    var queue = document.getElementById("queue");
    var badge = document.getElementById("nav-desk-waiting");
    if (queue && badge && e.detail.target && e.detail.target.id === "queue") {
      badge.textContent = queue.dataset.waiting;
      badge.hidden = queue.dataset.waiting === "0";
    }
  });

  // Drafts of desk replies (see initDesk).
  var DRAFT_PREFIX = "sb:draft:", DRAFT_MAX_AGE = 14 * 24 * 3600 * 1000;
  function draftKeys() {
    var keys = [];
    try {
      for (var i = 0; i < window.localStorage.length; i++) {
        var k = window.localStorage.key(i);
        if (k && k.indexOf(DRAFT_PREFIX) === 0) keys.push(k);
      }
    } catch (err) { /* storage disabled */ }
    return keys;
  }
  function readDraft(key) {
    try {
      var d = JSON.parse(window.localStorage.getItem(key) || "null");
      return d && typeof d.text === "string" ? d.text : null;
    } catch (err) { return null; }
  }
  function pruneDrafts() {
    draftKeys().forEach(function (k) {
      try {
        var d = JSON.parse(window.localStorage.getItem(k) || "null");
        if (!d || !(Date.now() - d.at < DRAFT_MAX_AGE)) window.localStorage.removeItem(k);
      } catch (err) { window.localStorage.removeItem(k); }
    });
  }
  document.addEventListener("submit", function (e) {
    if (e.target.matches && e.target.matches("form[action='/logout']")) {
      draftKeys().forEach(function (k) { window.localStorage.removeItem(k); });
    }
  });

  // The desk -------------------------------------------------------------------------
  var desk = document.querySelector("[data-desk]");
  if (desk) initDesk(desk);

  function initDesk(desk) {
    scrollChats(true);
    var timers = {};
    function soon(name, fn) { clearTimeout(timers[name]); timers[name] = setTimeout(fn, 120); }
    function refreshQueue() { soon("queue", function () { document.body.dispatchEvent(new CustomEvent("sb:queue")); }); }
    // The conversation block is reloaded on events, but not under the operator's hands:
    // while a menu of it is open or one of its fields has focus, the reload waits.
    function refreshConversation() {
      if (!desk.dataset.conversation) return;
      soon("live", function attempt() {
        var live = document.getElementById("conv-live");
        var active = document.activeElement;
        var busy = live && (live.querySelector(".dropdown-menu.show") ||
          (active && live.contains(active) && active.matches("input, textarea, select")));
        if (busy) { timers.live = setTimeout(attempt, 1000); return; }
        document.body.dispatchEvent(new CustomEvent("sb:live"));
      });
    }

    // Title badge and browser notifications while the tab is in the background.
    var baseTitle = document.title, unseen = 0;
    var notifyButton = document.getElementById("desk-notify");
    if (notifyButton && "Notification" in window && Notification.permission === "default") {
      notifyButton.hidden = false;
      notifyButton.addEventListener("click", function () {
        Notification.requestPermission().then(function () { notifyButton.hidden = true; });
      });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { unseen = 0; document.title = baseTitle; }
    });
    function alertPerson(ev) {
      if (!document.hidden) return;
      unseen += 1;
      document.title = "(" + unseen + ") " + baseTitle;
      if ("Notification" in window && Notification.permission === "granted") {
        var text = ev.event === "handover" ? desk.dataset.notifyNew : desk.dataset.notifyMessage;
        var n = new Notification("Switchboard", { body: text, tag: ev.conversation_id });
        n.onclick = function () { window.focus(); n.close(); };
      }
    }

    // Server-Sent Events; the browser reconnects by itself, and after a gap everything
    // shown is reloaded (events missed meanwhile are not replayed).
    var conn = document.getElementById("desk-conn"), lost = false, source = null, backoff = 1000;
    function setConn(on) {
      if (!conn) return;
      conn.classList.toggle("on", on);
      conn.title = on ? conn.dataset.on : conn.dataset.off;
      desk.dataset.live = on ? "on" : "off";
    }
    function connect() {
      if (!window.EventSource) return;
      source = new EventSource("/desk/events");
      source.addEventListener("ready", function () {
        setConn(true);
        backoff = 1000;
        if (lost) { refreshQueue(); refreshConversation(); }
        lost = false;
      });
      source.addEventListener("resync", function () { refreshQueue(); refreshConversation(); });
      source.addEventListener("desk", function (e) {
        var ev;
        try { ev = JSON.parse(e.data); } catch (err) { return; }
        refreshQueue();
        if (ev.conversation_id === desk.dataset.conversation) refreshConversation();
        if (ev.event === "handover" || ev.event === "inbound") alertPerson(ev);
      });
      source.onerror = function () {
        setConn(false);
        lost = true;
        if (source.readyState === EventSource.CLOSED) {
          setTimeout(connect, backoff);
          backoff = Math.min(backoff * 2, 30000);
        }
      };
    }
    connect();

    // Filters: picking an organization applies at once.
    document.addEventListener("change", function (e) {
      if (e.target.matches && e.target.matches("[data-autosubmit]")) e.target.form.submit();
    });

    var form = document.getElementById("reply-form");
    if (!form) return;
    var area = document.getElementById("reply-text");
    var fileInput = document.getElementById("reply-file");
    var fileName = document.getElementById("reply-file-name");
    var previewBox = document.getElementById("reply-preview-box");
    var menu = document.getElementById("canned-menu");
    var canned = [];
    try { canned = JSON.parse(document.getElementById("canned-data").textContent || "[]"); } catch (err) { canned = []; }

    function syncPreview() { if (previewBox) previewBox.hidden = area.value.trim() === ""; }
    area.addEventListener("input", syncPreview);

    // Drafts: what is typed for a conversation is kept in this browser until it is sent,
    // so a reload, a crash or a look at another conversation loses nothing. Signing out
    // forgets them all; a draft untouched for two weeks is dropped.
    var draftKey = form.dataset.draft ? DRAFT_PREFIX + form.dataset.draft : null;
    function saveDraft() {
      if (!draftKey) return;
      try {
        if (area.value.trim() === "") window.localStorage.removeItem(draftKey);
        else window.localStorage.setItem(draftKey, JSON.stringify({ text: area.value, at: Date.now() }));
      } catch (err) { /* storage full or disabled: the box itself still holds the text */ }
    }
    if (draftKey) {
      pruneDrafts();
      var saved = readDraft(draftKey);
      if (saved && area.value === "") {
        area.value = saved;
        syncPreview();
        area.dispatchEvent(new Event("input", { bubbles: true }));
      }
      area.addEventListener("input", saveDraft);
    }
    form.addEventListener("sb:reset", function () {
      if (fileName) fileName.textContent = "";
      syncPreview();
      saveDraft();
      closeMenu();
    });
    if (fileInput) {
      fileInput.addEventListener("change", function () {
        var f = fileInput.files[0];
        if (f && f.size > Number(fileInput.dataset.maxBytes)) {
          window.alert(fileInput.dataset.tooBig);
          fileInput.value = "";
          f = null;
        }
        fileName.textContent = f ? f.name + " (" + Math.max(1, Math.round(f.size / 1024)) + " KB)" : "";
      });
    }

    // Canned responses: "/" + shortcut in the box, or the list.
    var matches = [], active = 0, token = null;
    function closeMenu() { menu.classList.remove("show"); menu.innerHTML = ""; matches = []; token = null; }
    function insertCanned(c) {
      var start = area.selectionStart, end = area.selectionEnd;
      if (token) { start = token.start; end = token.end; }
      area.setRangeText(c.text, start, end, "end");
      closeMenu();
      area.dispatchEvent(new Event("input", { bubbles: true }));
      area.focus();
    }
    function showMenu() {
      menu.innerHTML = "";
      matches.forEach(function (c, i) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "dropdown-item" + (i === active ? " active" : "");
        b.setAttribute("role", "option");
        b.dataset.cannedOption = String(i);
        var code = document.createElement("code");
        code.textContent = "/" + c.shortcut;
        b.appendChild(code);
        b.appendChild(document.createTextNode(" " + c.title));
        menu.appendChild(b);
      });
      menu.classList.toggle("show", matches.length > 0);
    }
    area.addEventListener("input", function () {
      var before = area.value.slice(0, area.selectionStart);
      var m = /(^|\s)\/([\w-]*)$/.exec(before);
      if (!m || !canned.length) { closeMenu(); return; }
      var q = m[2].toLowerCase();
      token = { start: area.selectionStart - q.length - 1, end: area.selectionStart };
      matches = canned.filter(function (c) {
        return c.shortcut.indexOf(q) === 0 || c.title.toLowerCase().indexOf(q) !== -1;
      }).slice(0, 8);
      active = 0;
      showMenu();
    });
    menu.addEventListener("mousedown", function (e) {
      var b = e.target.closest("[data-canned-option]");
      if (!b) return;
      e.preventDefault();
      insertCanned(matches[Number(b.dataset.cannedOption)]);
    });
    document.addEventListener("click", function (e) {
      var b = e.target.closest("[data-canned-insert]");
      if (!b) return;
      token = null;
      insertCanned(canned[Number(b.dataset.cannedInsert)]);
    });

    // Enter sends, Shift+Enter starts a new line.
    area.addEventListener("keydown", function (e) {
      if (matches.length) {
        if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          active = (active + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
          showMenu();
          return;
        }
        if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); insertCanned(matches[active]); return; }
        if (e.key === "Escape") { e.preventDefault(); closeMenu(); return; }
      }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        if (form.dataset.sending) return;
        if (area.value.trim() !== "" || (fileInput && fileInput.files.length)) form.requestSubmit();
      }
    });
  }
})();
