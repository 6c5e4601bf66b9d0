// The page script: progressive enhancement only. Every screen works as plain server-rendered
// pages and forms; this adds polling with ETag, server-sent events, timers, sounds, the undo
// bar and the "not connected" banner.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf || "";
  // What the script says, in the page's language (the server's catalogue, web/src/i18n).
  var S = {};
  try { S = JSON.parse(body.dataset.strings || "{}"); } catch (e) { S = {}; }
  function say(key, values) {
    var text = S[key] || key;
    return text.replace(/\{(\w+)\}/g, function (m, name) {
      return values && name in values ? values[name] : m;
    });
  }

  // ---------------------------------------------------------------- sound ---
  // Browsers start audio only after a gesture on the page (autoplay policy). A screen that
  // was turned on once at pairing remembers it (localStorage "kitchen.sound"), and tries again
  // on every load; when the browser still blocks it, a visible "sound off" button says so, and
  // one tap on it (or anywhere) turns it on. Honest rather than silent.
  var audio = null;
  var SOUND_KEY = "kitchen.sound";
  var soundState = document.getElementById("sound-state");
  function soundWanted() {
    try { return localStorage.getItem(SOUND_KEY) !== "off"; } catch (e) { return true; }
  }
  function showSoundState() {
    if (!soundState) return;
    var running = audio && audio.state === "running";
    soundState.hidden = !!running;
  }
  function unlockAudio() {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        audio.resume().then(showSoundState, showSoundState);
      }
      audio.onstatechange = showSoundState;
    } catch (e) { audio = null; }
    showSoundState();
  }
  function enableSound() {
    try { localStorage.setItem(SOUND_KEY, "on"); } catch (e) { /* private mode */ }
    unlockAudio();
  }
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("keydown", unlockAudio);
  if (soundWanted()) unlockAudio();
  if (soundState) {
    // On pointerdown, not only on click: the document's pointerdown listener resumes the audio,
    // which hides this button, and a button hidden before the pointer is released gets no
    // click, so "on" was sometimes not remembered. Click stays for the keyboard.
    soundState.addEventListener("pointerdown", enableSound);
    soundState.addEventListener("click", enableSound);
  }
  var enableButton = document.getElementById("enable-sound");
  if (enableButton) {
    enableButton.addEventListener("click", function () {
      enableSound();
      tone(880, 0, 0.15);
      enableButton.textContent = say("sound_on");
      enableButton.setAttribute("aria-pressed", "true");
    });
  }
  function tone(freq, start, length) {
    if (!audio || audio.state !== "running") return;
    var osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "sine"; osc.frequency.value = freq;
    var t = audio.currentTime + start;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.5, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + length);
    osc.connect(gain); gain.connect(audio.destination);
    osc.start(t); osc.stop(t + length + 0.05);
  }
  function beep() { tone(880, 0, 0.18); tone(880, 0.25, 0.18); }
  function chime(start) {
    var at = start || 0;
    tone(660, at, 0.5); tone(880, at + 0.3, 0.5); tone(1320, at + 0.6, 0.8);
  }
  // One chime per newly ready order, one after another (at most five in a row, so a burst of
  // orders does not ring for half a minute).
  function chimes(count) {
    for (var i = 0; i < Math.min(count, 5); i++) chime(i * 1.6);
  }

  // ------------------------------------------------------- spoken announcements ---
  // A station tablet says each new product in its own language ("New pizza: Pepperoni 30 cm",
  // the card's data-announce, written by the server), with the browser's speech synthesis.
  // Without speech synthesis, or when it fails, the beep says it instead. The toggle turns
  // speaking off for this tablet (localStorage "kitchen.speech").
  var SPEECH_KEY = "kitchen.speech";
  var speechToggle = document.getElementById("speech-toggle");
  var canSpeak = !!(window.speechSynthesis && window.SpeechSynthesisUtterance);
  function speechWanted() {
    try { return localStorage.getItem(SPEECH_KEY) !== "off"; } catch (e) { return true; }
  }
  function showSpeech() {
    if (!speechToggle) return;
    var on = speechWanted();
    speechToggle.hidden = !canSpeak;
    speechToggle.textContent = say(on ? "speech_on" : "speech_off");
    speechToggle.setAttribute("aria-pressed", on ? "true" : "false");
  }
  if (speechToggle) {
    speechToggle.addEventListener("click", function () {
      try { localStorage.setItem(SPEECH_KEY, speechWanted() ? "off" : "on"); } catch (e) { /* private mode */ }
      if (!speechWanted() && canSpeak) window.speechSynthesis.cancel();
      showSpeech();
    });
    showSpeech();
  }
  // Says each text in turn; false when it cannot speak at all (the caller beeps instead).
  function announce(texts) {
    if (!texts.length || !speechWanted()) return true;
    if (!canSpeak) return false;
    texts.forEach(function (text) {
      var utterance = new window.SpeechSynthesisUtterance(text);
      utterance.lang = S.speech_lang || document.documentElement.lang;
      utterance.onerror = function (e) {
        // Blocked (no touch since the page loaded) or no voice: the beep still tells.
        if (e.error !== "canceled" && e.error !== "interrupted") beep();
      };
      window.speechSynthesis.speak(utterance);
    });
    return true;
  }
  function alarm() { tone(440, 0, 0.3); tone(330, 0.35, 0.3); tone(440, 0.7, 0.3); tone(330, 1.05, 0.3); }

  function two(n) { return (n < 10 ? "0" : "") + n; }
  // Clock times in the pizzeria's time zone when the page names it, else the device's own.
  var zoneClock = null;
  try {
    if (body.dataset.timeZone) {
      zoneClock = new Intl.DateTimeFormat("en-GB", { timeZone: body.dataset.timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    }
  } catch (e) { zoneClock = null; }
  function clock(d) { return zoneClock ? zoneClock.format(d) : two(d.getHours()) + ":" + two(d.getMinutes()); }
  function mmss(s) {
    s = Math.max(0, Math.floor(s));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    return (h ? h + ":" + two(m) : m) + ":" + two(r);
  }

  // ------------------------------------------------------------- toast ---
  var toastTimer = null;
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = text; el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 4000);
  }

  // ---------------------------------------------------------- the live region ---
  var live = document.getElementById("live");
  var refresh = function () {};
  // After a tap the cards stay where they are for a moment, so a second tap at the same spot
  // cannot land on the card that would have moved into it.
  var HOLD_MS = 1500;
  var holdUntil = 0, holdTimer = null;
  function hold() {
    holdUntil = Date.now() + HOLD_MS;
  }
  if (live) {
    var url = live.dataset.live, loginUrl = live.dataset.login || "/";
    var pollMs = (parseInt(live.dataset.poll, 10) || 10) * 1000;
    var station = live.dataset.station || null;
    var sound = live.dataset.sound || "";
    var etag = null, lastOk = new Date(), inFlight = false, again = false;
    var stale = document.getElementById("stale"), staleSince = document.getElementById("stale-since");
    var known = collect(), knownAlerts = collectAlerts();

    function collect() {
      var sel = sound === "ready" ? "[data-ready]" : "[data-id]";
      var set = {};
      live.querySelectorAll(sel).forEach(function (el) { set[el.dataset.ready || el.dataset.id] = true; });
      return set;
    }
    function collectAlerts() {
      var set = {};
      live.querySelectorAll(".station-alert").forEach(function (el) { set[el.textContent] = true; });
      return set;
    }
    function connected(ok) {
      if (ok) { lastOk = new Date(); stale.hidden = true; }
      else { staleSince.textContent = clock(lastOk); stale.hidden = false; }
    }
    // What has the keyboard focus, as something that survives the fragment being replaced.
    function focusKey() {
      var el = document.activeElement;
      if (!el || !live.contains(el)) return null;
      if (el.dataset && el.dataset.id) return "[data-id=\"" + el.dataset.id + "\"]";
      if (el.id) return "#" + el.id;
      var form = el.form;
      if (form && form.id) return "#" + form.id + " button";
      return null;
    }
    function replace(html) {
      var key = focusKey();
      var cardsBefore = Array.prototype.slice.call(live.querySelectorAll(".card[data-id]"));
      var index = cardsBefore.indexOf(document.activeElement);
      var recallOpen = !!live.querySelector("#recall[open]");
      live.innerHTML = html;
      markQueued();
      var recall = live.querySelector("#recall");
      if (recall && recallOpen) recall.open = true;
      if (key) {
        var again = live.querySelector(key);
        // The focused card is gone (tapped, here or elsewhere): the one now in its place.
        if (!again && index >= 0) {
          var cards = live.querySelectorAll(".card[data-id]");
          again = cards[Math.min(index, cards.length - 1)] || null;
        }
        if (again) again.focus({ preventScroll: true });
      }
    }
    refresh = function () {
      var wait = holdUntil - Date.now();
      if (wait > 0) {
        clearTimeout(holdTimer);
        holdTimer = setTimeout(refresh, wait);
        return;
      }
      if (inFlight) { again = true; return; }
      inFlight = true;
      var ctrl = new AbortController();
      var timer = setTimeout(function () { ctrl.abort(); }, 8000);
      var headers = { "Accept": "text/html", "X-Live": "1" };
      if (etag) headers["If-None-Match"] = etag;
      fetch(url, { headers: headers, cache: "no-store", credentials: "same-origin", signal: ctrl.signal })
        .then(function (r) {
          // Signed out or unpaired: the server answers 401, or redirects to its login page.
          if (r.status === 401 || r.redirected) { location.href = loginUrl; return; }
          if (r.status === 304) { connected(true); return; }
          if (!r.ok) throw new Error("HTTP " + r.status);
          etag = r.headers.get("ETag");
          return r.text().then(function (html) {
            // A tap made while this was in flight holds the cards: come back after it.
            if (holdUntil > Date.now()) { etag = null; again = true; return; }
            replace(html);
            connected(true);
            var now = collect(), arrived = [];
            live.querySelectorAll(sound === "ready" ? "[data-ready]" : "[data-id]").forEach(function (el) {
              var k = el.dataset.ready || el.dataset.id;
              if (!known[k]) { el.classList.add("fresh"); arrived.push(el); }
            });
            if (arrived.length) {
              if (sound === "ready") chimes(arrived.length);
              else if (sound === "new") {
                var spoken = live.dataset.announce === "speech" && announce(arrived
                  .map(function (el) { return el.dataset.announce; })
                  .filter(Boolean));
                if (!spoken || !speechWanted()) beep();
              }
            }
            var alerts = collectAlerts(), alerted = false;
            Object.keys(alerts).forEach(function (k) { if (!knownAlerts[k]) alerted = true; });
            if (alerted) alarm();
            known = now; knownAlerts = alerts;
            tick();
          });
        })
        .catch(function () { connected(false); })
        .finally(function () {
          clearTimeout(timer); inFlight = false;
          if (again) { again = false; refresh(); }
        });
    };
    setInterval(refresh, pollMs);
    // A hung request or a sleeping tab must still show the banner.
    setInterval(function () { if (new Date() - lastOk > pollMs * 2.5) connected(false); }, 1000);

    if (window.EventSource && live.dataset.events) {
      var events = new EventSource(live.dataset.events);
      var pending = null;
      events.onmessage = function (e) {
        var change;
        try { change = JSON.parse(e.data); } catch (err) { return; }
        if (station && change.s && change.s.indexOf(station) < 0) return;
        clearTimeout(pending);
        pending = setTimeout(refresh, 50);
      };
      // On reconnect, look again: messages may have been missed meanwhile.
      events.onopen = function () { refresh(); };
    }
  }

  // ------------------------------------------------------- station timers ---
  var moreBelow = document.getElementById("more-below");
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".card[data-entered]").forEach(function (card) {
      var elapsed = (now - parseInt(card.dataset.entered, 10)) / 1000;
      var target = parseInt(card.dataset.target, 10) || 1;
      var timer = card.querySelector("[data-timer]");
      // A product due with its order's slowest one: its clock has not started yet.
      var waiting = elapsed < 0;
      if (timer) timer.textContent = waiting ? say("starts_in", { t: mmss(-elapsed) }) : mmss(elapsed);
      card.classList.toggle("waiting", waiting);
      card.classList.toggle("on-time", !waiting && elapsed < target * 0.75);
      card.classList.toggle("near", elapsed >= target * 0.75 && elapsed <= target);
      card.classList.toggle("late", elapsed > target);
    });
    document.querySelectorAll("[data-until]").forEach(function (el) {
      if (parseInt(el.dataset.until, 10) <= now) el.hidden = true;
    });
    var undo = document.getElementById("undo");
    if (undo) {
      var left = (parseInt(undo.dataset.undoUntil, 10) - now) / 1000;
      undo.hidden = left <= 0;
      var label = undo.querySelector("[data-undo-left]");
      if (label) label.textContent = left > 0 ? say("seconds_left", { n: Math.ceil(left) }) : "";
    }
    if (moreBelow) {
      var below = 0;
      document.querySelectorAll(".card[data-id]").forEach(function (card) {
        if (card.getBoundingClientRect().top > window.innerHeight - 40) below += 1;
      });
      moreBelow.hidden = below === 0;
      moreBelow.textContent = say("more_below", { n: below });
    }
    document.querySelectorAll("[data-clock]").forEach(function (el) { el.textContent = clock(new Date()); });
  }
  tick();
  setInterval(tick, 250);
  window.addEventListener("scroll", function () { tick(); }, { passive: true });

  // ---------------------------------------------------------- tap and undo ---
  // Answers `{status, body}`; rejects when nothing came back (no link). A body that is not
  // JSON (an error page) reads as `{}`.
  function post(action, clientTapId) {
    var form = "csrf=" + encodeURIComponent(csrf);
    if (clientTapId) form += "&client_tap_id=" + encodeURIComponent(clientTapId);
    return fetch(action, {
      method: "POST", credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: form
    }).then(function (r) {
      if (r.status === 401 || r.redirected) { location.href = "/device"; return null; }
      return r.text().then(function (text) {
        var json = {};
        try { json = JSON.parse(text) || {}; } catch (e) { json = {}; }
        return { status: r.status, body: json };
      });
    });
  }

  // ---------------------------------------------------- taps while offline ---
  // A tap made while the link is down is not lost: it waits on the tablet (localStorage, so a
  // reload keeps it) with an id made here, and is sent when the link returns. The tracker
  // applies each id once, so a send whose answer was lost can simply be sent again. A tap
  // that became impossible meanwhile (the order was cancelled, someone else made it) is listed
  // for the cook by product and order, until they acknowledge it.
  var tapState = document.getElementById("offline-state");
  var problemBox = document.getElementById("tap-problems");
  var QUEUE_KEY = "kitchen.taps." + (live && live.dataset.station || "");
  var PROBLEM_KEY = "kitchen.tapProblems." + (live && live.dataset.station || "");
  function load(key) {
    try { return JSON.parse(localStorage.getItem(key) || "[]") || []; } catch (e) { return []; }
  }
  function save(key, list) {
    try { localStorage.setItem(key, JSON.stringify(list)); } catch (e) { /* kept in memory */ }
  }
  var tapQueue = load(QUEUE_KEY), tapProblems = load(PROBLEM_KEY), flushing = false;
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; a tablet on the kitchen's LAN over http has none.
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function text(el, name, n) {
    return (el.dataset[name] || "").replace("{n}", n);
  }
  function showTapState() {
    if (!tapState) return;
    var n = tapQueue.length;
    tapState.hidden = n === 0;
    if (!n) return;
    var offline = navigator.onLine === false || (stale && !stale.hidden);
    var which = (offline ? "offline" : "sending") + (n === 1 ? "One" : "Many");
    tapState.textContent = text(tapState, which, n);
  }
  function markQueued() {
    tapQueue.forEach(function (t) {
      var el = document.querySelector(".card[data-id=\"" + t.product + "\"]");
      if (el) el.classList.add("done", "queued");
    });
  }
  function showProblems() {
    if (!problemBox) return;
    var list = problemBox.querySelector("ul");
    list.textContent = "";
    tapProblems.forEach(function (p) {
      var li = document.createElement("li");
      var b = document.createElement("b");
      b.textContent = text(problemBox, "notDone", 0) + " " + p.label;
      li.appendChild(b);
      li.appendChild(document.createTextNode(" " + p.message));
      list.appendChild(li);
    });
    problemBox.hidden = tapProblems.length === 0;
  }
  function problem(entry, message) {
    tapProblems.push({ label: entry.label, message: message || text(problemBox, "refused", 0) });
    save(PROBLEM_KEY, tapProblems);
    showProblems();
    alarm();
  }
  function enqueue(entry) {
    if (!tapQueue.some(function (t) { return t.id === entry.id; })) tapQueue.push(entry);
    save(QUEUE_KEY, tapQueue);
    markQueued();
    showTapState();
  }
  function dequeue(entry) {
    tapQueue = tapQueue.filter(function (t) { return t.id !== entry.id; });
    save(QUEUE_KEY, tapQueue);
    showTapState();
  }
  // The web or the tracker is down or busy: worth sending again. Anything else is an answer.
  function retryable(status) { return status === 502 || status === 503 || status === 504 || status === 429; }
  function flush() {
    if (flushing || !tapQueue.length || navigator.onLine === false) return;
    flushing = true;
    showTapState();
    var entry = tapQueue[0];
    post(entry.action, entry.id).then(function (res) {
      flushing = false;
      if (!res) return;
      if (retryable(res.status)) { showTapState(); return; }
      dequeue(entry);
      if (res.status === 200) toast(res.body.message || "Done");
      else problem(entry, res.body.message);
      if (tapQueue.length) flush(); else refresh();
    }, function () {
      flushing = false;
      showTapState();
    });
  }
  if (tapState) {
    window.addEventListener("online", function () { showTapState(); flush(); });
    window.addEventListener("offline", showTapState);
    setInterval(function () { showTapState(); flush(); }, 2000);
    var problemsOk = document.getElementById("tap-problems-ok");
    if (problemsOk) problemsOk.addEventListener("click", function () {
      tapProblems = []; save(PROBLEM_KEY, tapProblems); showProblems();
    });
    markQueued(); showTapState(); showProblems(); flush();
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { e.preventDefault(); return; }
    var isTap = form.classList.contains("card-form"), isUndo = form.id === "undo";
    var isRecall = form.classList.contains("recall-form") || form.classList.contains("handover-form");
    if (!isTap && !isUndo && !isRecall) return;
    e.preventDefault();
    var card = isTap ? form.querySelector(".card") : null;
    if (card && card.classList.contains("queued")) return;
    if (card) { card.classList.add("done"); hold(); }
    if (isUndo) form.hidden = true;
    var entry = card && tapState ? {
      id: newId(), action: form.getAttribute("action"), product: card.dataset.id, label: card.dataset.label
    } : null;
    // Behind taps already waiting, or with no link at all: wait in line.
    if (entry && (tapQueue.length || navigator.onLine === false)) { enqueue(entry); flush(); return; }
    post(form.getAttribute("action"), entry && entry.id).then(function (res) {
      if (!res) return;
      if (entry && retryable(res.status)) { enqueue(entry); return; }
      if (res.status === 200) {
        toast(res.body.message || say("done"));
      } else {
        if (card) card.classList.remove("done");
        if (isUndo) form.hidden = false;
        toast((res.body && res.body.message) || say("failed"));
      }
      refresh();
    }).catch(function () {
      // The answer never came: the tap may or may not have reached the tracker. Its id makes
      // sending it again safe.
      if (entry) { enqueue(entry); return; }
      if (card) card.classList.remove("done");
      if (isUndo) form.hidden = false;
      toast(say("not_sent"));
    });
  });

  // ------------------------------------------------- keyboard and bump bar ---
  // A USB bump bar is a keyboard. Digits pick a card, arrows move, Enter taps the picked card
  // (it is a button), U undoes this tablet's last tap, R opens recall. Shown on screen.
  if (document.getElementById("keys")) {
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.altKey || e.metaKey) return;
      var t = e.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
      var cards = Array.prototype.slice.call(document.querySelectorAll(".card[data-id]"));
      var at = cards.indexOf(document.activeElement);
      var pick = function (i) {
        if (!cards.length) return;
        var card = cards[Math.max(0, Math.min(cards.length - 1, i))];
        card.focus();
        card.scrollIntoView({ block: "nearest" });
      };
      if (/^[1-9]$/.test(e.key)) { pick(parseInt(e.key, 10) - 1); e.preventDefault(); }
      else if (e.key === "ArrowRight" || e.key === "ArrowDown") { pick(at + 1); e.preventDefault(); }
      else if (e.key === "ArrowLeft" || e.key === "ArrowUp") { pick(at < 0 ? 0 : at - 1); e.preventDefault(); }
      else if (e.key === "u" || e.key === "U" || e.key === "Backspace") {
        var undoButton = document.querySelector("#undo:not([hidden]) button");
        if (undoButton) { undoButton.click(); e.preventDefault(); }
      } else if (e.key === "r" || e.key === "R") {
        var recall = document.getElementById("recall");
        if (recall) {
          recall.open = !recall.open;
          var first = recall.querySelector(".recall-form button");
          if (recall.open && first) first.focus();
          e.preventDefault();
        }
      }
    });
  }

  // ---------------------------------------------------------- device login ---
  if (body.dataset.pairing) {
    var interval = (parseInt(body.dataset.interval, 10) || 5) * 1000;
    var expires = parseInt(body.dataset.expires, 10) * 1000;
    var status = document.getElementById("pairing-status");
    var leftEl = document.querySelector("[data-expires-left]");
    var countdown = function () {
      var left = (expires - Date.now()) / 1000;
      if (leftEl) leftEl.textContent = mmss(left);
      if (left <= 0) location.reload();
    };
    countdown();
    setInterval(countdown, 1000);
    var poll = function () {
      fetch(body.dataset.pairing, {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
      }).then(function (r) { return r.json(); }).then(function (j) {
        if (j.status === "approved") { status.textContent = say("approved_opening"); location.href = j.location; return; }
        if (j.status === "denied") { status.textContent = say("denied_new_code"); setTimeout(function () { location.reload(); }, 5000); return; }
        if (j.status === "expired") { location.reload(); return; }
        if (j.interval) interval = j.interval * 1000;
        status.textContent = say(j.status === "unreachable" ? "devices_unreachable" : "waiting_approval");
        setTimeout(poll, interval);
      }).catch(function () {
        status.textContent = say("not_connected_trying");
        setTimeout(poll, interval);
      });
    };
    setTimeout(poll, interval);
  }

  // ------------------------------------------------------ motivation board ---
  document.querySelectorAll("[data-width]").forEach(function (el) { el.style.width = el.dataset.width + "%"; });
  if (body.dataset.reload) {
    setTimeout(function () { location.reload(); }, parseInt(body.dataset.reload, 10) * 1000);
  }
})();
