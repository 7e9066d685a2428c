/** UTF-8 sizes of strings, without encoding them. @module */

/** Bytes of `s` in UTF-8, as TextEncoder would write it, without encoding it. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else n += 2; // the rest of the BMP, and a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  return n;
}
