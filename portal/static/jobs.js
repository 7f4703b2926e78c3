// The job pages: submit without leaving the page, the jobs' states and a job's output as they change.
// Streams come through the portal (it holds the token); every text from the API goes in as text, never as HTML.
"use strict";

const showError = (text) => showErrorIn("jobs-error", text);

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
                       "BOOT_FAIL", "DEADLINE"]);

function stateClass(state) {
  if (state === "COMPLETED") return "state-ok";
  if (FINAL.has(state)) return "state-bad";
  return "state-wait";
}

function fill(template, system, jobid) {
  return template.replace("SYSTEM", encodeURIComponent(system)).replace("JOBID", encodeURIComponent(jobid));
}

// Follow one job's output (stdout or stderr) into `pre`; `onState(state, exitCode, final)` hears its state.
function followOutput(url, pre, onState) {
  pre.textContent = "";
  const source = new EventSource(url);
  source.addEventListener("job", (e) => onState(JSON.parse(e.data).state, null, false));
  source.addEventListener("output", (e) => { pre.textContent += e.data; });
  source.addEventListener("state", (e) => onState(JSON.parse(e.data).state, null, false));
  source.addEventListener("error", (e) => {
    if (e.data) showError(`Reading the output failed: ${JSON.parse(e.data).description}`);
  });
  source.addEventListener("end", (e) => {
    const end = JSON.parse(e.data);
    source.close();  // an EventSource would reconnect and get `end` again
    onState(end.state, end.exit_code, true);
  });
  source.addEventListener("apierror", (e) => {
    source.close();
    showError(refusalText(JSON.parse(e.data)));
  });
  return source;
}

class JobsPage {
  constructor(root) {
    this.root = root;
    this.rows = new Map();
    this.body = document.querySelector("#jobs tbody");
    this.system = document.getElementById("system");
    this.events = null;
    this.output = null;
  }

  url(name, jobid) { return fill(this.root.dataset[name], this.system.value, jobid); }

  start() {
    document.getElementById("example").addEventListener("change", (e) => this.example(e.target.value));
    document.getElementById("submit-form").addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.system.addEventListener("change", () => this.load());
    this.load();
  }

  example(key) {
    const t = document.getElementById(`example-${key}`);
    if (!t) return;
    document.getElementById("script").value = t.content.textContent;
    document.getElementById("script-name").value = `${key}.sh`;
  }

  async load() {
    document.getElementById("jobs-system").textContent = this.system.value;
    this.rows.clear();
    this.body.replaceChildren();
    delete this.root.dataset.loaded;
    this.follow();
    try {
      const answer = await call("GET", `${this.root.dataset.queueUrl}?system=${encodeURIComponent(this.system.value)}`);
      for (const job of answer.jobs) this.update(job);
      this.empty();
      this.root.dataset.loaded = "true";  // the queue is shown (the tests wait on this)
    } catch (err) { showError(err.message); }
  }

  // The states of all the user's jobs on the system, live (the portal relays GET /tasks/events/jobs).
  follow() {
    if (this.events) this.events.close();
    const live = document.getElementById("live");
    live.textContent = "(connecting...)";
    const source = new EventSource(`${this.root.dataset.eventsUrl}?system=${encodeURIComponent(this.system.value)}`);
    this.events = source;
    source.addEventListener("open", () => { live.textContent = "(live)"; });
    source.addEventListener("job", (e) => { this.update(JSON.parse(e.data)); this.empty(); });
    source.addEventListener("reset", () => this.load());
    source.addEventListener("apierror", (e) => {
      const refusal = JSON.parse(e.data);
      source.close();
      live.textContent = "(not live)";
      showError(refusalText(refusal));
      const wait = parseInt(refusal.retry_after, 10);
      if (refusal.status === 429 && wait > 0) {  // try again when the API says a place may be free
        setTimeout(() => { if (this.events === source) { showError(""); this.follow(); } }, wait * 1000);
      }
    });
  }

  empty() { document.getElementById("no-jobs").hidden = this.rows.size > 0; }

  update(job) {
    const id = String(job.jobid);
    let row = this.rows.get(id);
    if (!row) row = this.addRow(id);
    if (job.name) row.cells[1].textContent = job.name;
    if (job.state) {
      row.dataset.state = job.state;
      row.cells[2].textContent = job.state;
      row.cells[2].className = `job-state ${stateClass(job.state)}`;
      row.querySelector("button.cancel").hidden = FINAL.has(job.state);
    }
    if (job.exit_code) row.cells[3].textContent = job.exit_code;
  }

  addRow(id) {
    const row = document.createElement("tr");
    row.id = `job-${id}`;
    row.dataset.jobid = id;
    for (let i = 0; i < 5; i++) row.appendChild(document.createElement("td"));
    const link = document.createElement("a");
    link.href = this.url("jobUrl", id);
    link.textContent = id;
    row.cells[0].appendChild(link);
    row.cells[2].className = "job-state";
    row.cells[4].className = "actions-cell";
    const show = document.createElement("button");
    show.type = "button";
    show.className = "show-output";
    show.textContent = "Output";
    show.addEventListener("click", () => this.showOutput(id));
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel danger";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => this.cancel(id, cancel));
    row.cells[4].append(show, " ", cancel);
    // Newest first: a job id is larger than every earlier one's.
    const before = [...this.body.rows].find((r) => parseInt(r.dataset.jobid, 10) < parseInt(id, 10));
    this.body.insertBefore(row, before || null);
    this.rows.set(id, row);
    return row;
  }

  async submit() {
    const status = document.getElementById("submit-status");
    const button = document.getElementById("submit-job");
    showError("");
    button.disabled = true;
    status.textContent = "Submitting...";
    try {
      const job = await call("POST", this.root.dataset.submitUrl, new FormData(document.getElementById("submit-form")));
      if (job.jobid) {
        status.textContent = `Submitted: job ${job.jobid}`;
        if (job.system !== this.system.value) return;
        this.update({jobid: job.jobid, name: document.getElementById("script-name").value, state: "SUBMITTED"});
        this.empty();
        this.showOutput(job.jobid);
      } else {
        status.textContent = `Submitted (task ${job.task_id}): ${job.pending || "waiting for sbatch"}`;
      }
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  }

  showOutput(id) {
    if (this.output) this.output.close();
    for (const r of this.rows.values()) r.classList.toggle("followed", r.dataset.jobid === id);
    document.getElementById("followed").hidden = false;
    document.getElementById("followed-id").textContent = id;
    const stateEl = document.getElementById("followed-state");
    stateEl.textContent = "waiting for the job...";
    this.output = followOutput(this.url("outputUrl", id), document.getElementById("output"), (state, exit) => {
      stateEl.textContent = exit ? `${state} (exit code ${exit})` : state;
      stateEl.className = stateClass(state);
    });
  }

  async cancel(id, button) {
    showError("");
    button.disabled = true;
    try {
      await call("POST", this.url("cancelUrl", id));
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  }
}

function jobPage(root) {
  const stateEl = document.getElementById("job-state");
  const exitEl = document.getElementById("job-exit");
  const select = document.getElementById("stream");
  let source = null;
  const open = () => {
    if (source) source.close();
    source = followOutput(`${root.dataset.outputUrl}?stream=${select.value}`, document.getElementById("output"),
      (state, exit, final) => {
        stateEl.textContent = state;
        stateEl.className = stateClass(state);
        if (exit) exitEl.textContent = `exit code ${exit}`;
        if (final) document.getElementById("cancel-job").hidden = true;
      });
  };
  select.addEventListener("change", open);
  document.getElementById("cancel-job").addEventListener("click", async (e) => {
    showError("");
    e.target.disabled = true;
    try { await call("POST", root.dataset.cancelUrl); } catch (err) { showError(err.message); }
    e.target.disabled = false;
  });
  open();
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("jobs-page");
  if (list) new JobsPage(list).start();
  const one = document.getElementById("job-page");
  if (one) jobPage(one);
});
