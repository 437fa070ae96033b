import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

/**
 * Every prop a user can set is documented where users look: each optional field of the props
 * interfaces (`cdk/src/props.ts`) carries an `@default` tag, and each field, nested ones as
 * `group.field`, has a row in `cdk/README.md`'s props table. A new prop without either fails here.
 */

const ROOT = path.join(__dirname, '..', '..');
const PROPS_FILE = path.join(ROOT, 'cdk', 'src', 'props.ts');
const README = path.join(ROOT, 'cdk', 'README.md');
const TOP = 'SqsCircuitBreakerProps';

interface Field {
  readonly name: string;
  readonly optional: boolean;
  readonly deprecated: boolean;
  readonly hasDefault: boolean;
  readonly typeName: string;
}

/** The exported interfaces of props.ts and their fields, read with the TypeScript compiler. */
function interfaces(): Map<string, Field[]> {
  const source = ts.createSourceFile(PROPS_FILE, fs.readFileSync(PROPS_FILE, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, Field[]>();
  source.forEachChild((node) => {
    if (!ts.isInterfaceDeclaration(node)) return;
    const fields = node.members.filter(ts.isPropertySignature).map((m) => {
      const tags = ts.getJSDocTags(m).map((t) => t.tagName.text);
      return {
        name: m.name.getText(source),
        optional: m.questionToken !== undefined,
        deprecated: tags.includes('deprecated'),
        hasDefault: tags.includes('default'),
        typeName: m.type ? m.type.getText(source) : '',
      };
    });
    out.set(node.name.text, fields);
  });
  return out;
}

/**
 * The props the README's table names: the backticked names of each row's first cell, where
 * "`backoff.initialDelay` / `maxDelay`" names `backoff.initialDelay` and `backoff.maxDelay`.
 */
function documentedProps(): Set<string> {
  const lines = fs.readFileSync(README, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^\|\s*prop\s*\|\s*default\s*\|/.test(l));
  expect(start).toBeGreaterThanOrEqual(0);
  const names = new Set<string>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1];
    let group = '';
    for (const m of first.matchAll(/`([^`]+)`/g)) {
      const name = m[1];
      if (name.includes('.')) group = name.slice(0, name.indexOf('.'));
      names.add(name.includes('.') || group === '' ? name : `${group}.${name}`);
    }
  }
  return names;
}

/** Every settable prop as the README names it: top-level fields, and `group.field` for groups. */
function allProps(): { path: string; field: Field }[] {
  const all = interfaces();
  const top = all.get(TOP);
  expect(top).toBeDefined();
  const out: { path: string; field: Field }[] = [];
  for (const f of top!) {
    const nested = all.get(f.typeName);
    if (nested) {
      out.push({ path: f.name, field: f });
      for (const n of nested) out.push({ path: `${f.name}.${n.name}`, field: n });
    } else {
      out.push({ path: f.name, field: f });
    }
  }
  return out;
}

test('every optional prop has an @default tag', () => {
  const missing = allProps()
    .filter(({ field }) => field.optional && !field.hasDefault)
    .map((p) => p.path);
  expect(missing).toEqual([]);
});

test("every prop has a row in cdk/README.md's props table", () => {
  const documented = documentedProps();
  const groups = new Set(
    allProps()
      .filter((p) => !p.path.includes('.') && interfaces().has(p.field.typeName))
      .map((p) => p.path),
  );
  const missing = allProps()
    .filter(({ path: p, field }) => !field.deprecated && !groups.has(p))
    .map((p) => p.path)
    .filter((p) => !documented.has(p));
  expect(missing).toEqual([]);
});

test('the README table names no prop that does not exist', () => {
  const known = new Set(allProps().map((p) => p.path));
  const unknown = [...documentedProps()].filter((p) => !known.has(p));
  expect(unknown).toEqual([]);
});
