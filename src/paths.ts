import { fileURLToPath } from 'node:url';

/** The project root, whether running from `src/` with tsx or from `dist/src/` after a build. */
export const projectRoot = fileURLToPath(
  new URL(import.meta.url.includes('/dist/src/') ? '../../' : '../', import.meta.url),
);
