// A compressed radix tree over the characters of route paths, answering "which keys are a
// prefix of this request path" in one pass over the path, without allocating.
//
// Values are small integers chosen by the caller (a route's rank in fabio's order, or a bucket
// index); -1 means "no value". Several keys can never share a node, but the caller may insert
// the same key twice (e.g. `/Api` and `/api` under iprefix): the smaller value is kept, because
// the caller's values are ranks and the lower rank wins.

/** Returned by `longestPrefix` when folding case hit a non-ASCII character. */
export const needsLowerCase = -2;

/** Fan-out above which a node indexes its children with a Map instead of a linear scan. */
const mapThreshold = 8;

/**
 * The child lists of every leaf (most nodes): never written to, since `addChild` gives a node
 * its own lists with its first child. Not frozen, so lookups see one array kind.
 */
const noCodes: number[] = [];
const noChildren: TrieNode[] = [];

class TrieNode {
  /** Edge label from the parent (the root's is ''). */
  label: string;
  value = -1;
  /** Lowest value on the path from the root to this node, this node included. */
  chainBest = -1;
  codes: number[] = noCodes;
  children: TrieNode[] = noChildren;
  byCode: Map<number, TrieNode> | undefined = undefined;

  constructor(label: string) {
    this.label = label;
  }

  child(code: number): TrieNode | undefined {
    if (this.byCode !== undefined) return this.byCode.get(code);
    const i = this.codes.indexOf(code);
    return i < 0 ? undefined : this.children[i];
  }

  addChild(node: TrieNode): void {
    const code = node.label.charCodeAt(0);
    if (this.codes === noCodes) {
      this.codes = [code];
      this.children = [node];
    } else {
      this.codes.push(code);
      this.children.push(node);
    }
    if (this.byCode !== undefined) this.byCode.set(code, node);
    else if (this.codes.length > mapThreshold) {
      this.byCode = new Map();
      for (let i = 0; i < this.codes.length; i++)
        this.byCode.set(this.codes[i] as number, this.children[i] as TrieNode);
    }
  }

  replaceChild(code: number, node: TrieNode): void {
    const i = this.codes.indexOf(code);
    this.children[i] = node;
    if (this.byCode !== undefined) this.byCode.set(code, node);
  }
}

export class PathTrie {
  private readonly root = new TrieNode('');
  private finished = false;

  /** Adds `key` with `value` (>= 0). Build time only; call `finish()` before looking up. */
  insert(key: string, value: number): void {
    if (this.finished) throw new Error('PathTrie: insert after finish');
    let node = this.root;
    let i = 0;
    for (;;) {
      if (i === key.length) {
        node.value = node.value < 0 ? value : Math.min(node.value, value);
        return;
      }
      const code = key.charCodeAt(i);
      const next = node.child(code);
      if (next === undefined) {
        const leaf = new TrieNode(key.slice(i));
        leaf.value = value;
        node.addChild(leaf);
        return;
      }
      const label = next.label;
      let j = 0;
      while (j < label.length && i + j < key.length && label.charCodeAt(j) === key.charCodeAt(i + j)) j++;
      if (j === label.length) {
        node = next;
        i += j;
        continue;
      }
      // Split the edge at j: node -> mid(label[0:j]) -> next(label[j:]).
      const mid = new TrieNode(label.slice(0, j));
      next.label = label.slice(j);
      mid.addChild(next);
      node.replaceChild(code, mid);
      node = mid;
      i += j;
    }
  }

  /** Freezes the trie and computes each node's `chainBest`. */
  finish(): this {
    this.finished = true;
    const stack: TrieNode[] = [this.root];
    this.root.chainBest = this.root.value;
    while (stack.length > 0) {
      const n = stack.pop() as TrieNode;
      // Lists grown by push keep spare capacity: exact-size copies for the trie's lifetime.
      if (n.codes.length > 1) {
        n.codes = n.codes.slice();
        n.children = n.children.slice();
      }
      for (const c of n.children) {
        c.chainBest = lowest(n.chainBest, c.value);
        stack.push(c);
      }
    }
    return this;
  }

  /**
   * Among the keys that are a prefix of `path`, the lowest value (`chainBest` of the deepest
   * one), or -1. With `fold`, ASCII letters of `path` are lowercased on the fly (keys must have
   * been inserted lowercased); a non-ASCII character returns `needsLowerCase` and the caller
   * retries with `path.toLowerCase()` and no folding.
   */
  longestPrefix(path: string, fold: boolean): number {
    let node = this.root;
    let best = node.chainBest;
    let i = 0;
    const n = path.length;
    while (i < n) {
      let code = path.charCodeAt(i);
      if (fold) {
        if (code >= 0x41 && code <= 0x5a) code |= 0x20;
        else if (code >= 0x80) return needsLowerCase;
      }
      const next = node.child(code);
      if (next === undefined) break;
      const label = next.label;
      const m = label.length;
      if (i + m > n) break;
      let j = 1;
      for (; j < m; j++) {
        let c = path.charCodeAt(i + j);
        if (fold) {
          if (c >= 0x41 && c <= 0x5a) c |= 0x20;
          else if (c >= 0x80) return needsLowerCase;
        }
        if (c !== label.charCodeAt(j)) break;
      }
      if (j < m) break;
      i += m;
      node = next;
      if (node.value >= 0) best = node.chainBest;
    }
    return best;
  }

  /**
   * The value of the deepest key that is an element-wise (`/`-bounded) prefix of `path`, or -1.
   * Keys are `segmentKey`s: no trailing slash except the root `/`, which matches everything.
   */
  longestSegment(path: string): number {
    let node = this.root;
    let best = -1;
    let i = 0;
    const n = path.length;
    while (i < n) {
      const next = node.child(path.charCodeAt(i));
      if (next === undefined) break;
      const label = next.label;
      const m = label.length;
      if (i + m > n) break;
      let j = 1;
      while (j < m && path.charCodeAt(i + j) === label.charCodeAt(j)) j++;
      if (j < m) break;
      i += m;
      node = next;
      // A key ending in '/' can only be the root path '/': a plain prefix is enough there.
      if (node.value >= 0 && (i === n || path.charCodeAt(i) === 0x2f || path.charCodeAt(i - 1) === 0x2f)) {
        best = node.value;
      }
    }
    return best;
  }

  /** Appends the values of every key that is a prefix of `path` (shortest first) to `out`. */
  collectPrefixes(path: string, out: number[]): void {
    let node = this.root;
    if (node.value >= 0) out.push(node.value);
    let i = 0;
    const n = path.length;
    while (i < n) {
      const next = node.child(path.charCodeAt(i));
      if (next === undefined) return;
      const label = next.label;
      const m = label.length;
      if (i + m > n) return;
      for (let j = 1; j < m; j++) if (path.charCodeAt(i + j) !== label.charCodeAt(j)) return;
      i += m;
      node = next;
      if (node.value >= 0) out.push(node.value);
    }
  }
}

function lowest(a: number, b: number): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}
