// The official TypeScript MCP client (v2) against the real mcp-access-proxy, in one protocol era.
// Usage: node client.mjs ERA COMMAND [ARGS...]   (ERA: legacy | auto)
// Prints one JSON object: what the session saw (tests/conformance/test_ts_client.py checks it).
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const [mode, command, ...args] = process.argv.slice(2);
const transport = new StdioClientTransport({ command, args, env: process.env, stderr: 'ignore' });
const client = new Client({ name: 'ts-conformance', version: '1.0.0' }, { versionNegotiation: { mode } });
const out = {};
await client.connect(transport);
out.era = client.getProtocolEra();
out.version = client.getNegotiatedProtocolVersion();
// The first list waits (bounded) for upstreams; on a loaded machine list again until they are in.
for (let i = 0; i < 60; i++) {
  out.tools = (await client.listTools()).tools.map((t) => t.name);
  if (out.tools.includes('f_echo')) break;
  await new Promise((resolve) => setTimeout(resolve, 500));
}
out.echo = await client.callTool({ name: 'f_echo', arguments: { text: 'hi' } });
const steps = [];
out.progress = await client.callTool(
  { name: 'f_progress', arguments: { steps: 3 } },
  { onprogress: (p) => steps.push(p.progress) },
);
out.steps = steps;
out.denied = await client.callTool({ name: 'f_add', arguments: { a: 1, b: 2 } });
out.invalid = await client.callTool({ name: 'f_echo', arguments: { text: 5 } });
const abort = new AbortController();
const slow = client.callTool({ name: 'f_slow', arguments: { seconds: 30 } }, { signal: abort.signal });
setTimeout(() => abort.abort(), 500);
try {
  await slow;
  out.cancelled = false;
} catch {
  out.cancelled = true;
}
out.after_cancel = await client.callTool({ name: 'f_echo', arguments: { text: 'still here' } });
await client.close();
process.stdout.write(JSON.stringify(out) + '\n');
