// @ts-check
// The dashboard: two uPlot charts and summary tiles over a window, of every source or of the one
// chosen in the source picker (source-picker.js), kept live by the service's subscriptions
// (GraphQL over SSE, one connection for all of them); over every source of a fleet, the fleet view
// (fleet.js) ranks them. ES modules, type-checked by tsc (src/dashboard/public/tsconfig.json); no
// framework, nothing from outside the service.

import { createFleet } from './fleet.js';
import { bucketFor, cssColor, element, formatted, utcText } from './page.js';
import { createSourcePicker } from './source-picker.js';

/**
 * @typedef {{ min: number | null, max: number | null, avg: number | null }} Statistics
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
const sourceBar = element('source-bar');
const allSourcesButton = element('all-sources');
const sourceHeading = element('source-heading');

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
/** The source shown, from the address (`?source=name`); null: every source. */
let chosen = chosenInAddress();
/** Sources the server knows, as the fleet view last counted them. */
let sourceCount = 0;
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
  /** @param {(bucket: Bucket) => number | null} pick */
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

/** Blank charts, until the data of another scope comes. */
function clearCharts() {
  lastSeries = undefined;
  for (const chart of [cpuChart, concurrencyChart]) chart.setData([[], [], [], []]);
  document.body.dataset.buckets = '0';
}

/** @param {Summary | undefined} summary undefined: not known yet */
function showSummary(summary) {
  element('count').textContent = summary ? summary.count.toLocaleString('en') : '–';
  element('p50').textContent = formatted(summary?.cpuLoad.p50 ?? null, 2);
  element('p95').textContent = formatted(summary?.cpuLoad.p95 ?? null, 2);
  element('p99').textContent = formatted(summary?.cpuLoad.p99 ?? null, 2);
  element('concurrency-p95').textContent = formatted(summary?.concurrency.p95 ?? null, 1);
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

/** @type {import('./page.js').GraphQLRequest} */
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
  fleet.stop();
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

/** `(a, b)`, or nothing for no parts: a query's variables or a field's arguments. */
function parenthesized(/** @type {string[]} */ parts) {
  return parts.length > 0 ? `(${parts.join(', ')})` : '';
}

/**
 * What the page's queries add for the chosen source: nothing over every source (each query is the
 * one-series dashboard's, as it was before sources), `source: $source` when one is chosen.
 */
function sourceScope() {
  return chosen === null
    ? { variables: [], arguments: [], values: {} }
    : { variables: ['$source: String!'], arguments: ['source: $source'], values: { source: chosen } };
}

function show() {
  stopLive();
  // Every read would be refused until the user gives a token.
  if (!tokenForm.hidden) return;
  const scope = sourceScope();
  const pixels = cpuContainer.clientWidth;
  if (current.kind === 'live') {
    const seconds = current.seconds;
    const bucket = bucketFor(seconds, pixels);
    modeOutput.textContent = `Live, ${bucket}-second buckets`;
    if (document.hidden) return;
    subscribe(
      `subscription Series${parenthesized(['$window: Duration!', '$bucket: Duration!', ...scope.variables])} {
        metricSeriesUpdated${parenthesized(['window: $window', 'bucket: $bucket', ...scope.arguments])} {
          start end bucket buckets { ${SERIES_FIELDS} }
        }
      }`,
      { window: seconds, bucket, ...scope.values },
      /** @param {{ metricSeriesUpdated: Series }} data */ (data) => draw(data.metricSeriesUpdated),
    );
    subscribe(
      `subscription Summary${parenthesized(['$window: Duration!', ...scope.variables])} {
        metricsSummaryUpdated${parenthesized(['window: $window', ...scope.arguments])} { start end summary { ${SUMMARY_FIELDS} } }
      }`,
      { window: seconds, ...scope.values },
      /** @param {{ metricsSummaryUpdated: { start: string, end: string, summary: Summary } }} data */ (
        data,
      ) => {
        const { start, end, summary } = data.metricsSummaryUpdated;
        showSummary(summary);
        // Samples changed: the fleet follows, over the server's window (not this browser's clock).
        if (chosen === null) fleet.update({ start: new Date(start), end: new Date(end) });
      },
    );
    return;
  }
  const { from, to } = current;
  const bucket = bucketFor((to.getTime() - from.getTime()) / 1000, pixels);
  modeOutput.textContent = `${from.toISOString()} – ${to.toISOString()}, ${bucket}-second buckets`;
  if (chosen === null) fleet.update({ start: from, end: to });
  const span = ['start: $start', 'end: $end', ...scope.arguments];
  request(
    `query Range${parenthesized(['$start: DateTime!', '$end: DateTime!', '$bucket: Duration!', ...scope.variables])} {
      metricSeries${parenthesized([...span, 'bucket: $bucket'])} { ${SERIES_FIELDS} }
      metricsSummary${parenthesized(span)} { ${SUMMARY_FIELDS} }
    }`,
    { start: from.toISOString(), end: to.toISOString(), bucket, ...scope.values },
  ).then(
    /** @param {any} data */ (data) => {
      draw({ start: from.toISOString(), end: to.toISOString(), bucket, buckets: data.metricSeries });
      showSummary(data.metricsSummary);
    },
    readFailed,
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

/**
 * A read that failed says why: in an outage, the health check's banner does; a refused token, the
 * token form; otherwise its message.
 */
function readFailed(/** @type {unknown} */ error) {
  if (error instanceof Unauthorized) return;
  const message = error instanceof Error ? error.message : String(error);
  void checkHealth().then(() => {
    if (!outage) showProblem(message);
  });
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
  const scope = sourceScope();
  /** @type {{ metricsSummary: { count: number, lastTimestamp: string | null } }} */
  const data = await request(
    `query Latest${parenthesized(scope.variables)} { metricsSummary${parenthesized(scope.arguments)} { count lastTimestamp } }`,
    scope.values,
  );
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

// ---- Sources ----

function chosenInAddress() {
  return new URLSearchParams(location.search).get('source');
}

const fleet = createFleet({
  request,
  onPick: choose,
  onSourceCount: (count) => {
    sourceCount = count;
    showSourceBar();
  },
  onError: readFailed,
});

const picker = createSourcePicker({
  input: /** @type {HTMLInputElement} */ (element('source-input')),
  listbox: element('source-options'),
  request,
  onPick: choose,
  onError: readFailed,
});

/** The picker, where there is a source to pick: on a one-source database the page is as before sources. */
function showSourceBar() {
  sourceBar.hidden = sourceCount <= 1 && chosen === null;
}

/** Shows `name` (null: every source), as the address says from now on (the Back button returns). */
function choose(/** @type {string | null} */ name) {
  if (name === chosen) return;
  chosen = name;
  history.pushState(null, '', name === null ? location.pathname : `?source=${encodeURIComponent(name)}`);
  showChosen();
  show();
}

/** The page's parts for the chosen source, or for every source; the window's data follows. */
function showChosen() {
  picker.showChosen(chosen);
  showSourceBar();
  allSourcesButton.hidden = chosen === null;
  sourceHeading.hidden = chosen === null;
  document.title = chosen === null ? 'metrics-api dashboard' : `${chosen} · metrics-api dashboard`;
  // Nothing of the scope before stays on the page while the new one loads.
  showSummary(undefined);
  clearCharts();
  if (!outage) statusLine.hidden = true;
  if (chosen === null) return;
  fleet.hide();
  void describeSource(chosen);
}

/** The chosen source's name, labels and when it was seen, above its tiles. */
async function describeSource(/** @type {string} */ name) {
  element('source-name').textContent = name;
  const details = element('source-details');
  details.textContent = '';
  try {
    /** @type {{ source: { labels: { name: string, value: string }[], firstSeen: string | null, lastSeen: string | null } | null }} */
    const data = await request(
      'query Source($name: String!) { source(name: $name) { labels { name value } firstSeen lastSeen } }',
      { name },
    );
    if (name !== chosen) return;
    const { source } = data;
    if (!source) {
      showProblem(`No source is named “${name}”.`);
      return;
    }
    const labels = source.labels.map((label) => `${label.name}=${label.value}`).join(' ');
    const seen =
      source.firstSeen && source.lastSeen
        ? `seen from ${utcText(new Date(source.firstSeen))} to ${utcText(new Date(source.lastSeen))}`
        : 'no samples yet';
    details.textContent = labels ? `${labels} · ${seen}` : seen;
  } catch (error) {
    readFailed(error);
  }
}

// ---- Wiring ----

applyTheme(preferredTheme());
themeButton.addEventListener('click', () => {
  const theme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('metrics-api-theme', theme);
  applyTheme(theme);
  rebuildCharts();
  fleet.redraw();
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

allSourcesButton.addEventListener('click', () => choose(null));

// Back and Forward between sources.
window.addEventListener('popstate', () => {
  chosen = chosenInAddress();
  showChosen();
  show();
});

setInterval(() => void checkHealth(), HEALTH_INTERVAL_MS);
showChosen();
start();
