/** A bad setting: names the variable, the value given and what is accepted. */
export class ConfigError extends Error {
  /**
   * @param setting the variable or flag, e.g. `SCAN_INTERVAL`
   * @param value the value given
   * @param accepted what would have been accepted, e.g. "a number of seconds > 0, such as 1 or 0.25"
   */
  constructor(readonly setting: string, readonly value: string, readonly accepted: string) {
    super(`${setting}=${JSON.stringify(value)} is not valid: expected ${accepted}`);
    this.name = "ConfigError";
  }
}
