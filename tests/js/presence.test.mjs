// (e) Presence: a member entered on one client is returned by presence.get() on another (through the
// SYNC that follows ATTACHED with HAS_PRESENCE), and enter/update/leave events reach subscribers,
// including the leave the server synthesises when a member's connection closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FORMATS, closeAll, connected, realtime, uniqueChannel, within } from './helpers.mjs';

/** Subscribe to presence events; `until(done)` waits for `done(events)`. */
async function presenceEvents(channel) {
  const events = [];
  let wake = () => {};
  await channel.presence.subscribe((event) => {
    events.push(event);
    wake();
  });
  return {
    events,
    async until(done, what) {
      await within(5000, what, new Promise((resolve) => {
        const check = () => done(events) && resolve();
        wake = check;
        check();
      }));
    },
  };
}

for (const format of FORMATS) {
  test(`presence enter, get, update and leave (${format.name})`, { timeout: 20000 }, async () => {
    const alice = realtime({ binary: format.binary, clientId: 'alice' });
    const bob = realtime({ binary: !format.binary, clientId: 'bob' });
    const carol = realtime({ binary: format.binary, clientId: 'carol' });
    try {
      await Promise.all([alice, bob, carol].map((client) => connected(client)));
      const name = uniqueChannel('js-presence');

      // Alice enters before Bob attaches: Bob learns of her from the attach-time SYNC.
      const aliceChannel = alice.channels.get(name);
      await aliceChannel.presence.enter({ status: 'here', n: 1 });
      const bobChannel = bob.channels.get(name);
      const members = await within(5000, 'presence.get()', bobChannel.presence.get());
      assert.equal(bobChannel.state, 'attached', 'get() attaches the channel');
      assert.equal(members.length, 1);
      const [member] = members;
      assert.equal(member.clientId, 'alice');
      assert.equal(member.connectionId, alice.connection.id);
      assert.equal(member.action, 'present');
      assert.deepEqual(member.data, { status: 'here', n: 1 });
      assert.equal(typeof member.timestamp, 'number');
      assert.ok(member.id.startsWith(`${alice.connection.id}:`), `member id ${member.id} is connectionId:serial:index`);

      // Live events: Carol enters with binary data, Alice updates then leaves, Carol's connection closes.
      const live = await presenceEvents(bobChannel);
      const carolChannel = carol.channels.get(name);
      await carolChannel.presence.enter(Buffer.from([1, 2, 3]));
      await aliceChannel.presence.update('busy');
      await live.until((e) => e.length >= 2, 'enter and update events');
      assert.deepEqual(live.events.map((e) => [e.action, e.clientId]), [['enter', 'carol'], ['update', 'alice']]);
      assert.equal(Buffer.compare(live.events[0].data, Buffer.from([1, 2, 3])), 0, 'binary presence data');
      assert.equal(live.events[1].data, 'busy');

      const both = await bobChannel.presence.get();
      assert.deepEqual(both.map((m) => m.clientId).sort(), ['alice', 'carol']);
      assert.equal(both.find((m) => m.clientId === 'alice').data, 'busy');
      // Filters are applied to the local member map; the server must have given it connectionIds.
      const carols = await bobChannel.presence.get({ clientId: 'carol' });
      assert.equal(carols.length, 1);
      assert.equal(carols[0].connectionId, carol.connection.id);

      // Alice sees herself and Carol too (presence is echoed to the member's own connection).
      const seenByAlice = await aliceChannel.presence.get();
      assert.deepEqual(seenByAlice.map((m) => m.clientId).sort(), ['alice', 'carol']);

      await aliceChannel.presence.leave('bye');
      await live.until((e) => e.some((x) => x.action === 'leave' && x.clientId === 'alice'), 'alice leaving');
      assert.equal(live.events.find((x) => x.action === 'leave').data, 'bye');

      await closeAll(carol); // a clean CLOSE: the server leaves Carol's presence for her
      await live.until((e) => e.some((x) => x.action === 'leave' && x.clientId === 'carol'), 'carol leaving');
      assert.deepEqual(await bobChannel.presence.get(), [], 'nobody is left');
    } finally {
      await closeAll(alice, bob, carol);
    }
  });
}

test('presence.enter needs a clientId', { timeout: 20000 }, async () => {
  const anonymous = realtime({ binary: true });
  try {
    await connected(anonymous);
    const channel = anonymous.channels.get(uniqueChannel('js-presence-anon'));
    await assert.rejects(channel.presence.enter('x'), (err) => err.code === 40012 || err.code === 91000);
  } finally {
    await closeAll(anonymous);
  }
});
