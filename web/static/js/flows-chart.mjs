// The flows page's Sankey chart (ECharts, SVG renderer): origin county → destination county, width in tonnes.
// ECharts comes from the content-addressed URL the page gives; the tables beside the chart hold every number.
const host = document.getElementById("flows-chart");
const echarts = await import(host.dataset.module);
const data = JSON.parse(document.getElementById("flows-data").textContent);
const chart = echarts.init(host, null, { renderer: "svg" });
chart.setOption({
  animation: false,
  aria: { enabled: true },
  tooltip: { trigger: "item" },
  series: [{
    type: "sankey", left: 10, right: 140, top: 10, bottom: 10, nodeAlign: "justify",
    emphasis: { focus: "adjacency" }, lineStyle: { color: "gradient", opacity: 0.45 },
    label: { fontSize: 12 }, data: data.nodes, links: data.links,
  }],
});
window.addEventListener("resize", () => chart.resize());
host.dataset.state = "drawn";
