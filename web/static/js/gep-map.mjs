// The GEP explorer's map island: the run's regions coloured by GEP (a choropleth from this server's GeoJSON),
// an indicator's value raster over them as PNG tiles rendered from the run's COGs (or, comparing two runs, the
// change per pixel), a legend in the raster's unit, an opacity slider, and a click that reads the pixel's value
// from the COG itself (/gep/runs/{id}/rasters/{indicator}/value). Without WebGL 2 the notice stays: the tables
// beside the map hold every fact.
let maplibregl = null;

function hasWebGL2() {
  try {
    return Boolean(document.createElement("canvas").getContext("webgl2"));
  } catch {
    return false;
  }
}

function format(value, places) {
  return Number(value).toLocaleString(document.documentElement.lang, { minimumFractionDigits: places, maximumFractionDigits: places });
}

function text(tag, content) {
  const node = document.createElement(tag);
  node.textContent = content;
  return node;
}

function drawLegend(layer) {
  const legend = document.getElementById("legend");
  if (!layer) {
    legend.hidden = true;
    return;
  }
  const canvas = document.getElementById("legend-bar");
  const context = canvas.getContext("2d");
  const gradient = context.createLinearGradient(0, 0, canvas.width, 0);
  layer.colours.forEach((colour, i) => gradient.addColorStop(i / (layer.colours.length - 1), colour));
  context.fillStyle = gradient;
  context.fillRect(0, 0, canvas.width, canvas.height);
  document.getElementById("legend-title").textContent = layer.name;
  document.getElementById("legend-low").textContent = format(layer.low, 2);
  document.getElementById("legend-high").textContent = format(layer.high, 2);
  legend.hidden = false;
}

async function start(container) {
  container.dataset.ready = "1";
  maplibregl = maplibregl || await import(container.dataset.module);
  const config = JSON.parse(container.dataset.config);
  if (!hasWebGL2()) {
    container.dataset.state = "no-webgl";
    return;
  }
  const words = document.getElementById("gep-map-labels").dataset;
  const regions = await (await fetch(config.regions)).json();
  const values = regions.features.map((f) => f.properties.gep).filter((v) => v !== null);
  const low = Math.min(...values);
  const high = Math.max(...values) > low ? Math.max(...values) : low + 1;
  const box = config.layers.length ? config.layers[0].bounds : [105.5, 35, 106.9, 36.5];
  const sources = { regions: { type: "geojson", data: regions } };
  const layers = [
    { id: "background", type: "background", paint: { "background-color": "#f4f1ea" } },
    { id: "regions-fill", type: "fill", source: "regions",
      paint: { "fill-color": ["interpolate", ["linear"], ["coalesce", ["get", "gep"], low], low, "#e8f5e9", high, "#1b5e20"], "fill-opacity": 0.7 } },
    { id: "regions-line", type: "line", source: "regions", paint: { "line-color": "#37474f", "line-width": 1.2 } },
  ];
  for (const layer of config.layers) {
    sources[`raster-${layer.code}`] = { type: "raster", tiles: [location.origin + layer.tiles], tileSize: 256,
      bounds: layer.bounds, maxzoom: layer.maxzoom };
    layers.push({ id: `raster-${layer.code}`, type: "raster", source: `raster-${layer.code}`,
      layout: { visibility: "none" }, paint: { "raster-opacity": 0.8, "raster-resampling": "nearest", "raster-fade-duration": 0 } });
  }
  const map = new maplibregl.Map({
    container,
    style: { version: 8, sources, layers },
    bounds: [[box[0], box[1]], [box[2], box[3]]],
    fitBoundsOptions: { padding: 30 },
    attributionControl: false,
    fadeDuration: 0,
  });
  (window.shanhaiMaps = window.shanhaiMaps || []).push(map);
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  container.querySelector(".map-notice").hidden = true;
  map.on("error", (event) => { container.dataset.error = String(event.error && event.error.message); });
  let shown = null;
  const select = document.getElementById("layer-select");
  const opacity = document.getElementById("opacity");
  const show = (code) => {
    container.dataset.state = "loading";
    for (const layer of config.layers) map.setLayoutProperty(`raster-${layer.code}`, "visibility", layer.code === code ? "visible" : "none");
    shown = config.layers.find((layer) => layer.code === code) || null;
    container.dataset.layer = code || "";
    drawLegend(shown);
    map.once("idle", () => { container.dataset.state = "idle"; });
    map.triggerRepaint();
  };
  select.addEventListener("change", () => show(select.value));
  opacity.addEventListener("input", () => {
    for (const layer of config.layers) map.setPaintProperty(`raster-${layer.code}`, "raster-opacity", Number(opacity.value) / 100);
  });
  map.on("click", async (event) => {
    const { lng, lat } = event.lngLat;
    const body = document.createElement("div");
    body.className = "popup";
    const feature = map.queryRenderedFeatures(event.point, { layers: ["regions-fill"] })[0];
    if (feature) body.append(text("p", `${feature.properties.name} · ${words.gep}: ${format(feature.properties.gep_yuan, 2)} ${words.yuan}`));
    const popup = new maplibregl.Popup({ maxWidth: "22rem" }).setLngLat(event.lngLat).setDOMContent(body).addTo(map);
    if (shown) {
      const run = config.run;
      const answer = await (await fetch(`/gep/runs/${run}/rasters/${shown.code}/value?lon=${lng}&lat=${lat}`)).json();
      const line = text("p", answer.value === null ? `${shown.name}: ${words.none}`
        : `${shown.name} · ${words.value}: ${format(answer.value, 4)} ${words.yuan}`);
      line.dataset.value = answer.value === null ? "" : answer.value;
      line.className = "pixel-value";
      body.append(line);
      popup.setDOMContent(body);
    }
    container.dataset.clicked = "1";
  });
  map.on("load", () => {
    const first = config.layers.length ? config.layers[0].code : "";
    select.value = first;
    show(first);
  });
}

for (const container of document.querySelectorAll(".gep-map:not([data-ready])")) start(container);
