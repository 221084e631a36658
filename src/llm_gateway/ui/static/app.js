// The gateway's chat page: a plain-JavaScript client of the OpenAI dialect.
//
// - Models come from GET ../v1/models; answers stream from POST ../v1/chat/completions
//   (stream: true, stream_options.include_usage), read with fetch + ReadableStream and parsed
//   as SSE here, because EventSource cannot POST or send an Authorization header.
// - Answers are Markdown. Model output is untrusted: markdown-it renders it with raw HTML
//   turned off (markup the model writes is shown as text), images become plain links (no
//   request to anywhere), and DOMPurify sanitizes the result against a short allow-list before
//   it reaches the page; links keep only http(s)/mailto targets and open in a new tab with
//   rel="noopener noreferrer". The strict Content-Security-Policy the gateway sends with this
//   page (script-src 'self', no inline code, no eval) is a second line of defence.
// - While tokens stream, the accumulated text is re-rendered at most once per animation frame
//   (less often when rendering gets slow), not once per token.
// - Under each answer: time to first token and tokens per second (measured here), token usage
//   (the stream's usage chunk) and the gateway's own Server-Timing (gateway, upstream, ttft).
// - The conversation is kept in sessionStorage (this tab only) and survives a reload; Clear
//   starts a new one.
// - URLs are relative so the page works under an API Gateway stage prefix (/prod/ui/).
// - Sign-in (signin.js), when the gateway's config.json offers it: the signed-in user's token
//   is sent instead of the API key; who is signed in and the budget left (the gateway's
//   x-ratelimit-* headers, when it sends them) are shown in the header.
"use strict";

(function () {
  const API = {
    models: new URL("../v1/models", document.baseURI),
    chat: new URL("../v1/chat/completions", document.baseURI),
    config: new URL("config.json", document.baseURI),
  };
  const STORAGE = {
    key: "llm-gateway.api-key",
    model: "llm-gateway.model",
    conversation: "llm-gateway.conversation",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"),
    budget: $("budget"),
    account: $("account"),
    who: $("who"),
    signIn: $("sign-in"),
    signOut: $("sign-out"),
    apiKeySignedIn: $("api-key-signed-in"),
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

  // The conversation as shown: [{role: "user", content, unanswered?} |
  //   {role: "assistant", content, outcome, finish?, stats?, error?}], oldest first.
  // What is sent to the model is derived from it (see conversation()).
  let entries = [];
  // The AbortController of the answer being streamed, or null when idle.
  let inFlight = null;
  // The sign-in session (signin.js), or null when the gateway offers no sign-in.
  let signIn = null;

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

  // A signed-in user's token (renewed when due), else the API key, else nothing.
  async function authHeaders() {
    if (signIn) {
      const token = await signIn.token();
      if (token) return { Authorization: "Bearer " + token };
      if (signIn.expired) await showAccount();
    }
    const key = ui.apiKey.value.trim();
    // Both spellings the gateway (and API Gateway's authorizer) accept.
    return key ? { Authorization: "Bearer " + key, "x-api-key": key } : {};
  }

  function storageGet(name) {
    try {
      return sessionStorage.getItem(name);
    } catch (_) {
      return null; // storage disabled: the page still works, it just forgets on reload
    }
  }

  function storageSet(name, value) {
    try {
      if (value === null || value === "") sessionStorage.removeItem(name);
      else sessionStorage.setItem(name, value);
    } catch (_) {
      // full or disabled: nothing to do but go on
    }
  }

  // ---- errors, in either dialect --------------------------------------------------------

  // A body carrying an error -> one readable line, or null when it carries none.
  //   OpenAI:       {"error": {"message", "type", "param", "code"}}
  //   TGI:          {"error": "…", "error_type": "…"}
  //   API Gateway:  {"message": "…"}
  function describeError(body, status) {
    if (!body || typeof body !== "object") return null;
    let message;
    let detail;
    const error = body.error;
    if (error && typeof error === "object") {
      message = error.message || "Unknown error";
      detail = [status, error.type, error.code];
      if (error.param) detail.push("param: " + error.param);
    } else if (typeof error === "string") {
      message = error || "Unknown error";
      detail = [status, body.error_type];
    } else if (typeof body.message === "string") {
      message = body.message;
      detail = [status];
    } else {
      return null;
    }
    detail = detail.filter((x) => x !== undefined && x !== null && x !== "");
    return detail.length ? message + " (" + detail.join(", ") + ")" : message;
  }

  // A failed response (before any stream), in whatever shape it came.
  async function responseError(response) {
    const text = await response.text();
    let line = null;
    try {
      line = describeError(JSON.parse(text), response.status);
    } catch (_) {
      // not JSON: shown as it is below
    }
    if (!line) {
      line = "HTTP " + response.status + " " + response.statusText + (text ? ": " + text.slice(0, 300) : "");
    }
    const retry = response.headers.get("retry-after");
    if (retry && /^\d+$/.test(retry.trim())) line += " Retry after " + retry.trim() + " s.";
    return line;
  }

  // ---- request parameters ---------------------------------------------------------------

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

  // ---- Markdown -----------------------------------------------------------------------

  const markdown = window.markdownit({ html: false, linkify: true, typographer: false });

  // Table alignment: markdown-it writes style="text-align:…", which the CSP (no inline styles)
  // would refuse and report; a class does the same job.
  markdown.core.ruler.push("align_classes", (state) => {
    for (const token of state.tokens) {
      if ((token.type === "th_open" || token.type === "td_open") && token.attrs) {
        const style = token.attrGet("style") || "";
        token.attrs = token.attrs.filter(([name]) => name !== "style");
        const match = /text-align:\s*(left|center|right)/.exec(style);
        if (match) token.attrJoin("class", "align-" + match[1]);
      }
    }
  });

  // Images would make the browser fetch whatever URL the model wrote (the CSP blocks other
  // origins, but not this one): show them as links instead.
  markdown.renderer.rules.image = (tokens, index, options, env, self) => {
    const token = tokens[index];
    const alt = self.renderInlineAsText(token.children || [], options, env);
    const src = token.attrGet("src") || "";
    const escape = markdown.utils.escapeHtml;
    return '<a href="' + escape(src) + '">' + escape("[image: " + (alt || src) + "]") + "</a>";
  };

  const SANITIZE = {
    ALLOWED_TAGS: [
      "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
      "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
    ],
    ALLOWED_ATTR: ["href", "title", "class", "start"],
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    // Absolute web and mail links only; anything else (javascript:, data:, relative paths
    // into the gateway) loses its href and stays as plain text.
    ALLOWED_URI_REGEXP: /^(?:https?:\/\/|mailto:)/i,
    RETURN_DOM_FRAGMENT: true,
  };

  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName !== "A") return;
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
      if (!node.hasAttribute("title")) node.setAttribute("title", node.getAttribute("href"));
    }
  });

  // Fill `body` with `text` rendered as sanitized Markdown; code blocks get a Copy button.
  function renderMarkdown(body, text) {
    const fragment = window.DOMPurify.sanitize(markdown.render(text), SANITIZE);
    for (const pre of fragment.querySelectorAll("pre")) {
      const block = el("div", "code-block");
      const head = el("div", "code-head");
      const code = pre.querySelector("code");
      const lang = code && /(?:^|\s)language-([\w+#.-]{1,30})(?:\s|$)/.exec(code.className);
      head.appendChild(el("span", "code-lang", lang ? lang[1] : ""));
      const copy = el("button", "copy", "Copy");
      copy.type = "button";
      copy.setAttribute("aria-label", "Copy code");
      head.appendChild(copy);
      pre.replaceWith(block);
      block.append(head, pre);
    }
    body.replaceChildren(fragment);
  }

  // Re-render a streaming answer at most once per animation frame, and when rendering gets
  // slow (long answers), no more than a quarter of the time: the text only ever grows, and
  // the last render always happens (finish()).
  function progressiveRenderer(body) {
    let text = "";
    let rendered = null;
    let scheduled = false;
    let notBefore = 0;

    function flush() {
      scheduled = false;
      if (text === rendered) return;
      const follow = nearBottom();
      const started = performance.now();
      renderMarkdown(body, text);
      rendered = text;
      const cost = performance.now() - started;
      notBefore = performance.now() + (cost > 8 ? cost * 3 : 0);
      if (follow) scrollToEnd();
    }

    return {
      update(next) {
        text = next;
        if (scheduled) return;
        scheduled = true;
        const wait = notBefore - performance.now();
        if (wait > 0) setTimeout(() => requestAnimationFrame(flush), wait);
        else requestAnimationFrame(flush);
      },
      finish() {
        flush();
      },
    };
  }

  // ---- copying code -------------------------------------------------------------------

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain http on another host is not a secure context: no Clipboard API there.
    const area = el("textarea", "visually-hidden");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("copy refused");
  }

  ui.log.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const code = button.closest(".code-block").querySelector("pre code, pre");
    try {
      await copyText(code.textContent.replace(/\n$/, ""));
      button.textContent = "Copied";
      setStatus("Code copied to the clipboard.");
    } catch (err) {
      button.textContent = "Copy failed";
      setStatus("Could not copy: " + err.message, true);
    }
    setTimeout(() => {
      if (button.isConnected) button.textContent = "Copy";
    }, 1500);
  });

  // ---- timings ------------------------------------------------------------------------

  // "gateway;dur=1.5, upstream;dur=40.5, ttft;dur=38.2" -> {gateway: 1.5, upstream: 40.5, ttft: 38.2}
  function parseServerTiming(header) {
    const out = {};
    for (const metric of (header || "").split(",")) {
      const [name, ...params] = metric.trim().split(";");
      if (!name) continue;
      for (const param of params) {
        const [key, value] = param.trim().split("=");
        if (key === "dur" && Number.isFinite(parseFloat(value))) out[name.trim()] = parseFloat(value);
      }
    }
    return out;
  }

  function formatMs(ms) {
    return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
  }

  // The line(s) under an answer, from what was recorded about it.
  function renderMeta(entry) {
    const meta = el("div", "meta");
    const line = el("p", "stats");
    const add = (className, text, title) => {
      const span = el("span", className, text);
      if (title) span.title = title;
      line.appendChild(span);
    };
    const stats = entry.stats || {};
    if (entry.outcome === "stopped") add("outcome", stats.interrupted ? "interrupted by a reload" : "stopped");
    if (stats.wake) {
      add(
        "wake",
        (stats.wake.started ? "model started after " : "waited ") + formatMs(stats.wake.ms)
          + (stats.wake.started ? "" : " for the model to start"),
        "The model had scaled to zero; the gateway held the request while it started"
      );
    }
    if (stats.ttftMs !== undefined) {
      add("ttft", "first token " + formatMs(stats.ttftMs), "Time to first token, measured in this browser");
    }
    if (stats.tokensPerSecond !== undefined) {
      add("tps", stats.tokensPerSecond.toFixed(1) + " tokens/s", "Completion tokens per second of generation");
    }
    if (stats.usage) {
      const u = stats.usage;
      add(
        "usage",
        u.prompt_tokens + " prompt + " + u.completion_tokens + " completion tokens",
        "Token usage from the stream's usage chunk (" + u.total_tokens + " in total)"
      );
    }
    if (entry.finish) add("finish", "finish: " + entry.finish);
    if (line.childNodes.length) meta.appendChild(line);

    const timing = stats.serverTiming || {};
    const names = ["ttft", "upstream", "gateway"].filter((n) => timing[n] !== undefined);
    if (names.length) {
      const server = el("p", "server-timing");
      server.title = "The gateway's Server-Timing header: time to first token from the model, "
        + "the SageMaker call, and the gateway's own time";
      server.textContent = "Server-Timing: " + names.map((n) => n + " " + timing[n].toFixed(1) + " ms").join(" · ");
      meta.appendChild(server);
    }
    return meta.childNodes.length ? meta : null;
  }

  // ---- the conversation -----------------------------------------------------------------

  // What the model is sent: questions that got an answer, and the answers (even partial
  // ones: the user saw them). Unanswered questions are left out so user and assistant turns
  // alternate, as chat templates want.
  function conversation() {
    const messages = [];
    for (const entry of entries) {
      if (entry.role === "user" && !entry.unanswered) messages.push({ role: "user", content: entry.content });
      if (entry.role === "assistant" && entry.content) messages.push({ role: "assistant", content: entry.content });
    }
    return messages;
  }

  function save() {
    storageSet(STORAGE.conversation, entries.length ? JSON.stringify(entries) : null);
  }

  // Build (or rebuild) the list item of an entry; returns {item, body}.
  function renderEntry(entry, item) {
    item = item || el("li");
    item.className = "msg " + entry.role;
    item.replaceChildren(el("p", "who", entry.role === "user" ? "You" : "Assistant"));
    const body = el("div", entry.role === "user" ? "body plain" : "body markdown");
    item.appendChild(body);
    if (entry.role === "user") {
      body.textContent = entry.content; // what the user typed, as typed
      if (entry.unanswered) item.classList.add("unanswered");
      return { item, body };
    }
    renderMarkdown(body, entry.content);
    if (entry.outcome && entry.outcome !== "streaming") {
      item.dataset.outcome = entry.outcome;
      const meta = renderMeta(entry);
      if (meta) item.appendChild(meta);
    }
    if (entry.error) {
      item.classList.add("failed");
      const box = el("p", "error-text", "Error: " + entry.error);
      box.setAttribute("role", "alert");
      item.appendChild(box);
    }
    return { item, body };
  }

  function addEntry(entry) {
    entries.push(entry);
    const view = renderEntry(entry);
    ui.log.appendChild(view.item);
    scrollToEnd();
    return view;
  }

  function restore() {
    let saved;
    try {
      saved = JSON.parse(storageGet(STORAGE.conversation) || "[]");
    } catch (_) {
      saved = [];
    }
    if (!Array.isArray(saved)) saved = [];
    entries = [];
    ui.log.replaceChildren();
    saved.forEach((entry, index) => {
      if (!entry || typeof entry.content !== "string" || !["user", "assistant"].includes(entry.role)) return;
      if (entry.role === "assistant" && (!entry.outcome || entry.outcome === "streaming")) {
        // The page was reloaded while this answer streamed: it ended there.
        entry.outcome = "stopped";
        entry.stats = { ...(entry.stats || {}), interrupted: true };
        const question = saved[index - 1];
        if (!entry.content && question && question.role === "user") question.unanswered = true;
      }
      entries.push(entry);
    });
    for (const entry of entries) ui.log.appendChild(renderEntry(entry).item);
    save();
    scrollToEnd();
  }

  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
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
  // by "\n") and onComment(text) for each comment line (the gateway's heartbeats and its
  // ": waiting for the model to scale up"). Resolves true when the stream said [DONE], false
  // when it just ended.
  async function readSSE(response, onData, onComment) {
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
          if (line === "") continue;
          if (line.startsWith(":")) {
            if (onComment) onComment(line.slice(1).trim());
            continue;
          }
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

  // ---- a model waking from zero -------------------------------------------------------

  // A model that scaled to zero (an inference component at zero copies) takes minutes to
  // start on AWS. The gateway holds the stream open meanwhile and says so in an SSE comment,
  // ": waiting for the model to scale up", then sends heartbeats until the first token. The
  // answer shows that the model is starting, how long this request has waited (ticking) and
  // what to expect; Stop still aborts the request.
  const WAKING_COMMENT = /^waiting for the model to scale up/;

  function formatWait(ms) {
    const seconds = Math.floor(ms / 1000);
    if (seconds < 60) return seconds + " s";
    return Math.floor(seconds / 60) + " min " + String(seconds % 60).padStart(2, "0") + " s";
  }

  // Show the notice under `item`'s body; returns a function that removes it.
  function wakingNotice(item, since) {
    const box = el("div", "waking");
    box.setAttribute("role", "status");
    const line = el("p", "waking-title", "Starting the model: it had scaled to zero. ");
    const waited = el("span", "waking-elapsed");
    line.appendChild(waited);
    box.append(
      line,
      el(
        "p",
        "waking-help",
        "On AWS this takes minutes (about 5 to 9); the local demo's model starts in seconds. "
          + "The answer streams as soon as the model is up. Stop cancels the wait."
      )
    );
    const tick = () => {
      waited.textContent = "Waited " + formatWait(performance.now() - since) + ".";
    };
    tick();
    const timer = setInterval(tick, 1000);
    item.querySelector(".body").after(box);
    item.classList.add("waking-up"); // no typing cursor on an answer that cannot start yet
    return () => {
      clearInterval(timer);
      box.remove();
      item.classList.remove("waking-up");
    };
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

    const question = { role: "user", content: text };
    addEntry(question);
    const messages = conversation();
    const entry = { role: "assistant", content: "", outcome: "streaming" };
    const answer = addEntry(entry);
    answer.item.classList.add("streaming");
    answer.item.setAttribute("aria-busy", "true");
    save();

    const controller = new AbortController();
    inFlight = controller;
    setBusy(true);
    setStatus("Waiting for " + ui.model.value + "…");

    const renderer = progressiveRenderer(answer.body);
    const stats = {};
    let failure = null;
    let outcome = "done";
    let finished = false;
    const started = performance.now();
    let firstToken = null;
    let lastToken = null;
    let endWaking = null; // set while the model is starting (see wakingNotice)
    const wokeUp = () => {
      if (!endWaking) return;
      endWaking();
      endWaking = null;
      stats.wake = { ms: performance.now() - started, started: firstToken !== null };
    };

    try {
      const response = await fetch(API.chat, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(await authHeaders()) },
        body: JSON.stringify({
          model: ui.model.value,
          messages,
          stream: true,
          stream_options: { include_usage: true },
          ...params,
        }),
        signal: controller.signal,
      });
      showBudget(response.headers);
      const timing = parseServerTiming(response.headers.get("server-timing"));
      if (Object.keys(timing).length) stats.serverTiming = timing;
      if (!response.ok) {
        failure = await responseError(response);
      } else {
        setStatus("Streaming…");
        finished = await readSSE(response, (payload) => {
          let chunk;
          try {
            chunk = JSON.parse(payload);
          } catch (_) {
            failure = failure || "The gateway sent an event that is not JSON: " + payload.slice(0, 200);
            return;
          }
          if (chunk && chunk.error !== undefined && chunk.error !== null) {
            // A mid-stream failure (either dialect's shape): one error event, then the end.
            failure = describeError(chunk) || "Unknown error";
            return;
          }
          if (chunk.usage) stats.usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            if (choice.delta && typeof choice.delta.content === "string" && choice.delta.content) {
              const now = performance.now();
              if (firstToken === null) {
                firstToken = now;
                if (endWaking) {
                  wokeUp();
                  setStatus("Streaming…");
                }
              }
              lastToken = now;
              entry.content += choice.delta.content;
            }
            if (choice.finish_reason) entry.finish = choice.finish_reason;
          }
          renderer.update(entry.content);
        }, (comment) => {
          if (endWaking || firstToken !== null || !WAKING_COMMENT.test(comment)) return;
          endWaking = wakingNotice(answer.item, started);
          setStatus(ui.model.value + " is starting (it had scaled to zero)…");
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
    renderer.finish();
    wokeUp(); // stopped or failed while the model was still starting

    if (inFlight === controller) inFlight = null;
    answer.item.classList.remove("streaming");
    answer.item.removeAttribute("aria-busy");
    setBusy(Boolean(inFlight));

    // Clear() may have emptied the log meanwhile; then there is nothing to record.
    if (!answer.item.isConnected) return;

    if (failure) outcome = "failed";
    if (firstToken !== null) {
      stats.ttftMs = firstToken - started;
      const completion = stats.usage && stats.usage.completion_tokens;
      if (completion) {
        // The decode rate, from the first token to the last; an answer that arrived all at
        // once (a buffered proxy in between) is rated over the whole request instead.
        const span = lastToken - firstToken >= 20 ? lastToken - firstToken : lastToken - started;
        if (span > 0) stats.tokensPerSecond = (completion * 1000) / span;
      }
    }
    entry.outcome = outcome;
    entry.stats = stats;
    if (failure) entry.error = failure;
    if (!entry.content && outcome !== "done") {
      // Nothing came back: the question is not part of the conversation any more; offer it
      // again in the message box.
      question.unanswered = true;
      ui.log.children[entries.indexOf(question)].classList.add("unanswered");
      if (!ui.prompt.value) ui.prompt.value = text;
    }
    renderEntry(entry, answer.item);
    save();
    if (nearBottom() || failure) scrollToEnd();

    if (failure) {
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
    entries = [];
    save();
    ui.log.replaceChildren();
    setStatus("New chat.");
    ui.prompt.focus();
  }

  // ---- models -------------------------------------------------------------------------

  async function loadModels() {
    const previous = ui.model.value || storageGet(STORAGE.model);
    setStatus("Loading models…");
    try {
      const response = await fetch(API.models, { headers: await authHeaders() });
      if (!response.ok) {
        const message = await responseError(response);
        ui.model.replaceChildren();
        if (response.status === 401) {
          const what = signIn ? "Sign in or enter an API key" : "Enter an API key";
          setStatus(what + " to load the models. " + message, true);
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

  // ---- who is signed in, and the budget left -------------------------------------------

  async function showAccount() {
    if (!signIn) return;
    const user = await signIn.user();
    ui.account.hidden = false;
    if (user) ui.who.textContent = "Signed in as " + window.gatewaySignIn.displayName(user.profile);
    else ui.who.textContent = signIn.expired ? "Your sign-in has expired." : "";
    ui.who.title = user ? "Issuer: " + signIn.issuer : "";
    ui.signIn.hidden = Boolean(user);
    ui.signIn.textContent = signIn.expired ? "Sign in again" : "Sign in";
    ui.signOut.hidden = !user;
    ui.apiKeySignedIn.hidden = !user;
  }

  // "Budget left: 19,700 of 20,000 tokens · 59 of 60 requests", from the gateway's
  // x-ratelimit-* headers (OpenAI's names; sent when a budget applies to the caller).
  function showBudget(headers) {
    const count = (name) => {
      const value = (headers.get(name) || "").trim();
      return /^\d+$/.test(value) ? Number(value).toLocaleString("en-US") : null;
    };
    const parts = [];
    for (const unit of ["tokens", "requests"]) {
      const remaining = count("x-ratelimit-remaining-" + unit);
      const limit = count("x-ratelimit-limit-" + unit);
      if (remaining !== null) parts.push(remaining + (limit !== null ? " of " + limit : "") + " " + unit);
    }
    if (!parts.length) return; // no budget on this answer: keep what was shown
    ui.budget.textContent = "Budget left: " + parts.join(" · ");
    ui.budget.hidden = false;
  }

  ui.signIn.addEventListener("click", async () => {
    setStatus("Signing in…");
    try {
      await signIn.signIn(); // the browser leaves for the issuer's sign-in page
    } catch (err) {
      setStatus("Could not start the sign-in: " + (err && err.message ? err.message : err), true);
    }
  });

  ui.signOut.addEventListener("click", async () => {
    stop();
    ui.budget.hidden = true;
    const leaving = await signIn.signOut(); // at the issuer, which comes back here
    if (leaving) return;
    await showAccount();
    setStatus("Signed out.");
    loadModels();
  });

  // ---- wiring -------------------------------------------------------------------------

  ui.apiKey.value = storageGet(STORAGE.key) || "";
  ui.apiKey.addEventListener("change", () => {
    storageSet(STORAGE.key, ui.apiKey.value.trim());
    loadModels(); // a new key may unlock the model list
  });
  ui.model.addEventListener("change", () => storageSet(STORAGE.model, ui.model.value));

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

  async function start() {
    setBusy(false);
    restore();
    let problem = null;
    try {
      signIn = await window.gatewaySignIn.start(API.config);
      if (signIn) problem = await signIn.completeRedirect();
    } catch (err) {
      problem = "Sign-in is not available: " + (err && err.message ? err.message : err);
    }
    await showAccount();
    await loadModels();
    if (problem) setStatus(problem, true);
    if (signIn) {
      // Renew a token shortly before it expires even when idle (or say that the sign-in has
      // run out), rather than only at the next request.
      setInterval(async () => {
        if (inFlight || !(await signIn.user())) return;
        await signIn.token();
        await showAccount();
      }, 30_000);
    }
  }

  start();
})();
