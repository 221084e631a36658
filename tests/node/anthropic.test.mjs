// The gateway's /v1/messages through Anthropic's TypeScript SDK, unmodified. Run by
// tests/test_anthropic_clients.py with GATEWAY_URL and MODEL set (a TGI model, then a vLLM one).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

const gateway = process.env.GATEWAY_URL;
const model = process.env.MODEL;
assert.ok(gateway && model, 'GATEWAY_URL and MODEL must be set');
const client = new Anthropic({ baseURL: gateway, apiKey: 'sk-test', maxRetries: 0 });

test('messages.stream: text events, then the final message', async () => {
  const stream = client.messages.stream({
    model,
    max_tokens: 16,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'Hello there' }],
  });
  let text = '';
  stream.on('text', (delta) => {
    text += delta;
  });
  const message = await stream.finalMessage();
  assert.match(message.id, /^msg_/);
  assert.equal(message.role, 'assistant');
  assert.equal(message.model, model);
  assert.equal(message.content[0].type, 'text');
  assert.equal(message.content[0].text, text);
  assert.ok(text.length > 0);
  assert.ok(['end_turn', 'max_tokens'].includes(message.stop_reason));
  assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);
});

test('messages.create: buffered answer', async () => {
  const message = await client.messages.create({
    model,
    max_tokens: 4,
    messages: [{ role: 'user', content: 'Hi' }],
  });
  assert.equal(message.type, 'message');
  assert.equal(message.stop_reason, 'max_tokens');
  assert.equal(message.usage.output_tokens, 4);
});

test('errors: an unknown model is a NotFoundError', async () => {
  await assert.rejects(
    client.messages.create({ model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'Hi' }] }),
    (error) => error instanceof Anthropic.NotFoundError && error.error.error.type === 'not_found_error',
  );
});
