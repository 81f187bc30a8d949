// fabio's route command language, checked against cases recorded from fabio's own parser
// (fixtures/fabio-route-commands.json, suites `parse` and `parse_aliases`).
//
// Deliberate difference: fabio rejects the whole text at the first bad line. Cairn reports that
// line with fabio's exact message and still applies every other line (fabio issue #224).

import { expect } from 'chai';
import fc from 'fast-check';
import {
  formatCommandProblem,
  parseOptions,
  parseRouteCommands,
  parseTagList,
  registerAliases,
} from '../../routing/route-command.ts';
import type { RouteCommand } from '../../routing/types.ts';
import vectors from './fixtures/fabio-route-commands.json' with { type: 'json' };

interface FabioDef {
  cmd: string;
  service: string;
  src: string;
  dst: string;
  weight: number;
  tags: string[];
  opts: Record<string, string>;
}

function plain(c: RouteCommand): FabioDef {
  return {
    cmd: c.cmd,
    service: c.service,
    src: c.src,
    dst: c.dst,
    weight: c.weight,
    tags: [...c.tags],
    opts: { ...c.opts },
  };
}

describe('route commands: fabio parse vectors', () => {
  for (const v of vectors.filter((x) => x.suite === 'parse')) {
    it(v.name, () => {
      const r = parseRouteCommands(v.input as string);
      const expected = v.expected as FabioDef[] | { error: string };
      if (Array.isArray(expected)) {
        expect(r.problems).to.deep.equal([]);
        expect(r.commands.map(plain)).to.deep.equal(expected);
      } else {
        expect(r.problems.map(formatCommandProblem)).to.deep.equal([expected.error]);
        // Cairn keeps the good lines fabio would have thrown away with the bad one.
        const good = (v.input as string)
          .split('\n')
          .map((l, i) => ({ l, line: i + 1 }))
          .filter(({ line }) => line !== r.problems[0]?.line)
          .map(({ l }) => l)
          .join('\n');
        expect(r.commands.map(plain)).to.deep.equal(parseRouteCommands(good).commands.map(plain));
      }
    });
  }

  for (const v of vectors.filter((x) => x.suite === 'parse_aliases')) {
    it(`register aliases: ${v.name}`, () => {
      expect(registerAliases(parseRouteCommands(v.input as string).commands)).to.deep.equal(v.expected);
    });
  }
});

describe('route commands: Cairn behaviour', () => {
  it('keeps the lines around a bad one and numbers each problem', () => {
    const r = parseRouteCommands('route add a / http://a/\nroute add\nroute add b / http://b/\nnonsense');
    expect(r.commands.map((c) => c.service)).to.deep.equal(['a', 'b']);
    expect(r.problems.map(formatCommandProblem)).to.deep.equal([
      "line 2: syntax error: 'route add' invalid",
      "line 4: syntax error: 'route' expected",
    ]);
    expect(r.commands.map((c) => c.line)).to.deep.equal([1, 3]);
  });

  it('handles CRLF line endings', () => {
    const r = parseRouteCommands('route add a / http://a/\r\nroute del a\r\n');
    expect(r.problems).to.deep.equal([]);
    expect(r.commands.map((c) => c.cmd)).to.deep.equal(['route add', 'route del']);
  });

  it('rejects non-finite weights fabio would parse as Inf/NaN', () => {
    expect(parseRouteCommands('route add a / http://a/ weight Inf').problems).to.have.length(1);
    expect(parseRouteCommands('route add a / http://a/ weight NaN').problems).to.have.length(1);
  });

  it('parses tag lists and options like fabio', () => {
    expect(parseTagList(' a , ,b ')).to.deep.equal(['a', 'b']);
    expect(parseOptions('  a=1  b  c=x=y ')).to.deep.equal({ a: '1', b: '', c: 'x=y' });
  });

  it('never throws, whatever the text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const r = parseRouteCommands(s);
        expect(r.commands.length + r.problems.length).to.be.at.most(s.split('\n').length);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on command-shaped text (property)', () => {
    const word = fc.stringMatching(/^[a-z0-9:/."=,*$-]{0,12}$/);
    const line = fc
      .array(
        fc.oneof(fc.constantFrom('route', 'add', 'del', 'weight', 'tags', 'opts', '"a,b"', '"x=y z"'), word),
        {
          maxLength: 10,
        },
      )
      .map((ws) => ws.join(' '));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), (lines) => {
        parseRouteCommands(lines.join('\n'));
      }),
      { numRuns: 1000 },
    );
  });
});
