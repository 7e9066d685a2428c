/**
 * Where a JSON text goes wrong. V8's messages give a position for most errors but not all ("Unexpected token
 * '}', ... is not valid JSON"), so a small scanner finds the first offending character itself.
 * @module
 */
import { utf8Length } from "../infra/utf8.ts";

/** A JSON syntax error located in its text. */
export interface JsonErrorLocation {
  /** Index (UTF-16 code units) of the first character that makes the text invalid. */
  index: number;
  /** The same place as a UTF-8 byte offset, as a client counts the bytes it sent. */
  byteOffset: number;
  /** 1-based line and column of that place. */
  line: number;
  column: number;
  /** V8's description of the error, without its position suffix. */
  reason: string;
}

/** Locate the syntax error in `text` (which JSON.parse rejected with `error`). */
export function locateJsonError(text: string, error: unknown): JsonErrorLocation {
  const index = scanJson(text);
  const message = error instanceof Error ? error.message : String(error);
  const reason = message.replace(/ in JSON at position \d+.*$/, "").replace(
    /, (?:\.\.\.)?".*" is not valid JSON$/s,
    "",
  );
  const before = text.slice(0, index);
  const lastNl = before.lastIndexOf("\n");
  return {
    index,
    byteOffset: utf8Length(before),
    line: (before.match(/\n/g)?.length ?? 0) + 1,
    column: index - lastNl,
    reason,
  };
}

/** Index of the first character at which `text` stops being one JSON value (text.length when it ends early). */
export function scanJson(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (at: number): never => {
    throw at;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++, i++) if (text[i] !== word[k]) fail(i);
  };
  const string = () => {
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail(i);
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i + 1);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail(i + 1);
      } else i++;
    }
    fail(i);
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "-") fail(i + (m ? 1 : 0));
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i);
        string();
        ws();
        if (text[i] !== ":") fail(i);
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail(i);
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail(i);
      }
    }
    if (c === '"') return string();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    fail(i);
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (at) {
    if (typeof at === "number") return Math.min(at, text.length);
    throw at;
  }
}
