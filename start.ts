/**
 * `deno task start`: the main job. Today it runs the listener (the watcher engines join it as they land):
 * events POSTed to http://127.0.0.1:8080/ingest are stored in ./logs/portwatcher.log and served back.
 */
import { ConfigError } from "./events/env.ts";
import { startListener } from "./listener/main.ts";

if (import.meta.main) {
  try {
    const running = await startListener(Deno.args);
    if (running) {
      const stop = async () => {
        await running.shutdown();
        Deno.exit(0);
      };
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`portwatch: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}
