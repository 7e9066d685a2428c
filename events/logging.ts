/** LogTape set-up shared by every portwatch program: human lines on stderr, level from LOG_LEVEL. */
import { configure, getConsoleSink, type LogLevel } from "@logtape/logtape";

/** Configure LogTape once for a program; `level` is the lowest level shown. */
export async function setupLogging(level: LogLevel = "info"): Promise<void> {
  await configure({
    reset: true,
    sinks: { console: getConsoleSink() },
    loggers: [
      { category: ["portwatch"], lowestLevel: level, sinks: ["console"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}
