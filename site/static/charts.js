/* uisbench site: render every chart from the JSON spec embedded beside it (vendored vega-embed). */
(function () {
  "use strict";
  window.__uisbenchCharts = 0;
  document.querySelectorAll("div.chart[data-spec]").forEach(function (el) {
    var src = document.getElementById(el.getAttribute("data-spec"));
    if (!src || typeof vegaEmbed === "undefined") return;
    var spec = JSON.parse(src.textContent);
    var root = el.getAttribute("data-root") || "";
    /* Point links are site-relative; make them relative to this page. */
    if (spec.datasets && spec.datasets.points) {
      spec.datasets.points.forEach(function (p) { if (p.href) p.href = root + p.href; });
    }
    vegaEmbed(el, spec, {
      renderer: "svg",
      actions: { export: true, source: false, compiled: false, editor: false },
    }).then(function () { window.__uisbenchCharts += 1; })
      .catch(function (err) { el.textContent = "Chart failed to render: " + err; });
  });
})();
