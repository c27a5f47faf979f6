// Slack mrkdwn to HTML: escapes everything first, so message text can never inject markup.
"use strict";

const Mrkdwn = (() => {
  const EMOJI = {
    white_check_mark: "✅", heavy_check_mark: "✔️", rocket: "🚀", warning: "⚠️", rotating_light: "🚨",
    hourglass_flowing_sand: "⏳", hourglass: "⌛", x: "❌", tada: "🎉", no_entry: "⛔", no_entry_sign: "🚫",
    large_green_circle: "🟢", red_circle: "🔴", large_blue_circle: "🔵", large_yellow_circle: "🟡",
    white_circle: "⚪", arrows_counterclockwise: "🔄", leftwards_arrow_with_hook: "↩️", rewind: "⏪",
    stopwatch: "⏱️", alarm_clock: "⏰", eyes: "👀", lock: "🔒", bell: "🔔", octagonal_sign: "🛑",
    checkered_flag: "🏁", hammer_and_wrench: "🛠️", construction: "🚧", fire: "🔥", thumbsup: "👍",
    "+1": "👍", wave: "👋", information_source: "ℹ️", bar_chart: "📊", clipboard: "📋", package: "📦",
    arrow_right: "➡️", fast_forward: "⏩", pause_button: "⏸️", green_heart: "💚", skull: "💀",
  };

  const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  // Slack sends &, < and > escaped inside text; turn them back before escaping for HTML.
  const unslack = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");

  const emojify = (html) => html.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);

  const safeUrl = (url) => (/^(https?:|mailto:|\/)/i.test(url) ? url : "#");

  function formatDate(seconds, fallback) {
    const d = new Date(Number(seconds) * 1000);
    if (Number.isNaN(d.getTime())) return escapeHtml(fallback);
    return escapeHtml(d.toLocaleString([], { hour: "2-digit", minute: "2-digit", day: "numeric", month: "short" }));
  }

  // One <…> token: a mention, group, channel, special mention, date, or link.
  function token(inner, ctx) {
    const [target, label] = splitOnce(inner, "|");
    const me = ctx.me && target === "@" + ctx.me ? " me" : "";
    if (target.startsWith("@")) {
      const user = ctx.users[target.slice(1)];
      const name = user ? user.name : (label || target.slice(1));
      return `<span class="mention${me}" data-user="${escapeHtml(target.slice(1))}">@${escapeHtml(name)}</span>`;
    }
    if (target.startsWith("#")) {
      const ch = ctx.channels[target.slice(1)];
      return `<span class="mention">#${escapeHtml(ch ? ch.name : label || target.slice(1))}</span>`;
    }
    if (target.startsWith("!subteam^")) {
      const group = ctx.groups[target.slice(9)];
      const mine = group && group.users.includes(ctx.me) ? " me" : "";
      const handle = group ? group.handle : (label || "group").replace(/^@/, "");
      return `<span class="mention${mine}">@${escapeHtml(handle)}</span>`;
    }
    if (target.startsWith("!date^")) return formatDate(target.split("^")[1], label || "");
    if (target.startsWith("!")) return `<span class="mention me">@${escapeHtml(target.slice(1))}</span>`;
    const url = unslack(target);
    return `<a href="${escapeHtml(safeUrl(url))}" target="_blank" rel="noopener">${escapeHtml(unslack(label || url))}</a>`;
  }

  function splitOnce(s, sep) {
    const i = s.indexOf(sep);
    return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
  }

  // Inline styles; Slack requires the markers to sit at word boundaries.
  function inline(html) {
    return html
      .replace(/(^|[\s(>])\*(?!\s)([^*\n]+?)\*(?=$|[\s.,!?:;)<])/g, "$1<b>$2</b>")
      .replace(/(^|[\s(>])_(?!\s)([^_\n]+?)_(?=$|[\s.,!?:;)<])/g, "$1<i>$2</i>")
      .replace(/(^|[\s(>])~(?!\s)([^~\n]+?)~(?=$|[\s.,!?:;)<])/g, "$1<s>$2</s>");
  }

  function render(text, ctx) {
    if (!text) return "";
    const tokens = [];
    let s = String(text).replace(/<([^<>\n]+)>/g, (m, inner) => {
      tokens.push(token(inner, ctx));
      return `\u0000${tokens.length - 1}\u0000`;
    });
    s = escapeHtml(unslack(s));
    const codes = [];
    // Code is literal: lift it out before styling, put it back at the end.
    s = s.replace(/```([\s\S]*?)```/g, (m, code) => {
      codes.push(`<pre class="bk-pre">${code.replace(/^\n/, "")}</pre>`);
      return `\u0001${codes.length - 1}\u0001`;
    });
    s = s.replace(/`([^`\n]+)`/g, (m, code) => {
      codes.push(`<code>${code}</code>`);
      return `\u0001${codes.length - 1}\u0001`;
    });
    s = emojify(inline(s));
    s = s.split("\n").map((line) => (line.startsWith("&gt; ") ? `<blockquote>${line.slice(5)}</blockquote>` : line))
      .join("\n").replace(/\n/g, "<br>").replace(/<\/blockquote><br>/g, "</blockquote>");
    s = s.replace(/\u0001(\d+)\u0001/g, (m, i) => codes[Number(i)]);
    return s.replace(/\u0000(\d+)\u0000/g, (m, i) => tokens[Number(i)]);
  }

  function plain(text, emoji) {
    const html = escapeHtml(text || "");
    return emoji === false ? html : emojify(html);
  }

  function textObject(obj, ctx) {
    if (!obj) return "";
    return obj.type === "mrkdwn" ? render(obj.text, ctx) : plain(obj.text, obj.emoji);
  }

  return { render, plain, textObject, escapeHtml };
})();
