// The visual editor: pick parts, see a live preview (drawn on the server by the chibi engine), undo, save.
// Works on plain DOM APIs; the page stays usable without it (the text box and Save still post the form).
(() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const data = JSON.parse($("#editor-data").textContent);
  const csrf = $('meta[name="csrf-token"]').content;
  const original = data.selections;
  const multi = new Set(data.multi);
  const preview = $("#preview");
  const busy = $("#preview-busy");
  const changesEl = $("#changes");
  const errorEl = $("#editor-error");
  const undoBtn = $("#undo");
  const resetBtn = $("#reset");
  const saveBtn = $("#save");
  const textInput = $("#text");
  const stateInput = $("#state");
  const miniLink = $("#mini-preview");
  const mini = $("img", miniLink);

  const empty = () => ({ fields: {}, items: null, text: "" });
  const copy = (s) => JSON.parse(JSON.stringify(s));
  const isEmpty = (s) => !Object.keys(s.fields).length && s.items === null && !s.text;

  let wanted = empty();      // what we ask for (only what differs from the avatar)
  let good = empty();        // the last state the server drew
  let shown = copy(original); // the selections of the picture on screen
  const history = [];        // undo stack of earlier `wanted` states
  let seq = 0;
  let timer = 0;

  function mark() {
    const fields = Object.assign({}, shown, wanted.fields);
    const items = new Set(wanted.items !== null ? wanted.items : shown.items);
    for (const b of $$("button[data-field]")) {
      b.setAttribute("aria-pressed", String(fields[b.dataset.field] === b.dataset.value));
    }
    for (const b of $$("button[data-item]")) b.setAttribute("aria-pressed", String(items.has(b.dataset.item)));
    for (const input of $$('input[type="color"][data-field]')) {
      const v = fields[input.dataset.field];
      if (typeof v === "string" && /^#[0-9a-f]{6}$/.test(v)) input.value = v;
    }
    undoBtn.disabled = history.length === 0;
    resetBtn.disabled = isEmpty(wanted);
    stateInput.value = JSON.stringify(wanted);
  }

  function change(mutate) {
    history.push(copy(wanted));
    if (history.length > 100) history.shift();
    mutate(wanted);
    mark();
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(draw, 140);
  }

  function showError(text) {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  }

  async function draw() {
    const mine = ++seq;
    showError("");
    if (isEmpty(wanted)) {
      preview.src = data.image;
      mini.src = data.image;
      shown = copy(original);
      good = empty();
      changesEl.textContent = data.words.no_changes;
      saveBtn.disabled = false;
      mark();
      return;
    }
    busy.hidden = false;
    try {
      const resp = await fetch(`/api/avatars/${encodeURIComponent(data.id)}/preview`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(wanted),
        credentials: "same-origin",
      });
      const body = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
      if (mine !== seq) return; // a newer request is on its way
      if (!resp.ok) {
        showError(body.error || `HTTP ${resp.status}`);
        if (resp.status !== 429) { wanted = copy(good); history.pop(); }
        mark();
        return;
      }
      preview.src = body.image;
      mini.src = body.image;
      shown = body.selections;
      good = copy(wanted);
      const list = (body.changes || []).concat(body.notes || []);
      changesEl.textContent = body.changed && list.length
        ? `${data.words.changes}: ${list.join("; ")}` : data.words.no_changes;
      mark();
    } catch (err) {
      if (mine === seq) showError(String(err));
    } finally {
      if (mine === seq) busy.hidden = true;
    }
  }

  // --- picking -----------------------------------------------------------------------------------------
  document.addEventListener("click", (ev) => {
    const opt = ev.target.closest("button[data-field]");
    if (opt) {
      const { field, value } = opt.dataset;
      change((s) => {
        if (original[field] === value) delete s.fields[field];
        else s.fields[field] = value;
      });
      return;
    }
    const item = ev.target.closest("button[data-item]");
    if (item) {
      const id = item.dataset.item;
      const slot = item.dataset.slot;
      change((s) => {
        let items = s.items !== null ? s.items.slice() : shown.items.slice();
        if (items.includes(id)) items = items.filter((i) => i !== id);
        else {
          if (!multi.has(slot)) items = items.filter((i) => data.slots[i] !== slot);
          items.push(id);
        }
        const same = items.length === original.items.length && items.every((i) => original.items.includes(i));
        s.items = same ? null : items;
      });
    }
  });

  for (const input of $$('input[type="color"][data-field]')) {
    input.addEventListener("change", () => {
      change((s) => { s.fields[input.dataset.field] = input.value.toLowerCase(); });
    });
  }

  $("#text-apply").addEventListener("click", () => {
    change((s) => { s.text = textInput.value.trim(); });
  });
  textInput.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      change((s) => { s.text = textInput.value.trim(); });
    }
  });

  function undo() {
    if (!history.length) return;
    wanted = history.pop();
    textInput.value = wanted.text;
    mark();
    schedule();
  }
  undoBtn.addEventListener("click", undo);
  resetBtn.addEventListener("click", () => {
    change((s) => { s.fields = {}; s.items = null; s.text = ""; });
    textInput.value = "";
  });
  document.addEventListener("keydown", (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z" && document.activeElement !== textInput) {
      ev.preventDefault();
      undo();
    }
  });

  $("#save-form").addEventListener("submit", (ev) => {
    wanted.text = textInput.value.trim();
    stateInput.value = JSON.stringify(wanted);
    if (isEmpty(wanted)) {
      ev.preventDefault();
      showError(data.words.no_changes);
      return;
    }
    saveBtn.disabled = true;
    saveBtn.textContent = data.words.saving;
  });

  // --- tabs ------------------------------------------------------------------------------------------
  const tabs = $$('[role="tab"]');
  function select(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(`#${t.getAttribute("aria-controls")}`).hidden = !on;
    }
  }
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (ev) => {
      const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  });
  select(tabs[0]);
  // On small screens the picker scrolls the preview away: a small copy follows in the corner.
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(([entry]) => { miniLink.hidden = entry.isIntersecting; }).observe(preview);
  }
  mark();
})();
