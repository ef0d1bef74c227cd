// The JS Agents SDK's TwilioRealtimeTransportLayer as a Twilio media-stream app (a bridge we did not write),
// pointed at a Realtime server: node twilio_bridge.mjs ws://127.0.0.1:PORT/v1/realtime
// Prints "listening on ws://127.0.0.1:PORT/media-stream", then one line per notable event.
import { WebSocketServer } from 'ws';
import { RealtimeAgent, RealtimeSession } from '@openai/agents/realtime';
import { TwilioRealtimeTransportLayer } from '@openai/agents-extensions';

const modelUrl = process.argv[2];
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}/media-stream`));
wss.on('connection', async (ws) => {
  const transport = new TwilioRealtimeTransportLayer({ twilioWebSocket: ws, url: modelUrl });
  const agent = new RealtimeAgent({ name: 'Echo', instructions: 'Say back what you hear.' });
  const session = new RealtimeSession(agent, { transport, model: 'gpt-realtime' });
  session.on('error', (e) => console.log('error', String(e?.error?.message ?? e?.error ?? e)));
  session.on('audio_interrupted', () => console.log('audio interrupted'));
  ws.on('close', () => {
    console.log('call ended');
    session.close();
    wss.close();
  });
  await session.connect({ apiKey: 'sk-local', url: modelUrl });
  console.log('connected');
});
