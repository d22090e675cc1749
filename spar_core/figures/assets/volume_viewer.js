// spar's volume viewer: the exam reaches the browser once (spar_core/figures/volume_scene.py packs it); slice
// steps, window/level, zoom, pan, the crosshair and the hover readout are drawn here, never asking the server.
// Canvas 2D, no WebGL: a slice is at most a few hundred thousand pixels, recomposed in a few milliseconds.

// Screen orientation of each plane on RAS+ axes, radiological as ITK-SNAP: patient right on the left,
// anterior up in axial, superior up in sagittal and coronal (anterior on the left).
const PLANES = {
  sagittal: { fixed: 0, h: 1, v: 2, letters: ["A", "P", "S", "I"] },
  coronal: { fixed: 1, h: 0, v: 2, letters: ["R", "L", "S", "I"] },
  axial: { fixed: 2, h: 0, v: 1, letters: ["R", "L", "A", "P"] },
};
const PLANE_NAMES = ["sagittal", "coronal", "axial"];
const MAX_TIMINGS = 2000;

function timings() {
  // Every view change's latency (input event -> the frame after it was drawn), read by bench/app.py.
  if (!window.__sparViewerTimings) window.__sparViewerTimings = [];
  return window.__sparViewerTimings;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function parseScene(bytes) {
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== "SPV1") throw new Error("not a spar volume scene");
  const length = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const body = 8 + length;
  const arrays = {};
  await Promise.all(header.blobs.map(async (blob) => {
    const raw = await inflate(bytes.subarray(body + blob.offset, body + blob.offset + blob.length));
    arrays[`${blob.kind}:${blob.name}`] = blob.dtype === "uint16" ? new Uint16Array(raw.buffer) : raw;
  }));
  return { header, arrays };
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

class Viewer {
  constructor(parent) {
    this.root = el("div", { className: "spv", tabIndex: 0 });
    this.root.setAttribute("data-testid", "spar-volume-viewer");
    this.toolbar = el("div", { className: "spv-toolbar" });
    this.titleLine = el("div", { className: "spv-title" });
    this.grid = el("div", { className: "spv-grid" });
    this.status = el("div", { className: "spv-status", textContent: "Loading the exam…" });
    this.root.append(this.toolbar, this.titleLine, this.grid, this.status);
    parent.append(this.root);
    this.views = [];
    this.pending = null; // the input event a redraw answers, for the latency record
    this.frame = 0;
    this.activePlane = null;
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.root);
    this.root.addEventListener("keydown", (e) => this.onKey(e));
  }

  async load(bytes) {
    const started = performance.now();
    const { header, arrays } = await parseScene(bytes);
    const sameExam = this.header && this.header.exam === header.exam && header.exam !== "" &&
      this.header.shape.join() === header.shape.join();
    this.header = header;
    this.image = arrays["image:image"];
    this.layers = {};
    this.maps = {};
    this.mapSteps = {};
    for (const blob of header.blobs) {
      if (blob.kind === "layer") this.layers[blob.name] = arrays[`layer:${blob.name}`];
      if (blob.kind === "map") {
        this.maps[blob.name] = arrays[`map:${blob.name}`];
        this.mapSteps[blob.name] = blob.step;
      }
    }
    const top = Math.max(0, ...header.structures.map((s) => s.value));
    this.colors = new Uint8Array((top + 1) * 3);
    for (const s of header.structures) this.colors.set(hexToRgb(s.color), s.value * 3);
    this.structureNames = Object.fromEntries(header.structures.map((s) => [s.value, s.name]));
    if (!sameExam || !this.state) {
      const previous = this.state;
      this.state = {
        cursor: header.cursor.slice(),
        plane: previous ? previous.plane : header.plane,
        multiplanar: previous ? previous.multiplanar : false,
        window: header.window.slice(),
        zoom: { sagittal: 1, coronal: 1, axial: 1 },
        pan: { sagittal: [0, 0], coronal: [0, 0], axial: [0, 0] },
        opacity: previous ? previous.opacity : 0.5,
        labels: previous ? previous.labels : "filled",
        truth: previous ? previous.truth : true,
        crosshair: previous ? previous.crosshair : true,
        hidden: previous ? previous.hidden : new Set(),
      };
    }
    this.lut = null;
    this.buildToolbar();
    this.buildViews();
    this.titleLine.textContent = header.title || "";
    this.status.textContent = "Wheel, ↑/↓ or the slider: slice · click: crosshair · right-drag: window/level · " +
      "ctrl+wheel: zoom · shift-drag or middle-drag: pan · double-click: reset";
    this.root.dataset.loadMs = String(Math.round(performance.now() - started));
    this.drawNow();
    this.root.dataset.ready = "1";
  }

  destroy() {
    this.resize.disconnect();
    this.root.remove();
  }

  // ---- controls ------------------------------------------------------------------------------------------

  buildToolbar() {
    const s = this.state;
    const hasFill = this.header.panels.some((p) => p.fill);
    const hasOutline = this.header.panels.some((p) => p.outline);
    const hasHeat = this.header.panels.some((p) => p.heat);
    this.toolbar.replaceChildren();
    const plane = el("select", { className: "spv-plane", title: "Plane" });
    for (const name of [...PLANE_NAMES, "3 planes"]) plane.append(el("option", { value: name, textContent: name }));
    plane.value = s.multiplanar ? "3 planes" : s.plane;
    plane.onchange = (e) => {
      s.multiplanar = plane.value === "3 planes";
      if (!s.multiplanar) s.plane = plane.value;
      this.buildViews();
      this.request(e);
    };
    this.toolbar.append(el("label", {}, ["Plane ", plane]));
    this.slider = el("input", { type: "range", min: 0, step: 1, className: "spv-slice", title: "Slice of the plane under the mouse" });
    this.slider.oninput = (e) => {
      const P = PLANES[this.activePlane || s.plane];
      s.cursor[P.fixed] = Number(this.slider.value);
      this.request(e, "slider");
    };
    this.toolbar.append(el("label", {}, ["Slice ", this.slider]));
    if (hasFill || hasHeat) {
      const opacity = el("input", { type: "range", min: 0, max: 1, step: 0.05, value: s.opacity, className: "spv-opacity" });
      opacity.oninput = (e) => { s.opacity = Number(opacity.value); this.request(e); };
      this.toolbar.append(el("label", {}, ["Opacity ", opacity]));
    }
    if (hasFill) {
      const mode = el("select", { className: "spv-labels", title: "How the labels are drawn" });
      for (const name of ["filled", "outline", "hidden"]) mode.append(el("option", { value: name, textContent: name }));
      mode.value = s.labels;
      mode.onchange = (e) => { s.labels = mode.value; this.request(e); };
      this.toolbar.append(el("label", {}, ["Labels ", mode]));
    }
    if (hasOutline) this.toolbar.append(this.checkbox("Truth outline", "truth", "white outline: the ground truth"));
    this.toolbar.append(this.checkbox("Crosshair", "crosshair", "the lines through the cursor"));
    for (const structure of this.header.structures) {
      const box = el("input", { type: "checkbox", checked: !s.hidden.has(structure.value) });
      box.onchange = (e) => {
        if (box.checked) s.hidden.delete(structure.value); else s.hidden.add(structure.value);
        this.request(e);
      };
      const swatch = el("span", { className: "spv-swatch" });
      swatch.style.background = structure.color;
      this.toolbar.append(el("label", { className: "spv-structure" }, [box, swatch, structure.name]));
    }
    const reset = el("button", { textContent: "Reset view", className: "spv-reset" });
    reset.onclick = (e) => { this.resetView(); this.request(e); };
    this.toolbar.append(reset);
  }

  checkbox(text, field, title) {
    const box = el("input", { type: "checkbox", checked: this.state[field] });
    box.onchange = (e) => { this.state[field] = box.checked; this.request(e); };
    return el("label", { title }, [box, " " + text]);
  }

  resetView() {
    const s = this.state;
    s.window = this.header.window.slice();
    for (const name of PLANE_NAMES) { s.zoom[name] = 1; s.pan[name] = [0, 0]; }
    this.lut = null;
  }

  buildViews() {
    const s = this.state;
    const planes = s.multiplanar ? PLANE_NAMES : [s.plane];
    this.grid.replaceChildren();
    this.views = [];
    const columns = s.multiplanar ? 3 : Math.min(this.header.panels.length, 3);
    this.grid.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    this.header.panels.forEach((panel, index) => {
      for (const plane of planes) {
        const canvas = el("canvas", { className: "spv-canvas" });
        canvas.dataset.panel = String(index);
        canvas.dataset.plane = plane;
        const caption = s.multiplanar ? `${panel.title} · ${plane}` : panel.title;
        const cell = el("div", { className: "spv-cell" }, [el("div", { className: "spv-caption", textContent: caption }), canvas]);
        this.grid.append(cell);
        const view = { panel, plane, canvas, ctx: canvas.getContext("2d"), offscreen: null, pixels: null };
        this.bindView(view);
        this.views.push(view);
      }
    });
    this.activePlane = planes[0];
    this.layout();
  }

  layout() {
    if (!this.header) return;
    for (const view of this.views) {
      const P = PLANES[view.plane];
      const sh = this.header.shape, sp = this.header.spacing;
      const width = view.canvas.parentElement.clientWidth || 300;
      const aspect = (sh[P.v] * sp[P.v]) / (sh[P.h] * sp[P.h]);
      const cap = Math.max(200, window.innerHeight * (this.state.multiplanar ? 0.45 : 0.7));
      const height = Math.min(width * aspect, cap);
      const dpr = window.devicePixelRatio || 1;
      view.canvas.style.height = `${height}px`;
      view.canvas.width = Math.round(width * dpr);
      view.canvas.height = Math.round(height * dpr);
    }
    this.drawNow();
  }

  // ---- input ---------------------------------------------------------------------------------------------

  // Redraw for an input event: at once for a discrete one (a slice step, a control), on the next frame for the
  // continuous ones (drags, hover, zoom), which may come several times a frame.
  request(event, kind = "control") {
    if (event && !this.pending) this.pending = { t0: event.timeStamp, kind };
    if (kind === "wheel" || kind === "key" || kind === "slider" || kind === "control" || kind === "reset") {
      if (this.frame) { cancelAnimationFrame(this.frame); this.frame = 0; }
      this.drawNow();
    } else if (!this.frame) {
      this.frame = requestAnimationFrame(() => { this.frame = 0; this.drawNow(); });
    }
  }

  step(plane, delta, event, kind) {
    const P = PLANES[plane];
    const c = this.state.cursor;
    const next = Math.min(Math.max(c[P.fixed] + delta, 0), this.header.shape[P.fixed] - 1);
    if (next === c[P.fixed]) return;
    c[P.fixed] = next;
    this.request(event, kind);
  }

  onKey(e) {
    const plane = this.activePlane || this.state.plane;
    const steps = { ArrowUp: 1, ArrowRight: 1, PageUp: 10, ArrowDown: -1, ArrowLeft: -1, PageDown: -10 };
    if (!(e.key in steps) || e.target.tagName === "SELECT" || e.target.tagName === "INPUT") return;
    e.preventDefault();
    this.step(plane, steps[e.key], e, "key");
  }

  // The geometry of a view's plane on its canvas: voxel (h, v) sizes in device pixels and the image origin.
  geometry(view) {
    const P = PLANES[view.plane];
    const sh = this.header.shape, sp = this.header.spacing;
    const W = sh[P.h], H = sh[P.v];
    const cw = view.canvas.width, ch = view.canvas.height;
    const fit = Math.min(cw / (W * sp[P.h]), ch / (H * sp[P.v]));
    const scale = fit * this.state.zoom[view.plane];
    const dpr = window.devicePixelRatio || 1;
    const pan = this.state.pan[view.plane];
    const du = sp[P.h] * scale, dv = sp[P.v] * scale;
    return { P, W, H, du, dv, ox: (cw - W * du) / 2 + pan[0] * dpr, oy: (ch - H * dv) / 2 + pan[1] * dpr, dpr };
  }

  voxelAt(view, event) {
    const g = this.geometry(view);
    const rect = view.canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * g.dpr, y = (event.clientY - rect.top) * g.dpr;
    const u = Math.floor((x - g.ox) / g.du), r = Math.floor((y - g.oy) / g.dv);
    if (u < 0 || r < 0 || u >= g.W || r >= g.H) return null;
    const voxel = this.state.cursor.slice();
    voxel[g.P.h] = g.W - 1 - u; // radiological: screen columns run against the axis (see PLANES)
    voxel[g.P.v] = g.H - 1 - r;
    return voxel;
  }

  bindView(view) {
    const canvas = view.canvas;
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.activePlane = view.plane;
      if (e.ctrlKey || e.metaKey) {
        const s = this.state, rect = canvas.getBoundingClientRect();
        const px = e.clientX - rect.left - rect.width / 2, py = e.clientY - rect.top - rect.height / 2;
        const before = s.zoom[view.plane];
        const after = Math.min(Math.max(before * Math.exp(-e.deltaY * 0.002), 0.5), 20);
        const pan = s.pan[view.plane];
        s.pan[view.plane] = [px - (px - pan[0]) * after / before, py - (py - pan[1]) * after / before];
        s.zoom[view.plane] = after;
        this.request(e, "zoom");
      } else if (e.deltaY !== 0) {
        this.step(view.plane, e.deltaY > 0 ? 1 : -1, e, "wheel");
      }
    }, { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("pointerenter", () => { this.activePlane = view.plane; this.syncSlider(); });
    canvas.addEventListener("dblclick", (e) => { this.resetView(); this.request(e, "reset"); });
    canvas.addEventListener("pointerdown", (e) => {
      this.root.focus({ preventScroll: true });
      this.activePlane = view.plane;
      const mode = e.button === 2 || (e.button === 0 && e.altKey) ? "window"
        : e.button === 1 || (e.button === 0 && e.shiftKey) ? "pan" : "cursor";
      this.drag = { mode, x: e.clientX, y: e.clientY, window: this.state.window.slice(), pan: this.state.pan[view.plane].slice() };
      canvas.setPointerCapture(e.pointerId);
      if (mode === "cursor") this.moveCursor(view, e);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      this.hover(view, e);
      if (!this.drag) return;
      const s = this.state, dx = e.clientX - this.drag.x, dy = e.clientY - this.drag.y;
      if (this.drag.mode === "cursor") this.moveCursor(view, e);
      else if (this.drag.mode === "pan") {
        s.pan[view.plane] = [this.drag.pan[0] + dx, this.drag.pan[1] + dy];
        this.request(e, "pan");
      } else {
        // window/level as ITK-SNAP: horizontal drag widens the window, vertical moves the level
        const [lo, hi] = this.drag.window;
        const width = Math.max((hi - lo) * Math.exp(dx * 0.005), 1e-6);
        const level = (lo + hi) / 2 - dy * (hi - lo) * 0.005;
        s.window = [level - width / 2, level + width / 2];
        this.lut = null;
        this.request(e, "window");
      }
    });
    const end = () => { this.drag = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", () => { if (!this.drag) this.root.dataset.hover = ""; });
  }

  moveCursor(view, event) {
    const voxel = this.voxelAt(view, event);
    if (!voxel) return;
    this.state.cursor = voxel;
    this.request(event, "cursor");
  }

  hover(view, event) {
    const voxel = this.voxelAt(view, event);
    if (!voxel) return;
    const h = this.header, sh = h.shape;
    const index = voxel[0] + sh[0] * (voxel[1] + sh[1] * voxel[2]);
    const a = h.affine;
    const mm = [0, 1, 2].map((r) => a[r][0] * voxel[0] + a[r][1] * voxel[1] + a[r][2] * voxel[2] + a[r][3]);
    const source = h.ornt.map(([target, flip], axis) => flip < 0 ? h.source_shape[axis] - 1 - voxel[target] : voxel[target]);
    const value = h.intensity.low + this.image[index] * h.intensity.step;
    const parts = [`voxel (${source.join(", ")})`, `${mm.map((v) => v.toFixed(1)).join(", ")} mm`, `intensity ${value.toPrecision(4)}`];
    const seen = new Set();
    for (const panel of h.panels) {
      for (const name of [panel.outline, panel.fill]) {
        if (!name || seen.has(name)) continue;
        seen.add(name);
        const label = this.layers[name][index];
        parts.push(`${name}: ${label ? this.structureNames[label] || label : "background"}`);
      }
      if (panel.heat && !seen.has(panel.heat)) {
        seen.add(panel.heat);
        parts.push(`${panel.heat}: ${(this.maps[panel.heat][index] * this.mapSteps[panel.heat]).toFixed(3)}`);
      }
    }
    const text = parts.join(" · ");
    this.status.textContent = text;
    this.root.dataset.hover = text;
  }

  // ---- drawing -------------------------------------------------------------------------------------------

  windowLut() {
    // intensity level (uint16) -> grey, for the current window
    if (this.lut) return this.lut;
    const { low, step } = this.header.intensity;
    const [lo, hi] = this.state.window;
    const lut = new Uint8ClampedArray(65536);
    const k = 255 / Math.max(hi - lo, 1e-12);
    for (let q = 0; q < 65536; q++) lut[q] = (low + q * step - lo) * k;
    this.lut = lut;
    return lut;
  }

  drawNow() {
    if (!this.header || !this.views.length) return;
    const lut = this.windowLut();
    for (const view of this.views) this.drawView(view, lut);
    this.root.dataset.cursor = this.state.cursor.join(",");
    this.syncSlider();
    this.root.dataset.window = this.state.window.map((v) => v.toPrecision(4)).join(",");
    if (this.pending) {
      const { t0, kind } = this.pending;
      this.pending = null;
      // the frame after this one starts once the drawn frame is on screen
      requestAnimationFrame(() => {
        const list = timings();
        list.push({ kind, ms: performance.now() - t0 });
        if (list.length > MAX_TIMINGS) list.shift();
      });
    }
  }

  syncSlider() {
    // the toolbar's slider follows the plane under the mouse (the keys step that plane too)
    if (!this.slider) return;
    const P = PLANES[this.activePlane || this.state.plane];
    this.slider.max = String(this.header.shape[P.fixed] - 1);
    this.slider.value = String(this.state.cursor[P.fixed]);
  }

  sliceOf(volume, P, fixed, W, H, out) {
    // out[r * W + u] = volume at screen column u, row r of the plane (radiological flips)
    const sh = this.header.shape;
    const strides = [1, sh[0], sh[0] * sh[1]];
    const sh_ = strides[P.h], sv = strides[P.v];
    const base = fixed * strides[P.fixed];
    for (let r = 0; r < H; r++) {
      let index = base + (H - 1 - r) * sv + (W - 1) * sh_;
      const row = r * W;
      for (let u = 0; u < W; u++, index -= sh_) out[row + u] = volume[index];
    }
  }

  drawView(view, lut) {
    const s = this.state, g = this.geometry(view), P = g.P, W = g.W, H = g.H;
    if (!view.pixels || view.pixels.width !== W || view.pixels.height !== H) {
      view.offscreen = new OffscreenCanvas(W, H);
      view.pixels = new ImageData(W, H);
      view.grey = new Uint16Array(W * H);
      view.fill = new Uint16Array(W * H);
      view.outline = new Uint16Array(W * H);
      view.heat = new Uint8Array(W * H);
    }
    const fixed = s.cursor[P.fixed];
    this.sliceOf(this.image, P, fixed, W, H, view.grey);
    const panel = view.panel;
    const fill = panel.fill && s.labels !== "hidden" ? this.layers[panel.fill] : null;
    const outline = panel.outline && s.truth ? this.layers[panel.outline] : null;
    const heat = panel.heat ? this.maps[panel.heat] : null;
    if (fill) this.sliceOf(fill, P, fixed, W, H, view.fill);
    if (outline) this.sliceOf(outline, P, fixed, W, H, view.outline);
    if (heat) this.sliceOf(heat, P, fixed, W, H, view.heat);
    const px = view.pixels.data, colors = this.colors, alpha = s.opacity;
    const shown = new Uint8Array(colors.length / 3 + 1).fill(1); // label value -> drawn or not
    for (const value of s.hidden) if (value < shown.length) shown[value] = 0;
    const fillMode = s.labels === "filled";
    const edge = (labels, i, u, r) => {
      const l = labels[i];
      return (u > 0 && labels[i - 1] !== l) || (u < W - 1 && labels[i + 1] !== l) ||
        (r > 0 && labels[i - W] !== l) || (r < H - 1 && labels[i + W] !== l);
    };
    for (let r = 0, i = 0; r < H; r++) {
      for (let u = 0; u < W; u++, i++) {
        let red = lut[view.grey[i]], green = red, blue = red;
        if (heat) {
          const t = view.heat[i] / 255;
          if (t > 0) {
            const a = Math.min(1, 2 * t) * alpha;
            red += (255 * Math.min(1, 3 * t) - red) * a;
            green += (255 * Math.min(1, Math.max(0, 3 * t - 1)) - green) * a;
            blue += (255 * Math.min(1, Math.max(0, 3 * t - 2)) - blue) * a;
          }
        }
        if (fill) {
          const l = view.fill[i];
          if (l && shown[l] && (fillMode || edge(view.fill, i, u, r))) {
            const a = fillMode ? alpha : 1, c = l * 3;
            red += (colors[c] - red) * a;
            green += (colors[c + 1] - green) * a;
            blue += (colors[c + 2] - blue) * a;
          }
        }
        if (outline) {
          const l = view.outline[i];
          if (l && shown[l] && edge(view.outline, i, u, r)) { red = 255; green = 255; blue = 255; }
        }
        const o = i * 4;
        px[o] = red; px[o + 1] = green; px[o + 2] = blue; px[o + 3] = 255;
      }
    }
    view.offscreen.getContext("2d").putImageData(view.pixels, 0, 0);
    const ctx = view.ctx, cw = view.canvas.width, ch = view.canvas.height;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cw, ch);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(view.offscreen, g.ox, g.oy, W * g.du, H * g.dv);
    if (s.crosshair) {
      const x = g.ox + (W - 1 - s.cursor[P.h] + 0.5) * g.du, y = g.oy + (H - 1 - s.cursor[P.v] + 0.5) * g.dv;
      ctx.strokeStyle = "rgba(0, 220, 255, 0.55)";
      ctx.lineWidth = g.dpr;
      ctx.beginPath();
      ctx.moveTo(x, 0); ctx.lineTo(x, ch); ctx.moveTo(0, y); ctx.lineTo(cw, y);
      ctx.stroke();
    }
    const font = 12 * g.dpr;
    ctx.font = `${font}px sans-serif`;
    ctx.fillStyle = "rgba(255, 210, 0, 0.9)";
    const [left, right, top, bottom] = P.letters;
    ctx.textAlign = "left"; ctx.fillText(left, 4 * g.dpr, ch / 2);
    ctx.textAlign = "right"; ctx.fillText(right, cw - 4 * g.dpr, ch / 2);
    ctx.textAlign = "center"; ctx.fillText(top, cw / 2, font + 2 * g.dpr); ctx.fillText(bottom, cw / 2, ch - 4 * g.dpr);
    ctx.textAlign = "left";
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    // the slice number on the exam's own grid (0-based, as the hover readout and the other pages give it)
    const axis = this.header.ornt.findIndex(([target]) => target === P.fixed);
    const flip = this.header.ornt[axis][1] < 0;
    const n = this.header.shape[P.fixed];
    ctx.fillText(`${view.plane} · slice ${flip ? n - 1 - fixed : fixed} of ${n - 1}`, 4 * g.dpr, ch - 4 * g.dpr);
    view.canvas.dataset.slice = String(fixed);
  }
}

export default function mount(component) {
  const { data, parentElement } = component;
  let viewer = parentElement.__sparViewer;
  if (!viewer) {
    viewer = new Viewer(parentElement);
    parentElement.__sparViewer = viewer;
  }
  if (data) {
    viewer.load(data).catch((err) => {
      viewer.status.textContent = `The viewer could not read this exam: ${err.message}`;
      viewer.root.dataset.error = err.message;
    });
  }
  return () => {
    viewer.destroy();
    delete parentElement.__sparViewer;
  };
}
