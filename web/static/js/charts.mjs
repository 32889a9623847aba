// Registry totals as bar charts (ECharts, SVG renderer: no canvas needed); the tables beside them hold the numbers.
// ECharts is imported from the content-addressed URL the page gives (cached by the browser across pages).
const host = document.getElementById("charts");
const echarts = await import(host.dataset.module);
const data = JSON.parse(document.getElementById("chart-data").textContent);
const labels = JSON.parse(host.dataset.labels);
const SERIES = ["issued_t", "retired_t", "buffer_t"];
const COLOURS = ["#2e7d32", "#6d4c41", "#90a4ae"];

for (const [key, rows] of Object.entries(data)) {
  const names = Object.keys(rows);
  if (names.length === 0) continue;
  const figure = document.createElement("div");
  figure.className = "chart";
  figure.dataset.chart = key;
  host.append(figure);
  const chart = echarts.init(figure, null, { renderer: "svg" });
  chart.setOption({
    animation: false,
    color: COLOURS,
    aria: { enabled: true },
    tooltip: { trigger: "axis" },
    legend: { bottom: 0 },
    grid: { left: 60, right: 10, top: 36, bottom: 56 },
    xAxis: { type: "category", data: names },
    yAxis: { type: "value", name: "t CO₂e" },
    series: SERIES.map((s) => ({ name: labels[s], type: "bar", data: names.map((n) => rows[n][s]) })),
  });
  window.addEventListener("resize", () => chart.resize());
}
host.dataset.state = "drawn";
