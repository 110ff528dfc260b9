export const HELP = `Usage: npm run rollups -- <command> [--from <time>] [--to <time>]

Commands:
  check     Compare the rollups (minute, hour, day) with what the raw rows give, day by day; print
            each bucket that differs and exit 1 if any does.
  rebuild   Recompute the rollups from the raw rows, day by day (after a bulk load with the
            triggers disabled, or a restore). Each day is one transaction and renews the revision.

Both work on whole UTC days, and only on days raw rows are stored for: rollups of days whose raw
rows were dropped (RETENTION) are left as they are.

Options:
  --from <time>   First day (the day holding it): epoch seconds or ISO-8601 with offset. Default: the oldest raw row.
  --to <time>     End, exclusive (widened to the end of its day). Default: after the newest raw row.
  -h, --help      Show this help.

Progress goes to stderr: a bar on a terminal, else a line a day ("rollups: <day> (<n>/<days>): equal",
"<k> bucket(s) differ" or "rebuilt"), then the summary. Differing buckets go to stdout.

Exit codes: 0 all equal (check) or done (rebuild); 1 check found differences; 2 usage or database error.
`;
