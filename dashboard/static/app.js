// The dashboard's only script (the CSP allows no inline script): local times,
// copy buttons and the one-time token dialog. Written here, nothing third-party.
"use strict";

function localTimes(root) {
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  const short = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.title = when.toISOString().replace(".000Z", "Z").replace("T", " ") + " (UTC)";
    el.textContent = (el.classList.contains("short") ? short : format).format(when);
  }
}

function chartTimes(root) {
  // The hourly chart's axis and bar titles, in the viewer's timezone (SVG has no <time>).
  const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  for (const svg of root.querySelectorAll("svg.hourly")) {
    let lastDay = "";
    for (const label of svg.querySelectorAll("text[data-at]")) {
      const when = new Date(label.dataset.at);
      const today = day.format(when);
      // The day once, where it changes; otherwise the time of day.
      label.textContent = today !== lastDay ? `${today} ${clock.format(when)}` : clock.format(when);
      lastDay = today;
    }
    for (const title of svg.querySelectorAll("title[data-from]")) {
      // "<from> UTC – <to> UTC: <numbers>": the numbers stay, the times become local.
      const numbers = title.textContent.slice(title.textContent.indexOf("UTC: ") + 5);
      const from = new Date(title.dataset.from);
      const to = new Date(title.dataset.to);
      title.textContent = `${day.format(from)} ${clock.format(from)} – ` +
        `${day.format(to) === day.format(from) ? "" : day.format(to) + " "}${clock.format(to)}: ` +
        numbers;
    }
  }
}

function localInputValue(when) {
  // The value of a datetime-local input: the viewer's wall-clock time, to the minute.
  const pad = (n) => String(n).padStart(2, "0");
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}`;
}

function timeRange() {
  // The custom range's inputs show the viewer's local time; the URL carries the UTC
  // instants (hidden fields), so a shared link means the same rows everywhere.
  const inputs = document.querySelectorAll("input[data-utc-field]");
  if (!inputs.length) return;
  const form = inputs[0].form;
  const preset = form.elements.since;
  const hiddenOf = (input) => form.elements[input.dataset.utcField];
  for (const input of inputs) {
    const when = hiddenOf(input).value ? new Date(hiddenOf(input).value) : null;
    if (when && !Number.isNaN(when.getTime())) input.value = localInputValue(when);
    input.addEventListener("input", () => {
      input.dataset.edited = "1";
      if (preset) preset.value = "";
    });
  }
  if (preset) {
    preset.addEventListener("change", () => {
      for (const input of inputs) {
        input.value = "";
        input.dataset.edited = "1";
      }
    });
  }
  form.addEventListener("submit", () => {
    for (const input of inputs) {
      const hidden = hiddenOf(input);
      if (input.dataset.edited) {
        // new Date("YYYY-MM-DDTHH:MM") reads the viewer's timezone.
        const when = input.value ? new Date(input.value) : null;
        hidden.value = when && !Number.isNaN(when.getTime())
          ? when.toISOString().replace(/\.\d{3}Z$/, "Z") : "";
      }
      hidden.disabled = !hidden.value;
    }
  });
}

function copyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const text = source ? source.textContent.trim() : "";
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

function tokenDialog() {
  const form = document.getElementById("generate-form");
  const dialog = document.getElementById("token-dialog");
  if (!form || !dialog) return;
  if (dialog.hasAttribute("data-server-open")) {
    // Rendered without script help: reopen as a modal so focus stays in it.
    dialog.close();
    dialog.showModal();
  }
  dialog.addEventListener("close", () => {
    document.getElementById("new-token").textContent = "";
    window.location.replace(window.location.pathname);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": form.elements.csrf_token.value },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) {
      window.alert("The token was not generated (HTTP " + response.status + "). Reload the page and try again.");
      return;
    }
    const created = await response.json();
    document.getElementById("new-token").textContent = created.token;
    dialog.showModal();
  });
}

function detailToggles() {
  // Delegated, so rows added live toggle too.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-toggle]");
    if (!button) return;
    const detail = document.getElementById(button.dataset.toggle);
    if (!detail) return;
    const open = detail.hasAttribute("hidden");
    detail.toggleAttribute("hidden", !open);
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "Hide" : "Details";
  });
}

function openDetails() {
  // A row's own page shows its details open.
  for (const table of document.querySelectorAll("table.log.open")) {
    for (const button of table.querySelectorAll("button[data-toggle]")) button.click();
  }
}

function markResolved(row) {
  // A success for a target resolves its earlier failures, as the log's query does.
  if (row.outcome !== "success" || !row.target_key) return;
  for (const entry of document.querySelectorAll("tbody.entry.outcome-failure:not(.resolved)")) {
    if (entry.dataset.targetKey !== row.target_key) continue;
    entry.classList.add("resolved");
    const label = entry.querySelector(".resolution");
    if (label) label.textContent = "Resolved by a later success";
  }
}

function bump(scope, key) {
  const cell = scope.querySelector(`[data-count="${CSS.escape(key)}"]`);
  if (cell) cell.textContent = String(Number(cell.textContent) + 1);
}

function liveLog() {
  // One EventSource per page; the server fans rows out from one poller per process.
  const status = document.getElementById("live-status");
  if (!status || !window.EventSource) return;
  const table = document.getElementById("log");
  const pause = document.getElementById("live-pause");
  let paused = false;
  let held = [];
  const show = (row) => {
    markResolved(row);
    if (table && !document.getElementById("row-" + row.id)) {
      const holder = document.createElement("template");
      holder.innerHTML = row.html.trim();
      const entry = holder.content.firstElementChild;
      entry.classList.add("fresh");
      localTimes(entry);
      table.querySelector("thead").after(entry);
      const empty = document.getElementById("log-empty");
      if (empty) empty.remove();
    }
    for (const job of document.querySelectorAll(`section.job[data-job="${CSS.escape(row.job || "")}"]`)) {
      if (job.dataset.seen && job.dataset.seen.split(" ").includes(String(row.id))) continue;
      job.dataset.seen = (job.dataset.seen || "") + " " + row.id;
      bump(job, "requests");
      bump(job, "all|" + row.outcome);
      bump(job, row.event + "|" + row.outcome);
      const last = job.querySelector("[data-last]");
      if (last) {
        last.innerHTML = `<time datetime="${row.at}"></time>`;
        localTimes(last);
      }
    }
  };
  if (pause) {
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      status.textContent = paused ? "Paused" : "Live";
      status.classList.toggle("paused", paused);
      if (!paused) {
        held.forEach(show);
        held = [];
      }
    });
  }
  const source = new EventSource(status.dataset.src);
  source.addEventListener("open", () => {
    status.textContent = paused ? "Paused" : "Live";
    status.classList.remove("offline");
  });
  source.addEventListener("error", () => {
    status.textContent = "Reconnecting…";
    status.classList.add("offline");
  });
  source.addEventListener("row", (event) => {
    const row = JSON.parse(event.data);
    if (paused) {
      held.push(row);
      status.textContent = `Paused (${held.length} new)`;
    } else {
      show(row);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  chartTimes(document);
  timeRange();
  copyButtons(document);
  tokenDialog();
  detailToggles();
  openDetails();
  liveLog();
});
