/** `npm run partitions -- --help`. */
export const HELP = `Usage: npm run partitions -- --from <date> --to <date> [--size <duration>]

Makes the partitions of metrics that cover [from, to), before a bulk back-fill of that time, so its
rows go to partitions of their own instead of metrics_default. Partitions that exist are left as
they are; rows of the range already in metrics_default move into the new partitions.

  --from <date>      Start, inclusive: 2026-01-01 (midnight UTC) or an ISO-8601 time with an offset.
  --to <date>        End, exclusive, in the same form.
  --size <duration>  Each partition's range. Default PARTITION_SIZE (1d).
  -h, --help         This text.

Exit codes: 0 done; 2 a mistake in the command line, the configuration or the database.
`;
