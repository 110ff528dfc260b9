import { builder } from '../builder.js';

builder.subscriptionType({
  description:
    'Live updates, over Server-Sent Events: POST or GET /graphql with `Accept: text/event-stream` (one ' +
    'connection per subscription), or the GraphQL over SSE protocol at /graphql/stream (several subscriptions ' +
    'on one connection). Streams send a keep-alive comment every 12 s.',
});
