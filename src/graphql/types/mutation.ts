import { builder } from '../builder.js';

builder.mutationType({ description: 'Writes require `Authorization: Bearer <INGEST_TOKEN>`.' });
