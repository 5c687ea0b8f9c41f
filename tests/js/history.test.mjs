// (b) History over REST from a realtime channel: `untilAttach: true` returns exactly the messages
// published before the attach (newest first), and a small `limit` pages through them with `next()`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FORMATS, allPages, closeAll, collector, connected, realtime, uniqueChannel } from './helpers.mjs';

const BEFORE = 7;
const AFTER = 3;

function dataFor(label, index) {
  // Mix the payload kinds so history decoding is covered in both formats.
  if (index % 3 === 1) return Buffer.from(`${label}-${index}`);
  if (index % 3 === 2) return { label, index };
  return `${label}-${index}`;
}

function assertData(message, expected) {
  if (Buffer.isBuffer(expected)) {
    assert.ok(Buffer.isBuffer(message.data), `${message.name}: binary comes back as a Buffer`);
    assert.equal(Buffer.compare(message.data, expected), 0, `${message.name}: same bytes`);
  } else {
    assert.deepEqual(message.data, expected, `${message.name}: same data`);
  }
}

for (const format of FORMATS) {
  test(`history untilAttach and paging (${format.name})`, { timeout: 20000 }, async () => {
    const publisher = realtime({ binary: format.binary, clientId: 'historian' });
    const reader = realtime({ binary: format.binary, clientId: 'reader' });
    try {
      await Promise.all([connected(publisher), connected(reader)]);
      const name = uniqueChannel('js-history');
      const pubChannel = publisher.channels.get(name);
      const before = [];
      for (let i = 0; i < BEFORE; i++) {
        const { serials } = await pubChannel.publish(`before-${i}`, dataFor('before', i));
        before.push(serials[0]);
      }

      const channel = reader.channels.get(name);
      const inbox = await collector(channel);
      assert.equal(channel.state, 'attached');
      for (let i = 0; i < AFTER; i++) await pubChannel.publish(`after-${i}`, dataFor('after', i));
      await inbox.until(AFTER);
      assert.deepEqual(inbox.messages.map((m) => m.name), ['after-0', 'after-1', 'after-2'],
        'a live subscriber gets only what follows its attach');

      // Without untilAttach the newest messages come first, the post-attach ones included.
      const everything = await channel.history();
      assert.equal(everything.items.length, BEFORE + AFTER);
      assert.equal(everything.items[0].name, `after-${AFTER - 1}`);

      // untilAttach: only the pre-attach messages, newest first, with their data and serials.
      const untilAttach = await channel.history({ untilAttach: true });
      const expectedNames = Array.from({ length: BEFORE }, (_, i) => `before-${BEFORE - 1 - i}`);
      assert.deepEqual(untilAttach.items.map((m) => m.name), expectedNames);
      assert.ok(untilAttach.isLast(), 'all of it fits on one page');
      assert.equal(untilAttach.hasNext(), false);
      for (const message of untilAttach.items) {
        const index = Number(message.name.split('-')[1]);
        assertData(message, dataFor('before', index));
        assert.equal(message.serial, before[index]);
        assert.equal(message.clientId, 'historian');
        assert.equal(message.action, 'message.create');
        assert.ok(!message.encoding, `${message.name}: fully decoded`);
      }

      // Paging with a small limit: 2 + 2 + 2 + 1, then no next page.
      const first = await channel.history({ untilAttach: true, limit: 2 });
      assert.equal(first.items.length, 2);
      assert.ok(first.hasNext(), 'a full first page has a next page');
      assert.equal(first.isLast(), false);
      const paged = await allPages(first);
      assert.deepEqual(paged.sizes, [2, 2, 2, 1]);
      assert.deepEqual(paged.items.map((m) => m.name), expectedNames, 'pages join up with no gap or repeat');

      // The last page says so, and next() on it resolves to null.
      let page = first;
      while (page.hasNext()) page = await page.next();
      assert.ok(page.isLast());
      assert.equal(await page.next(), null);

      // Forwards paging over the whole channel returns publish order.
      const forwards = await allPages(await channel.history({ direction: 'forwards', limit: 4 }));
      assert.deepEqual(forwards.sizes, [4, 4, 2]);
      assert.deepEqual(
        forwards.items.map((m) => m.name),
        [...Array.from({ length: BEFORE }, (_, i) => `before-${i}`), 'after-0', 'after-1', 'after-2'],
      );
    } finally {
      await closeAll(publisher, reader);
    }
  });
}

test('history untilAttach requires an attached channel', { timeout: 20000 }, async () => {
  const client = realtime({ binary: true });
  try {
    await connected(client);
    const channel = client.channels.get(uniqueChannel('js-history-unattached'));
    await assert.rejects(channel.history({ untilAttach: true }), (err) => err.code === 40000);
  } finally {
    await closeAll(client);
  }
});
