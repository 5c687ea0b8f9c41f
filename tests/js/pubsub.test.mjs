// (a) Connect (CONNECTED details, ping, REST time), then publish/subscribe between two clients in every pairing of JSON and msgpack:
// what arrives equals what was sent (strings, JSON objects, binary Buffers, batches), in order, and
// carries the serials, ids and connection the publisher got back.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FORMATS, closeAll, collector, connected, realtime, sleep, uniqueChannel } from './helpers.mjs';

const BYTES = Buffer.from([0, 1, 2, 127, 128, 254, 255, 0x0a, 0x22]);

for (const pub of FORMATS) {
  for (const sub of FORMATS) {
    test(`publisher ${pub.name} -> subscriber ${sub.name}: data arrives as sent`, { timeout: 20000 }, async () => {
      const publisher = realtime({ binary: pub.binary, clientId: 'publisher' });
      const subscriber = realtime({ binary: sub.binary, clientId: 'subscriber' });
      try {
        await Promise.all([connected(publisher), connected(subscriber)]);
        assert.equal(publisher.connection.state, 'connected');
        assert.ok(publisher.connection.id, 'CONNECTED carries a connectionId');
        assert.ok(publisher.connection.key, 'CONNECTED carries a connectionKey');
        assert.notEqual(publisher.connection.id, subscriber.connection.id);
        const serverTime = await subscriber.time(); // REST GET /time in the subscriber's format
        assert.ok(Math.abs(serverTime - Date.now()) < 5000, `server time ${serverTime} is now`);

        const name = uniqueChannel('js-pubsub');
        const inbox = await collector(subscriber.channels.get(name));
        assert.equal(subscriber.channels.get(name).state, 'attached');
        const channel = publisher.channels.get(name);

        const sent = [
          { name: 'text', data: 'hello, world' },
          { name: 'unicode', data: 'héllo \u{1F600} 世界' },
          { name: 'json', data: { nested: { list: [1, 2.5, 'three', null, true] }, empty: {} } },
          { name: 'array', data: ['a', { b: 1 }] },
          { name: 'binary', data: BYTES },
          { name: 'empty-binary', data: Buffer.alloc(0) },
          { name: 'no-data' },
          { name: 'extras', data: 'with headers', extras: { headers: { 'x-run': 'interop', n: '1' } } },
        ];
        const serials = [];
        for (const message of sent.slice(0, 3)) {
          const result = await channel.publish(message.name, message.data);
          serials.push(...result.serials);
        }
        // The rest as one batch: one protocol message, one ACK, several serials.
        const batch = await channel.publish(sent.slice(3));
        assert.equal(batch.serials.length, sent.length - 3);
        serials.push(...batch.serials);
        assert.equal(new Set(serials).size, sent.length, 'every message gets its own serial');
        assert.deepEqual([...serials].sort(), serials, 'serials increase in publish order');

        const received = await inbox.until(sent.length);
        assert.deepEqual(received.map((m) => m.name), sent.map((m) => m.name), 'received in publish order');
        for (const [index, message] of received.entries()) {
          const expected = sent[index];
          if (Buffer.isBuffer(expected.data)) {
            assert.ok(Buffer.isBuffer(message.data), `${expected.name}: binary arrives as a Buffer`);
            assert.equal(Buffer.compare(message.data, expected.data), 0, `${expected.name}: same bytes`);
          } else {
            assert.deepEqual(message.data, expected.data, `${expected.name}: same data`);
          }
          assert.ok(!message.encoding, `${expected.name}: fully decoded (encoding ${message.encoding})`);
          assert.deepEqual(message.extras, expected.extras, `${expected.name}: same extras`);
          assert.equal(message.action, 'message.create');
          assert.equal(message.serial, serials[index], `${expected.name}: serial matches the publish result`);
          assert.equal(message.clientId, 'publisher');
          assert.equal(message.connectionId, publisher.connection.id);
          assert.equal(typeof message.id, 'string');
          assert.equal(typeof message.timestamp, 'number');
        }
        assert.equal(new Set(received.map((m) => m.id)).size, sent.length, 'message ids are unique');
        await sleep(300); // anything delivered twice would show up by now
        assert.equal(inbox.messages.length, sent.length, 'each message delivered exactly once');
      } finally {
        await closeAll(publisher, subscriber);
      }
    });
  }
}

test('echoMessages:false keeps a client from receiving its own messages', { timeout: 20000 }, async () => {
  const quiet = realtime({ binary: true, clientId: 'quiet', echoMessages: false });
  const other = realtime({ binary: false, clientId: 'other' });
  try {
    await Promise.all([connected(quiet), connected(other)]);
    const name = uniqueChannel('js-echo');
    const own = await collector(quiet.channels.get(name));
    const theirs = await collector(other.channels.get(name));
    await quiet.channels.get(name).publish('mine', 'from quiet');
    await other.channels.get(name).publish('yours', 'from other');
    await theirs.until(2);
    await own.until(1);
    await sleep(300);
    assert.deepEqual(own.messages.map((m) => m.name), ['yours']);
    assert.deepEqual(theirs.messages.map((m) => m.name), ['mine', 'yours']);
  } finally {
    await closeAll(quiet, other);
  }
});

test('connection.ping() gets its HEARTBEAT echoed', { timeout: 20000 }, async () => {
  // ably-js 2.x leaves ping()'s timeout timer running after the reply, which keeps node alive for
  // realtimeRequestTimeout; a short one keeps the run quick.
  const client = realtime({ binary: false, realtimeRequestTimeout: 1000 });
  try {
    await connected(client);
    const roundTrip = await client.connection.ping();
    assert.equal(typeof roundTrip, 'number');
    assert.ok(roundTrip >= 0 && roundTrip < 1000, `round trip ${roundTrip} ms`);
  } finally {
    await closeAll(client);
  }
});
