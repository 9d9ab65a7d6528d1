// Used by transparency.test.js: a program over real ES module packages, run plain and counted.
import chalk, * as chalkNs from 'chalk';
import * as nano from 'nanoid';
import pLimit from 'p-limit';
import * as uuid from 'uuid';
import { z } from 'zod';
import * as zodNs from 'zod';
import { addDays, format, differenceInDays } from 'date-fns';
import * as dfns from 'date-fns';
import { customAlphabet } from 'nanoid';
const out = [];
out.push(Object.keys(chalkNs).join(','), Object.keys(nano).join(','), Object.keys(uuid).join(','));
out.push(Object.keys(zodNs).length, Object.keys(dfns).length);
out.push(chalk.level >= 0, typeof customAlphabet('abc', 5)(), uuid.validate(uuid.v4()), uuid.version('6ba7b810-9dad-11d1-80b4-00c04fd430c8'));
const schema = z.object({ a: z.string(), b: z.number().min(2) });
out.push(JSON.stringify(schema.safeParse({ a: 'x', b: 1 }).success), schema.parse({ a: 'y', b: 3 }).a);
out.push(format(addDays(new Date(2020, 0, 1), 40), 'yyyy-MM-dd'), differenceInDays(new Date(2020, 5, 1), new Date(2020, 0, 1)));
const limit = pLimit(2);
out.push((await Promise.all([1, 2, 3].map((x) => limit(async () => x * 2)))).join('+'));
try { schema.parse({}); } catch (e) { out.push(e.constructor.name, e instanceof z.ZodError); }
console.log(out.join('\n'));
