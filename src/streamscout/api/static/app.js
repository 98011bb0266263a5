// StreamScout page: lists clips from /v1.0/clip and plays them inline in Twitch's player.
// Everything that comes from the database is put on the page with textContent or as an
// attribute value, never parsed as HTML.
"use strict";

(function () {
  const grid = document.getElementById("grid");
  const clipPath = grid.dataset.clipPath;
  const statusLine = document.getElementById("status");
  const empty = document.getElementById("empty");
  const moreButton = document.getElementById("more");
  const sentinel = document.getElementById("sentinel");
  const form = document.getElementById("filters");
  const broadcasterInput = document.getElementById("f-broadcaster");
  const minScoreSelect = document.getElementById("f-min-score");
  const clearButton = document.getElementById("f-clear");

  const PLAYER = "https://clips.twitch.tv/embed";
  const PUBLIC_CLIP_ORIGINS = ["https://clips.twitch.tv", "https://www.twitch.tv"];
  let nextUrl = null;
  let loading = false;
  let generation = 0; // a new filter set abandons answers still in flight for the old one
  let retryTimer = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function filtersFromUrl() {
    const params = new URLSearchParams(location.search);
    return { broadcaster: params.get("broadcaster") || "", minScore: params.get("min_score") || "" };
  }

  function showFilters(filters) {
    broadcasterInput.value = filters.broadcaster;
    if (filters.minScore && ![...minScoreSelect.options].some((o) => o.value === filters.minScore)) {
      minScoreSelect.append(new Option(filters.minScore + "+", filters.minScore));
    }
    minScoreSelect.value = filters.minScore;
    clearButton.hidden = !(filters.broadcaster || filters.minScore);
  }

  function firstPageUrl(filters) {
    const params = new URLSearchParams();
    if (filters.broadcaster) params.set("broadcaster", filters.broadcaster);
    if (filters.minScore) params.set("min_score", filters.minScore);
    const query = params.toString();
    return clipPath + (query ? "?" + query : "");
  }

  function ago(date, now) {
    const seconds = (now - date) / 1000;
    if (!(seconds >= 45)) return "just now";
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min ago";
    const hours = Math.round(minutes / 60);
    if (hours < 24) return hours + " h ago";
    const days = Math.round(hours / 24);
    return days === 1 ? "yesterday" : days + " days ago";
  }

  function refreshTimes() {
    const now = Date.now();
    for (const node of grid.querySelectorAll("time[datetime]")) {
      node.textContent = ago(new Date(node.dateTime), now);
    }
  }

  function intensityLevel(score) {
    if (score === null || score === undefined) return 0;
    return score < 4 ? 1 : score < 6 ? 2 : score < 8 ? 3 : score < 12 ? 4 : 5;
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !(seconds > 0)) return "";
    const s = Math.round(seconds);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function safeUrl(value, allowedOrigins) {
    try {
      const url = new URL(value);
      if (url.protocol !== "https:") return null;
      if (allowedOrigins && !allowedOrigins.includes(url.origin)) return null;
      return url.href;
    } catch (e) {
      return null;
    }
  }

  function hue(text) {
    let h = 0;
    for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }

  function streamerFilterValue(clip) {
    const login = clip.broadcaster_login || "";
    return /^[A-Za-z0-9_]{1,25}$/.test(login) ? login : clip.broadcaster_id;
  }

  function card(clip) {
    const login = clip.broadcaster_login || "streamer " + clip.broadcaster_id;
    const title = clip.title || "Chat spike";
    const level = intensityLevel(clip.score);
    const article = el("article", "card level-" + level);
    article.dataset.clipId = clip.clip_id;

    const thumb = el("button", "thumb");
    thumb.type = "button";
    thumb.setAttribute("aria-label", "Play “" + title + "” by " + login);
    thumb.style.setProperty("--hue", hue(login));
    const initial = el("span", "initial", Array.from(login)[0].toUpperCase());
    initial.setAttribute("aria-hidden", "true");
    thumb.append(initial);
    const src = safeUrl(clip.thumbnail_url);
    if (src) {
      const img = el("img");
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      img.addEventListener("error", () => img.remove());
      img.src = src;
      thumb.append(img);
    }
    const play = el("span", "play");
    play.setAttribute("aria-hidden", "true");
    thumb.append(play);
    const length = duration(clip.duration);
    if (length) thumb.append(el("span", "duration", length));
    if (typeof clip.score === "number") {
      const badge = el("span", "intensity", clip.score.toFixed(1));
      badge.title = "Chat intensity";
      thumb.append(badge);
    }
    thumb.addEventListener("click", () => playInline(article, clip));

    const meta = el("div", "meta");
    meta.append(el("h2", "title", title));
    const line = el("p", "sub");
    const streamer = el("button", "streamer", login);
    streamer.type = "button";
    streamer.title = "Only clips of " + login;
    streamer.addEventListener("click", () => applyFilters({ broadcaster: streamerFilterValue(clip), minScore: minScoreSelect.value }));
    const when = el("time");
    when.dateTime = clip.detected_at;
    when.title = new Date(clip.detected_at).toLocaleString();
    when.textContent = ago(new Date(clip.detected_at), Date.now());
    line.append(streamer, el("span", "dot", "·"), when);
    meta.append(line);
    if (level) {
      const meter = el("div", "meter");
      meter.setAttribute("role", "img");
      meter.setAttribute("aria-label", "Intensity " + clip.score.toFixed(1) + " (" + level + " of 5)");
      for (let i = 1; i <= 5; i++) meter.append(el("span", i <= level ? "on" : ""));
      meta.append(meter);
    }
    article.append(thumb, meta);
    return article;
  }

  function closePlayer() {
    const playing = grid.querySelector(".card.playing");
    if (!playing) return;
    playing.classList.remove("playing");
    playing.querySelector(".player").remove();
    playing.querySelector(".close")?.remove();
    playing.querySelector(".open")?.remove();
    const thumb = playing.querySelector(".thumb");
    thumb.hidden = false;
    thumb.focus();
  }

  function playInline(article, clip) {
    closePlayer();
    const src = new URL(PLAYER);
    src.searchParams.set("clip", clip.clip_id);
    src.searchParams.set("parent", location.hostname);
    src.searchParams.set("autoplay", "true");
    const player = el("div", "player");
    const frame = el("iframe");
    frame.src = src.href;
    frame.title = "Twitch clip player: " + (clip.title || clip.clip_id);
    frame.allow = "autoplay; fullscreen; picture-in-picture";
    frame.allowFullscreen = true;
    player.append(frame);
    const thumb = article.querySelector(".thumb");
    thumb.hidden = true;
    article.insertBefore(player, thumb);
    article.classList.add("playing");

    const meta = article.querySelector(".meta");
    const close = el("button", "btn close", "Close player");
    close.type = "button";
    close.addEventListener("click", closePlayer);
    meta.append(close);
    const publicUrl = safeUrl(clip.url, PUBLIC_CLIP_ORIGINS);
    if (publicUrl) {
      const open = el("a", "btn open", "Open on Twitch");
      open.href = publicUrl;
      open.target = "_blank";
      open.rel = "noopener noreferrer";
      meta.append(open);
    }
    article.scrollIntoView({ block: "nearest", behavior: "smooth" });
    close.focus({ preventScroll: true });
  }

  function say(text) {
    statusLine.textContent = text;
  }

  async function load(url, reset) {
    const mine = generation;
    loading = true;
    moreButton.disabled = true;
    clearTimeout(retryTimer);
    if (reset) say("Loading clips…");
    let answer, body;
    try {
      answer = await fetch(url, { headers: { Accept: "application/json" } });
      body = await answer.json();
    } catch (e) {
      answer = null;
    }
    if (mine !== generation) return;
    loading = false;
    moreButton.disabled = false;
    if (!answer || answer.status >= 500) {
      say("The clip database is not answering right now; trying again in 5 seconds…");
      retryTimer = setTimeout(() => load(url, reset), 5000);
      return;
    }
    if (!answer.ok) {
      say("Cannot show these clips: " + (body && body.parameter ? body.parameter + " — " : "") + (body ? body.reason : answer.status));
      grid.replaceChildren();
      empty.hidden = true;
      moreButton.hidden = true;
      nextUrl = null;
      return;
    }
    if (reset) grid.replaceChildren();
    grid.append(...body.clips.map(card));
    nextUrl = body.next_url;
    moreButton.hidden = !nextUrl;
    const count = grid.children.length;
    empty.hidden = count > 0;
    if (count === 0) showEmpty();
    say(count ? count + (nextUrl ? "+" : "") + " clip" + (count === 1 ? "" : "s") + " from the last 7 days, newest first" : "");
    if (nextUrl) maybeLoadMore();
  }

  function showEmpty() {
    const filtered = Boolean(broadcasterInput.value || minScoreSelect.value);
    document.getElementById("empty-title").textContent = filtered ? "No clips match these filters" : "No clips yet";
    document.getElementById("empty-clear").hidden = !filtered;
  }

  function loadMore() {
    if (nextUrl && !loading) load(nextUrl, false);
  }

  let sentinelVisible = false;
  function maybeLoadMore() {
    if (sentinelVisible) loadMore();
  }
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      sentinelVisible = entries.some((e) => e.isIntersecting);
      maybeLoadMore();
    }, { rootMargin: "600px 0px" }).observe(sentinel);
  }

  function start(filters) {
    generation += 1;
    loading = false;
    nextUrl = null;
    showFilters(filters);
    load(firstPageUrl(filters), true);
  }

  function applyFilters(filters) {
    const params = new URLSearchParams();
    if (filters.broadcaster) params.set("broadcaster", filters.broadcaster);
    if (filters.minScore) params.set("min_score", filters.minScore);
    const query = params.toString();
    history.pushState(null, "", location.pathname + (query ? "?" + query : ""));
    start(filters);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!broadcasterInput.checkValidity()) {
      broadcasterInput.reportValidity();
      return;
    }
    applyFilters({ broadcaster: broadcasterInput.value.trim(), minScore: minScoreSelect.value });
  });
  minScoreSelect.addEventListener("change", () => form.requestSubmit());
  const clear = () => applyFilters({ broadcaster: "", minScore: "" });
  clearButton.addEventListener("click", clear);
  document.getElementById("empty-clear").addEventListener("click", clear);
  moreButton.addEventListener("click", loadMore);
  window.addEventListener("popstate", () => start(filtersFromUrl()));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePlayer();
  });
  setInterval(refreshTimes, 30000);

  start(filtersFromUrl());
})();
