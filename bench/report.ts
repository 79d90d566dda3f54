import { writeFile } from 'node:fs/promises';

/** How a figure is judged against its target. */
export type Comparison = '>=' | '<=' | '<' | '==';

export interface Row {
  readonly key: string;
  /** null: not measurable here (see `note`). */
  readonly value: number | null;
  readonly target: { readonly op: Comparison; readonly value: number } | null;
  readonly unit?: string;
  readonly note?: string;
}

export function passes(row: Row): boolean | null {
  if (row.value === null || row.target === null || Number.isNaN(row.value)) {
    return row.target === null ? null : false;
  }
  const { op, value } = row.target;
  switch (op) {
    case '>=':
      return row.value >= value;
    case '<=':
      return row.value <= value;
    case '<':
      return row.value < value;
    case '==':
      return row.value === value;
  }
}

const format = (value: number | null, unit = '') =>
  value === null
    ? 'null'
    : `${Number.isInteger(value) ? value : value.toFixed(value < 10 ? 2 : 1)}${unit}`;

/** The table the bench prints: key, value, target, pass/fail. */
export function table(rows: readonly Row[]): string {
  const lines = rows.map((row) => {
    const ok = passes(row);
    return [
      row.key,
      format(row.value, row.unit),
      row.target ? `${row.target.op} ${row.target.value}${row.unit ?? ''}` : '—',
      ok === null ? 'n/a' : ok ? 'pass' : 'FAIL',
      row.note ?? '',
    ];
  });
  const header = ['key', 'value', 'target', 'result', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [render(header), render(widths.map((w) => '-'.repeat(w))), ...lines.map(render)].join(
    '\n',
  );
}

export async function writeResults(file: string, results: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
}
