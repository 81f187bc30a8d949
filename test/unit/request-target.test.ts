// Host and absolute-form checks (lib/proxy/request-target.ts), run before the route lookup.

import { expect } from 'chai';
import fc from 'fast-check';
import {
  type AbsoluteTarget,
  isValidHost,
  parseAbsoluteForm,
  setHostHeader,
} from '../../lib/proxy/request-target.ts';

describe('request target: Host', () => {
  for (const h of [
    '',
    'a.example',
    'a.example:8080',
    'A-B_c~d.example.',
    '127.0.0.1',
    '[::1]',
    '[::1]:443',
    'a.example:',
    'xn--bcher-kva.example',
  ]) {
    it(`${JSON.stringify(h)} is valid`, () => expect(isValidHost(h)).to.equal(true));
  }
  for (const h of [
    'a b',
    'a/b',
    'a@b',
    'a\\b',
    '[::1',
    '[]',
    'a:80x',
    'a:123456',
    ':80',
    'a\r\nb',
    'a\u0000',
    'a?b',
    'a#b',
    '[::1]x',
    'ä.example',
  ]) {
    it(`${JSON.stringify(h)} is invalid`, () => expect(isValidHost(h)).to.equal(false));
  }
  it('never accepts a control character, space, slash or @ (fuzzed)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        if (isValidHost(s)) expect(s).to.not.match(/[\u0000-\u0020\u007f/@\\?#]/);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('request target: absolute-form', () => {
  const out: AbsoluteTarget = { authority: '', pathStart: 0 };
  const ok: [string, string, string][] = [
    ['http://a.example/x?q', 'a.example', '/x?q'],
    ['HTTPS://a.example:8443', 'a.example:8443', ''],
    ['http://[::1]:80/p', '[::1]:80', '/p'],
    ['http://a.example?q=1', 'a.example', '?q=1'],
  ];
  for (const [url, authority, rest] of ok) {
    it(`${url} -> ${authority} + ${JSON.stringify(rest)}`, () => {
      expect(parseAbsoluteForm(url, out)).to.equal(true);
      expect(out.authority).to.equal(authority);
      expect(url.slice(out.pathStart)).to.equal(rest);
    });
  }
  for (const url of [
    'ftp://a/x',
    'http:///x',
    'http://u@a/x',
    'http://a b/x',
    'a.example/x',
    '//a/x',
    'javascript://a/',
  ]) {
    it(`${url} is refused`, () => expect(parseAbsoluteForm(url, out)).to.equal(false));
  }
  it('setHostHeader replaces the first Host or appends one', () => {
    const raw = ['X', '1', 'host', 'old', 'Host', 'second'];
    setHostHeader(raw, 'new');
    expect(raw).to.deep.equal(['X', '1', 'host', 'new', 'Host', 'second']);
    const none = ['X', '1'];
    setHostHeader(none, 'h');
    expect(none).to.deep.equal(['X', '1', 'Host', 'h']);
  });
});
