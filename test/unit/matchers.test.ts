import { expect } from 'chai';
import {
  compareCodePoints,
  compileGlob,
  hasGlobMeta,
  pathMatches,
  segmentKey,
  segmentMatches,
} from '../../routing/matchers.ts';
import type { PathMatcher } from '../../routing/types.ts';

// fabio-vectors.json suite "matcher": [matcher, route path, request path, matches].
const fabioMatcherVectors: [PathMatcher, string, string, boolean][] = [
  ['prefix', '/foo', '/foo', true],
  ['prefix', '/foo', '/fools', true],
  ['prefix', '/foo', '/fo', false],
  ['prefix', '/foo', '/bar', false],
  ['glob', '/foo', '/foo', true],
  ['glob', '/foo?', '/fool', true],
  ['glob', '/foo*', '/fool', true],
  ['glob', '/foo*', '/fools', true],
  ['glob', '/foo/*/bar', '/foo/x/bar', true],
  ['glob', '/foo/**', '/foo/x/y/z/w/bar', true],
  ['glob', '/foo/**/bar', '/foo/x/y/z/w/bar', true],
  ['glob', '/foo', '/fo', false],
  ['glob', '/foo', '/fools', false],
  ['glob', '/foo*', '/fo', false],
  ['glob', '/foo.*', '/fools', false],
  ['glob', '/foo/**/bar', '/foo/x/y/z/w/baz', false],
  ['glob', '/foo/*', '/foo/x/y', true],
  ['iprefix', '/fool', '/foo', false],
  ['iprefix', '/foo', '/foo', true],
  ['iprefix', '/foo', '/Fool', true],
  ['iprefix', '/Foo', '/foo', true],
];

// Cairn's segment matcher = Kubernetes Ingress pathType Prefix. The rows are the Prefix rows of
// the examples table in the Kubernetes Ingress documentation, plus a few of our own.
const segmentVectors: [string, string, boolean][] = [
  ['/', '/anything/at/all', true],
  ['/', '/', true],
  ['/foo', '/foo', true],
  ['/foo', '/foo/', true],
  ['/foo/', '/foo', true],
  ['/foo/', '/foo/', true],
  ['/aaa/bb', '/aaa/bbb', false],
  ['/aaa/bbb', '/aaa/bbb', true],
  ['/aaa/bbb/', '/aaa/bbb', true], // ignores trailing slash
  ['/aaa/bbb', '/aaa/bbb/', true], // matches trailing slash
  ['/aaa/bbb', '/aaa/bbb/ccc', true], // matches subpath
  ['/aaa/bbb', '/aaa/bbbxyz', false], // does not match string prefix
  ['/aaa', '/aaa/ccc', true],
  ['/aaa', '/ccc', false],
  ['/api', '/apix', false],
  ['/api', '/API', false], // case-sensitive
  ['/api//', '/api', true],
  ['/api', '/ap', false],
];

describe('routing/matchers', () => {
  describe('pathMatches (fabio suite matcher)', () => {
    for (const [matcher, route, request, expected] of fabioMatcherVectors) {
      it(`${matcher} ${route} ${expected ? 'matches' : 'does not match'} ${request}`, () => {
        expect(pathMatches(matcher, route, request)).to.equal(expected);
      });
    }
  });

  describe('segment matcher (Kubernetes Ingress pathType Prefix)', () => {
    for (const [route, request, expected] of segmentVectors) {
      it(`${route} ${expected ? 'matches' : 'does not match'} ${request}`, () => {
        expect(pathMatches('segment', route, request)).to.equal(expected);
      });
    }
    it('indexes routes under their path without trailing slashes', () => {
      expect(segmentKey('/api/')).to.equal('/api');
      expect(segmentKey('/api//')).to.equal('/api');
      expect(segmentKey('/')).to.equal('/');
      expect(segmentKey('//')).to.equal('/');
      expect(segmentMatches('/', '/x')).to.equal(true);
    });
  });

  describe('glob dialect (gobwas/glob without separators)', () => {
    const cases: [string, string, boolean][] = [
      ['/img/*.png', '/img/a.png', true],
      ['/img/*.png', '/img/a/b.png', true],
      ['/img/*.png', '/img/a.jpg', false],
      ['/a*b*c', '/a-b-c', true],
      ['/a*b*c', '/a-c-b', false],
      ['/a*b*c', '/abc', true],
      ['/a*bb*bc', '/abbc', false], // the middle part must not overlap the last one
      ['/{api,v1}/x', '/v1/x', true],
      ['/{api,v{1,2}}/x', '/v2/x', true],
      ['/[a-c]x', '/bx', true],
      ['/[a-c]x', '/dx', false],
      ['/[!a-c]x', '/dx', true],
      ['/\\*', '/*', true],
      ['/\\*', '/x', false],
      ['/?', '/é', true],
      ['/?', '/😀', true], // one code point, not one UTF-16 unit
      ['/a.b', '/axb', false], // '.' is literal
      ['/(x)', '/(x)', true], // RegExp specials are literal
    ];
    for (const [pattern, input, expected] of cases) {
      it(`${pattern} ${expected ? 'matches' : 'does not match'} ${input}`, () => {
        expect(compileGlob(pattern).match(input)).to.equal(expected);
      });
    }
    it('reports invalid patterns instead of throwing, and matches nothing with them', () => {
      for (const bad of ['/[abc', '/{a,b', '/x\\', '/[]', '/[z-a]']) {
        const g = compileGlob(bad);
        expect(g.error, bad).to.not.equal('');
        expect(g.match(bad)).to.equal(false);
      }
    });
    it('knows the literal start of a pattern', () => {
      expect(compileGlob('/api/*/x').literalPrefix).to.equal('/api/');
      expect(compileGlob('*.png').literalPrefix).to.equal('');
      expect(compileGlob('/plain').literalPrefix).to.equal('/plain');
      expect(hasGlobMeta('/plain')).to.equal(false);
      expect(hasGlobMeta('/a{b,c}')).to.equal(true);
    });
  });

  describe('compareCodePoints (Go string order)', () => {
    it('orders like UTF-8 bytes', () => {
      expect(compareCodePoints('/a', '/b')).to.be.lessThan(0);
      expect(compareCodePoints('/a', '/a/')).to.be.lessThan(0);
      expect(compareCodePoints('/a', '/a')).to.equal(0);
      // U+FF5E (BMP) sorts before U+1F600 in UTF-8, although its UTF-16 unit is larger.
      expect(compareCodePoints('/\uff5e', '/😀')).to.be.lessThan(0);
      expect('/\uff5e' < '/😀').to.equal(false);
    });
  });
});
