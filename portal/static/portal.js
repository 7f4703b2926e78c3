// Asks before a form marked data-confirm is sent (a delete cannot be undone). No inline scripts: see base.html.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
