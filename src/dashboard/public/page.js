// @ts-check
// What the dashboard's modules share: its elements, its numbers and times as the page writes
// them, its theme's colors, the bucket a chart's width calls for, and the type of the one
// function they read the API with.

/**
 * One GraphQL query over fetch (with the read token): its `data`, or an Error with the first
 * error's message.
 * @typedef {(query: string, variables: Record<string, unknown>) => Promise<any>} GraphQLRequest
 */

/** @param {string} id */
export function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found;
}

/** @param {number | null} value @param {number} digits */
export function formatted(value, digits) {
  return value === null ? '–' : value.toFixed(digits);
}

/** @param {string} name */
export function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A time as the page writes it: UTC, to the second (the range is chosen in UTC too). */
export function utcText(/** @type {Date} */ date) {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Bucket lengths a chart may use, in seconds: the shortest that keeps one bucket per two pixels wins. */
const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** The bucket for a window of `seconds` on a chart `pixels` wide: about one bucket per two pixels. */
export function bucketFor(/** @type {number} */ seconds, /** @type {number} */ pixels) {
  const wanted = seconds / Math.max(pixels / 2, 1);
  return BUCKETS.find((bucket) => bucket >= wanted) ?? 86400;
}
