// The page: sidebar, channels, threads, App Home, composer, user switcher, sandbox panel, live updates.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = (...args) => Blocks.el(...args);
  const S = {
    ws: null, panel: [], state: null, version: 0, me: localStorage.getItem("sandbox-user") || "U0ALICE",
    where: { kind: "channel", id: "C0DEPLOYS" }, homeTab: "home", thread: null, highlight: null,
    users: {}, groups: {}, channels: {}, hint: "/deploy help",
  };

  async function api(name, body) {
    const resp = await fetch("/_sandbox/" + name, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  }

  function toast(text) {
    const node = el("div", "toast", Mrkdwn.plain(text));
    node.dataset.testid = "toast";
    document.body.appendChild(node);
    setTimeout(() => node.remove(), 4000);
  }

  const tsNum = (ts) => parseFloat(ts);
  const byTs = (a, b) => tsNum(a.ts) - tsNum(b.ts);
  const timeOf = (ts) => new Date(tsNum(ts) * 1000).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  const currentChannel = () => (S.where.kind === "home" ? S.ws.dms[S.me] : S.where.id);

  function ctxFor(source) {
    return {
      users: S.users, groups: S.groups, channels: S.channels, me: S.me,
      onAction: (element, block, button) => click(element, source, button),
    };
  }

  async function click(element, source, button) {
    button.classList.add("pending");
    try {
      const out = await api("click", { user: S.me, action_id: element.action_id, ...source });
      if (out.error) toast(`DeployBot did not answer the click (${out.error})`);
    } catch (err) {
      toast("Click failed: " + err.message);
    } finally {
      button.classList.remove("pending");
    }
  }

  function avatar(userId, small) {
    const user = S.users[userId];
    const node = el("div", "avatar" + (small ? " mini" : ""));
    if (userId === "USLACKBOT") {
      node.style.background = "#2eb67d";
      node.textContent = "SB";
    } else {
      node.style.background = user ? user.color : "#999";
      node.textContent = user ? (user.is_bot ? "DB" : user.real_name.split(" ").map((p) => p[0]).join("")) : "?";
    }
    return node;
  }

  function messageNode(msg, channelId, inThread) {
    const node = el("div", "message");
    node.dataset.testid = "message";
    node.dataset.ts = msg.ts;
    node.dataset.user = msg.user || "";
    if (msg.is_ephemeral) {
      node.classList.add("ephemeral");
      node.dataset.ephemeral = "true";
    }
    if (S.highlight === msg.ts) node.classList.add("highlight");
    node.appendChild(avatar(msg.user));
    const body = el("div", "msg-body");
    const user = S.users[msg.user];
    const meta = el("div", "msg-meta");
    const name = msg.user === "USLACKBOT" ? "Slackbot" : user ? user.real_name : msg.user;
    meta.appendChild(el("span", "msg-name", Mrkdwn.plain(name)));
    if (msg.bot_id || msg.user === "USLACKBOT") meta.appendChild(el("span", "app-badge", "APP"));
    meta.appendChild(el("span", "msg-time", Mrkdwn.plain(timeOf(msg.ts))));
    body.appendChild(meta);
    if (msg.is_ephemeral) body.appendChild(el("div", "only-you", "Only visible to you"));
    const source = { channel: channelId, message_ts: msg.ts };
    if (msg.blocks && msg.blocks.length) body.appendChild(Blocks.render(msg.blocks, ctxFor(source)));
    else body.appendChild(el("div", "msg-text", Mrkdwn.render(msg.text, ctxFor(source))));
    if (!inThread && msg.reply_count) body.appendChild(threadLink(msg, channelId));
    node.appendChild(body);
    return node;
  }

  function threadLink(msg, channelId) {
    const link = el("button", "thread-link");
    link.type = "button";
    link.dataset.testid = "thread-link";
    link.dataset.ts = msg.ts;
    (msg.reply_users || []).slice(0, 3).forEach((u) => link.appendChild(avatar(u, true)));
    const n = msg.reply_count;
    link.appendChild(el("span", "", `${n} ${n === 1 ? "reply" : "replies"}`));
    link.appendChild(el("span", "msg-time", "Last reply " + Mrkdwn.plain(timeOf(msg.latest_reply || msg.ts))));
    link.onclick = () => openThread(channelId, msg.ts);
    return link;
  }

  function channelMessages(channelId) {
    const all = (S.state.channels[channelId] || []);
    const mine = (S.state.ephemerals[S.me] || []).filter((m) => m.channel === channelId);
    return { all, mine };
  }

  function renderList(container, messages, channelId, inThread) {
    const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 80;
    const first = container.dataset.shows !== channelId + (inThread ? S.thread.ts : "");
    container.replaceChildren();
    if (!messages.length) container.appendChild(emptyChannel());
    messages.forEach((m, i) => {
      container.appendChild(messageNode(m, channelId, inThread));
      if (inThread && i === 0 && messages.length > 1) {
        const n = messages.filter((x) => !x.is_ephemeral).length - 1;
        container.appendChild(el("div", "thread-divider", `${n} ${n === 1 ? "reply" : "replies"}`));
      }
    });
    container.dataset.shows = channelId + (inThread ? S.thread.ts : "");
    const target = S.highlight && container.querySelector(`[data-ts="${S.highlight}"]`);
    if (first && target) target.scrollIntoView({ block: "center" });
    else if (first || nearBottom) container.scrollTop = container.scrollHeight;
  }

  function emptyChannel() {
    const node = el("div", "empty", "No messages yet. Type ");
    node.dataset.testid = "empty-channel";
    node.appendChild(el("code", "", Mrkdwn.plain(S.hint)));
    node.appendChild(document.createTextNode(" in the box below to start."));
    return node;
  }

  function renderMain() {
    const home = S.where.kind === "home";
    const channelId = currentChannel();
    $("home-tabs").hidden = !home;
    document.querySelectorAll("#home-tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === S.homeTab));
    const showHome = home && S.homeTab === "home";
    $("home-view").hidden = !showHome;
    $("message-list").hidden = showHome;
    $("composer").hidden = showHome;
    $("channel-title").textContent = home ? "DeployBot" : "# " + S.channels[channelId].name;
    $("channel-topic").textContent = home ? "" : S.channels[channelId].topic || "";
    $("composer-input").placeholder = home ? "Message DeployBot" : `Message #${S.channels[channelId].name} — try ${S.hint}`;
    if (showHome) return renderHome();
    const { all, mine } = channelMessages(channelId);
    const roots = all.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
    const ephemeral = mine.filter((m) => !m.thread_ts);
    renderList($("message-list"), [...roots, ...ephemeral].sort(byTs), channelId, false);
  }

  function renderHome() {
    const view = (S.state.views[S.me] || {}).home;
    const box = $("home-view");
    const key = view ? view.id + view.hash : "none";
    if (box.dataset.key === key + S.me) return;
    box.dataset.key = key + S.me;
    box.replaceChildren(view ? Blocks.render(view.blocks, ctxFor({ view_id: view.id }))
      : el("div", "empty", "DeployBot has not published a Home tab for you yet."));
  }

  function renderThread() {
    const pane = $("thread-pane");
    pane.hidden = !S.thread;
    if (!S.thread) return;
    const { channel, ts } = S.thread;
    const { all, mine } = channelMessages(channel);
    const parent = all.find((m) => m.ts === ts);
    const replies = all.filter((m) => m.thread_ts === ts && m.ts !== ts);
    const eph = mine.filter((m) => m.thread_ts === ts);
    $("thread-channel").textContent = S.channels[channel] ? "#" + S.channels[channel].name : "";
    renderList($("thread-list"), [...(parent ? [parent] : []), ...[...replies, ...eph].sort(byTs)], channel, true);
  }

  function renderSidebar() {
    document.querySelectorAll(".nav-item").forEach((a) => {
      const active = S.where.kind === "home" ? a.id === "app-home-link" : a.dataset.channel === S.where.id;
      a.classList.toggle("active", active);
    });
  }

  function renderModal() {
    const modals = ((S.state.views[S.me] || {}).modals) || [];
    Modal.show(modals[modals.length - 1] || null, ctxFor({}), {
      submit: async (view, values) => {
        try {
          const out = await api("submit_view", { user: S.me, view_id: view.id, values });
          if (out.outcome === "failed") toast(`DeployBot did not answer (${out.error})`);
        } catch (err) { toast("Submit failed: " + err.message); }
      },
      close: (view) => api("close_view", { user: S.me, view_id: view.id }).catch((e) => toast(e.message)),
    });
  }

  function render() {
    if (!S.state) return;
    renderSidebar();
    renderMain();
    renderThread();
    renderModal();
  }

  function openThread(channel, ts) {
    S.thread = { channel, ts };
    renderThread();
  }

  function go(where) {
    S.where = where;
    S.highlight = null;
    if (where.kind === "home") {
      S.thread = null;  // a thread belongs to a channel; App Home has none
      history.replaceState(null, "", "#home");
      api("app_home_opened", { user: S.me }).catch((e) => toast("App Home: " + e.message));
    } else {
      history.replaceState(null, "", "#channel/" + where.id);
    }
    render();
  }

  function buildSidebar() {
    const list = $("channel-list");
    S.ws.channels.forEach((c) => {
      const li = el("li");
      const a = el("a", "nav-item", "<span>#</span>" + Mrkdwn.plain(c.name));
      a.href = "#channel/" + c.id;
      a.dataset.channel = c.id;
      a.dataset.testid = "channel-link-" + c.name;
      a.onclick = (e) => { e.preventDefault(); go({ kind: "channel", id: c.id }); };
      li.appendChild(a);
      list.appendChild(li);
    });
    $("app-home-link").onclick = (e) => { e.preventDefault(); S.homeTab = "home"; go({ kind: "home" }); };
    document.querySelectorAll("#home-tabs button").forEach((b) => {
      b.onclick = () => { S.homeTab = b.dataset.tab; go({ kind: "home" }); };
    });
    $("thread-close").onclick = () => { S.thread = null; renderThread(); };
  }

  function buildSwitcher() {
    const select = $("user-switcher");
    S.ws.users.filter((u) => !u.is_bot).forEach((u) => {
      const opt = el("option", "", Mrkdwn.plain(`${u.real_name} — ${u.title}`));
      opt.value = u.id;
      opt.selected = u.id === S.me;
      select.appendChild(opt);
    });
    select.onchange = () => {
      S.me = select.value;
      localStorage.setItem("sandbox-user", S.me);
      if (S.where.kind === "home") go({ kind: "home" });
      else render();
    };
  }

  function buildPanel() {
    if (!S.panel.length) return;
    $("sandbox-panel").hidden = false;
    S.panel.forEach((item, i) => {
      const b = el("button", "", Mrkdwn.plain(item.label));
      b.type = "button";
      b.dataset.testid = "panel-button-" + i;
      b.onclick = async () => {
        $("panel-result").textContent = item.label + "…";
        try {
          const out = await api("panel/" + i, {});
          $("panel-result").textContent = `${item.label}: ${out.status === 200 || out.status === 201 ? "done" : "HTTP " + out.status}`;
        } catch (err) { $("panel-result").textContent = `${item.label}: ${err.message}`; }
      };
      $("panel-buttons").appendChild(b);
    });
  }

  function buildComposer() {
    const input = $("composer-input");
    // The hint fills the composer when tapped: typing `%` and `:` on a phone keyboard is slow.
    const hint = $("composer-try");
    hint.replaceChildren(el("span", "", "Try "), el("code", "", Mrkdwn.plain(S.hint)));
    hint.onclick = () => { input.value = S.hint; input.focus(); };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        send(input.value.trim());
        input.value = "";
      }
    });
    $("composer").addEventListener("submit", (e) => { e.preventDefault(); send(input.value.trim()); input.value = ""; });
  }

  async function send(text) {
    if (!text) return;
    const channel = currentChannel();
    try {
      if (text.startsWith("/")) {
        const [command, ...rest] = text.split(/\s+/);
        await api("command", { user: S.me, channel, command, text: rest.join(" ") });
      } else {
        await api("post", { user: S.me, channel, text });
      }
    } catch (err) { toast("Could not send: " + err.message); }
  }

  // Permalinks (/archives/C…/p…?thread_ts=…) and #channel/… or #home fragments choose where to start.
  function route() {
    const m = location.pathname.match(/^\/archives\/([A-Z0-9]+)\/p(\d+)(\d{6})$/);
    if (m && S.channels[m[1]]) {
      S.where = { kind: "channel", id: m[1] };
      S.highlight = `${m[2]}.${m[3]}`;
      const thread = new URLSearchParams(location.search).get("thread_ts");
      if (thread) S.thread = { channel: m[1], ts: thread };
      return;
    }
    const h = location.hash.match(/^#channel\/([A-Z0-9]+)/);
    if (h && S.channels[h[1]]) S.where = { kind: "channel", id: h[1] };
    else if (location.hash === "#home") go({ kind: "home" });
  }

  async function poll() {
    for (;;) {
      try {
        // The first read answers at once (a fresh start has no change to wait for), later ones long-poll.
        const wait = S.state ? 20 : 0;
        const resp = await fetch(`/_sandbox/state?since=${S.version}&wait=${wait}`);
        if (!resp.ok) throw new Error(resp.statusText);
        const state = await resp.json();
        $("live").classList.remove("down");
        if (state.version !== S.version || !S.state) {
          S.state = state;
          S.version = state.version;
          render();
          document.body.dataset.ready = "true";
        }
      } catch (err) {
        $("live").classList.add("down");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async function main() {
    const config = await (await fetch("/_sandbox/config")).json();
    S.ws = config.workspace;
    S.panel = config.panel || [];
    S.hint = config.hint || S.hint;
    S.ws.users.forEach((u) => { S.users[u.id] = u; });
    S.ws.groups.forEach((g) => { S.groups[g.id] = g; });
    S.ws.channels.forEach((c) => { S.channels[c.id] = c; });
    Object.entries(S.ws.dms).forEach(([user, id]) => { S.channels[id] = { id, name: "deploybot", dm: user }; });
    if (!S.users[S.me]) S.me = "U0ALICE";
    $("workspace-name").textContent = S.ws.team.name;
    buildSidebar();
    buildSwitcher();
    buildPanel();
    buildComposer();
    route();
    poll();
  }

  main();
})();
