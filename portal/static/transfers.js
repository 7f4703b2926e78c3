// The transfers page: the browser PUTs a file straight to the upload's Swift temp URL (upload progress shown),
// downloads by the temp URL a download ends with, and follows every transfer's task through one relayed stream.
"use strict";

const showError = (text) => showErrorIn("transfers-error", text);

const FINAL_STATUS = new Set(["114", "115", "117", "118", "400", "302"]);
const FAILED_STATUS = new Set(["115", "118", "400"]);
const MIB = 1048576;

// PUT `blob` to a temp URL; `progress(loaded)` hears the bytes sent so far (XMLHttpRequest: fetch has no upload
// progress). The listener on xhr.upload makes this a preflighted CORS request: Swift allows the portal's origin.
function put(url, blob, headers, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => progress(e.loaded));
    xhr.addEventListener("load", () => (xhr.status >= 200 && xhr.status < 300 ? resolve()
      : reject(new Error(`The object store answered ${xhr.status} ${xhr.statusText}`))));
    xhr.addEventListener("error", () => reject(new Error("The object store could not be reached (network or CORS)")));
    xhr.send(blob);
  });
}

// The file in one PUT, or (over one segment) as numbered segments then the empty object announcing them.
async function sendFile(offer, file, progress) {
  if (!offer.segment_url || file.size <= offer.segment_size) {
    await put(offer.url, file, {}, progress);
    return;
  }
  let size = offer.segment_size;
  const least = Math.ceil(Math.ceil(file.size / offer.max_segments) / MIB) * MIB;
  if (least > size) size = least;
  const count = Math.ceil(file.size / size);
  for (let i = 0; i < count; i++) {
    const url = offer.segment_url.replace("{index:08d}", String(i).padStart(8, "0"));
    await put(url, file.slice(i * size, (i + 1) * size), {}, (loaded) => progress(i * size + loaded));
  }
  await put(offer.url, new Blob([]), {"X-Object-Meta-Segments": String(count)}, () => progress(file.size));
}

class TransfersPage {
  constructor(root) {
    this.root = root;
    this.body = document.querySelector("#transfers tbody");
    this.source = null;
  }

  url(name, tid) { return this.root.dataset[name].replace("TASK", encodeURIComponent(tid)); }

  start() {
    for (const row of this.body.rows) this.render(row);
    document.getElementById("upload-form").addEventListener("submit", (e) => { e.preventDefault(); this.upload(); });
    document.getElementById("download-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.download();
    });
    this.follow();
  }

  row(tid) {
    let row = document.getElementById(`transfer-${tid}`);
    if (!row) {
      row = document.createElement("tr");
      row.id = `transfer-${tid}`;
      row.dataset.task = tid;
      this.body.insertBefore(row, this.body.firstChild);
    }
    return row;
  }

  // One row from its data-* attributes: every value goes in as text.
  render(row) {
    const d = row.dataset;
    const cells = [d.task.slice(0, 8), d.kind || "", d.file || "", "", ""].map((text) => {
      const td = document.createElement("td");
      td.textContent = text;
      return td;
    });
    const status = cells[3];
    status.className = "transfer-status";
    status.textContent = `${d.status} ${d.description || ""}${d.error ? `: ${d.error}` : ""}`;
    const good = d.status === "114" || d.status === "117";
    status.classList.add(good ? "state-ok" : FAILED_STATUS.has(d.status) ? "state-bad" : "state-wait");
    if (d.url) {
      const link = document.createElement("a");
      link.href = d.url;
      link.className = "download-link";
      link.rel = "noreferrer";
      link.textContent = "Download";
      cells[4].append(link, " ");
    }
    if (d.status !== "302") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "invalidate danger";
      button.textContent = "Invalidate";
      button.addEventListener("click", () => this.invalidate(d.task, button));
      cells[4].append(button);
    }
    row.replaceChildren(...cells);
  }

  update(task) {
    const row = this.row(task.task_id);
    const data = task.data && typeof task.data === "object" ? task.data : {};
    row.dataset.status = String(task.status);
    row.dataset.description = task.description || "";
    if (data.target || data.source) row.dataset.file = data.target || data.source;
    if (task.status === "117" && data.url) row.dataset.url = data.url;
    if (task.status === "302") row.dataset.url = "";
    row.dataset.error = FAILED_STATUS.has(String(task.status)) ? (data.msg || data.error || "") : "";
    this.render(row);
    if (FINAL_STATUS.has(String(task.status))) this.follow();
  }

  // One relayed stream for every transfer still under way (the API allows 8 streams per user).
  follow() {
    const open = [...this.body.rows].filter((r) => !FINAL_STATUS.has(r.dataset.status)).map((r) => r.dataset.task);
    const key = open.join(",");
    if (this.source && this.followed === key) return;
    if (this.source) this.source.close();
    this.source = null;
    this.followed = key;
    if (!open.length) return;
    const source = new EventSource(`${this.root.dataset.eventsUrl}?tasks=${encodeURIComponent(key)}`);
    this.source = source;
    source.addEventListener("task", async (e) => {
      const task = JSON.parse(e.data);
      if (task.data_omitted) {  // a large `data` is left out of the stream: read the task itself
        const shaped = await call("GET", this.url("taskUrl", task.task_id));
        task.data = {target: shaped.target, source: shaped.source, url: shaped.url, msg: shaped.error};
      }
      this.update(task);
    });
    source.addEventListener("apierror", (e) => {
      const refusal = JSON.parse(e.data);
      source.close();
      showError(refusalText(refusal));
      const wait = parseInt(refusal.retry_after, 10);
      if (refusal.status === 429 && wait > 0) {  // try again when the API says a place may be free
        setTimeout(() => {
          if (this.source !== source) return;
          this.source = null;
          showError("");
          this.follow();
        }, wait * 1000);
      }
    });
  }

  async upload() {
    const form = document.getElementById("upload-form");
    const file = document.getElementById("upload-file").files[0];
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    if (!file) return;
    showError("");
    document.getElementById("upload-start").disabled = true;
    bar.value = 0;
    status.textContent = "Asking for an upload URL...";
    try {
      const fields = new FormData(form);
      fields.set("sourcePath", file.name);
      const offer = await call("POST", this.root.dataset.uploadUrl, fields);
      const row = this.row(offer.task_id);
      Object.assign(row.dataset, {status: offer.status, kind: "upload", file: offer.target,
                                  description: "uploading from this browser"});
      this.render(row);
      const total = file.size || 1;
      await sendFile(offer, file, (loaded) => {
        bar.value = Math.min(100, Math.floor((loaded * 100) / total));
        status.textContent = `${(loaded / MIB).toFixed(1)} of ${(file.size / MIB).toFixed(1)} MiB sent`;
      });
      bar.value = 100;
      status.textContent = `Sent ${file.name}: the system now takes it from the object store.`;
      this.follow();
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    } finally {
      document.getElementById("upload-start").disabled = false;
    }
  }

  async download() {
    const status = document.getElementById("download-status");
    showError("");
    status.textContent = "Starting...";
    try {
      const started = await call("POST", this.root.dataset.downloadUrl, new FormData(document.getElementById("download-form")));
      const row = this.row(started.task_id);
      Object.assign(row.dataset, {status: "100", kind: "download", file: started.source, description: "Queued"});
      this.render(row);
      status.textContent = "The system copies the file to the object store; its link shows below.";
      this.follow();
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    }
  }

  async invalidate(tid, button) {
    showError("");
    button.disabled = true;
    try {
      await call("POST", this.url("invalidateUrl", tid));
      const row = this.row(tid);
      Object.assign(row.dataset, {status: "302", description: "invalidated", url: "", error: ""});
      this.render(row);
      this.follow();
    } catch (err) {
      showError(err.message);
      button.disabled = false;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("transfers-page");
  if (root) new TransfersPage(root).start();
});
