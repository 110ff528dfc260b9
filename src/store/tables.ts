/** The tables the store owns; nothing outside src/store names them. */
export const METRICS = 'metrics';
export const REVISION = 'metrics_revision';
