// @ts-check
// The fleet view: which sources are hot, hottest first.
//
// Why the hottest N with sparklines and not a heatmap of every source by time: an operator
// scanning for hot pods asks which ones, how hot, and since when. A ranking answers that in its
// first rows, with names to read and follow; a heatmap of 1,000 sources gives each a row of a pixel
// or two with no name one can read, and shows the hot ones only where their names happen to sort
// unless it is ranked as well. The API's bounds settle it: `sourceSummaries` ranks up to 1,000
// sources by CPU p95 in one request (a summary each, no buckets: about 10,000 of the default
// MAX_QUERY_COST of 50,000), while every series of `sourceSeries` costs about 1,100 (at most 100
// a request): a heatmap of 1,000 sources would take over twenty requests on every live refresh.
// So every ranked source is seen at a glance as one bar of the ranking strip (one canvas: the
// fleet's shape, one hot outlier or a hot tier), and the hottest (up to 30, which with the
// ranking stays within one request's cost) get a table row with a sparkline of their CPU load and
// their numbers, all from one request.

import { bucketFor, cssColor, element, formatted } from './page.js';

/** @typedef {import('./page.js').GraphQLRequest} GraphQLRequest */

/** The most sources the strip ranks: the most `sourceSummaries` answers in one request. */
const RANKED = 1000;
/** Live, the fleet is asked again at most this often (the tiles' updates say when data changed). */
const REFRESH_MS = 5000;
const STRIP_HEIGHT = 48;
const SPARKLINE_WIDTH = 120;
const SPARKLINE_HEIGHT = 28;

const SOURCE_COUNT = 'query SourceCount { sources(first: 1) { totalCount } }';
// Labels only for the table's rows: each source's may cost as much as MAX_SOURCE_LABELS of them.
const FLEET = `query Fleet($start: DateTime!, $end: DateTime!, $bucket: Duration!, $ranked: Int!, $hottest: Int!) {
  sources(first: 1) { totalCount }
  sourceSummaries(start: $start, end: $end, orderBy: CPU_LOAD_P95, order: DESC, first: $ranked) {
    source { name }
    summary { count cpuLoad { p50 p95 max } concurrency { p95 } }
  }
  sourceSeries(start: $start, end: $end, bucket: $bucket, orderBy: CPU_LOAD_P95, order: DESC, first: $hottest) {
    source { name labels { name value } }
    buckets { start cpuLoad { avg } }
  }
}`;

/**
 * @typedef {{ start: Date, end: Date }} Span
 * @typedef {{
 *   source: { name: string },
 *   summary: { count: number, cpuLoad: { p50: number | null, p95: number | null, max: number | null },
 *     concurrency: { p95: number | null } },
 * }} RankedSource
 * @typedef {{ start: string, cpuLoad: { avg: number | null } }} SparklineBucket
 * @typedef {{ source: { name: string, labels: { name: string, value: string }[] }, buckets: SparklineBucket[] }} SourceSeries
 * @typedef {{ span: Span, bucket: number, total: number, ranked: RankedSource[],
 *   series: Map<string, SourceSeries> }} Fleet
 */

/**
 * @param {{
 *   request: GraphQLRequest,
 *   onPick: (name: string) => void,
 *   onSourceCount: (count: number) => void,
 *   onError: (error: unknown) => void,
 * }} parts
 */
export function createFleet({ request, onPick, onSourceCount, onError }) {
  const section = element('fleet');
  const caption = element('fleet-caption');
  const strip = /** @type {HTMLCanvasElement} */ (element('fleet-strip'));
  const pointer = element('fleet-pointer');
  const hottestSelect = /** @type {HTMLSelectElement} */ (element('hottest'));
  const rows = element('hottest-rows');

  /** @type {Fleet | undefined} */
  let shown;
  /** The span to ask for next, when a refresh waits for its turn. */
  /** @type {Span | undefined} */
  let pending;
  let timer = 0;
  let lastAsked = 0;
  let asking = false;
  /** Answers asked for before the last stop() are dropped. */
  let generation = 0;
  /**
   * Sources the server knows, as last counted. While there is one, a refresh asks only whether
   * there are more: the one-source page costs the server no fleet.
   */
  let sourceTotal = Number.POSITIVE_INFINITY;

  /** @param {number} total */
  function counted(total) {
    sourceTotal = total;
    onSourceCount(total);
    // One source: the tiles and charts are the whole story (the page as before sources).
    section.hidden = total <= 1;
  }

  /** @param {Span} span */
  async function ask(span) {
    const asked = generation;
    if (sourceTotal <= 1) {
      /** @type {{ sources: { totalCount: number } }} */
      const count = await request(SOURCE_COUNT, {});
      if (asked !== generation) return;
      counted(count.sources.totalCount);
      if (sourceTotal <= 1) return;
    }
    const bucket = sparklineBucket((span.end.getTime() - span.start.getTime()) / 1000);
    /** @type {{ sources: { totalCount: number }, sourceSummaries: RankedSource[], sourceSeries: SourceSeries[] }} */
    const data = await request(FLEET, {
      start: span.start.toISOString(),
      end: span.end.toISOString(),
      bucket,
      ranked: RANKED,
      hottest: Number(hottestSelect.value),
    });
    if (asked !== generation) return;
    counted(data.sources.totalCount);
    shown = {
      span,
      bucket,
      total: sourceTotal,
      // A source silent in the window is not cool: it has no place in the ranking.
      ranked: data.sourceSummaries.filter((entry) => entry.summary.count > 0),
      series: new Map(data.sourceSeries.map((series) => [series.source.name, series])),
    };
    draw();
  }

  function askWhenDue() {
    timer = 0;
    const span = pending;
    pending = undefined;
    if (!span) return;
    asking = true;
    lastAsked = Date.now();
    ask(span)
      .catch(onError)
      .finally(() => {
        asking = false;
        if (pending) schedule();
      });
  }

  function schedule() {
    if (timer || asking) return;
    timer = window.setTimeout(askWhenDue, Math.max(0, lastAsked + REFRESH_MS - Date.now()));
  }

  function draw() {
    if (!shown || section.hidden) return;
    const { ranked, total } = shown;
    // Fewer than all: the others have no sample in the window, or are past the RANKED hottest.
    caption.textContent =
      ranked.length === 0
        ? `no source of ${total.toLocaleString('en')} has samples in this window`
        : ranked.length < total
          ? `${ranked.length.toLocaleString('en')} of ${total.toLocaleString('en')} sources ranked, hottest first by CPU p95 over the window`
          : `${total.toLocaleString('en')} sources, hottest first by CPU p95 over the window`;
    drawStrip(ranked);
    drawRows(shown);
    document.body.dataset.fleet = String(ranked.length);
  }

  /** @param {RankedSource[]} ranked */
  function drawStrip(ranked) {
    const width = Math.max(strip.clientWidth, 100);
    const context = canvasOf(strip, width, STRIP_HEIGHT);
    const top = Math.max(...ranked.map((entry) => entry.summary.cpuLoad.p95 ?? 0), Number.MIN_VALUE);
    const heat = heatScale();
    const barWidth = width / Math.max(ranked.length, 1);
    ranked.forEach((entry, index) => {
      const value = entry.summary.cpuLoad.p95 ?? 0;
      const height = Math.max((value / top) * STRIP_HEIGHT, 1);
      context.fillStyle = heat(value / top);
      // Wide bars keep a pixel between them; a thousand on a screen touch.
      context.fillRect(
        index * barWidth,
        STRIP_HEIGHT - height,
        barWidth > 4 ? barWidth - 1 : barWidth,
        height,
      );
    });
    const hottest = ranked[0];
    strip.setAttribute(
      'aria-label',
      hottest
        ? `CPU p95 of ${ranked.length} sources, hottest first: from ${formatted(hottest.summary.cpuLoad.p95, 2)} (${hottest.source.name}) to ${formatted(ranked[ranked.length - 1]?.summary.cpuLoad.p95 ?? null, 2)}`
        : 'No source has samples in this window',
    );
  }

  /** @param {Fleet} fleet */
  function drawRows({ ranked, series, span, bucket }) {
    const hottest = ranked.slice(0, Number(hottestSelect.value));
    const bucketsOf = (/** @type {string} */ name) => series.get(name)?.buckets ?? [];
    // One scale for every sparkline, so that a hotter source's line sits higher.
    const top = Math.max(
      ...hottest.flatMap((entry) => bucketsOf(entry.source.name).map((b) => b.cpuLoad.avg ?? 0)),
      Number.MIN_VALUE,
    );
    const color = cssColor('--cpu');
    // A live refresh makes the rows again: a keyboard user keeps their place.
    const focused = rows.contains(document.activeElement) ? document.activeElement?.textContent : undefined;
    rows.replaceChildren(
      ...hottest.map((entry, index) => {
        const { source, summary } = entry;
        const labels = series.get(source.name)?.source.labels ?? [];
        const row = document.createElement('tr');
        const name = document.createElement('th');
        name.scope = 'row';
        const link = document.createElement('a');
        link.href = `?source=${encodeURIComponent(source.name)}`;
        link.textContent = source.name;
        link.addEventListener('click', (event) => {
          if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
          event.preventDefault();
          onPick(source.name);
        });
        name.append(link);
        if (labels.length > 0) {
          const text = document.createElement('small');
          text.textContent = labels.map((label) => `${label.name}=${label.value}`).join(' ');
          name.append(text);
        }
        const sparkline = document.createElement('canvas');
        sparkline.className = 'sparkline';
        sparkline.setAttribute('role', 'img');
        const line = document.createElement('td');
        line.append(sparkline);
        row.append(
          cell(String(index + 1)),
          name,
          line,
          cell(formatted(summary.cpuLoad.p50, 2)),
          cell(formatted(summary.cpuLoad.p95, 2)),
          cell(formatted(summary.cpuLoad.max, 2)),
          cell(formatted(summary.concurrency.p95, 1)),
          cell(summary.count.toLocaleString('en')),
        );
        drawSparkline(sparkline, bucketsOf(source.name), span, bucket, top, color);
        if (source.name === focused) queueMicrotask(() => link.focus());
        return row;
      }),
    );
  }

  strip.addEventListener('mousemove', (event) => {
    const entry = entryAt(event.offsetX);
    pointer.textContent = entry
      ? `${entry.source.name}: CPU p95 ${formatted(entry.summary.cpuLoad.p95, 2)}`
      : '';
  });
  strip.addEventListener('mouseleave', () => {
    pointer.textContent = '';
  });
  strip.addEventListener('click', (event) => {
    const entry = entryAt(event.offsetX);
    if (entry) onPick(entry.source.name);
  });
  // More or fewer rows: asked at once, not at the next refresh.
  hottestSelect.addEventListener('change', () => {
    if (!shown) return;
    clearTimeout(timer);
    timer = 0;
    lastAsked = 0;
    update(shown.span);
  });

  /** @param {number} x */
  function entryAt(x) {
    const ranked = shown?.ranked ?? [];
    return ranked[Math.floor((x / strip.clientWidth) * ranked.length)];
  }

  /** Shows the fleet over `span`: at once after stop(), live at most every REFRESH_MS. */
  function update(/** @type {Span} */ span) {
    pending = span;
    schedule();
  }

  /** Cancels any refresh to come, and drops an answer on its way. */
  function stop() {
    clearTimeout(timer);
    timer = 0;
    pending = undefined;
    lastAsked = 0;
    generation++;
  }

  // The strip follows the page's width.
  new ResizeObserver(() => {
    if (shown && !section.hidden) drawStrip(shown.ranked);
  }).observe(strip);

  return {
    update,
    stop,
    hide() {
      stop();
      section.hidden = true;
      delete document.body.dataset.fleet;
    },
    /** Draws again what is shown, in the theme's colors and the page's width. */
    redraw: draw,
  };
}

/**
 * The bucket of a sparkline over `seconds`: a chart's for its width (one per two pixels), whole
 * days beyond, so that its buckets, and so its cost, stay as few however long the window.
 */
function sparklineBucket(/** @type {number} */ seconds) {
  const bucket = bucketFor(seconds, SPARKLINE_WIDTH);
  return bucket < 86400 ? bucket : Math.ceil(seconds / (SPARKLINE_WIDTH / 2) / 86400) * 86400;
}

/** @param {string} text */
function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

/**
 * The 2D context of `canvas`, sized `width` x `height` CSS pixels at the screen's density, blank.
 * @param {HTMLCanvasElement} canvas @param {number} width @param {number} height
 */
function canvasOf(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  return context;
}

/**
 * One source's CPU load average per bucket as a line over `span`, on the scale 0 to `top`: as the
 * charts do, the line joins the buckets that hold CPU load across those that hold none.
 * @param {HTMLCanvasElement} canvas
 * @param {SparklineBucket[]} buckets
 * @param {Span} span
 * @param {number} bucket seconds
 * @param {number} top
 * @param {string} color
 */
function drawSparkline(canvas, buckets, span, bucket, top, color) {
  const context = canvasOf(canvas, SPARKLINE_WIDTH, SPARKLINE_HEIGHT);
  const from = span.start.getTime();
  const length = Math.max(span.end.getTime() - from, 1);
  const averages = buckets.flatMap(({ cpuLoad }) => (cpuLoad.avg === null ? [] : [cpuLoad.avg]));
  const points = buckets.flatMap(({ start, cpuLoad }) =>
    cpuLoad.avg === null
      ? []
      : [
          {
            x: ((Math.max(Date.parse(start), from) - from) / length) * SPARKLINE_WIDTH,
            y: SPARKLINE_HEIGHT - 1 - (cpuLoad.avg / top) * (SPARKLINE_HEIGHT - 2),
          },
        ],
  );
  context.strokeStyle = color;
  context.fillStyle = color;
  context.lineWidth = 1.5;
  context.beginPath();
  for (const { x, y } of points) context.lineTo(x, y);
  context.stroke();
  // A single bucket is no line: a dot.
  if (points.length === 1) for (const { x, y } of points) context.fillRect(x - 1.5, y - 1.5, 3, 3);
  canvas.setAttribute(
    'aria-label',
    averages.length === 0
      ? 'No CPU load in this window'
      : `CPU load average per ${bucket}-second bucket, from ${Math.min(...averages).toFixed(2)} to ${Math.max(...averages).toFixed(2)}`,
  );
}

/** From the theme's cool color (0) to its hot one (1). */
function heatScale() {
  const cool = rgb(cssColor('--heat-cool'));
  const hot = rgb(cssColor('--heat-hot'));
  return (/** @type {number} */ fraction) => {
    const mixed = cool.map((channel, i) => Math.round(channel + ((hot[i] ?? 0) - channel) * fraction));
    return `rgb(${mixed.join(', ')})`;
  };
}

/** The channels of a `#rrggbb` color. */
function rgb(/** @type {string} */ hex) {
  return [1, 3, 5].map((at) => Number.parseInt(hex.slice(at, at + 2), 16));
}
