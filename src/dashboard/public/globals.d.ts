// The scripts index.html loads before dashboard.js, from the project's own dependencies.
declare const graphqlSse: typeof import('graphql-sse');
