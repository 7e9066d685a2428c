/** Test fixtures for the policy: the example file, as users will write it. */

/** An alert for a Node debugger port on any address, in any container; everything else allowed. */
export const NODE_DEBUGGER_POLICY = `rules:
  - name: no-node-debugger
    match: { port: "9229", addresses: any }
    action: alert
    severity: critical
default: allow
`;
