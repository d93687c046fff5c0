'use strict'
// kafkajs: 100 records with CreateTime T0 + 1000·i (T0 = now − 1 h);
// admin.fetchTopicOffsetsByTimestamp gives 42 for T0 + 42 s − 500 ms and for T0 + 42 s,
// and the log end (100: kafkajs substitutes the high watermark for ListOffsets' -1)
// after the last record; a consumer that seek()s there (group member, nothing
// committed) reads 42 first, then 43..99 in order, with exact timestamps.
const c = require('./compat')

c.main(async () => {
  const topic = c.topic()
  const t0 = c.seekT0()
  const data = c.timestampDataset(t0)
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 1)
  await c.waitPartitions(admin, topic, 1)
  const producer = k.producer()
  await producer.connect()
  await c.produceAll(producer, admin, topic, data.map(r => ({ key: r.key, value: r.value, timestamp: String(r.ts), partition: 0 })))
  await producer.disconnect()

  const found = {}
  for (const [name, ts, want] of c.seekQueries(t0)) {
    const res = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
    const expect = want === null ? String(data.length) : String(want)
    if (res.length !== 1 || res[0].partition !== 0 || res[0].offset !== expect) {
      c.fail(`fetchTopicOffsetsByTimestamp(${name} = ${ts}): ${JSON.stringify(res)}, expected partition 0 offset ${expect}${want === null ? ' (the log end)' : ''}`)
    }
    found[name] = res[0].offset
    c.log(`fetchTopicOffsetsByTimestamp(${name}) = ${res[0].offset}`)
  }

  const start = Number(found[`T0+${c.SEEK_INDEX}s`])
  const consumer = k.consumer({ groupId: topic + '-reader', sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  const got = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic] })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      const tt = message.batchContext && message.batchContext.timestampType
      if (tt !== 0) c.fail(`offset ${message.offset}: timestamp type ${tt}, expected 0 (CreateTime)`)
      got.push([Number(message.offset), message.key, message.value, Number(message.timestamp)])
    },
  })
  // kafkajs applies the seek when the partition is assigned (before the first fetch).
  consumer.seek({ topic, partition: 0, offset: String(start) })
  const wantN = c.SEEK_COUNT - start
  await c.waitFor(() => got.length >= wantN, 60, () => `${wantN} records after the seek (got ${got.length})`)
  await c.sleep(300)
  await c.within(30, 'consumer.disconnect', consumer.disconnect())
  await admin.disconnect()
  const want = data.map((r, i) => [i, r.key, r.value, r.ts]).slice(start)
  const d = c.firstDiff(want, got, 'record (offset, key, value, timestamp) after the seek')
  if (d) c.fail(d)
  c.passed(`fetchTopicOffsetsByTimestamp ${Object.entries(found).map(([n, o]) => `${n}→${o}`).join(', ')}; read ${start}..${c.SEEK_COUNT - 1} after seek() with exact timestamps`)
})
