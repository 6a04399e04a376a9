// Draw each plot of a result with vega-embed (SVG renderer, no eval, export actions only).
"use strict";
(function () {
  window.fedpsyViews = {};
  for (const figure of document.querySelectorAll("figure.plot")) {
    const holder = figure.querySelector(".vega");
    const spec = JSON.parse(figure.querySelector("script.spec").textContent);
    const name = holder.dataset.plot;
    vegaEmbed(holder, spec, {
      mode: "vega-lite",
      renderer: "svg",
      ast: true,
      downloadFileName: holder.dataset.file,
      actions: { export: true, source: false, compiled: false, editor: false },
    }).then((result) => {
      window.fedpsyViews[name] = result.view;
      holder.dataset.rendered = "true";
    }).catch((err) => {
      holder.textContent = `The plot could not be drawn: ${err}`;
      holder.dataset.rendered = "error";
    });
  }
})();
