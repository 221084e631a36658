// The gateway's chat page: a plain-JavaScript client of the OpenAI dialect.
//
// - Models come from GET ../v1/models; answers stream from POST ../v1/chat/completions
//   (stream: true), read with fetch + ReadableStream and parsed as SSE here, because
//   EventSource cannot POST or send an Authorization header.
// - Model output is untrusted: it only ever enters the page through textContent and
//   createElement, never innerHTML, so markup in an answer is shown, not run. The strict
//   Content-Security-Policy the gateway sends with this page is a second line of defence.
// - URLs are relative so the page works under an API Gateway stage prefix (/prod/ui/).
"use strict";

(function () {
  const API = {
    models: new URL("../v1/models", document.baseURI),
    chat: new URL("../v1/chat/completions", document.baseURI),
  };
  const KEY_STORAGE = "llm-gateway.api-key";

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    settings: $("settings"),
    apiKey: $("api-key"),
    model: $("model"),
    temperature: $("temperature"),
    topP: $("top-p"),
    topK: $("top-k"),
    maxTokens: $("max-tokens"),
    repetitionPenalty: $("repetition-penalty"),
    stopSequences: $("stop-sequences"),
    log: $("log"),
    composer: $("composer"),
    prompt: $("prompt"),
    send: $("send"),
    stop: $("stop-button"),
    clear: $("clear"),
  };

  // The conversation sent with every request: [{role, content}], oldest first.
  let history = [];
  // The AbortController of the answer being streamed, or null when idle.
  let inFlight = null;

  // ---- small helpers ------------------------------------------------------------------

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.classList.toggle("error", Boolean(isError));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function authHeaders() {
    const key = ui.apiKey.value.trim();
    // Both spellings the gateway (and API Gateway's authorizer) accept.
    return key ? { Authorization: "Bearer " + key, "x-api-key": key } : {};
  }

  // An OpenAI-style error object -> one readable line.
  function describeError(error, status) {
    if (!error || typeof error !== "object") return String(error);
    const parts = [error.message || "Unknown error"];
    const detail = [status, error.type, error.code].filter((x) => x !== undefined && x !== null);
    if (detail.length) parts.push("(" + detail.join(", ") + ")");
    return parts.join(" ");
  }

  // A failed response (before any stream): the gateway answers {"error": {...}}; anything in
  // front of it (a proxy, API Gateway) may answer something else, shown as it is.
  async function responseError(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error) return describeError(body.error, response.status);
      if (body && body.message) return body.message + " (" + response.status + ")";
    } catch (_) {
      // not JSON: fall through
    }
    return "HTTP " + response.status + " " + response.statusText + (text ? ": " + text.slice(0, 300) : "");
  }

  function numberField(input, parse) {
    const raw = input.value.trim();
    if (raw === "") return undefined; // empty = let the model's defaults apply
    const value = parse(raw);
    if (!Number.isFinite(value)) throw new Error(input.labels[0].textContent + " must be a number");
    return value;
  }

  function requestParameters() {
    const params = {
      temperature: numberField(ui.temperature, parseFloat),
      top_p: numberField(ui.topP, parseFloat),
      top_k: numberField(ui.topK, (v) => parseInt(v, 10)),
      max_tokens: numberField(ui.maxTokens, (v) => parseInt(v, 10)),
      repetition_penalty: numberField(ui.repetitionPenalty, parseFloat),
    };
    const stop = ui.stopSequences.value.split("\n").filter((s) => s !== "");
    if (stop.length) params.stop = stop;
    for (const name of Object.keys(params)) {
      if (params[name] === undefined) delete params[name];
    }
    return params;
  }

  // ---- rendering ----------------------------------------------------------------------

  // Fill `body` with `text`: ``` fences become <pre><code>, everything else text nodes (the
  // CSS keeps line breaks). An unclosed fence (still streaming) is shown as code already.
  function renderText(body, text) {
    body.replaceChildren();
    const parts = text.split("```");
    parts.forEach((part, index) => {
      if (index % 2 === 0) {
        // A code block is a block already: drop the line breaks that only surround the fences.
        let prose = part;
        if (index > 0) prose = prose.replace(/^\n/, "");
        if (index < parts.length - 1) prose = prose.replace(/\n$/, "");
        if (prose) body.appendChild(document.createTextNode(prose));
        return;
      }
      // Inside a fence: the first line may name the language (```python).
      const newline = part.indexOf("\n");
      const info = newline === -1 ? "" : part.slice(0, newline).trim();
      const code = newline === -1 ? part : part.slice(newline + 1);
      const pre = el("pre");
      const codeEl = el("code", null, code.replace(/\n$/, ""));
      if (/^[\w+#.-]{1,30}$/.test(info)) codeEl.dataset.lang = info;
      pre.appendChild(codeEl);
      body.appendChild(pre);
    });
  }

  function addMessage(role, text) {
    const item = el("li", "msg " + role);
    item.appendChild(el("p", "who", role === "user" ? "You" : "Assistant"));
    const body = el("div", "body");
    item.appendChild(body);
    renderText(body, text);
    ui.log.appendChild(item);
    scrollToEnd();
    return { item, body };
  }

  function showMessageError(message, text) {
    message.item.classList.add("failed");
    const box = el("p", "error-text", "Error: " + text);
    box.setAttribute("role", "alert");
    message.item.appendChild(box);
    scrollToEnd();
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function setBusy(busy) {
    ui.send.disabled = busy;
    ui.stop.disabled = !busy;
  }

  // ---- SSE ----------------------------------------------------------------------------

  // Read an SSE body and call onData(payload) for each event's data (multi-line data joined
  // by "\n", comment lines such as the gateway's heartbeats skipped). Resolves true when the
  // stream said [DONE], false when it just ended.
  async function readSSE(response, onData) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder(); // stream: true below keeps split UTF-8 sequences intact
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += decoder.decode(value, { stream: true });
      // Hold a trailing "\r": it may be the first half of a "\r\n" split across reads.
      const hold = buffer.endsWith("\r") ? "\r" : "";
      const text = (hold ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n");
      const events = text.split("\n\n");
      buffer = events.pop() + hold; // the last piece is incomplete until its blank line
      for (const event of events) {
        const data = [];
        for (const line of event.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
          // event:, id:, retry: carry nothing this client needs
        }
        if (!data.length) continue;
        const payload = data.join("\n");
        if (payload === "[DONE]") {
          reader.cancel().catch(() => {});
          return true;
        }
        onData(payload);
      }
    }
  }

  // ---- chat ---------------------------------------------------------------------------

  async function send(text) {
    if (inFlight) return;
    let params;
    try {
      params = requestParameters();
    } catch (err) {
      setStatus(err.message, true);
      return;
    }
    if (!ui.model.value) {
      setStatus("No model to talk to: check the API key, then reload the models.", true);
      return;
    }

    history.push({ role: "user", content: text });
    const userMessage = addMessage("user", text);
    const answer = addMessage("assistant", "");
    answer.item.classList.add("streaming");
    answer.item.setAttribute("aria-busy", "true");

    const controller = new AbortController();
    inFlight = controller;
    setBusy(true);
    setStatus("Waiting for " + ui.model.value + "…");

    let content = "";
    let finishReason = null;
    let usage = null;
    let failure = null;
    let outcome = "done";

    try {
      const response = await fetch(API.chat, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify({
          model: ui.model.value,
          messages: history,
          stream: true,
          stream_options: { include_usage: true },
          ...params,
        }),
        signal: controller.signal,
      });
      if (!response.ok) {
        failure = await responseError(response);
      } else {
        setStatus("Streaming…");
        const finished = await readSSE(response, (payload) => {
          let chunk;
          try {
            chunk = JSON.parse(payload);
          } catch (_) {
            failure = failure || "The gateway sent an event that is not JSON: " + payload.slice(0, 200);
            return;
          }
          if (chunk.error) {
            // A mid-stream failure: one error event, then [DONE].
            failure = describeError(chunk.error);
            return;
          }
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            if (choice.delta && typeof choice.delta.content === "string") {
              content += choice.delta.content;
            }
            if (choice.finish_reason) finishReason = choice.finish_reason;
          }
          renderText(answer.body, content);
          scrollToEnd();
        });
        if (!finished && !failure) failure = "The stream ended before the answer was complete.";
      }
    } catch (err) {
      if (err.name === "AbortError") {
        outcome = "stopped";
      } else {
        failure = "Could not reach the gateway: " + err.message;
      }
    }

    if (inFlight === controller) inFlight = null;
    answer.item.classList.remove("streaming");
    answer.item.removeAttribute("aria-busy");
    setBusy(Boolean(inFlight));

    // Clear() may have emptied the log meanwhile; then there is nothing to record.
    if (!answer.item.isConnected) return;

    if (failure) outcome = "failed";
    answer.item.dataset.outcome = outcome;
    if (content) {
      // Keep even a partial answer, so the next turn has the context the user saw.
      history.push({ role: "assistant", content });
    } else if (outcome !== "done") {
      // Nothing came back: forget the question (templates want user/assistant turns to
      // alternate) and offer it again in the message box.
      history.pop();
      userMessage.item.classList.add("unanswered");
      if (!ui.prompt.value) ui.prompt.value = text;
    }

    const meta = [];
    if (outcome === "stopped") meta.push("stopped");
    if (finishReason) meta.push("finish: " + finishReason);
    if (usage) meta.push(usage.completion_tokens + " tokens");
    if (meta.length) answer.item.appendChild(el("p", "meta", meta.join(" · ")));

    if (failure) {
      showMessageError(answer, failure);
      setStatus("The request failed.", true);
    } else if (outcome === "stopped") {
      setStatus("Stopped.");
    } else {
      setStatus("Ready.");
    }
  }

  function stop() {
    if (inFlight) inFlight.abort();
  }

  function clear() {
    stop();
    history = [];
    ui.log.replaceChildren();
    setStatus("Cleared.");
    ui.prompt.focus();
  }

  // ---- models -------------------------------------------------------------------------

  async function loadModels() {
    const previous = ui.model.value;
    setStatus("Loading models…");
    try {
      const response = await fetch(API.models, { headers: authHeaders() });
      if (!response.ok) {
        const message = await responseError(response);
        ui.model.replaceChildren();
        if (response.status === 401) {
          setStatus("Enter an API key to load the models. " + message, true);
          // The key field may be folded away (narrow screens): show it and put the cursor there.
          ui.settings.open = true;
          ui.apiKey.focus();
        } else {
          setStatus(message, true);
        }
        return;
      }
      const body = await response.json();
      ui.model.replaceChildren();
      for (const model of body.data || []) {
        ui.model.appendChild(el("option", null, model.id)).value = model.id;
      }
      if (previous && [...ui.model.options].some((o) => o.value === previous)) {
        ui.model.value = previous;
      }
      setStatus(ui.model.options.length ? "Ready." : "The gateway has no models.", !ui.model.options.length);
    } catch (err) {
      setStatus("Could not load the models: " + err.message, true);
    }
  }

  // ---- wiring -------------------------------------------------------------------------

  ui.apiKey.value = sessionStorage.getItem(KEY_STORAGE) || "";
  ui.apiKey.addEventListener("change", () => {
    const key = ui.apiKey.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    loadModels(); // a new key may unlock the model list
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.prompt.value;
    if (!text.trim() || inFlight) return;
    ui.prompt.value = "";
    send(text);
  });

  ui.prompt.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line; not while an input method is composing text.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    } else if (event.key === "Escape" && inFlight) {
      event.preventDefault();
      stop();
    }
  });

  ui.stop.addEventListener("click", stop);
  ui.clear.addEventListener("click", clear);

  // On a narrow screen the settings start folded so the conversation gets the room.
  if (window.matchMedia("(max-width: 720px)").matches) ui.settings.open = false;

  setBusy(false);
  loadModels();
})();
