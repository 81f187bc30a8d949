// One place that turns Cairn's etcd settings into an `etcd3` client, shared by the registry
// adapter and `cairn register`.
//
// etcd3's defaults suit a long-lived service that can wait, not a load balancer that must notice
// a dead etcd and recover quickly when it comes back:
// - its per-host circuit breaker stops calling a host for 5 s after three failures, and its
//   watch streams back off to 30 s: both would delay recovery long after etcd is back. Here a
//   host is always tried; the callers (the adapter's relist loop, the registrar's sync loop) own
//   the backoff, and etcd3's watch backoff is capped at 2 s;
// - unary calls have no deadline, so a hung etcd (stopped, partitioned) would hang a list forever:
//   every unary call gets `timeoutMs`;
// - gRPC's subchannel reconnect backoff grows to 2 minutes: capped at 1 s;
// - an idle watch stream on a dead peer is only noticed by gRPC keepalive pings (10 s; etcd's
//   default enforcement minimum is 5 s).
//
// The cockatiel policy interfaces are satisfied structurally (etcd3 only calls `execute`), so
// Cairn does not depend on cockatiel directly.

import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, isRecoverableError } from 'etcd3';

export interface EtcdConnectionOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379` (https:// turns TLS on). */
  readonly endpoints: readonly string[];
  /** Password auth. */
  readonly username?: string;
  readonly password?: string;
  /** PEM file of the CA that signed etcd's certificate (default: the system's roots). */
  readonly caFile?: string;
  /** PEM client certificate and key, for etcd's `--client-cert-auth`. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Deadline of one unary call, ms (default 5000). */
  readonly timeoutMs?: number;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/** The etcd3 options for these settings. Reads the TLS files; throws with a one-line reason. */
export function etcdClientOptions(o: EtcdConnectionOptions): IOptions {
  if (o.endpoints.length === 0) throw new Error('no etcd endpoints given');
  const timeoutMs = o.timeoutMs ?? 5000;
  if ((o.username === undefined) !== (o.password === undefined)) {
    throw new Error('etcd password auth needs both a user and a password');
  }
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) {
    throw new Error('an etcd client certificate needs both a certificate and a key file');
  }
  const tls = o.caFile !== undefined || o.certFile !== undefined;
  const credentials = tls
    ? {
        // grpc-js takes null for "the system's roots"; etcd3's type says Buffer.
        rootCertificate: (o.caFile !== undefined ? readPem(o.caFile, 'CA') : null) as Buffer,
        ...(o.certFile !== undefined ? { certChain: readPem(o.certFile, 'certificate') } : {}),
        ...(o.keyFile !== undefined ? { privateKey: readPem(o.keyFile, 'key') } : {}),
      }
    : undefined;
  const attempts = o.endpoints.length;
  return {
    hosts: [...o.endpoints],
    ...(credentials !== undefined ? { credentials } : {}),
    ...(o.username !== undefined && o.password !== undefined
      ? {
          auth: {
            username: o.username,
            password: o.password,
            callOptions: () => ({ deadline: Date.now() + timeoutMs }),
          },
        }
      : {}),
    dialTimeout: timeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
      'grpc.max_receive_message_length': -1,
    },
    faultHandling: {
      host: () => passThrough,
      // With several endpoints, a call that failed on one host is tried once on each other one.
      global: attempts > 1 ? tryEachHost(attempts) : passThrough,
      watchBackoff: new CappedBackoff(0, 100, 2_000),
    },
  };
}

export function createEtcdClient(o: EtcdConnectionOptions): Etcd3 {
  return new Etcd3(etcdClientOptions(o));
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason = code === 'ENOENT' ? 'no such file' : e instanceof Error ? e.message : String(e);
    throw new Error(`cannot read the etcd TLS ${what} ${JSON.stringify(file)}: ${reason}`, { cause: e });
  }
}

const neverAborted = new AbortController().signal;

/** Runs the call once. */
const passThrough = {
  execute: (fn: (ctx: { signal: AbortSignal }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: neverAborted })),
} as unknown as Policy;

/** Retries a recoverable failure up to `attempts` calls in all (etcd3 picks the next host). */
function tryEachHost(attempts: number): Policy {
  return {
    execute: async (fn: (ctx: { signal: AbortSignal }) => unknown) => {
      let last: unknown;
      for (let i = 0; i < attempts; i++) {
        try {
          return await fn({ signal: neverAborted });
        } catch (e) {
          if (!isRecoverableError(e as Error)) throw e;
          last = e;
        }
      }
      throw last;
    },
  } as unknown as Policy;
}

/** Doubling delays from `min` to `max`; `duration` 0 is the factory etcd3 calls `next()` on. */
class CappedBackoff {
  readonly duration: number;
  private readonly min: number;
  private readonly max: number;

  constructor(duration: number, min: number, max: number) {
    this.duration = duration;
    this.min = min;
    this.max = max;
  }

  next(): CappedBackoff {
    const d = this.duration === 0 ? this.min : Math.min(this.duration * 2, this.max);
    return new CappedBackoff(d, this.min, this.max);
  }
}
