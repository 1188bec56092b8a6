// An LLM host's side of MCP, with the official TypeScript SDK: connect to
// a node's /mcp with an agent's token, list the tools, discover the vendor,
// open a session and propose. Prints one JSON line with what it got.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const { ASP_MCP_URL, ASP_TOKEN, ASP_VENDOR, ASP_CAPABILITY, ASP_TERMS } = process.env;

function text(res, name) {
  if (res.isError) throw new Error(`${name}: ${res.content.map((c) => c.text).join(" ")}`);
  return JSON.parse(res.content[0].text);
}

const transport = new StreamableHTTPClientTransport(new URL(ASP_MCP_URL), {
  requestInit: { headers: { Authorization: `Bearer ${ASP_TOKEN}` } },
});
const client = new Client({ name: "asp-ts-test", version: "1.0.0" });
await client.connect(transport);
const { tools } = await client.listTools();

// Discovery reaches the vendor once its node has announced it: ask again
// a bounded number of times.
let found = null;
for (let i = 0; i < 600 && !found; i++) {
  const r = text(await client.callTool({ name: "discover_agents", arguments: { capability: ASP_CAPABILITY } }), "discover_agents");
  found = r.agents.find((a) => a.agentId === ASP_VENDOR) ?? null;
  if (!found) await new Promise((ok) => setTimeout(ok, 100));
}
if (!found) throw new Error("the vendor was never discovered");

const session = text(await client.callTool({ name: "open_session", arguments: { to: ASP_VENDOR } }), "open_session");
const sent = text(
  await client.callTool({
    name: "send_move",
    arguments: { session_id: session.sessionId, performative: "PROPOSE", terms: JSON.parse(ASP_TERMS) },
  }),
  "send_move",
);
const refused = await client.callTool({
  name: "send_move",
  arguments: { session_id: session.sessionId, performative: "ACCEPT", reference_id: sent.messageId },
});
console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    tools: tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
    found,
    sessionId: session.sessionId,
    messageId: sent.messageId,
    refused: { isError: refused.isError ?? false, text: refused.content.map((c) => c.text).join(" ") },
  }),
);
await client.close();
