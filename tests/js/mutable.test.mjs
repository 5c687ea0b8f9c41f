// (c) Mutable messages with ably-js's RealtimeChannel.appendMessage / updateMessage / deleteMessage:
// a subscriber attached before the create sees the create and then append deltas; one attached
// mid-stream first sees the aggregate so far; one attaching afterwards (rewind) and history and
// getMessage see the whole aggregate at the create's serial.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Ably, FORMATS, closeAll, collector, connected, realtime, uniqueChannel } from './helpers.mjs';

const TOKENS = [',', ' ', 'w', 'o', 'r', 'l', 'd', '!', ' ', '\u{1F44B}'];
const FIRST = 'Hello';
const AGGREGATE = FIRST + TOKENS.join('');
const EXTRAS = { headers: { status: 'streaming' } };

const joined = (messages) => messages.map((m) => m.data).join('');

for (const format of FORMATS) {
  test(`append deltas, aggregates, update and delete (${format.name})`, { timeout: 20000 }, async () => {
    const writer = realtime({ binary: format.binary, clientId: 'writer' });
    const early = realtime({ binary: format.binary, clientId: 'early' });
    const mid = realtime({ binary: !format.binary, clientId: 'mid' });
    const late = realtime({ binary: format.binary, clientId: 'late' });
    try {
      await Promise.all([writer, early, mid, late].map((client) => connected(client)));
      const name = uniqueChannel('js-mutable');
      const channel = writer.channels.get(name);
      const earlyInbox = await collector(early.channels.get(name));

      const created = await channel.publish({ name: 'stream', data: FIRST, extras: EXTRAS });
      const serial = created.serials[0];
      assert.equal(typeof serial, 'string');
      await earlyInbox.until(1);

      const midInbox = await collector(mid.channels.get(name));

      // A few appends one at a time, then the rest pipelined as a token stream would send them.
      const results = [];
      for (const token of TOKENS.slice(0, 3)) results.push(await channel.appendMessage({ serial, data: token }));
      results.push(...(await Promise.all(TOKENS.slice(3).map((data) => channel.appendMessage({ serial, data })))));
      for (const result of results) assert.equal(typeof result.versionSerial, 'string', 'each append is ACKed');
      const lastVersion = results.at(-1).versionSerial;
      assert.ok(lastVersion > serial, 'version serials sort after the create');
      const versions = results.map((r) => r.versionSerial);
      assert.deepEqual([...versions].sort(), versions, 'version serials never go backwards');

      // Before the create: the create, then deltas (maybe rolled up) that concatenate to the aggregate.
      await earlyInbox.when((got) => joined(got) === AGGREGATE, 'the early subscriber to catch up');
      const [create, ...deltas] = earlyInbox.messages;
      assert.equal(create.action, 'message.create');
      assert.equal(create.data, FIRST);
      assert.equal(create.serial, serial);
      assert.deepEqual(create.extras, EXTRAS);
      assert.ok(deltas.length >= 1 && deltas.length <= TOKENS.length, `${deltas.length} append deltas`);
      for (const delta of deltas) {
        assert.equal(delta.action, 'message.append');
        assert.equal(delta.serial, serial, 'a delta names the message it extends');
        assert.equal(delta.name, 'stream', 'the name is carried forward');
        assert.equal(typeof delta.data, 'string');
        assert.ok(delta.version?.serial, 'a delta carries its version serial');
      }
      assert.equal(deltas.at(-1).version.serial, lastVersion);

      // Mid-stream: the aggregate so far as one update, then deltas.
      await midInbox.when((got) => got.length > 0 && joined(got) === AGGREGATE, 'the mid subscriber to catch up');
      const [whole, ...midDeltas] = midInbox.messages;
      assert.equal(whole.action, 'message.update', 'an unseen message arrives whole');
      assert.equal(whole.serial, serial);
      assert.ok(whole.data.startsWith(FIRST + TOKENS[0]), `the first delivery is the aggregate (${whole.data})`);
      assert.deepEqual(whole.extras, EXTRAS);
      for (const delta of midDeltas) assert.equal(delta.action, 'message.append');

      // After the stream: rewind, history and getMessage all give the aggregate at the create's serial.
      const rewound = late.channels.get(name, { params: { rewind: '1' } });
      const lateInbox = await collector(rewound);
      const [replayed] = await lateInbox.until(1);
      for (const [label, message] of [
        ['rewind', replayed],
        ['history', (await channel.history()).items[0]],
        ['getMessage', await channel.getMessage(serial)],
      ]) {
        assert.equal(message.serial, serial, `${label}: the create's serial`);
        assert.equal(message.action, 'message.update', `${label}: shown as an update`);
        assert.equal(message.data, AGGREGATE, `${label}: the whole aggregate`);
        assert.equal(message.name, 'stream', `${label}: name`);
        assert.equal(message.clientId, 'writer', `${label}: the creator's clientId`);
        assert.deepEqual(message.extras, EXTRAS, `${label}: extras`);
        assert.equal(message.version?.serial, lastVersion, `${label}: the latest version`);
        assert.equal(message.timestamp, create.timestamp, `${label}: the create's timestamp`);
      }
      assert.equal((await channel.history()).items.length, 1, 'appends are not separate history entries');

      // An update replaces data (patch: the name is kept); everyone attached sees it whole.
      const updated = await channel.updateMessage(
        { serial, data: 'Goodbye', extras: { headers: { status: 'done' } } },
        { description: 'edited', metadata: { reason: 'test' } },
      );
      assert.ok(updated.versionSerial > lastVersion);
      for (const inbox of [earlyInbox, midInbox, lateInbox]) {
        await inbox.when((got) => got.at(-1).data === 'Goodbye', 'the update');
        const update = inbox.messages.at(-1);
        assert.equal(update.action, 'message.update');
        assert.equal(update.serial, serial);
        assert.equal(update.name, 'stream');
        assert.deepEqual(update.extras, { headers: { status: 'done' } });
        assert.equal(update.version.serial, updated.versionSerial);
        assert.equal(update.version.description, 'edited');
        assert.deepEqual(update.version.metadata, { reason: 'test' });
        assert.equal(update.version.clientId, 'writer');
      }
      const afterUpdate = (await channel.history()).items;
      assert.equal(afterUpdate.length, 1);
      assert.equal(afterUpdate[0].data, 'Goodbye');

      const deleted = await channel.deleteMessage({ serial }, { description: 'removed' });
      await earlyInbox.when((got) => got.at(-1).action === 'message.delete', 'the delete');
      assert.equal(earlyInbox.messages.at(-1).version.serial, deleted.versionSerial);
      const tombstone = (await channel.history()).items[0];
      assert.equal(tombstone.action, 'message.delete');
      assert.equal(tombstone.serial, serial);
    } finally {
      await closeAll(writer, early, mid, late);
    }
  });
}

test('an append needs the serial of a message that exists', { timeout: 20000 }, async () => {
  const writer = realtime({ binary: true, clientId: 'writer' });
  try {
    await connected(writer);
    const channel = writer.channels.get(uniqueChannel('js-mutable-missing'));
    await assert.rejects(channel.appendMessage({ data: 'x' }), (err) => err.code === 40003, 'no serial');
    await assert.rejects(
      channel.appendMessage({ serial: '00000000000000-000@nothing:000', data: 'x' }),
      (err) => err instanceof Ably.ErrorInfo && err.code === 40400,
      'unknown serial',
    );
    const { serials } = await channel.publish('still', 'works');
    assert.equal(serials.length, 1, 'the connection carries on after a NACK');
  } finally {
    await closeAll(writer);
  }
});
