import { builder } from '../builder.js';

builder.queryType({ description: 'Reads are public.' });
