/**
 * The `ss` backend (USE_PROC=0), for users who want the seed's tool: `ss -H -l -n -e -t -u` spawned once per
 * scan, its output parsed into the same socket model. Slower than netlink (a process per scan), same result.
 * @module
 */
import type { ListeningSocket, SocketSource } from "./socket.ts";

/** Parse `ss -H -l -n -e -t -u` output (Netid State Recv-Q Send-Q Local Peer [extras]). */
export function parseSs(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 6) continue;
    const [netid, state, , , local] = cols;
    if (netid !== "tcp" && netid !== "udp") continue;
    if (netid === "tcp" && state !== "LISTEN") continue;
    const colon = local.lastIndexOf(":");
    const port = Number(local.slice(colon + 1));
    if (!Number.isInteger(port) || port <= 0) continue;
    let addr = local.slice(0, colon);
    addr = addr.replace(/%[^\]]*$/, "").replace(/%.*\]$/, "]"); // drop "%lo" interface suffixes
    if (addr.startsWith("[") && addr.endsWith("]")) addr = addr.slice(1, -1);
    if (addr === "*") addr = "0.0.0.0";
    const family = addr.includes(":") ? 6 : 4;
    const ino = /\bino:(\d+)/.exec(line);
    const uid = /\buid:(\d+)/.exec(line);
    out.push({
      proto: netid,
      family,
      addr,
      port,
      inode: ino ? Number(ino[1]) : 0,
      uid: uid ? Number(uid[1]) : 0,
    });
  }
  return out;
}

/** Lists sockets by running ss (inside another namespace through nsenter when `netns` is given). */
export class SsSource implements SocketSource {
  readonly name = "ss";
  constructor(readonly netns?: string) {}

  /** Run ss once and parse it. */
  async scan(): Promise<ListeningSocket[]> {
    const ss = ["ss", "-H", "-l", "-n", "-e", "-t", "-u"];
    const [cmd, ...args] = this.netns ? ["nsenter", `--net=${this.netns}`, "--", ...ss] : ss;
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return parseSs(new TextDecoder().decode(out.stdout));
  }

  /** Nothing is held between scans. */
  close(): void {}
}
