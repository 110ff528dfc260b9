/**
 * The store's failures that the rooms above it answer: presentation (GraphQL, HTTP, the CLI) and
 * the live feed meet the database only through the store, so they take its errors from here.
 */
export { DatabaseUnavailableError, RETRY_AFTER_SECONDS } from '../database/availability.js';
