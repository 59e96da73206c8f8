/* The dashboard: reads the public HTTP API (docs/http-api.md) with the key the
 * user entered, kept in sessionStorage for this browser session only.
 *
 * Every read carries the same as_of (none: live), so every figure on screen
 * is of one ledger position; each panel cites the position and chain hash its
 * answer reflects. Live: every POLL_MS the page asks the centre's activity
 * read again with If-None-Match; a 304 costs the server a cached read and
 * means nothing new was projected, a 200 means the position moved, and the
 * page reads everything again. */
"use strict";

const KEY_STORE = "ledger.dashboard.key";
const POLL_MS = 3000;
const LEADERS = 10;
const LEVELS = { centre: "中心", institute: "所", station: "站", point: "点", base: "基地" };
const PLATFORMS = {
  theory: "理论宣讲",
  education: "教育服务",
  culture: "文化服务",
  science: "科技科普",
  health: "健康促进与体育",
  other: "其他（X）",
};
const FONT = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif';
const COLOURS = ["#e8483b", "#f5c451", "#4aa3ff", "#3ecf8e", "#b38cff", "#ff9f5a"];

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  centres: [],
  trail: [], // the venues from the centre down to the one shown
  asOf: null, // null: live; otherwise the as_of text sent with every read
  head: 0, // the latest position the live reads reflect
  etag: null,
  loading: null,
};
const charts = {};
const $ = (selector) => document.querySelector(selector);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/* --- formatting ------------------------------------------------------ */

const count = (n) => n.toLocaleString("zh-CN");
// One decimal, the shortest decimal form of the number rounded half up.
const tenths = (n) =>
  n.toLocaleString("zh-CN", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const hours = (minutes) => tenths(minutes / 60);
const percent = (share) => (share === null ? "—" : `${tenths(share * 100)}%`);
const shortHash = (hash) => hash.slice(0, 12);
// Where an answer stands, and the events its projection parked, if any.
const cite = (answer) =>
  `位置 #${count(answer.position)} · 链哈希 ${shortHash(answer.chain_hash)}…` +
  (answer.dead_letters ? ` · 搁置事件 ${count(answer.dead_letters)} 个` : "");

/* --- the API ----------------------------------------------------------- */

async function api(path, params = {}, headers = {}) {
  const query = new URLSearchParams(params);
  if (state.asOf !== null && !("as_of" in params)) query.set("as_of", state.asOf);
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, {
    headers: { Authorization: `Bearer ${state.key}`, ...headers },
    cache: "no-store",
  });
  if (response.status === 304) return { notModified: true, etag: response.headers.get("ETag") };
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body.detail || body.title || "");
  return { body, etag: response.headers.get("ETag") };
}

const read = async (path, params) => (await api(path, params)).body;

/* --- the key ----------------------------------------------------------- */

function askForKey(message) {
  $("#key-error").textContent = message || "";
  const dialog = $("#key-dialog");
  if (!dialog.open) dialog.showModal();
}

$("#key-form").addEventListener("submit", () => {
  state.key = $("#key-input").value.trim();
  sessionStorage.setItem(KEY_STORE, state.key);
  $("#key-input").value = "";
  start();
});
$("#change-key").addEventListener("click", () => askForKey());

function explain(error) {
  if (error.status === 401) return "密钥无效，请重新输入。";
  if (error.status === 404) return "该时点的账本中还没有此阵地，请选择更晚的时点。";
  if (error.status === 403) return "此密钥无权读取全市数据（需 dashboard、auditor 或 dispatcher 角色）。";
  return `读取失败：${error.message}`;
}

/* --- reading everything -------------------------------------------------- */

async function start() {
  if (!state.key) return askForKey();
  try {
    const centres = await read("/venues", { as_of: "" });
    state.centres = centres.children;
    if (state.centres.length === 0) {
      $("#as-of-note").textContent = "账本中还没有中心（请先登记阵地并运行 ledger project）";
      return;
    }
    if (state.trail.length === 0) state.trail = [state.centres[0]];
    await refresh();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      askForKey(explain(error));
    } else {
      $("#as-of-note").textContent = explain(error);
    }
  }
}

/* Read every panel's answer as of the chosen position, then draw them. */
async function refresh() {
  const venue = state.trail[state.trail.length - 1];
  const id = encodeURIComponent(venue.venue_id);
  const [activity, fulfilment, children, board] = await Promise.all([
    read(`/venues/${id}/activity`),
    read(`/venues/${id}/fulfilment`),
    read(`/venues/${id}/children`),
    read("/leaderboards/hours", { limit: LEADERS }),
  ]);
  const childFigures = await Promise.all(
    children.children.map((child) =>
      read(`/venues/${encodeURIComponent(child.venue_id)}/activity`),
    ),
  );
  if (state.asOf === null) state.head = Math.max(state.head, activity.position);
  drawTrail();
  drawFigures(activity, fulfilment);
  drawMonths(activity, fulfilment);
  drawPlatforms(activity);
  drawChildren(children, childFigures);
  drawStars(board);
  drawLeaders(board);
  drawAsOf(activity);
  $("#updated").textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}`;
  // Set last: a test that waits for them finds every panel drawn.
  document.body.dataset.venue = venue.venue_id;
  document.body.dataset.position = String(activity.position);
}

function reload() {
  // One refresh at a time; a click during one waits for it.
  state.loading = (state.loading || Promise.resolve())
    .then(refresh)
    .catch((error) => {
      $("#as-of-note").textContent = explain(error);
    });
  return state.loading;
}

/* --- drawing --------------------------------------------------------------- */

function drawTrail() {
  const trail = $("#trail");
  trail.replaceChildren();
  state.trail.forEach((venue, index) => {
    if (index > 0) trail.append(Object.assign(document.createElement("span"), { className: "sep", textContent: "›" }));
    if (index === 0 && state.centres.length > 1) {
      const select = document.createElement("select");
      for (const centre of state.centres) {
        select.append(new Option(centre.name, centre.venue_id, false, centre.venue_id === venue.venue_id));
      }
      select.addEventListener("change", () => {
        state.trail = [state.centres.find((c) => c.venue_id === select.value)];
        reload();
      });
      trail.append(select);
      return;
    }
    const link = document.createElement("a");
    link.textContent = `${venue.name}（${LEVELS[venue.level] || venue.level}）`;
    link.dataset.venue = venue.venue_id;
    link.addEventListener("click", () => {
      state.trail = state.trail.slice(0, index + 1);
      reload();
    });
    trail.append(link);
  });
}

function show(name, text) {
  $(`[data-figure="${name}"]`).textContent = text;
}

function drawFigures(activity, fulfilment) {
  show("activities", count(activity.activities));
  show("sessions", count(activity.sessions));
  show("volunteers", count(activity.volunteers));
  show("hours", hours(activity.volunteer_minutes));
  show("rate", percent(fulfilment.rate));
  show(
    "rate-counts",
    `已销单 ${count(fulfilment.fulfilled)} / 有效点单 ${count(fulfilment.posted - fulfilment.withdrawn)}`,
  );
  show("satisfaction", percent(fulfilment.satisfaction));
  show("ratings", `${count(fulfilment.ratings)} 条评价`);
  $('[data-cite="figures"]').textContent =
    `活动 ${cite(activity)}　|　点单 ${cite(fulfilment)}`;
}

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
  return charts[id];
}

const axisText = { color: "#8fa6c8", fontFamily: FONT };
const base = {
  textStyle: { fontFamily: FONT, color: "#e8eef8" },
  color: COLOURS,
  grid: { left: 48, right: 48, top: 40, bottom: 28 },
  tooltip: { trigger: "axis" },
  legend: { top: 4, textStyle: { color: "#e8eef8", fontFamily: FONT } },
  animation: false,
};
const valueAxis = (name) => ({
  type: "value",
  name,
  nameTextStyle: axisText,
  axisLabel: axisText,
  splitLine: { lineStyle: { color: "#1c3a66" } },
});
const monthLabel = (month) => `${Number(month.slice(5))}月`;

function drawMonths(activity, fulfilment) {
  const months = Object.keys(activity.by_month).sort();
  chart("chart-months").setOption(
    {
      ...base,
      xAxis: { type: "category", data: months.map(monthLabel), axisLabel: axisText },
      yAxis: [valueAxis("次"), valueAxis("小时")],
      series: [
        { name: "活动", type: "bar", data: months.map((m) => activity.by_month[m].activities) },
        { name: "人次", type: "bar", data: months.map((m) => activity.by_month[m].sessions) },
        {
          name: "时长(小时)",
          type: "line",
          yAxisIndex: 1,
          data: months.map((m) => Math.round(activity.by_month[m].volunteer_minutes / 60)),
        },
      ],
    },
    true,
  );
  const orderMonths = Object.keys(fulfilment.by_month).sort();
  const rate = (m) => fulfilment.by_month[m].rate;
  chart("chart-orders").setOption(
    {
      ...base,
      xAxis: { type: "category", data: orderMonths.map(monthLabel), axisLabel: axisText },
      yAxis: [valueAxis("单"), { ...valueAxis("实现率%"), max: 100 }],
      series: [
        { name: "点单", type: "bar", data: orderMonths.map((m) => fulfilment.by_month[m].posted) },
        { name: "销单", type: "bar", data: orderMonths.map((m) => fulfilment.by_month[m].fulfilled) },
        {
          name: "实现率",
          type: "line",
          yAxisIndex: 1,
          data: orderMonths.map((m) => (rate(m) === null ? null : Math.round(rate(m) * 1000) / 10)),
        },
      ],
    },
    true,
  );
}

function drawPlatforms(activity) {
  const data = Object.keys(PLATFORMS)
    .filter((category) => activity.by_category[category])
    .map((category) => ({
      name: PLATFORMS[category],
      value: Math.round(activity.by_category[category].volunteer_minutes / 6) / 10,
    }));
  chart("chart-platforms").setOption(
    {
      ...base,
      tooltip: { trigger: "item", formatter: "{b}：{c} 小时（{d}%）" },
      legend: { ...base.legend, orient: "vertical", left: 0, top: "middle" },
      series: [
        {
          type: "pie",
          radius: ["35%", "68%"],
          center: ["64%", "52%"],
          label: { formatter: "{d}%", color: "#e8eef8", fontFamily: FONT },
          data,
        },
      ],
    },
    true,
  );
}

function cell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

function drawChildren(children, figures) {
  const body = $("#children tbody");
  body.replaceChildren();
  children.children.forEach((child, index) => {
    const row = document.createElement("tr");
    row.dataset.venue = child.venue_id;
    const name = document.createElement("td");
    const link = Object.assign(document.createElement("a"), { textContent: child.name });
    link.addEventListener("click", () => {
      state.trail = [...state.trail, child];
      reload();
    });
    name.append(link);
    const own = figures[index];
    row.append(
      name,
      cell(LEVELS[child.level] || child.level),
      cell(count(own.activities)),
      cell(count(own.sessions)),
      cell(hours(own.volunteer_minutes)),
    );
    body.append(row);
  });
  if (children.children.length === 0) {
    const row = document.createElement("tr");
    const empty = cell("此阵地下没有下级阵地");
    empty.colSpan = 5;
    row.append(empty);
    body.append(row);
  }
  $('[data-cite="children"]').textContent = cite(children);
}

function drawStars(board) {
  const levels = ["1", "2", "3", "4", "5"];
  chart("chart-stars").setOption(
    {
      ...base,
      legend: { show: false },
      xAxis: { type: "category", data: levels.map((l) => `${l}星`), axisLabel: axisText },
      yAxis: valueAxis("人"),
      series: [
        {
          name: "志愿者",
          type: "bar",
          data: levels.map((l) => board.volunteers_by_stars[l]),
          label: { show: true, position: "top", color: "#f5c451" },
          itemStyle: { color: "#f5c451" },
        },
      ],
    },
    true,
  );
  $('[data-cite="leaderboard"]').textContent =
    `有服务记录 ${count(board.volunteers_with_service)} 人 · ${cite(board)}`;
}

function drawLeaders(board) {
  const body = $("#leaders tbody");
  body.replaceChildren();
  board.leaders.forEach((leader, index) => {
    const row = document.createElement("tr");
    const stars = Object.assign(cell("★".repeat(leader.stars) || "—"), { className: "stars" });
    row.append(
      cell(String(index + 1)),
      cell(leader.volunteer_id),
      stars,
      cell(hours(leader.total_minutes)),
      cell(count(leader.sessions)),
    );
    body.append(row);
  });
}

/* --- as of ----------------------------------------------------------------- */

function drawAsOf(activity) {
  const range = $("#as-of-range");
  range.max = String(state.head);
  range.value = String(activity.position);
  $("#as-of-position").value = String(activity.position);
  const mode = $("#mode");
  mode.dataset.mode = state.asOf === null ? "live" : "past";
  mode.textContent = state.asOf === null ? "实时" : `历史 · 位置 #${count(activity.position)}`;
  $("#as-of-note").textContent =
    state.asOf === null
      ? `最新位置 #${count(state.head)}`
      : `显示账本在位置 #${count(activity.position)} 时所知（最新 #${count(state.head)}）`;
}

function showAsOf(asOf) {
  state.asOf = asOf;
  reload();
}

$("#as-of-range").addEventListener("change", (event) => showAsOf(event.target.value));
$("#as-of-position").addEventListener("change", (event) => {
  if (event.target.value !== "") showAsOf(String(Math.max(0, Math.floor(event.target.value))));
});
$("#as-of-apply-time").addEventListener("click", () => {
  const text = $("#as-of-time").value;
  if (text) showAsOf(withOffset(new Date(text)));
});
$("#as-of-live").addEventListener("click", () => showAsOf(null));

/* A local time as ISO 8601 with the browser's UTC offset, as as_of needs. */
function withOffset(moment) {
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const offset = -moment.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return (
    `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
    `T${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}` +
    `${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`
  );
}

/* --- live -------------------------------------------------------------------- */

async function poll() {
  if (!state.key || state.trail.length === 0) return;
  const centre = encodeURIComponent(state.trail[0].venue_id);
  try {
    const headers = state.etag ? { "If-None-Match": state.etag } : {};
    const answer = await api(`/venues/${centre}/activity`, { as_of: "" }, headers);
    if (answer.notModified) return;
    state.etag = answer.etag;
    if (answer.body.position === state.head) return;
    state.head = Math.max(state.head, answer.body.position);
    if (state.asOf === null) await reload();
    else $("#as-of-range").max = String(state.head);
  } catch (error) {
    $("#as-of-note").textContent = explain(error);
  }
}

/* --- verification ------------------------------------------------------------- */

const VERIFY_STORE = "ledger.dashboard.verify";

function drawVerify(result) {
  const element = $("#verify-result");
  if (!result) return;
  element.dataset.verify = result.outcome;
  element.textContent = result.text;
}

$("#verify-run").addEventListener("click", async () => {
  drawVerify({ outcome: "running", text: "校验中……" });
  let result;
  try {
    const answer = await read("/audit/verify", { as_of: "" });
    const at = new Date().toLocaleString("zh-CN", { hour12: false });
    result = {
      outcome: answer.ok ? "ok" : "failed",
      text:
        `${answer.ok ? "通过" : "未通过"} · ${at} · 位置 #${count(answer.position)} · ` +
        `链哈希 ${shortHash(answer.chain_hash)}… · 核对 ${count(answer.events_checked)} 个事件`,
    };
  } catch (error) {
    const text = error.status === 403 ? "校验需审计员（auditor）密钥" : explain(error);
    result = { outcome: "refused", text };
  }
  sessionStorage.setItem(VERIFY_STORE, JSON.stringify(result));
  drawVerify(result);
});

drawVerify(JSON.parse(sessionStorage.getItem(VERIFY_STORE) || "null"));
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
start();
setInterval(poll, POLL_MS);
