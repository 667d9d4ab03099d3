// Engram dashboard: the entity graph, drawn as SVG with a small force layout (no library).
// Data comes from <script type="application/json" id="graph-data">; names are set as text, never as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 900, H = 520;

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function layout(nodes, edges) {
    // Start on circles by hop count, then relax: springs along edges, repulsion between all pairs.
    const byHops = {};
    for (const n of nodes) (byHops[n.hops] = byHops[n.hops] || []).push(n);
    for (const [hops, ring] of Object.entries(byHops)) {
      ring.forEach((n, i) => {
        const angle = (2 * Math.PI * i) / ring.length + Number(hops);
        const r = Number(hops) * 130;
        n.x = W / 2 + r * Math.cos(angle);
        n.y = H / 2 + r * Math.sin(angle);
        n.vx = 0;
        n.vy = 0;
      });
    }
    const index = new Map(nodes.map((n) => [n.id, n]));
    const links = edges.map((e) => [index.get(e.source), index.get(e.target), e.label]).filter(([a, b]) => a && b && a !== b);
    const steps = nodes.length > 150 ? 120 : 300;
    for (let step = 0; step < steps; step++) {
      const cool = 1 - step / steps;
      for (let i = 0; i < nodes.length; i++) {
        for (let j = i + 1; j < nodes.length; j++) {
          const a = nodes[i], b = nodes[j];
          let dx = a.x - b.x, dy = a.y - b.y;
          let d2 = dx * dx + dy * dy;
          if (d2 < 0.01) { dx = Math.random() - 0.5; dy = Math.random() - 0.5; d2 = 0.25; }
          const f = 2200 / d2;
          const d = Math.sqrt(d2);
          a.vx += (f * dx) / d; a.vy += (f * dy) / d;
          b.vx -= (f * dx) / d; b.vy -= (f * dy) / d;
        }
      }
      for (const [a, b] of links) {
        const dx = b.x - a.x, dy = b.y - a.y;
        const d = Math.max(1, Math.sqrt(dx * dx + dy * dy));
        const f = (d - 120) * 0.04;
        a.vx += (f * dx) / d; a.vy += (f * dy) / d;
        b.vx -= (f * dx) / d; b.vy -= (f * dy) / d;
      }
      for (const n of nodes) {
        n.vx += (W / 2 - n.x) * 0.004;
        n.vy += (H / 2 - n.y) * 0.004;
        n.x = Math.min(W - 30, Math.max(30, n.x + Math.max(-20, Math.min(20, n.vx)) * cool));
        n.y = Math.min(H - 20, Math.max(20, n.y + Math.max(-20, Math.min(20, n.vy)) * cool));
        n.vx *= 0.5; n.vy *= 0.5;
      }
    }
    return links;
  }

  function draw(svg, data) {
    const nodes = data.nodes.map((n) => ({ ...n }));
    const links = layout(nodes, data.edges);
    const edgeLayer = el("g", {}, svg);
    const nodeLayer = el("g", {}, svg);
    const drawn = links.map(([a, b, label]) => {
      const line = el("line", { class: "edge-line" }, edgeLayer);
      const text = el("text", { class: "edge-label" }, edgeLayer);
      text.textContent = label || "";
      return { a, b, line, text };
    });
    const place = () => {
      for (const { a, b, line, text } of drawn) {
        line.setAttribute("x1", a.x); line.setAttribute("y1", a.y);
        line.setAttribute("x2", b.x); line.setAttribute("y2", b.y);
        text.setAttribute("x", (a.x + b.x) / 2); text.setAttribute("y", (a.y + b.y) / 2 - 3);
      }
      for (const n of nodes) n.g.setAttribute("transform", `translate(${n.x.toFixed(1)},${n.y.toFixed(1)})`);
    };
    for (const n of nodes) {
      const g = el("g", { class: "node" + (n.id === data.start ? " start" : ""), tabindex: 0, role: "link" }, nodeLayer);
      g.setAttribute("aria-label", `${n.name} (${n.type}), ${n.hops} hop${n.hops === 1 ? "" : "s"}`);
      el("circle", { r: n.id === data.start ? 11 : 8 }, g);
      const label = el("text", { x: 13, y: 4 }, g);
      label.textContent = n.name;
      n.g = g;
      const open = () => { window.location.href = `/ui/entities/${encodeURIComponent(n.id)}`; };
      g.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
      let dragged = false;
      g.addEventListener("pointerdown", (event) => {
        dragged = false;
        g.setPointerCapture(event.pointerId);
        const box = svg.getBoundingClientRect();
        const move = (e) => {
          dragged = true;
          n.x = ((e.clientX - box.left) / box.width) * W;
          n.y = ((e.clientY - box.top) / box.height) * H;
          place();
        };
        const up = () => {
          g.removeEventListener("pointermove", move);
          g.removeEventListener("pointerup", up);
          if (!dragged) open();
        };
        g.addEventListener("pointermove", move);
        g.addEventListener("pointerup", up);
      });
    }
    place();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const svg = document.getElementById("graph");
    const source = document.getElementById("graph-data");
    if (!svg || !source) return;
    draw(svg, JSON.parse(source.textContent));
    svg.dataset.drawn = "true";
  });
})();
