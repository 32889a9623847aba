// The proponent's map island: a project's plots as vector tiles from this server (click: the plot's card), and
// an import report's features over them (refused features where they are, conflicts drawn against the plots
// they overlap, the overlap itself). Maps start on load and whenever htmx settles a fragment holding one.
// Without WebGL 2 the notice stays: the tables beside the map hold every fact.
// MapLibre is imported from the content-addressed URL the page gives (cached by the browser across pages).
let maplibregl = null;

const COLOURS = {
  refused: "#c62828", conflict: "#ef6c00", outside_region: "#6a1b9a", warned: "#f9a825",
  existing: "#1565c0", overlap: "#d50000",
  affected: "#f9a825", lost: "#d50000", change_patch: "#6a1b9a",  // a reversal's plot, its lost cover, patches
};

function hasWebGL2() {
  try {
    return Boolean(document.createElement("canvas").getContext("webgl2"));
  } catch {
    return false;
  }
}

function labels() {
  const node = document.getElementById("desk-map-labels");
  return node ? JSON.parse(node.textContent) : {};
}

function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function format(value, places) {
  return Number(value).toLocaleString(document.documentElement.lang, { minimumFractionDigits: places, maximumFractionDigits: places });
}

function reportPopup(feature, words) {
  const p = feature.properties;
  const body = document.createElement("div");
  body.className = "popup";
  body.append(text("strong", `${words[p.role] || p.role} · ${p.title || ""}`));
  const lines = typeof p.lines === "string" ? JSON.parse(p.lines) : (p.lines || []);
  if (p.role === "overlap") {
    lines.unshift(`${words.overlap_area}: ${format(p.overlap_m2, 2)} m² = ${format(p.overlap_mu, 3)} ${words.mu}`,
      `${format(p.percent_new, 2)} % ${words.of_new} · ${format(p.percent_existing, 2)} % ${words.of_existing}`);
  }
  const list = document.createElement("ul");
  for (const line of lines) list.append(text("li", line));
  body.append(list);
  return body;
}

async function start(container) {
  container.dataset.ready = "1";
  maplibregl = maplibregl || await import(container.dataset.module);
  const config = JSON.parse(container.dataset.config);
  const notice = container.querySelector(".map-notice");
  if (!hasWebGL2()) {
    container.dataset.state = "no-webgl";
    return;
  }
  const words = labels();
  const overlay = config.overlay || { type: "FeatureCollection", features: [] };
  const box = config.extent || [73.5, 18, 135, 53.5];
  // The province boundaries (a few MB) are added once the plots are shown: the plots are what this map is for.
  const sources = {
    plots: { type: "vector", tiles: [location.origin + config.tiles], minzoom: 0, maxzoom: 16 },
    report: { type: "geojson", data: overlay },
  };
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#f4f1ea" } }];
  if (config.basemap) {
    sources.basemap = { type: "raster", tiles: [config.basemap.url], tileSize: 256, attribution: config.basemap.attribution };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  const role = ["match", ["get", "role"]];
  for (const [name, hex] of Object.entries(COLOURS)) role.push(name, hex);
  role.push("#455a64");
  layers.push(
    { id: "plots-fill", type: "fill", source: "plots", "source-layer": "plots",
      paint: { "fill-color": "#2e7d32", "fill-opacity": 0.35, "fill-outline-color": "#1b5e20" } },
    // Wide outlines from zoom 12: below it a plot is a few pixels and the fill's own outline draws it.
    { id: "plots-line", type: "line", source: "plots", "source-layer": "plots", minzoom: 12,
      paint: { "line-color": "#1b5e20", "line-width": 1 } },
    { id: "report-fill", type: "fill", source: "report", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "fill-color": role, "fill-opacity": ["match", ["get", "role"], "overlap", 0.75, "lost", 0.75, "existing", 0.25, "affected", 0.1, 0.4] } },
    { id: "report-line", type: "line", source: "report", filter: ["==", ["geometry-type"], "Polygon"],
      paint: { "line-color": role, "line-width": 2, "line-dasharray": ["match", ["get", "role"], "existing", ["literal", [2, 1]], ["literal", [1, 0]]] } },
    { id: "report-lines", type: "line", source: "report", filter: ["==", ["geometry-type"], "LineString"],
      paint: { "line-color": role, "line-width": 3 } },
    { id: "report-points", type: "circle", source: "report", filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 8, "circle-color": role, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } },
  );
  const map = new maplibregl.Map({
    container,
    style: { version: 8, sources, layers },
    bounds: [[box[0], box[1]], [box[2], box[3]]],
    fitBoundsOptions: { padding: 40, maxZoom: 16 },
    attributionControl: false,
    fadeDuration: 0,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  if (notice) notice.hidden = true;
  map.on("error", (event) => { container.dataset.error = String(event.error && event.error.message); });
  const addBoundaries = () => {
    if (map.getSource("provinces")) return;
    container.dataset.plots = "shown";
    map.addSource("provinces", { type: "geojson", data: "/public/v1/regions/boundaries?level=province" });
    map.addLayer({ id: "provinces-fill", type: "fill", source: "provinces", paint: { "fill-color": "#ffffff", "fill-opacity": 0.6 } }, "plots-fill");
    map.addLayer({ id: "provinces-line", type: "line", source: "provinces", paint: { "line-color": "#8d8d8d", "line-width": 0.8 } }, "plots-fill");
    map.once("idle", () => { container.dataset.state = "idle"; });
  };
  map.on("load", () => {
    map.once("idle", addBoundaries);
  });
  const openCard = async (event) => {
    const feature = event.features[0];
    const id = feature.id ?? feature.properties.plot_id;
    const popup = new maplibregl.Popup({ maxWidth: "24rem" }).setLngLat(event.lngLat).setDOMContent(text("p", "…")).addTo(map);
    const answer = await fetch(`${config.card}${encodeURIComponent(id)}/card`, { headers: { "HX-Request": "true" } });
    const holder = document.createElement("div");
    holder.className = "popup plot-card";
    holder.innerHTML = await answer.text();  // this server's escaped template fragment
    popup.setDOMContent(holder);
    container.dataset.card = String(id);
  };
  const showReport = (event) => {
    new maplibregl.Popup({ maxWidth: "26rem" }).setLngLat(event.lngLat).setDOMContent(reportPopup(event.features[0], words)).addTo(map);
  };
  map.on("click", (event) => {
    const report = map.queryRenderedFeatures(event.point, { layers: ["report-points", "report-fill"] });
    if (report.length) {
      showReport({ ...event, features: report });
      return;
    }
    const plots = map.queryRenderedFeatures(event.point, { layers: ["plots-fill"] });
    if (plots.length) openCard({ ...event, features: plots });
  });
  for (const layer of ["plots-fill", "report-fill", "report-points"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  (window.shanhaiMaps = window.shanhaiMaps || []).push(map);  // for the browser tests
}

function startAll() {
  document.querySelectorAll(".desk-map:not([data-ready])").forEach(start);
}

startAll();
document.body.addEventListener("htmx:afterSettle", startAll);
