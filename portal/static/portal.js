// Asks before a form marked data-confirm is sent (a delete cannot be undone). No inline scripts: see base.html.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// What the job and transfer pages share: the session's CSRF token, the API's refusals in words, and calls to the
// portal's own JSON routes.
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function refusalText(body, status) {
  const b = body || {};
  const code = b.status || status;
  let text = `The API answered ${code}: ${b.description || "no description"}`;
  for (const d of b.details || []) text += ` (${d.header}: ${d.value}, ${d.meaning})`;
  if (!/[.!?]$/.test(text)) text += ".";
  if (code === 429) text += b.retry_after ? ` Try again in ${b.retry_after} seconds.` : " Try again shortly.";
  else if (code === 403) text += " You (or this portal) may not do this.";
  return text;
}

function showErrorIn(id, text) {
  const box = document.getElementById(id);
  box.textContent = text;
  box.hidden = !text;
}

async function call(method, url, form) {
  const r = await fetch(url, {method, body: form, credentials: "same-origin",
                              headers: {"X-CSRF-Token": csrfToken(), "Accept": "application/json"}});
  let body = null;
  try { body = await r.json(); } catch (e) { body = {description: `${r.status} ${r.statusText}`}; }
  if (!r.ok) throw new Error(refusalText(body, r.status));
  return body;
}

