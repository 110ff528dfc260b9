/** The tables the store owns; nothing outside src/store names them. */
export const METRICS = 'metrics';
export const REVISION = 'metrics_revision';
export const SOURCES = 'sources';
/** The rollup tables, one per level (see the metrics_rollups migration). */
export const ROLLUPS = {
  minute: 'metric_rollups_minute',
  hour: 'metric_rollups_hour',
  day: 'metric_rollups_day',
} as const;
