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

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  copyButtons(document);
  tokenDialog();
});
