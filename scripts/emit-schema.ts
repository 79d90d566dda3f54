import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { printSchema } from 'graphql';
import { buildBaseSchema } from '../src/graphql/schema';

/** Writes schema.graphql from the code (`npm run schema`); a test fails when they differ. */
export async function emitSchema(): Promise<string> {
  return `${printSchema(await buildBaseSchema())}\n`;
}

if (require.main === module) {
  void emitSchema().then(async (sdl) => {
    const file = path.resolve(__dirname, '..', 'schema.graphql');
    await writeFile(file, sdl);
    console.log(`wrote ${file}`);
  });
}
