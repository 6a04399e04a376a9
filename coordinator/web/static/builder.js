// The analysis builder: assemble the request from the form, preview it, check it, submit it.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const byCode = new Map(data.variables.map((v) => [v.code, v]));
  const codes = data.variables.map((v) => v.code);
  const form = document.getElementById("builder");
  const preview = document.getElementById("preview");
  const check = document.getElementById("check");
  const conditions = document.getElementById("conditions");
  const submitError = document.getElementById("submit-error");
  const NUMERIC = new Set(["numeric", "integer", "binary"]);
  let problems = [];
  let conditionCount = 0;
  let timer = null;

  document.getElementById("analysis").addEventListener("change", () => {
    document.getElementById("choose").submit();
  });

  const split = (text) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");

  function coerce(code, text) {
    const v = byCode.get(code);
    if (v && NUMERIC.has(v.type) && text !== "" && !Number.isNaN(Number(text))) {
      return Number(text);
    }
    return text;
  }

  function fieldValue(el) {
    const kind = el.dataset.kind;
    const raw = el.type === "checkbox" ? el.checked : el.value.trim();
    if (kind === "boolean") return raw;
    if (raw === "") return undefined;
    if (kind === "integer" || kind === "number") return Number(raw);
    if (kind === "numbers") return split(raw).map(Number);
    if (kind === "variables" || kind === "texts") return split(raw);
    if (kind === "json") {
      try {
        return JSON.parse(raw);
      } catch (err) {
        problems.push(`${el.dataset.name}: not valid JSON`);
        return undefined;
      }
    }
    return raw;
  }

  function condition(li) {
    const code = li.querySelector("[data-part=var]").value.trim();
    const op = li.querySelector("[data-part=op]").value;
    const text = li.querySelector("[data-part=value]").value.trim();
    if (code === "") return null;
    if (op === "is_null" || op === "not_null") return { var: code, op };
    if (op === "in" || op === "not_in") {
      return { var: code, op, value: split(text).map((t) => coerce(code, t)) };
    }
    return { var: code, op, value: coerce(code, text) };
  }

  function cohort() {
    const members = [...conditions.children].map(condition).filter((c) => c !== null);
    const boxes = [...document.querySelectorAll("input[name=site]")];
    const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
    const siteCond = chosen.length < boxes.length
      ? { var: "site", op: "in", value: chosen } : null;
    const combine = document.getElementById("combine").value;
    if (combine === "any" && members.length > 0) {
      const any = { any: members };
      return siteCond ? { all: [siteCond, any] } : any;
    }
    const all = siteCond ? [siteCond, ...members] : members;
    return all.length > 0 ? { all } : undefined;
  }

  function request() {
    problems = [];
    const out = { analysis: form.dataset.analysis };
    for (const el of form.querySelectorAll("[data-name]")) {
      const value = fieldValue(el);
      if (value !== undefined) out[el.dataset.name] = value;
    }
    const c = cohort();
    if (c !== undefined) out.cohort = c;
    const visit = document.getElementById("visit").value.trim();
    if (visit !== "" && visit !== "baseline") out.visit = visit;
    const refusal = document.getElementById("on_refusal").value;
    if (refusal !== "fail") out.on_refusal = refusal;
    if (form.dataset.project) out.project = form.dataset.project;
    return out;
  }

  async function validate(req) {
    if (problems.length > 0) {
      check.textContent = problems.join("; ");
      check.className = "bad";
      return;
    }
    try {
      const response = await fetch("/analyses/validate", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(req),
      });
      const answer = await response.json();
      check.textContent = answer.ok ? "The request is valid." : answer.detail;
      check.className = answer.ok ? "good" : "bad";
    } catch (err) {
      check.textContent = "Could not check the request: " + err;
      check.className = "bad";
    }
  }

  function update() {
    const req = request();
    preview.textContent = JSON.stringify(req, null, 2);
    clearTimeout(timer);
    timer = setTimeout(() => validate(req), 250);
  }

  // Completion of the variable being typed in comma lists and formulas.
  function complete(el) {
    const list = document.getElementById(el.getAttribute("list"));
    const text = el.value;
    const pattern = el.dataset.kind === "formula" ? /[\s~+*:()\-,/^|]/ : /[,\s]/;
    let cut = text.length;
    while (cut > 0 && !pattern.test(text[cut - 1])) cut -= 1;
    const head = text.slice(0, cut);
    const token = text.slice(cut).toLowerCase();
    const starts = codes.filter((c) => c.startsWith(token));
    const contains = codes.filter((c) => !c.startsWith(token) && c.includes(token));
    list.replaceChildren(...[...starts, ...contains].slice(0, 40).map((code) => {
      const option = document.createElement("option");
      option.value = head + code;
      const v = byCode.get(code);
      option.label = v && v.label ? `${code}: ${v.label}` : code;
      return option;
    }));
  }

  function addCondition() {
    conditionCount += 1;
    const li = document.getElementById("condition-template").content.firstElementChild
      .cloneNode(true);
    for (const label of li.querySelectorAll("label[data-for]")) {
      const part = label.dataset.for;
      const id = `cond-${conditionCount}-${part}`;
      label.htmlFor = id;
      li.querySelector(`[data-part=${part}]`).id = id;
    }
    li.querySelector("[data-part=remove]").addEventListener("click", () => {
      li.remove();
      document.getElementById("add-condition").focus();
      update();
    });
    li.querySelector("[data-part=remove]").setAttribute(
      "aria-label", `Remove condition ${conditionCount}`);
    conditions.appendChild(li);
    li.querySelector("[data-part=var]").focus();
    update();
  }

  document.getElementById("add-condition").addEventListener("click", addCondition);
  form.addEventListener("input", (event) => {
    const el = event.target;
    if (el.dataset && (el.dataset.kind === "variables" || el.dataset.kind === "formula")) {
      complete(el);
    }
    update();
  });
  form.addEventListener("change", update);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submitError.hidden = true;
    const req = request();
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const response = await fetch("/v1/analyses", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(req),
      });
      const answer = await response.json();
      if (response.status === 202) {
        window.location.assign(`/jobs/${answer.job_id}`);
        return;
      }
      submitError.textContent = answer.detail || answer.title || `HTTP ${response.status}`;
    } catch (err) {
      submitError.textContent = "The request could not be sent: " + err;
    }
    submitError.hidden = false;
    button.disabled = false;
  });
  for (const el of form.querySelectorAll("[data-kind=variables], [data-kind=formula]")) {
    complete(el);
  }
  update();
})();
