// The market screen's island: book, depth, last trades and daily candles of one instrument, live.
// Reads the public market-data JSON, then follows its Server-Sent Events stream (ADR 014): a "snapshot" of the
// book, then one "update" per committed journal seq. EventSource reconnects by itself and sends Last-Event-ID,
// so the stream resumes after the last seq seen — no polling. Each update is announced to the page as a
// "market-update" event on <body>, which the trader's own fragment (htmx) follows.
const host = document.getElementById("market");
const config = JSON.parse(host.dataset.config);
const label = (name) => host.dataset[`label${name}`];
const tonnes = new Intl.NumberFormat(host.dataset.locale);
const clock = new Intl.DateTimeFormat(host.dataset.locale, {
  timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const MAX_TRADES = 30;
const state = { book: { bids: [], asks: [] }, trades: [], seq: null, seen: new Map() };
// For the tests and the benchmark: when (Date.now()) each trade id reached this page.
window.shanhaiMarket = state;

const echarts = await import(config.echarts);
const depthChart = echarts.init(document.getElementById("depth-chart"), null, { renderer: "svg" });
const candleChart = echarts.init(document.getElementById("candle-chart"), null, { renderer: "svg" });
window.addEventListener("resize", () => { depthChart.resize(); candleChart.resize(); });

async function json(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

function cell(text, numeric = true) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  return td;
}

function drawBook() {
  const { bids, asks } = state.book;
  const rows = [];
  for (let i = 0; i < Math.max(bids.length, asks.length, 1); i += 1) {
    const tr = document.createElement("tr");
    const bid = bids[i];
    const ask = asks[i];
    if (!bid && !ask) {
      const td = cell(label("Empty"), false);
      td.colSpan = 6;
      tr.append(td);
    } else {
      tr.append(cell(bid ? bid.orders : ""), cell(bid ? tonnes.format(bid.quantity_t) : ""),
        cell(bid ? bid.price_cny : ""), cell(ask ? ask.price_cny : ""),
        cell(ask ? tonnes.format(ask.quantity_t) : ""), cell(ask ? ask.orders : ""));
      if (bid) tr.cells[2].classList.add("bid");
      if (ask) tr.cells[3].classList.add("ask");
    }
    rows.push(tr);
  }
  document.getElementById("book-rows").replaceChildren(...rows);
  const cumulative = (levels) => { // from 0 t at the best price outwards, so one level still draws a step
    let total = 0;
    const points = levels.map((l) => { total += l.quantity_t; return [Number(l.price_cny), total]; });
    return levels.length ? [[Number(levels[0].price_cny), 0], ...points] : [];
  };
  depthChart.setOption({
    animation: false,
    aria: { enabled: true },
    grid: { left: 56, right: 16, top: 28, bottom: 40 },
    legend: { top: 0 },
    tooltip: { trigger: "axis", renderMode: "richText" }, // no HTML tooltip: its inline styles break the CSP
    xAxis: { type: "value", scale: true, name: label("Price") , nameLocation: "middle", nameGap: 26 },
    yAxis: { type: "value", name: "t" },
    series: [
      { name: label("Bids"), type: "line", step: "end", areaStyle: {}, color: "#2e7d32", symbol: "none",
        data: cumulative(bids).reverse() },
      { name: label("Asks"), type: "line", step: "start", areaStyle: {}, color: "#b71c1c", symbol: "none",
        data: cumulative(asks) },
    ],
  }, true);
}

function drawTrades() {
  const rows = state.trades.slice(0, MAX_TRADES).map((t) => {
    const tr = document.createElement("tr");
    tr.dataset.trade = t.trade_id;
    tr.append(cell(clock.format(new Date(t.at)), false), cell(t.price_cny), cell(tonnes.format(t.quantity_t)));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(label("NoTrades"), false);
    td.colSpan = 3;
    tr.append(td);
    rows.push(tr);
  }
  document.getElementById("trade-rows").replaceChildren(...rows);
  const last = state.trades.find((t) => t.mode === "book");
  if (last) document.getElementById("last-price").textContent = last.price_cny;
}

async function drawCandles() {
  const { bars } = await json(config.bars);
  candleChart.setOption({
    animation: false,
    aria: { enabled: true },
    tooltip: { trigger: "axis", renderMode: "richText" }, // no HTML tooltip: its inline styles break the CSP
    grid: [{ left: 56, right: 16, top: 16, height: "55%" }, { left: 56, right: 16, top: "75%", height: "15%" }],
    xAxis: [{ type: "category", data: bars.map((b) => b.date) },
      { type: "category", gridIndex: 1, data: bars.map((b) => b.date), axisLabel: { show: false } }],
    yAxis: [{ type: "value", scale: true, name: label("Price") }, { type: "value", gridIndex: 1, name: "t" }],
    series: [
      { type: "candlestick", name: label("Price"), barMaxWidth: 24, itemStyle: { color: "#b71c1c", color0: "#2e7d32",
        borderColor: "#b71c1c", borderColor0: "#2e7d32" },
        data: bars.map((b) => [b.open_cny, b.close_cny, b.low_cny, b.high_cny].map(Number)) },
      { type: "bar", name: label("Volume"), xAxisIndex: 1, yAxisIndex: 1, color: "#90a4ae",
        barMaxWidth: 24, data: bars.map((b) => b.volume_t) },
    ],
  }, true);
}

let candlesPending = false;
function refreshCandles() { // at most one bars request in flight, after a trade
  if (candlesPending) return;
  candlesPending = true;
  drawCandles().finally(() => { candlesPending = false; });
}

const volume = document.getElementById("volume-today");
function addTrades(trades, live = false) {
  const now = Date.now();
  for (const t of trades) {
    if (state.seen.has(t.trade_id)) continue;
    state.seen.set(t.trade_id, now);
    state.trades.unshift(t);
    if (live && t.mode === "book") { // the page's day is the trade's day: the stream sends only new trades
      volume.dataset.volume = String(Number(volume.dataset.volume) + t.quantity_t);
      volume.textContent = tonnes.format(Number(volume.dataset.volume));
    }
  }
  state.trades.sort((a, b) => b.trade_id - a.trade_id);
  state.trades.length = Math.min(state.trades.length, MAX_TRADES);
}

function setLive(live) {
  host.dataset.state = live ? "live" : "reconnecting";
  document.getElementById("live-state").textContent = label(live ? "Live" : "Reconnecting");
}

const [book, trades] = await Promise.all([json(config.book), json(config.trades)]);
state.book = book;
addTrades(trades.items);
for (const id of state.seen.keys()) state.seen.set(id, 0); // already there when the page opened
drawBook();
drawTrades();
await drawCandles();

// From the book's seq on: every trade after the trades read above arrives as an update.
const stream = new EventSource(`${config.stream}&after_seq=${book.seq}`);
stream.addEventListener("open", () => setLive(true));
stream.addEventListener("error", () => setLive(false));
stream.addEventListener("snapshot", (event) => {
  const message = JSON.parse(event.data);
  state.seq = message.seq;
  state.book = message.book;
  drawBook();
  setLive(true);
});
stream.addEventListener("update", (event) => {
  const message = JSON.parse(event.data);
  state.seq = message.seq;
  if (message.book) { state.book = message.book; drawBook(); }
  if (message.trades.length) { addTrades(message.trades, true); drawTrades(); refreshCandles(); }
  host.dataset.seq = String(message.seq);
  document.body.dispatchEvent(new CustomEvent("market-update", { detail: { seq: message.seq } }));
});
