// The map island: generalised project or plot outlines over the province boundaries, all from this server.
// Without WebGL 2 (government VDI desktops, some in-app browsers) the notice stays: the tables hold every fact.
// MapLibre is imported from the content-addressed URL the page gives (cached by the browser across pages).
const container = document.getElementById("map");
const maplibregl = await import(container.dataset.module);
const data = JSON.parse(document.getElementById("map-data").textContent);
const notice = document.getElementById("map-notice");
const COLOURS = { FCT: "#2e7d32", CCA: "#1565c0", ERS: "#ef6c00", OFS: "#00838f" };

function hasWebGL2() {
  try {
    return Boolean(document.createElement("canvas").getContext("webgl2"));
  } catch {
    return false;
  }
}

function bounds(features) {
  let box = null;
  const visit = (c) => {
    if (typeof c[0] === "number") {
      box = box ? [Math.min(box[0], c[0]), Math.min(box[1], c[1]), Math.max(box[2], c[0]), Math.max(box[3], c[1])]
        : [c[0], c[1], c[0], c[1]];
    } else c.forEach(visit);
  };
  features.forEach((f) => f.geometry && visit(f.geometry.coordinates));
  return box;
}

// One point per polygon of a feature (a project's outline is a multipolygon when its plots lie apart).
function centres(feature) {
  const g = feature.geometry;
  if (!g) return [];
  const parts = g.type === "MultiPolygon" ? g.coordinates : [g.coordinates];
  return parts.map((rings) => {
    const b = bounds([{ geometry: { coordinates: rings } }]);
    return { type: "Feature", properties: feature.properties,
      geometry: { type: "Point", coordinates: [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] } };
  });
}

function start() {
  if (!hasWebGL2()) {
    container.dataset.state = "no-webgl";
    return;
  }
  const box = bounds(data.features) || [73.5, 18, 135, 53.5];  // China's extent when nothing is registered yet
  const sources = {
    provinces: { type: "geojson", data: "/public/v1/regions/boundaries?level=province" },
    outlines: { type: "geojson", data: { type: "FeatureCollection", features: data.features } },
    // A dot at each outline's centre: a 2-km box is a speck at province scale.
    centres: { type: "geojson", data: { type: "FeatureCollection", features: data.features.flatMap(centres) } },
  };
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#f4f1ea" } }];
  if (data.basemap) {
    sources.basemap = { type: "raster", tiles: [data.basemap.url], tileSize: 256, attribution: data.basemap.attribution };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  const colour = ["match", ["slice", ["coalesce", ["get", "credit_class"], ""], 0, 3]];
  for (const [code, hex] of Object.entries(COLOURS)) colour.push(code, hex);
  colour.push("#6d4c41");
  layers.push(
    { id: "provinces-fill", type: "fill", source: "provinces", paint: { "fill-color": "#ffffff", "fill-opacity": 0.6 } },
    { id: "provinces-line", type: "line", source: "provinces", paint: { "line-color": "#8d8d8d", "line-width": 0.8 } },
    { id: "outlines-fill", type: "fill", source: "outlines", paint: { "fill-color": colour, "fill-opacity": 0.45 } },
    { id: "outlines-line", type: "line", source: "outlines", paint: { "line-color": colour, "line-width": 1.5 } },
    { id: "centres", type: "circle", source: "centres", maxzoom: 10,
      paint: { "circle-radius": 6, "circle-color": colour, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5 } },
  );
  const map = new maplibregl.Map({
    container,
    style: { version: 8, sources, layers },
    bounds: [[box[0], box[1]], [box[2], box[3]]],
    fitBoundsOptions: { padding: 40, maxZoom: 11 },
    attributionControl: false,
    fadeDuration: 0,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  notice.hidden = true;
  map.on("error", (event) => { container.dataset.error = String(event.error && event.error.message); });
  map.on("load", () => {
    map.once("idle", () => { container.dataset.state = "idle"; });
  });
  const popup = (event) => {
    const p = event.features[0].properties;
    const body = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = `${p.code} ${p.name}`;
    body.append(title);
    if (p.code && p.issued_t !== undefined) {
      const link = document.createElement("a");
      link.href = `/registry/projects/${encodeURIComponent(p.code)}`;
      link.textContent = " →";
      body.append(link);
    }
    new maplibregl.Popup().setLngLat(event.lngLat).setDOMContent(body).addTo(map);
  };
  map.on("click", "outlines-fill", popup);
  map.on("click", "centres", popup);
  window.shanhaiMap = map;  // for the browser tests (query rendered features)
}

start();
