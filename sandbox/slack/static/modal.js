// Dialogs: Block Kit confirm dialogs and modals opened by views.open, with their inputs.
"use strict";

const Modal = (() => {
  const el = (...args) => Blocks.el(...args);

  function overlay(id) {
    const node = el("div", "overlay");
    if (id) node.id = id;
    document.body.appendChild(node);
    return node;
  }

  function confirm(spec, style, ctx, onYes) {
    const layer = overlay();
    const box = el("div", "dialog confirm");
    box.setAttribute("role", "dialog");
    box.dataset.testid = "confirm-dialog";
    box.appendChild(el("div", "dialog-head", Mrkdwn.textObject(spec.title, ctx) || "Are you sure?"));
    box.appendChild(el("div", "dialog-body", Mrkdwn.textObject(spec.text, ctx)));
    const foot = el("div", "dialog-foot");
    const deny = el("button", "", Mrkdwn.textObject(spec.deny, ctx) || "Cancel");
    deny.dataset.testid = "confirm-deny";
    const yes = el("button", "go" + ((spec.style || style) === "danger" ? " danger" : ""),
      Mrkdwn.textObject(spec.confirm, ctx) || "Yes");
    yes.dataset.testid = "confirm-button";
    deny.type = yes.type = "button";
    deny.onclick = () => layer.remove();
    yes.onclick = () => { layer.remove(); onYes(); };
    foot.append(deny, yes);
    box.appendChild(foot);
    layer.appendChild(box);
    layer.addEventListener("click", (e) => { if (e.target === layer) layer.remove(); });
    yes.focus();
  }

  function selected(element, values) {
    const state = values && values[element.action_id];
    if (state) return state.selected_option ? state.selected_option.value : state.value;
    if (element.initial_option) return element.initial_option.value;
    return element.initial_value;
  }

  function optionsOf(element) {
    const opts = [...(element.options || [])];
    (element.option_groups || []).forEach((g) => opts.push(...(g.options || [])));
    return opts;
  }

  function field(element, blockId, ctx, current) {
    const kind = element.type;
    if (kind === "static_select") {
      const select = el("select");
      select.appendChild(el("option", "", Mrkdwn.textObject(element.placeholder, ctx) || "Select an option"));
      select.firstChild.value = "";
      optionsOf(element).forEach((o) => {
        const opt = el("option", "", Mrkdwn.textObject(o.text, ctx));
        opt.value = o.value;
        opt.selected = o.value === current;
        select.appendChild(opt);
      });
      return select;
    }
    if (kind === "radio_buttons") {
      const group = el("div");
      optionsOf(element).forEach((o) => {
        const label = el("label", "bk-radio");
        const radio = el("input");
        Object.assign(radio, { type: "radio", name: blockId, value: o.value, checked: o.value === current });
        label.append(radio, " ");
        label.appendChild(el("span", "", Mrkdwn.textObject(o.text, ctx)));
        group.appendChild(label);
      });
      return group;
    }
    const input = el(element.multiline ? "textarea" : "input");
    if (!element.multiline) input.type = "text";
    input.value = current || "";
    input.placeholder = element.placeholder ? element.placeholder.text : "";
    return input;
  }

  function input(block, ctx) {
    const element = block.element || {};
    const error = (ctx.errors || {})[block.block_id];
    const node = el("div", "bk-input" + (error ? " invalid" : ""));
    node.dataset.testid = "modal-input-" + block.block_id;
    node.dataset.blockId = block.block_id;
    node.dataset.actionId = element.action_id || "";
    node.dataset.kind = element.type;
    const label = el("label", "", Mrkdwn.textObject(block.label, ctx));
    if (block.optional) label.appendChild(el("span", "optional", " (optional)"));
    node.appendChild(label);
    const values = ((ctx.state || {}).values || {})[block.block_id];
    node.appendChild(field(element, block.block_id, ctx, selected(element, values)));
    if (block.hint) node.appendChild(el("div", "hint", Mrkdwn.textObject(block.hint, ctx)));
    if (error) {
      const msg = el("div", "error", Mrkdwn.plain(error));
      msg.dataset.testid = "modal-error-" + block.block_id;
      node.appendChild(msg);
    }
    return node;
  }

  // {block_id: {action_id: value}}: what POST /_sandbox/submit_view expects.
  function collect(root) {
    const values = {};
    root.querySelectorAll(".bk-input").forEach((node) => {
      let value = null;
      if (node.dataset.kind === "radio_buttons") {
        const checked = node.querySelector("input:checked");
        value = checked ? checked.value : null;
      } else {
        const field = node.querySelector("input, textarea, select");
        value = field && field.value !== "" ? field.value : null;
      }
      values[node.dataset.blockId] = { [node.dataset.actionId]: value };
    });
    return values;
  }

  let shownKey = null;

  // Show the user's top modal; re-render only when the view itself changed, so typing is never lost.
  function show(view, ctx, handlers) {
    const key = view ? `${view.id}:${view.hash}:${JSON.stringify(view.errors || {})}` : null;
    if (key === shownKey) return;
    shownKey = key;
    const old = document.getElementById("view-overlay");
    if (old) old.remove();
    if (!view) return;
    const layer = overlay("view-overlay");
    const box = el("form", "dialog");
    box.dataset.testid = "modal";
    box.dataset.viewId = view.id;
    box.setAttribute("role", "dialog");
    const head = el("div", "dialog-head", Mrkdwn.textObject(view.title, ctx));
    const close = el("button", "icon-button", "✕");
    Object.assign(close, { type: "button", title: "Close" });
    close.dataset.testid = "modal-close";
    close.onclick = () => handlers.close(view);
    head.appendChild(close);
    const body = el("div", "dialog-body");
    body.appendChild(Blocks.render(view.blocks, { ...ctx, errors: view.errors, state: view.state }));
    box.append(head, body, footer(view, ctx, handlers));
    box.addEventListener("submit", (e) => { e.preventDefault(); handlers.submit(view, collect(box)); });
    layer.appendChild(box);
  }

  function footer(view, ctx, handlers) {
    const foot = el("div", "dialog-foot");
    const cancel = el("button", "", view.close ? Mrkdwn.textObject(view.close, ctx) : "Cancel");
    cancel.type = "button";
    cancel.dataset.testid = "modal-cancel";
    cancel.onclick = () => handlers.close(view);
    foot.appendChild(cancel);
    if (view.submit) {
      const submit = el("button", "go", Mrkdwn.textObject(view.submit, ctx));
      submit.type = "submit";
      submit.dataset.testid = "modal-submit";
      foot.appendChild(submit);
    }
    return foot;
  }

  return { confirm, input, show };
})();
