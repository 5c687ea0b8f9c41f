// The genuine @ably/ai-transport 0.8.0 Vercel codec as an oracle for the Python codec's tests.
// Usage: node js_codec.mjs <node_modules dir>  with a JSON request on stdin, a JSON answer on stdout.
//   {"mode": "encode", "chunks": [...], "headers": {...}, "messageId": "..."}   -> {"ops": [...]}
//   {"mode": "encode-input", "inputs": [{"input": ..., "headers": {...}, "messageId": "..."}]} -> {"ops": [...]}
//   {"mode": "decode", "messages": [<ably-js InboundMessage>...]}                -> {"events": [...], "messages": [...]}
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const nodeModules = process.argv[2];
const entry = join(nodeModules, '@ably/ai-transport/dist/vercel/ably-ai-transport-vercel.js');
const { createUIMessageCodec } = await import(pathToFileURL(entry).href);
const codec = createUIMessageCodec();
const request = JSON.parse(readFileSync(0, 'utf8'));

const recordingWriter = (ops) => {
  let counter = 0;
  const next = () => `${String(++counter).padStart(12, '0')}@fake`;
  const record = (op, serial, message) => ops.push({ op, serial, name: message.name, data: message.data, extras: message.extras });
  return {
    publish: async (messages) => {
      const list = Array.isArray(messages) ? messages : [messages];
      const serials = list.map((message) => {
        const serial = next();
        record('publish', serial, message);
        return serial;
      });
      return { serials };
    },
    appendMessage: async (message) => {
      next();
      record('append', message.serial, message);
      return {};
    },
    updateMessage: async (message) => {
      next();
      record('update', message.serial, message);
      return {};
    },
  };
};

const answer = {};
if (request.mode === 'encode') {
  const ops = [];
  const encoder = codec.createEncoder(recordingWriter(ops), {
    extras: { headers: request.headers },
    messageId: request.messageId,
  });
  try {
    for (const chunk of request.chunks) await encoder.publishOutput(chunk);
    await encoder.cancelStreams();
    await encoder.close();
  } catch (error) {
    answer.error = String(error?.message ?? error);
  }
  answer.ops = ops;
} else if (request.mode === 'encode-input') {
  const ops = [];
  const encoder = codec.createEncoder(recordingWriter(ops), {});
  for (const { input, headers, messageId } of request.inputs) {
    await encoder.publishInput(input, { extras: { headers }, messageId });
  }
  answer.ops = ops;
} else if (request.mode === 'decode') {
  const decoder = codec.createDecoder();
  let projection = codec.init();
  const events = [];
  for (const message of request.messages) {
    const { inputs, outputs } = decoder.decode(message);
    const transport = message.extras?.ai?.transport ?? {};
    const meta = { messageId: transport['codec-message-id'], serial: message.serial };
    for (const event of inputs) {
      events.push({ direction: 'input', event });
      projection = codec.fold(projection, { direction: 'input', event }, meta);
    }
    for (const event of outputs) {
      events.push({ direction: 'output', event });
      projection = codec.fold(projection, { direction: 'output', event }, meta);
    }
  }
  answer.events = events;
  answer.messages = codec.getMessages(projection);
}
process.stdout.write(JSON.stringify(answer));
