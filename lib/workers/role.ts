// How a process knows it is a worker of `--workers N`: the control process starts the same
// `cairn` entry again with this marker in the environment and an IPC channel. Kept tiny: the CLI
// checks it before anything else loads.

export const workerEnv = 'CAIRN_INTERNAL_WORKER';

/** True in a process the control process started as a worker. */
export function isWorkerProcess(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  return env[workerEnv] === '1' && typeof process.send === 'function';
}
