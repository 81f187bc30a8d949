import { expect } from 'chai';
import {
  hostGlobMatches,
  isHostGlob,
  normalizeHost,
  reverseHostPort,
  sortHostPatterns,
  splitHostPort,
} from '../../routing/host.ts';

// fabio-vectors.json suite "normalize_host": [host, tls, expected].
const normalizeHostVectors: [string, boolean, string][] = [
  ['foo.com', false, 'foo.com'],
  ['foo.com:80', false, 'foo.com'],
  ['foo.com:81', false, 'foo.com:81'],
  ['foo.com', true, 'foo.com'],
  ['foo.com:443', true, 'foo.com'],
  ['foo.com:444', true, 'foo.com:444'],
  ['FOO.com:80', false, 'foo.com'],
  ['foo.com:443', false, 'foo.com:443'],
];

// fabio-vectors.json suite "host_sort": input -> most specific first.
const hostSortVectors: [string[], string[]][] = [
  [
    ['*.foo.com', '*.a.foo.com', 'a.foo.com'],
    ['*.a.foo.com', 'a.foo.com', '*.foo.com'],
  ],
  [
    ['*.abc.com', 'z.abc.com', '*.aaa.abc.com', ''],
    ['z.abc.com', '*.aaa.abc.com', '*.abc.com', ''],
  ],
];

describe('routing/host', () => {
  describe('normalizeHost (fabio suite normalize_host)', () => {
    for (const [host, tls, expected] of normalizeHostVectors) {
      it(`${host} tls=${tls} -> ${expected}`, () => {
        expect(normalizeHost(host, tls)).to.equal(expected);
      });
    }
    it('drops :80 on plain only and :443 on TLS only', () => {
      expect(normalizeHost('foo.com:80', true)).to.equal('foo.com:80');
      expect(normalizeHost('[::1]:80', false)).to.equal('[::1]');
      expect(normalizeHost('', false)).to.equal('');
      expect(normalizeHost(':80', false)).to.equal('');
    });
  });

  describe('sortHostPatterns (fabio suite host_sort)', () => {
    for (const [input, expected] of hostSortVectors) {
      it(input.join(','), () => {
        expect(sortHostPatterns(input)).to.deep.equal(expected);
      });
    }
    it('does not modify its argument', () => {
      const input = ['*.foo.com', 'a.foo.com'];
      sortHostPatterns(input);
      expect(input).to.deep.equal(['*.foo.com', 'a.foo.com']);
    });
    it('puts a pattern with a port before the same host without one', () => {
      expect(sortHostPatterns(['example.com', 'example.com:80'])).to.deep.equal([
        'example.com:80',
        'example.com',
      ]);
    });
  });

  describe('reverseHostPort / splitHostPort (Go net semantics)', () => {
    it('reverses the host and keeps the port', () => {
      expect(reverseHostPort('foo.com')).to.equal('moc.oof');
      expect(reverseHostPort('foo.com:80')).to.equal('moc.oof:80');
      expect(reverseHostPort('[::1]:80')).to.equal('[1::]:80');
      expect(reverseHostPort('')).to.equal('');
    });
    it('splits like net.SplitHostPort', () => {
      expect(splitHostPort('foo.com:80')).to.deep.equal({ host: 'foo.com', port: '80' });
      expect(splitHostPort('[::1]:443')).to.deep.equal({ host: '::1', port: '443' });
      expect(splitHostPort('foo.com')).to.equal(undefined);
      expect(splitHostPort('a:b:c')).to.equal(undefined);
      expect(splitHostPort('[::1]')).to.equal(undefined);
    });
  });

  describe('hostGlobMatches (gobwas/glob, no separators)', () => {
    const cases: [string, string, boolean][] = [
      ['*.abc.com', 'x.abc.com', true],
      ['*.abc.com', 'x.y.abc.com', true], // '*' crosses '.'
      ['*.abc.com', '.abc.com', true], // '*' matches the empty string
      ['*.abc.com', 'abc.com', false],
      ['*.abc.com', 'xabc.com', false],
      ['*', 'anything.example', true],
      ['*', '', true],
      ['api.*.com', 'api.eu.west.com', true],
      ['api-?.example.com', 'api-1.example.com', true],
      ['api-?.example.com', 'api-12.example.com', false],
      ['{a,b}.example.com', 'b.example.com', true],
      ['{a,b}.example.com', 'c.example.com', false],
      ['[ab]*.example.com', 'bx.example.com', true],
      ['[!ab]*.example.com', 'bx.example.com', false],
      ['*.abc.com:8080', 'x.abc.com:8080', true],
      ['abc.com', 'abc.com', true],
      ['abc.com', 'x.abc.com', false],
      ['[::1]:8080', '[::1]:8080', true], // IPv6 literal compared literally (fabio: character class)
      ['[oops', '[oops', false], // invalid glob: matches nothing (fabio panics in MustCompile)
    ];
    for (const [pattern, host, expected] of cases) {
      it(`${pattern} ${expected ? 'matches' : 'does not match'} ${host}`, () => {
        expect(hostGlobMatches(pattern, host)).to.equal(expected);
      });
    }
    it('knows which patterns are globs', () => {
      expect(isHostGlob('*.a.com')).to.equal(true);
      expect(isHostGlob('a.com:80')).to.equal(false);
      expect(isHostGlob('[::1]:80')).to.equal(false);
    });
  });
});
