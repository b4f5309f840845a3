// The README's tables are the documentation of the wire formats: they must match the code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BINARY_LAYOUTS, BINARY_TYPE_TAGS, MESSAGE_TYPES } from '../src/index.js';
import { fieldsOf } from './support.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(MESSAGE_TYPES)('documents the binary layout of %s as BINARY_LAYOUTS has it', (type) => {
    const tag = `0x${BINARY_TYPE_TAGS[type].toString(16).padStart(2, '0')}`;
    const heading = `#### \`${type}\` (tag ${tag}, `;
    const start = readme.indexOf(heading);
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n\n', readme.indexOf('| ---: |', start)));
    const rows = section
      .split('\n')
      .filter((l) => /^\| \+?\d+ \|/.test(l))
      .map((l) => l.split('|').map((c) => c.trim()));
    expect(rows.map((r) => ({ offset: Number(r[1]), size: r[2] === 'n' ? 0 : Number(r[2]), field: r[3] }))).toEqual(
      BINARY_LAYOUTS[type].map(({ offset, size, field }) => ({ offset, size, field })),
    );
  });

  it('lists the fields of each type in canonical order', () => {
    for (const type of MESSAGE_TYPES) {
      expect(readme).toContain(`| \`${type}\` | ${fieldsOf(type).map(([n]) => n).join(', ')} |`);
    }
  });
});
