// A configuration mistake. Its message is one line that names the key (as the user wrote it:
// `--strategy`, `CAIRN_STRATEGY` or `cairn.yaml: strategy`) and the expected form, because
// that line is all the user sees before `cairn` exits with code 2.

export class ConfigError extends Error {
  /** The key as the user spelled it, e.g. `--listen` or `CAIRN_LISTEN`. */
  readonly key: string;

  constructor(key: string, detail: string) {
    super(`cairn: ${key}: ${detail}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** Quotes a user value for an error message, keeping the message on one line. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}...` : value);
}
