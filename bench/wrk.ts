/**
 * Runs wrk (https://github.com/wg/wrk) and parses its report: requests, requests/s, latency percentiles from
 * `--latency`, non-2xx responses and socket errors.
 * @module
 */

/** What one wrk run measured. */
export interface WrkResult {
  /** Completed requests (any status). */
  requests: number;
  /** Requests per second over the run. */
  rps: number;
  /** Median latency in milliseconds. */
  p50Ms: number;
  /** 99th percentile latency in milliseconds. */
  p99Ms: number;
  /** Responses with status >= 400 (wrk's "Non-2xx or 3xx responses"). */
  non2xx: number;
  /** Socket errors: connect + read + write + timeout. */
  errors: number;
}

/** How to run wrk. */
export interface WrkOptions {
  url: string;
  connections: number;
  /** Duration in whole seconds. */
  seconds: number;
  /** Path of a Lua script (`-s`). */
  script?: string;
  /** Threads (`-t`); default 1. */
  threads?: number;
  /** Per-request timeout (`--timeout`), e.g. "5s". */
  timeout?: string;
}

const TIME_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** A wrk duration such as `713.00us`, `2.72ms`, `1.24s` or `0.00us`, in milliseconds. */
export function parseDuration(text: string): number {
  const m = text.trim().match(/^([\d.]+)(us|ms|s|m|h)$/);
  if (!m) throw new Error(`not a wrk duration: ${JSON.stringify(text)}`);
  return Number(m[1]) * TIME_UNITS[m[2]];
}

/** Parse wrk's report (stdout of `wrk --latency`); throws when it is not a complete report. */
export function parseWrk(output: string): WrkResult {
  const need = (re: RegExp, what: string) => {
    const m = output.match(re);
    if (!m) throw new Error(`wrk output has no ${what}:\n${output}`);
    return m;
  };
  const percentile = (p: number) => {
    const m = need(new RegExp(`^\\s*${p}%\\s+([\\d.]+(?:us|ms|s|m|h))\\s*$`, "m"), `${p}% latency line`);
    return parseDuration(m[1]);
  };
  need(/Latency Distribution/, "latency distribution (run wrk with --latency)");
  const requests = Number(need(/^\s*(\d+) requests in /m, "request count")[1]);
  const rps = Number(need(/^Requests\/sec:\s+([\d.]+)/m, "Requests/sec")[1]);
  const non2xx = Number(output.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
  const sock = output.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const errors = sock ? sock.slice(1, 5).reduce((sum, n) => sum + Number(n), 0) : 0;
  return { requests, rps, p50Ms: percentile(50), p99Ms: percentile(99), non2xx, errors };
}

/** Run wrk to completion and parse its report; throws with wrk's output when it fails. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    "--latency",
  ];
  if (options.timeout) args.push("--timeout", options.timeout);
  if (options.script) args.push("-s", options.script);
  args.push(options.url);
  const out = await new Deno.Command("wrk", { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    throw new Error(`wrk ${args.join(" ")} failed (exit ${out.code}):\n${stdout}${stderr}`);
  }
  return parseWrk(stdout);
}

/** Text as a Lua string literal: quotes, backslashes, control and non-ASCII bytes escaped as `\ddd`. */
export function luaString(text: string): string {
  let out = '"';
  for (const b of new TextEncoder().encode(text)) {
    if (b === 0x22 || b === 0x5c) out += "\\" + String.fromCharCode(b);
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\" + String(b).padStart(3, "0");
  }
  return out + '"';
}

/** A wrk Lua script that sends every request as `method` with `body` and a Content-Type. */
export function postScript(body: string, contentType: string, method = "POST"): string {
  return [
    `wrk.method = ${luaString(method)}`,
    `wrk.headers["Content-Type"] = ${luaString(contentType)}`,
    `wrk.body = ${luaString(body)}`,
    "",
  ].join("\n");
}
