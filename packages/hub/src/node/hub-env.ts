import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HUB_ENDPOINT, normalizeHubEndpoint } from '../url.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The Hub settings of the environment, read the way huggingface_hub reads them. */
export interface HubEnvironment {
  /** `HF_ENDPOINT`, else https://huggingface.co. */
  readonly endpoint: string;
  /** `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
  readonly cacheDir: string;
  /** `HF_HUB_OFFLINE` is 1, ON, YES or TRUE (any case). */
  readonly offline: boolean;
  /** `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH` / `$HF_HOME/token` (`hf auth login`). */
  readonly token: string | undefined;
  /** `HF_HUB_DOWNLOAD_TIMEOUT` (seconds) in ms, if set. */
  readonly timeoutMs: number | undefined;
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

/** huggingface_hub's `_is_true`. */
const isTrue = (value: string | undefined): boolean =>
  ['1', 'ON', 'YES', 'TRUE'].includes((value ?? '').trim().toUpperCase());

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
function hfHome(env: Env): string {
  return (
    nonEmpty(env.HF_HOME) ?? join(nonEmpty(env.XDG_CACHE_HOME) ?? join(homedir(), '.cache'), 'huggingface')
  );
}

function readToken(env: Env): string | undefined {
  const fromEnv = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv !== undefined) return fromEnv;
  try {
    return nonEmpty(readFileSync(nonEmpty(env.HF_TOKEN_PATH) ?? join(hfHome(env), 'token'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Reads the Hub settings from `env` (default `process.env`). The token is never logged. */
export function hubEnvironment(env: Env = process.env): HubEnvironment {
  const timeout = Number(nonEmpty(env.HF_HUB_DOWNLOAD_TIMEOUT));
  return {
    endpoint: normalizeHubEndpoint(nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_HUB_ENDPOINT),
    cacheDir: nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE) ?? join(hfHome(env), 'hub'),
    offline: isTrue(env.HF_HUB_OFFLINE),
    token: readToken(env),
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : undefined,
  };
}
