// Block Kit renderer for the blocks DeployBot sends: messages, the Home tab and modals.
"use strict";

const Blocks = (() => {
  const el = (tag, cls, html) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (html !== undefined) node.innerHTML = html;
    return node;
  };

  function button(element, block, ctx) {
    const b = el("button", "bk-button" + (element.style ? " " + element.style : ""),
      Mrkdwn.textObject(element.text, ctx));
    b.type = "button";
    b.dataset.testid = "button-" + (element.action_id || "");
    b.dataset.actionId = element.action_id || "";
    if (element.value !== undefined) b.dataset.value = element.value;
    b.addEventListener("click", () => {
      if (element.url) window.open(element.url, "_blank", "noopener");
      const go = () => ctx.onAction(element, block, b);
      if (element.confirm) Modal.confirm(element.confirm, element.style, ctx, go);
      else go();
    });
    return b;
  }

  function accessory(element, block, ctx) {
    if (element.type === "button") return button(element, block, ctx);
    if (element.type === "image") {
      const img = el("img");
      img.src = safeImage(element.image_url);
      img.alt = element.alt_text || "";
      img.width = 88;
      return img;
    }
    return el("span", "muted", Mrkdwn.plain(`[${element.type}]`));
  }

  // Only same-origin or data: images, so the page never reaches the internet.
  const safeImage = (url) => (/^(data:image\/|\/)/.test(url || "") ? url : "data:,");

  function section(block, ctx) {
    const node = el("div", "bk-section");
    const body = el("div", "bk-text");
    if (block.text) body.appendChild(el("div", "", Mrkdwn.textObject(block.text, ctx)));
    if (block.fields && block.fields.length) {
      const fields = el("div", "bk-fields");
      block.fields.forEach((f) => fields.appendChild(el("div", "", Mrkdwn.textObject(f, ctx))));
      body.appendChild(fields);
    }
    node.appendChild(body);
    if (block.accessory) node.appendChild(accessory(block.accessory, block, ctx));
    return node;
  }

  function context(block, ctx) {
    const node = el("div", "bk-context");
    (block.elements || []).forEach((e) => {
      if (e.type === "image") {
        const img = el("img");
        img.src = safeImage(e.image_url);
        img.alt = e.alt_text || "";
        node.appendChild(img);
      } else {
        node.appendChild(el("span", "", Mrkdwn.textObject(e, ctx)));
      }
    });
    return node;
  }

  function actions(block, ctx) {
    const node = el("div", "bk-actions");
    (block.elements || []).forEach((e) => node.appendChild(
      e.type === "button" ? button(e, block, ctx) : el("span", "muted", Mrkdwn.plain(`[${e.type}]`))));
    return node;
  }

  function richText(block, ctx) {
    // Slack turns plain text into rich_text; show its text runs without styling detail.
    const parts = [];
    const walk = (e) => {
      if (e.type === "text") parts.push(Mrkdwn.plain(e.text));
      else if (e.type === "user") parts.push(Mrkdwn.render(`<@${e.user_id}>`, ctx));
      else if (e.type === "link") parts.push(Mrkdwn.render(`<${e.url}|${e.text || e.url}>`, ctx));
      else if (e.type === "emoji") parts.push(Mrkdwn.plain(`:${e.name}:`));
      (e.elements || []).forEach(walk);
    };
    walk(block);
    return el("div", "bk-text", parts.join("").replace(/\n/g, "<br>"));
  }

  function image(block) {
    const node = el("div", "bk-image");
    const img = el("img");
    img.src = safeImage(block.image_url);
    img.alt = block.alt_text || "";
    node.appendChild(img);
    return node;
  }

  const RENDERERS = {
    header: (b, ctx) => el("div", "bk-header", Mrkdwn.textObject(b.text, ctx)),
    section,
    context,
    divider: () => el("hr", "bk-divider"),
    actions,
    rich_text: richText,
    image,
    markdown: (b, ctx) => el("div", "bk-text", Mrkdwn.render(b.text, ctx)),
    input: (b, ctx) => Modal.input(b, ctx),
  };

  function render(blocks, ctx) {
    const wrap = el("div", "blocks");
    (blocks || []).forEach((block) => {
      const fn = RENDERERS[block.type];
      const node = el("div", "block");
      node.dataset.blockId = block.block_id || "";
      node.dataset.blockType = block.type;
      node.appendChild(fn ? fn(block, ctx) : el("span", "muted", Mrkdwn.plain(`[${block.type} block]`)));
      wrap.appendChild(node);
    });
    return wrap;
  }

  return { render, el };
})();
