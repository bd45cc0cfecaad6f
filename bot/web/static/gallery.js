// The gallery's live search (GET /api/avatars) and favourite stars that toggle in place.
// Without JavaScript the search form and the star forms work as ordinary page loads.
(() => {
  "use strict";
  const grid = document.getElementById("grid");
  const form = document.getElementById("search-form");
  const q = document.getElementById("search-q");
  const fav = document.getElementById("search-fav");
  const count = document.getElementById("gallery-count");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const kinds = JSON.parse(grid.dataset.kinds);
  const fill = (tpl, values) => tpl.replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
  let seq = 0;
  let timer = 0;

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function card(a, next) {
    const label = a.favourite ? grid.dataset.unfav : grid.dataset.fav;
    const prompt = a.prompt || grid.dataset.noPrompt;
    return el("li", { class: "card avatar-card", "data-id": a.id }, [
      el("a", { class: "card-pic", href: a.url }, [
        el("img", { src: a.thumb, alt: prompt, width: "256", height: "256", loading: "lazy" }),
      ]),
      el("div", { class: "card-body" }, [
        el("p", { class: "card-prompt", title: a.prompt, text: prompt }),
        el("p", { class: "card-meta" }, [
          el("span", { class: `badge badge-${a.kind}`, text: kinds[a.kind] || a.kind }), " ",
          el("time", { datetime: a.created, text: a.created.slice(0, 10) }),
        ]),
      ]),
      el("form", { method: "post", action: `/a/${a.id}/favourite`, class: "fav-form" }, [
        el("input", { type: "hidden", name: "csrf", value: csrf }),
        el("input", { type: "hidden", name: "on", value: a.favourite ? "0" : "1" }),
        el("input", { type: "hidden", name: "next", value: next }),
        el("button", {
          type: "submit", class: `fav${a.favourite ? " is-on" : ""}`, "aria-pressed": String(a.favourite),
          title: label, "aria-label": label, text: "★",
        }),
      ]),
    ]);
  }

  async function search() {
    const mine = ++seq;
    const params = new URLSearchParams();
    if (q.value.trim()) params.set("q", q.value.trim());
    if (fav.checked) params.set("fav", "1");
    const resp = await fetch(`/api/avatars?${params}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await resp.json().catch(() => ({}));
    if (mine !== seq || !resp.ok) return;
    const url = `/${params.toString() ? `?${params}` : ""}`;
    history.replaceState(null, "", url);
    grid.replaceChildren(...body.avatars.map((a) => card(a, url)));
    count.textContent = body.query
      ? fill(grid.dataset.found, { total: body.total, query: body.query })
      : fill(grid.dataset.count, { total: body.total });
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = body.avatars.length > 0;
    const pager = document.getElementById("pager");
    if (pager) pager.hidden = true;
    if (!body.avatars.length && !empty) {
      grid.append(el("li", { class: "card empty-inline", text: grid.dataset.emptySearch }));
    }
    if (body.pages > 1) {
      params.set("page", "2");
      params.set("snap", String(body.snapshot));
      grid.append(el("li", { class: "more" }, [el("a", { class: "btn btn-ghost", href: `/?${params}`, text: grid.dataset.next })]));
    }
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  fav.addEventListener("change", search);

  grid.addEventListener("submit", async (ev) => {
    const f = ev.target.closest(".fav-form");
    if (!f) return;
    ev.preventDefault();
    const button = f.querySelector("button");
    const resp = await fetch(f.action, {
      method: "POST", body: new FormData(f), headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (!resp.ok) return;
    const body = await resp.json();
    f.querySelector('input[name="on"]').value = body.favourite ? "0" : "1";
    button.classList.toggle("is-on", body.favourite);
    button.setAttribute("aria-pressed", String(body.favourite));
    const label = body.favourite ? grid.dataset.unfav : grid.dataset.fav;
    button.title = label;
    button.setAttribute("aria-label", label);
  });
})();
