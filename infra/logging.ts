/**
 * LogTape set-up shared by every portwatch program: the program's own log on stderr (level from LOG_LEVEL), and
 * the seed's human port lines (`[2026-11-25 08:00:00 UTC] New port opened: 5000 (pids: 123)`) under the
 * category ["portwatch", "ports"], also on stderr, so stdout stays pure JSON lines when events go there.
 * @module
 */
import { configure, getTextFormatter, type LogLevel, type LogRecord } from "@logtape/logtape";

const enc = new TextEncoder();

/** The seed's line: `[YYYY-MM-DD HH:MM:SS UTC] message`. */
export function formatHumanLine(record: LogRecord): string {
  const ts = new Date(record.timestamp).toISOString().replace("T", " ").slice(0, 19);
  const text = record.message.map((part) => (typeof part === "string" ? part : String(part))).join("");
  return `[${ts} UTC] ${text}\n`;
}

function writeStderr(text: string): void {
  const buf = enc.encode(text);
  let off = 0;
  while (off < buf.length) off += Deno.stderr.writeSync(buf.subarray(off));
}

/** Sink for the human lines. */
function humanSink(record: LogRecord): void {
  writeStderr(formatHumanLine(record));
}

const textFormatter = getTextFormatter({ value: "bare", timestamp: "time" });

/** Sink for the programs' own log: one text line per record on stderr, string values unquoted. */
function stderrSink(record: LogRecord): void {
  writeStderr(textFormatter(record));
}

/** Configure LogTape once for a program; `level` is the lowest level shown. */
export async function setupLogging(level: LogLevel = "info"): Promise<void> {
  await configure({
    reset: true,
    sinks: { console: stderrSink, human: humanSink },
    loggers: [
      { category: ["portwatch", "ports"], lowestLevel: "info", sinks: ["human"], parentSinks: "override" },
      { category: ["portwatch"], lowestLevel: level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}
