/** `npm run ingest -- --help`. */
export const HELP = `Usage: npm run ingest -- [options] [files...]

Loads CPU-load samples of one or more sources (hosts, pods, service instances) into the metrics
table. Each file may be a JSON array, NDJSON (one object a line) or CSV with a header row,
optionally gzipped. With no files, or a file named "-", reads standard input.

Records:
  timestamp     Unix epoch seconds (integer or fractional) or an ISO-8601 string with an offset,
                e.g. 1795651200, 1795651200.25, "2026-11-26T00:00:00Z", "2026-11-26T01:00:00+01:00".
                Accepted range: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, and no further
                ahead of now than MAX_FUTURE (default 1d; 0 or off for no limit); stored to the
                millisecond. With the source, the natural key: one sample per source and instant.
  cpu_load      (or cpuLoad) a finite number >= 0 that fits a 32-bit float.
  concurrency   an integer from 0 to 2147483647.
                A sample needs cpu_load or concurrency, or both; a missing value (left out, null,
                an empty CSV cell) is stored as missing.
  source        optional: the name of the sample's source (1-256 characters, no control characters),
                made by its first sample. Without it: --source's, else DEFAULT_SOURCE's (source 1).
                A new source past MAX_SOURCES (default 100000) is refused, each of its records
                reported as "file:line: source: ...".
  labels        optional, with a source: the source's labels, which replace its stored ones (left
                out, it keeps them). JSON: an object of strings, {"region": "eu", "tier": "web"};
                CSV: region=eu;tier=web, or a JSON object (quoted) for values holding ";". At most
                32 labels; names are a letter or _, then letters, digits, _ . - / (up to 128
                characters; __* and "source" are reserved); values up to 1024 characters.
  Other fields are ignored, with one warning per file.
  A record (a line, or a JSON array's element) longer than 1048576 characters, or an element
  nested more than 64 brackets deep, is refused at its line without being held in memory.

Options:
  --format <json|ndjson|csv>   Input format. Default: from the extension (.json, .ndjson, .jsonl,
                               .csv, each optionally .gz), else from the first non-blank character
                               ('[' JSON array, '{' NDJSON, anything else CSV).
  --on-conflict <skip|update>  When a source's timestamp is already stored: keep the stored sample
                               (skip, the default) or replace it (update). Within one batch the
                               first (skip) or last (update) record for a source and timestamp wins.
  --source <name>              The source of records that name none (instead of DEFAULT_SOURCE's).
  --label <name=value>         A label of --source's source (repeatable); records that name no source
                               and give no labels give it these.
  --strict                     Validate every input first; write nothing if any record is bad.
  --dry-run                    Validate and count without connecting to the database.
  --batch-size <n>             Rows per INSERT (1-30000). Default: INGEST_BATCH_SIZE or 30000.
  --print-ids                  Print the id of each newly inserted row on stdout, one per line.
  --json                       Print the summary as JSON on stdout (after any ids).
  -h, --help                   Show this help.

Output:
  Each rejected record is reported on stderr as "file:line: field: reason"; all valid records are
  still loaded (unless --strict). The last line on stderr is a summary: read, inserted, updated,
  duplicates, rejected, elapsed, rows/s. A progress bar is shown on a terminal, never when stderr
  is redirected.

Exit codes:
  0  every record was valid
  1  some records were rejected (with --strict: nothing was written)
  2  usage error, unreadable input, bad configuration or database error

Database:
  Uses DATABASE_URL, or the embedded database in EMBEDDED_DATA_DIR when it is unset. One process
  at a time opens an embedded database: while the server runs on it, the rows are written through
  the server (its live subscribers see them). A load that is interrupted can simply be run again:
  rows already stored are skipped by source and timestamp.

Examples:
  npm run ingest -- data/sample-metrics.json
  npm run ingest -- --on-conflict update metrics-*.ndjson.gz
  npm run ingest -- --source web-1 --label region=eu --label tier=web web-1.csv
  gunzip -c export.csv.gz | npm run ingest -- --format csv --json
  npm run ingest -- --dry-run --strict new-data.csv
`;
