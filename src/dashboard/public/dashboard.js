// @ts-check
// The dashboard: two uPlot charts and summary tiles over a window, kept live by the service's
// subscriptions (GraphQL over SSE, one connection for all of them). ES modules, type-checked by
// tsc (src/dashboard/public/tsconfig.json); no framework, nothing from outside the service.

import { bucketFor, cssColor, element, formatted, utcText } from './page.js';

/**
 * @typedef {{ min: number, max: number, avg: number }} Statistics
 * @typedef {{ start: string, count: number, cpuLoad: Statistics, concurrency: Statistics }} Bucket
 * @typedef {{ count: number, cpuLoad: { p50: number | null, p95: number | null, p99: number | null },
 *   concurrency: { p95: number | null } }} Summary
 * @typedef {{ start: string, end: string, bucket: number, buckets: Bucket[] }} Series
 * @typedef {{ kind: 'live', seconds: number } | { kind: 'range', from: Date, to: Date }} TimeWindow
 */

const HEALTH_INTERVAL_MS = 5000;
/** Where the read token (READ_TOKEN) the user entered is kept: for this tab's session only. */
const TOKEN_KEY = 'metrics-api-read-token';

const SERIES_FIELDS = 'start count cpuLoad { min max avg } concurrency { min max avg }';
const SUMMARY_FIELDS = 'count cpuLoad { p50 p95 p99 } concurrency { p95 }';

const windowSelect = /** @type {HTMLSelectElement} */ (element('window'));
const controls = /** @type {HTMLFormElement} */ (element('controls'));
const customRange = element('custom');
const fromInput = /** @type {HTMLInputElement} */ (element('from'));
const toInput = /** @type {HTMLInputElement} */ (element('to'));
const modeOutput = element('mode');
const statusLine = element('status');
const emptyLine = element('empty');
const themeButton = element('theme');
const tokenForm = /** @type {HTMLFormElement} */ (element('token-form'));
const tokenInput = /** @type {HTMLInputElement} */ (element('token'));
const tokenMessage = element('token-message');

/** A read the server refused for want of a valid read token: the token form says so. */
class Unauthorized extends Error {}

/**
 * fetch with the read token, when the user gave one; a 401 stops the live view and asks for one.
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 */
async function authorizedFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(input, { ...init, headers });
  if (response.status === 401) askForToken(token !== null);
  return response;
}

/** @type {TimeWindow} */
let current = { kind: 'live', seconds: Number(windowSelect.value) };
/** @type {(() => void)[]} */
let unsubscribers = [];
/** @type {Series | undefined} */
let lastSeries;
let outage = false;

const client = graphqlSse.createClient({
  singleConnection: true,
  url: '/graphql/stream',
  fetchFn: authorizedFetch,
  // The service may be restarting: keep trying, the health check tells the user meanwhile.
  retryAttempts: Number.POSITIVE_INFINITY,
  retry: () => new Promise((resolve) => setTimeout(resolve, 2000)),
});

// ---- Theme ----

/** @returns {'dark' | 'light'} */
function preferredTheme() {
  const stored = localStorage.getItem('metrics-api-theme');
  if (stored === 'dark' || stored === 'light') return stored;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** @param {'dark' | 'light'} theme */
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  themeButton.setAttribute('aria-pressed', String(theme === 'dark'));
  themeButton.textContent = theme === 'dark' ? 'Light theme' : 'Dark theme';
}

// ---- Charts ----

/** A time on the x axis (epoch seconds) as UTC, for the legend: the range is chosen in UTC too. */
function legendTime(/** @type {number | null} */ seconds) {
  return seconds === null ? '–' : utcText(new Date(seconds * 1000));
}

/**
 * @param {HTMLElement} container
 * @param {string} label
 * @param {string} colorVariable
 * @returns {uPlot}
 */
function makeChart(container, label, colorVariable) {
  const color = cssColor(colorVariable);
  const band = cssColor(`${colorVariable}-band`);
  const grid = { stroke: cssColor('--grid'), width: 1 };
  const axis = { stroke: cssColor('--muted'), grid, ticks: grid };
  /** @type {uPlot.Options} */
  const options = {
    width: Math.max(container.clientWidth, 300),
    height: 260,
    scales: { x: { time: true } },
    // Axes in UTC, not the browser's zone: the range is chosen and labelled in UTC.
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'),
    axes: [axis, { ...axis, size: 60 }],
    series: [
      { value: (_, seconds) => legendTime(seconds) },
      { label: `${label} min`, stroke: band, width: 1 },
      { label: `${label} avg`, stroke: color, width: 2 },
      { label: `${label} max`, stroke: band, width: 1 },
    ],
    bands: [{ series: [3, 1], fill: band }],
  };
  return new uPlot(options, [[], [], [], []], container);
}

const cpuContainer = element('cpu-chart');
const concurrencyContainer = element('concurrency-chart');
let cpuChart = makeChart(cpuContainer, 'CPU load', '--cpu');
let concurrencyChart = makeChart(concurrencyContainer, 'Concurrency', '--concurrency');

/** @param {Series} series */
function draw(series) {
  lastSeries = series;
  const x = series.buckets.map((bucket) => Date.parse(bucket.start) / 1000);
  /** @param {(bucket: Bucket) => number} pick */
  const column = (pick) => series.buckets.map(pick);
  const range = { min: Date.parse(series.start) / 1000, max: Date.parse(series.end) / 1000 };
  cpuChart.setData([
    x,
    column((b) => b.cpuLoad.min),
    column((b) => b.cpuLoad.avg),
    column((b) => b.cpuLoad.max),
  ]);
  concurrencyChart.setData([
    x,
    column((b) => b.concurrency.min),
    column((b) => b.concurrency.avg),
    column((b) => b.concurrency.max),
  ]);
  cpuChart.setScale('x', range);
  concurrencyChart.setScale('x', range);
  emptyLine.hidden = series.buckets.length > 0;
  document.body.dataset.buckets = String(series.buckets.length);
}

/** @param {Summary} summary */
function showSummary(summary) {
  element('count').textContent = summary.count.toLocaleString('en');
  element('p50').textContent = formatted(summary.cpuLoad.p50, 2);
  element('p95').textContent = formatted(summary.cpuLoad.p95, 2);
  element('p99').textContent = formatted(summary.cpuLoad.p99, 2);
  element('concurrency-p95').textContent = formatted(summary.concurrency.p95, 1);
}

function resizeCharts() {
  for (const [chart, container] of /** @type {[uPlot, HTMLElement][]} */ ([
    [cpuChart, cpuContainer],
    [concurrencyChart, concurrencyContainer],
  ])) {
    chart.setSize({ width: Math.max(container.clientWidth, 300), height: 260 });
  }
}

function rebuildCharts() {
  cpuChart.destroy();
  concurrencyChart.destroy();
  cpuChart = makeChart(cpuContainer, 'CPU load', '--cpu');
  concurrencyChart = makeChart(concurrencyContainer, 'Concurrency', '--concurrency');
  if (lastSeries) draw(lastSeries);
}

// ---- Data ----

/**
 * One GraphQL query over fetch.
 * @template T
 * @param {string} query
 * @param {Record<string, unknown>} variables
 * @returns {Promise<T>}
 */
async function request(query, variables) {
  const response = await authorizedFetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  if (response.status === 401) throw new Unauthorized();
  const answer = await response.json();
  if (answer.errors?.length) throw new Error(answer.errors[0].message);
  return answer.data;
}

function stopLive() {
  for (const unsubscribe of unsubscribers) unsubscribe();
  unsubscribers = [];
}

/**
 * @template T
 * @param {string} query
 * @param {Record<string, unknown>} variables
 * @param {(data: T) => void} next
 */
function subscribe(query, variables, next) {
  unsubscribers.push(
    client.subscribe(
      { query, variables },
      {
        next: (result) => {
          if (result.data) next(/** @type {T} */ (result.data));
          else if (result.errors) showProblem(result.errors[0]?.message ?? 'The subscription failed');
        },
        error: () => void checkHealth(),
        complete: () => {},
      },
    ),
  );
}

function show() {
  stopLive();
  // Every read would be refused until the user gives a token.
  if (!tokenForm.hidden) return;
  const pixels = cpuContainer.clientWidth;
  if (current.kind === 'live') {
    const seconds = current.seconds;
    const bucket = bucketFor(seconds, pixels);
    modeOutput.textContent = `Live, ${bucket}-second buckets`;
    if (document.hidden) return;
    subscribe(
      `subscription Series($window: Duration!, $bucket: Duration!) {
        metricSeriesUpdated(window: $window, bucket: $bucket) { start end bucket buckets { ${SERIES_FIELDS} } }
      }`,
      { window: seconds, bucket },
      /** @param {{ metricSeriesUpdated: Series }} data */ (data) => draw(data.metricSeriesUpdated),
    );
    subscribe(
      `subscription Summary($window: Duration!) { metricsSummaryUpdated(window: $window) { summary { ${SUMMARY_FIELDS} } } }`,
      { window: seconds },
      /** @param {{ metricsSummaryUpdated: { summary: Summary } }} data */ (data) =>
        showSummary(data.metricsSummaryUpdated.summary),
    );
    return;
  }
  const { from, to } = current;
  const bucket = bucketFor((to.getTime() - from.getTime()) / 1000, pixels);
  modeOutput.textContent = `${from.toISOString()} – ${to.toISOString()}, ${bucket}-second buckets`;
  request(
    `query Range($start: DateTime!, $end: DateTime!, $bucket: Duration!) {
      metricSeries(start: $start, end: $end, bucket: $bucket) { ${SERIES_FIELDS} }
      metricsSummary(start: $start, end: $end) { ${SUMMARY_FIELDS} }
    }`,
    { start: from.toISOString(), end: to.toISOString(), bucket },
  ).then(
    /** @param {any} data */ (data) => {
      draw({ start: from.toISOString(), end: to.toISOString(), bucket, buckets: data.metricSeries });
      showSummary(data.metricsSummary);
    },
    (error) => {
      if (!(error instanceof Unauthorized)) showProblem(String(error.message ?? error));
    },
  );
}

/** Shows the token form; `rejected`: the token given was refused. */
function askForToken(/** @type {boolean} */ rejected) {
  stopLive();
  if (!tokenForm.hidden) return;
  tokenMessage.textContent = rejected
    ? 'The read token was refused. Enter a valid one.'
    : 'This server needs a read token (READ_TOKEN) to show its data.';
  tokenForm.hidden = false;
  tokenInput.focus();
}

/** Opens the window: the initial one when it can be read, then live or the chosen range. */
function start() {
  initialWindow()
    .then(show, (error) => {
      if (!(error instanceof Unauthorized)) show();
    })
    .then(checkHealth);
}

/** @param {string} message */
function showProblem(message) {
  statusLine.textContent = message;
  statusLine.hidden = false;
}

/** Asks /readyz: the banner says what is down, and its recovery restarts the live view. */
async function checkHealth() {
  let problem;
  try {
    const response = await fetch('/readyz', { cache: 'no-store' });
    if (!response.ok) problem = 'The database is unavailable. Retrying…';
  } catch {
    problem = 'The service is unreachable. Retrying…';
  }
  if (problem) {
    outage = true;
    showProblem(problem);
    document.body.dataset.health = 'down';
    return;
  }
  document.body.dataset.health = 'up';
  if (outage) {
    outage = false;
    statusLine.hidden = true;
    show();
  }
}

/** A `datetime-local` value, read as UTC. */
function utc(/** @type {string} */ value) {
  return new Date(`${value}Z`);
}

/** For a `datetime-local` input, in UTC. */
function localValue(/** @type {Date} */ date) {
  return date.toISOString().slice(0, 19);
}

/**
 * Where to start: the last hour, live, when it holds samples; otherwise the day up to the latest
 * sample (the demo's sample data is from the past).
 */
async function initialWindow() {
  /** @type {{ metricsSummary: { count: number, lastTimestamp: string | null } }} */
  const data = await request('{ metricsSummary { count lastTimestamp } }', {});
  const last = data.metricsSummary.lastTimestamp;
  if (!last || Date.parse(last) > Date.now() - 3600_000) return;
  const to = new Date(Date.parse(last) + 1000);
  const from = new Date(to.getTime() - 86400_000);
  current = { kind: 'range', from, to };
  windowSelect.value = 'custom';
  customRange.hidden = false;
  fromInput.value = localValue(from);
  toInput.value = localValue(to);
}

// ---- Wiring ----

applyTheme(preferredTheme());
themeButton.addEventListener('click', () => {
  const theme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('metrics-api-theme', theme);
  applyTheme(theme);
  rebuildCharts();
});

windowSelect.addEventListener('change', () => {
  if (windowSelect.value === 'custom') {
    customRange.hidden = false;
    const to = new Date();
    const from = new Date(to.getTime() - (current.kind === 'live' ? current.seconds * 1000 : 3600_000));
    fromInput.value = localValue(from);
    toInput.value = localValue(to);
    fromInput.focus();
    return;
  }
  customRange.hidden = true;
  current = { kind: 'live', seconds: Number(windowSelect.value) };
  show();
});

controls.addEventListener('submit', (event) => {
  event.preventDefault();
  const from = utc(fromInput.value);
  const to = utc(toInput.value);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) {
    showProblem('Choose a start before the end.');
    return;
  }
  statusLine.hidden = true;
  current = { kind: 'range', from, to };
  show();
});

// Hidden tabs hold no subscription; coming back shows the window as it is now.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) stopLive();
  else show();
});

let resizeTimer = 0;
new ResizeObserver(() => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => {
    const before = cpuChart.width;
    resizeCharts();
    // A new width may call for another bucket length.
    if (Math.abs(cpuChart.width - before) > 50) show();
  }, 150);
}).observe(cpuContainer);

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  tokenInput.value = '';
  tokenForm.hidden = true;
  start();
});

setInterval(() => void checkHealth(), HEALTH_INTERVAL_MS);
start();
