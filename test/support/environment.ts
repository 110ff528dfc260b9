/**
 * Settings a spawned entry point (the server, a script, the Prisma CLI) gets so that it never reads
 * the developer's `.env`: loadEnv and prisma.config.ts honour DOTENV_CONFIG_PATH, and a test
 * decides every variable itself.
 */
export const WITHOUT_DOTENV = { DOTENV_CONFIG_PATH: '/dev/null' } as const;
