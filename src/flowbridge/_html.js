// The HTML report's script (see _html.py): colour by, zoom and pan, pick a task, filter.
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message)); document.body.dataset.errors = errors.join("; "); });
  var data = JSON.parse(document.getElementById("fb-data").textContent);
  var bars = Array.prototype.slice.call(document.querySelectorAll("svg.timeline rect.bar"));
  var runs = Array.prototype.slice.call(document.querySelectorAll("svg.timeline rect.run"));
  var nodes = Array.prototype.slice.call(document.querySelectorAll("svg.graph g.node"));
  var left = data.left, width = data.width;
  // colour by state or backend
  function colour(by) {
    bars.forEach(function (b) { b.setAttribute("fill", by === "backend" ? b.dataset.bc : b.dataset.sc); });
    document.querySelectorAll(".legend").forEach(function (l) { l.hidden = l.dataset.by !== by; });
  }
  var select = document.getElementById("colour-by");
  if (select) { select.addEventListener("change", function () { colour(select.value); }); }
  // zoom and pan on the time axis: x -> left + (x - left - shift) * scale
  document.querySelectorAll("svg.timeline").forEach(function (svg) {
    var rects = Array.prototype.slice.call(svg.querySelectorAll("rect.bar, rect.run"));
    rects.forEach(function (r) { r.dataset.x = r.getAttribute("x"); r.dataset.w = r.getAttribute("width"); });
    var ticks = Array.prototype.slice.call(svg.querySelectorAll("text.tick"));
    var scale = 1, shift = 0, dragging = null;
    function draw() {
      rects.forEach(function (r) {
        var x = left + (parseFloat(r.dataset.x) - left - shift) * scale;
        r.setAttribute("x", x.toFixed(1));
        r.setAttribute("width", Math.max(1, parseFloat(r.dataset.w) * scale).toFixed(1));
        r.style.display = (x > left + width || x + parseFloat(r.dataset.w) * scale < left) ? "none" : "";
      });
      ticks.forEach(function (t) {
        var frac = (parseFloat(t.dataset.frac) * width / scale + shift) / width;
        t.textContent = (frac * data.span).toPrecision(3) + " s";
      });
    }
    svg.addEventListener("wheel", function (e) {
      e.preventDefault();
      var pt = e.offsetX - left, at = pt / scale + shift;
      scale = Math.min(1e4, Math.max(1, scale * (e.deltaY < 0 ? 1.25 : 0.8)));
      shift = Math.max(0, Math.min(width - width / scale, at - pt / scale));
      draw();
    }, { passive: false });
    svg.addEventListener("mousedown", function (e) { dragging = { x: e.clientX, shift: shift }; });
    window.addEventListener("mouseup", function () { dragging = null; });
    window.addEventListener("mousemove", function (e) {
      if (!dragging) { return; }
      shift = Math.max(0, Math.min(width - width / scale, dragging.shift - (e.clientX - dragging.x) / scale));
      draw();
    });
    svg.addEventListener("dblclick", function () { scale = 1; shift = 0; draw(); });
  });
  // pick a task: it, what it waited for and what waited for it
  var dependents = {};
  Object.keys(data.deps).forEach(function (uid) {
    data.deps[uid].forEach(function (up) { (dependents[up] = dependents[up] || []).push(uid); });
  });
  var details = document.getElementById("details");
  function pick(uid) {
    var keep = {};
    if (uid) { keep[uid] = 1; (data.deps[uid] || []).forEach(function (u) { keep[u] = 1; }); (dependents[uid] || []).forEach(function (u) { keep[u] = 1; }); }
    bars.concat(runs).forEach(function (b) { b.classList.toggle("dim", !!uid && !keep[b.dataset.uid]); b.classList.toggle("picked", b.dataset.uid === uid); });
    nodes.forEach(function (n) { n.classList.toggle("dim", !!uid && !keep[n.dataset.uid]); n.classList.toggle("picked", n.dataset.uid === uid); });
    if (details) { details.textContent = uid ? (data.info[uid] || uid) : "Click a bar or a node to see a task, what it waited for and what waited for it."; }
  }
  bars.concat(runs).concat(nodes).forEach(function (el) {
    el.addEventListener("click", function (e) { e.stopPropagation(); pick(el.dataset.uid); });
  });
  document.body.addEventListener("click", function (e) { if (!e.target.closest || !e.target.closest("select,input")) { pick(null); } });
  // filter by name
  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase();
      bars.concat(runs).forEach(function (b) { b.classList.toggle("dim", !!q && b.dataset.name.toLowerCase().indexOf(q) < 0); });
    });
  }
  pick(null);
  document.body.dataset.bars = String(bars.length);
  document.body.dataset.nodes = String(nodes.length);
  document.body.dataset.ready = "1";
})();
