-- CreateTable
CREATE TABLE "metrics" (
    "id" BIGSERIAL NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "cpu_load" REAL NOT NULL,
    "concurrency" INTEGER NOT NULL,

    CONSTRAINT "metrics_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "metrics_timestamp_key" ON "metrics"("timestamp");

-- Prisma's schema language cannot express CHECK constraints; they live here.
-- 'NaN'::real compares greater than every number in Postgres, so NaN and Infinity are excluded explicitly.
ALTER TABLE "metrics"
  ADD CONSTRAINT "metrics_cpu_load_finite_non_negative"
    CHECK ("cpu_load" >= 0 AND "cpu_load" < 'Infinity'::real),
  ADD CONSTRAINT "metrics_concurrency_non_negative"
    CHECK ("concurrency" >= 0);
