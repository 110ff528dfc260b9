// The scripts index.html loads before its modules, from the project's own dependencies (uPlot
// too: a UMD global, allowUmdGlobalAccess in tsconfig.json).
declare const graphqlSse: typeof import('graphql-sse');
