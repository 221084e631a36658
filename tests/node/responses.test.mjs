// The gateway's /v1/responses through Node clients, unmodified: the openai SDK and the Vercel
// AI SDK's default OpenAI provider (openai(model) from @ai-sdk/openai calls the Responses API).
// Run by tests/test_responses_node.py with GATEWAY_URL set; the emulator's "faulty" model is
// configured there to fail every stream at its second token.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, generateText, streamText } from 'ai';
import OpenAI from 'openai';

const gateway = process.env.GATEWAY_URL;
assert.ok(gateway, 'GATEWAY_URL must name a running gateway');
const client = new OpenAI({ baseURL: `${gateway}/v1`, apiKey: 'unused', maxRetries: 0 });
const provider = createOpenAI({ baseURL: `${gateway}/v1`, apiKey: 'unused' });

test('openai SDK: responses.create, buffered', async () => {
  const r = await client.responses.create({
    model: 'tgi3',
    input: 'Hello there',
    instructions: 'Be brief.',
    max_output_tokens: 8,
    metadata: { from: 'node' },
  });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, 'message');
  assert.equal(r.output[0].content[0].type, 'output_text');
  assert.ok(r.output_text.length > 0, 'the SDK joins output_text');
  assert.equal(r.output_text, r.output[0].content[0].text);
  assert.equal(r.usage.output_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 8);
  assert.deepEqual(r.metadata, { from: 'node' });
});

test('openai SDK: responses.create, streamed, same text', async () => {
  const args = { model: 'tgi3', input: 'Hi', max_output_tokens: 12, temperature: 0 };
  const whole = await client.responses.create(args);
  const stream = await client.responses.create({ ...args, stream: true });
  const types = [];
  let text = '';
  let last;
  for await (const event of stream) {
    types.push(event.type);
    assert.equal(event.sequence_number, types.length - 1);
    if (event.type === 'response.output_text.delta') text += event.delta;
    last = event;
  }
  assert.deepEqual(types.slice(0, 4), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
  ]);
  assert.deepEqual(types.slice(-4), [
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.incomplete',
  ]);
  assert.equal(text, whole.output_text);
  assert.deepEqual(last.response.usage, whole.usage);
});

test('openai SDK: responses.stream helper, final response', async () => {
  const stream = client.responses.stream({ model: 'tgi3', input: 'Hi', max_output_tokens: 400 });
  let text = '';
  stream.on('response.output_text.delta', (event) => {
    text += event.delta;
  });
  const final = await stream.finalResponse();
  assert.equal(final.status, 'completed');
  // the helper's final response is its snapshot, without the output_text convenience field
  assert.equal(final.output[0].content[0].text, text);
});

test('openai SDK: stateful features are 400 with param', async () => {
  await assert.rejects(
    client.responses.create({ model: 'tgi3', input: 'Hi', previous_response_id: 'resp_1' }),
    (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.param, 'previous_response_id');
      return true;
    },
  );
});

test('openai SDK: a failure mid-stream is a response.failed event', async () => {
  const stream = await client.responses.create({ model: 'faulty', input: 'Hi', stream: true });
  const events = [];
  for await (const event of stream) events.push(event);
  const last = events.at(-1);
  assert.equal(last.type, 'response.failed');
  assert.equal(last.response.status, 'failed');
  assert.equal(last.response.error.code, 'server_error');
});

test('AI SDK: generateText with openai(model)', async () => {
  const result = await generateText({
    model: provider('tgi3'),
    system: 'Be brief.',
    prompt: 'Hello there',
    maxOutputTokens: 8,
  });
  assert.ok(result.text.length > 0);
  assert.equal(result.finishReason, 'length');
  assert.equal(result.usage.outputTokens, 8);
  assert.ok(result.usage.inputTokens > 0);
  assert.match(result.response.id, /^resp_/);
});

test('AI SDK: streamText with openai(model), same text', async () => {
  const args = { model: provider('tgi3'), prompt: 'Hi', maxOutputTokens: 400, temperature: 0 };
  const whole = await generateText(args);
  const result = streamText(args);
  let text = '';
  for await (const delta of result.textStream) text += delta;
  assert.equal(text, whole.text);
  assert.equal(await result.finishReason, 'stop');
  assert.equal((await result.usage).outputTokens, whole.usage.outputTokens);
});

test('AI SDK: messages with an assistant turn', async () => {
  const result = await generateText({
    model: provider('tgi3'),
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'Tell me more.' },
    ],
    maxOutputTokens: 4,
  });
  assert.equal(result.usage.outputTokens, 4);
});

test('AI SDK: errors are APICallError with the status', async () => {
  await assert.rejects(
    generateText({ model: provider('no-such-model'), prompt: 'Hi', maxRetries: 0 }),
    (error) => {
      assert.ok(APICallError.isInstance(error), String(error));
      assert.equal(error.statusCode, 404);
      return true;
    },
  );
});

test('AI SDK: a failure mid-stream reaches onError and the error part', async () => {
  const errors = [];
  const result = streamText({
    model: provider('faulty'),
    prompt: 'Hi',
    onError: ({ error }) => errors.push(error),
  });
  const parts = [];
  for await (const part of result.fullStream) parts.push(part.type);
  assert.ok(parts.includes('error'), parts.join(','));
  assert.equal(errors.length, 1);
  assert.match(String(errors[0].message ?? errors[0]), /allotted time|time/i);
});
