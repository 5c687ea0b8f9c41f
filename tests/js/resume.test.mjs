// (d) Resume after a dropped socket: the subscriber's WebSocket is terminated (TCP torn down, no
// close handshake, frames in flight lost) while a publisher streams N messages. ably-js reconnects
// with resume=<connectionKey> and re-attaches with the last channelSerial it saw; the server must
// keep the connectionId and replay the gap, so every message arrives exactly once and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FORMATS, closeAll, collector, connected, realtime, sleep, uniqueChannel, within } from './helpers.mjs';

const N = 300;
const DROP_AT = 60; // the subscriber's socket is torn down when this many messages have arrived
const RESUME_AT = 200; // and it may reconnect once this many have been published (ACKed)
const BURST = 10;

/**
 * Hold the client's next connection attempt until the returned `release()` is called. ably-js
 * reconnects at once after a drop, so without this the outage would be too short to publish into.
 */
function holdReconnect(client) {
  const manager = client.connection.connectionManager;
  const connectImpl = manager.connectImpl;
  assert.equal(typeof connectImpl, 'function', 'ably-js ConnectionManager.connectImpl exists');
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  manager.connectImpl = function held(...args) {
    released.then(() => connectImpl.apply(this, args));
  };
  return () => {
    manager.connectImpl = connectImpl;
    release();
  };
}

/** Tear the client's current WebSocket down abruptly, as a network failure would. */
function dropSocket(client) {
  const transport = client.connection.connectionManager.activeProtocol?.getTransport();
  const ws = transport?.wsConnection;
  assert.ok(ws && typeof ws.terminate === 'function', 'ably-js in node runs over a ws WebSocket');
  ws.terminate();
}

for (const format of FORMATS) {
  test(`a dropped socket resumes with no lost or repeated message (${format.name})`, { timeout: 20000 }, async (t) => {
    const publisher = realtime({ binary: true, clientId: 'streamer' });
    const subscriber = realtime({ binary: format.binary, clientId: 'listener' });
    try {
      await Promise.all([connected(publisher), connected(subscriber)]);
      const name = uniqueChannel('js-resume');
      const connectionId = subscriber.connection.id;
      const states = [];
      let acked = 0;
      let ackedAtResume = null;
      subscriber.connection.on((change) => {
        states.push(change.current);
        if (change.current === 'connected' && ackedAtResume === null) ackedAtResume = acked;
      });
      const channel = subscriber.channels.get(name);
      const channelChanges = [];
      channel.on((change) => channelChanges.push(change));

      let dropped = false;
      let releaseReconnect = null;
      const inbox = await collector(channel);
      channel.subscribe(() => {
        if (!dropped && inbox.messages.length === DROP_AT) {
          dropped = true;
          releaseReconnect = holdReconnect(subscriber);
          dropSocket(subscriber);
        }
      });
      const maybeRelease = (force = false) => {
        if (releaseReconnect && (force || acked >= RESUME_AT)) {
          releaseReconnect();
          releaseReconnect = null;
        }
      };

      // Publish in pipelined bursts, so messages are in flight on the socket when it is torn down.
      const pubChannel = publisher.channels.get(name);
      let published = 0;
      const publishing = (async () => {
        for (let i = 0; i < N; i += BURST) {
          const burst = [];
          for (let j = i; j < Math.min(N, i + BURST); j++) {
            burst.push(pubChannel.publish(`m${j}`, { seq: j }).then(() => {
              acked++;
              maybeRelease();
            }));
          }
          await Promise.all(burst);
          published = Math.min(N, i + BURST);
        }
      })();
      await within(15000, 'publishing', publishing);
      assert.equal(published, N);
      maybeRelease(true);

      await inbox.until(N, 15000);
      assert.ok(dropped, 'the socket was dropped mid-stream');
      await subscriber.connection.whenState('connected');
      // Messages DROP_AT..ackedAtResume were published while the subscriber was away: only a replay
      // after the resumed attach can deliver them.
      t.diagnostic(`${ackedAtResume - DROP_AT} messages published while the subscriber was disconnected`);
      assert.ok(ackedAtResume >= RESUME_AT, 'the publisher kept going while the subscriber was away');
      await sleep(300); // anything delivered twice would show up by now

      const seqs = inbox.messages.map((m) => m.data.seq);
      assert.equal(seqs.length, N, `exactly ${N} deliveries (got ${seqs.length})`);
      assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i), 'every message once, in order');
      assert.deepEqual(inbox.messages.map((m) => m.name), seqs.map((i) => `m${i}`));

      assert.ok(states.includes('disconnected'), `the connection went disconnected (${states.join(' > ')})`);
      assert.equal(states.at(-1), 'connected');
      assert.equal(subscriber.connection.id, connectionId, 'resumed: the same connectionId');
      assert.notEqual(subscriber.connection.errorReason?.code, 80008, 'no "unable to recover connection" error');
      const lostContinuity = channelChanges.filter((c) => c.current === 'attached' && c.resumed === false);
      assert.equal(channel.state, 'attached');
      // The first attach is not a resume; none after it may report lost continuity.
      assert.deepEqual(lostContinuity.slice(1), [], 'the channel re-attached with RESUMED');
    } finally {
      await closeAll(publisher, subscriber);
    }
  });
}

/** Make the client's current transport ignore ACKs, as if they were lost with the socket. */
function swallowAcks(client) {
  const transport = client.connection.connectionManager.activeProtocol.getTransport();
  const onProtocolMessage = transport.onProtocolMessage;
  transport.onProtocolMessage = function filtered(message) {
    if (message.action !== 1) onProtocolMessage.call(this, message); // 1 = ACK
  };
}

test('a resumed publisher has its un-ACKed messages ACKed once and not republished', { timeout: 20000 }, async () => {
  const publisher = realtime({ binary: false, clientId: 'flaky-publisher' });
  const subscriber = realtime({ binary: true, clientId: 'watcher' });
  try {
    await Promise.all([connected(publisher), connected(subscriber)]);
    const name = uniqueChannel('js-resume-publisher');
    const connectionId = publisher.connection.id;
    const inbox = await collector(subscriber.channels.get(name));
    const channel = publisher.channels.get(name);

    const count = 50;
    const acked = 10;
    const payload = (i) => `payload ${i}`;
    const first = [];
    for (let i = 0; i < acked; i++) first.push(...(await channel.publish(`p${i}`, payload(i))).serials);

    // The server processes the rest, but their ACKs never reach the client before its socket dies.
    swallowAcks(publisher);
    let settled = 0;
    const pending = [];
    for (let i = acked; i < count; i++) {
      pending.push(channel.publish(`p${i}`, payload(i)).finally(() => settled++));
    }
    await inbox.until(count, 10000);
    assert.equal(settled, 0, 'no ACK got through before the drop');
    dropSocket(publisher);

    // On resume ably-js sends those frames again with their old msgSerials: the server must ACK them
    // with the serials it gave the first time and publish nothing new.
    const results = await within(15000, 'publishes to settle after the resume', Promise.all(pending));
    const serials = [...first, ...results.map((r) => r.serials[0])];
    assert.equal(new Set(serials).size, count, 'one serial per message');
    assert.equal(publisher.connection.id, connectionId, 'the publisher resumed its connection');

    await sleep(300);
    assert.equal(inbox.messages.length, count, 'nothing was published twice');
    assert.deepEqual(inbox.messages.map((m) => m.data), Array.from({ length: count }, (_, i) => payload(i)));
    assert.deepEqual(inbox.messages.map((m) => m.serial), serials, 'the re-sent ACKs carry the original serials');
    const history = await subscriber.channels.get(name).history({ direction: 'forwards', limit: 1000 });
    assert.equal(history.items.length, count, 'stored once each');

    const { serials: [after] } = await channel.publish('after', 'resume');
    assert.ok(after > serials.at(-1), 'publishing carries on after the resume');
    await inbox.until(count + 1);
  } finally {
    await closeAll(publisher, subscriber);
  }
});

/**
 * What a subscriber makes of a stream of creates, updates and appends: the latest data per serial.
 * An append to a message not yet seen whole cannot be applied; it shows up as `<orphan>` in the data.
 */
function fold(messages) {
  const bySerial = new Map();
  for (const message of messages) {
    if (message.action === 'message.append') {
      bySerial.set(message.serial, (bySerial.get(message.serial) ?? '<orphan>') + message.data);
    } else {
      bySerial.set(message.serial, message.data);
    }
  }
  return bySerial;
}

for (const format of FORMATS) {
  test(`appends made while a subscriber is away converge after the resume (${format.name})`, { timeout: 20000 },
    async () => {
      const writer = realtime({ binary: true, clientId: 'writer' });
      const reader = realtime({ binary: format.binary, clientId: 'reader' });
      try {
        await Promise.all([connected(writer), connected(reader)]);
        const name = uniqueChannel('js-resume-appends');
        const connectionId = reader.connection.id;
        const inbox = await collector(reader.channels.get(name));
        const channel = writer.channels.get(name);
        const append = (serial, data) => channel.appendMessage({ serial, data });

        const { serials: [first] } = await channel.publish('first', 'A');
        await append(first, 'b');
        await append(first, 'c');
        await inbox.when((got) => fold(got).get(first) === 'Abc', 'the first stream so far');

        const release = holdReconnect(reader);
        dropSocket(reader);
        await within(5000, 'the drop', reader.connection.whenState('disconnected'));
        // While the reader is away: more of the first stream, and a whole new stream.
        await append(first, 'd');
        await append(first, 'e');
        const { serials: [second] } = await channel.publish('second', 'X');
        await append(second, 'y');
        await append(second, 'z');
        const seenBefore = inbox.messages.length;
        release();
        await within(5000, 'reconnecting', reader.connection.whenState('connected'));

        // And live again after the resume.
        await append(first, 'f');
        await append(second, '!');
        await inbox.when((got) => {
          const view = fold(got);
          return view.get(first) === 'Abcdef' && view.get(second) === 'Xyz!';
        }, 'both streams to converge');
        await sleep(300);
        const view = fold(inbox.messages);
        assert.equal(view.get(first), 'Abcdef', 'nothing of the first stream lost or repeated');
        assert.equal(view.get(second), 'Xyz!', 'nothing of the second stream lost or repeated');
        assert.equal(view.size, 2);
        const secondFirst = inbox.messages.find((m) => m.serial === second);
        assert.notEqual(secondFirst.action, 'message.append', 'a message created in the gap arrives whole');
        assert.ok(inbox.messages.length > seenBefore, 'the gap was delivered after the resume');
        assert.equal(reader.connection.id, connectionId, 'resumed: the same connectionId');
      } finally {
        await closeAll(writer, reader);
      }
    });
}
