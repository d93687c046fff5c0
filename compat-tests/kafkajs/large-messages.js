'use strict'
// kafkajs: 8 records with 1 MiB incompressible values to a topic created with
// max.message.bytes=4194304 (kafkajs' producer has no request-size limit of its own),
// read back from offset 0 with kafkajs' default fetch sizes (maxBytesPerPartition
// 1 MiB, maxBytes 10 MiB: each batch is larger than the partition limit, KIP-74) and
// compared byte for byte, offsets 0..7.
const c = require('./compat')

c.main(async () => {
  const topic = c.topic()
  const data = c.largeDataset()
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, 1, [{ name: 'max.message.bytes', value: String(c.LARGE_MAX_BYTES) }])
  await c.waitPartitions(admin, topic, 1)
  const producer = k.producer()
  await producer.connect()
  c.log(`producing ${data.length} x ${c.LARGE_VALUE_BYTES}-byte values to ${topic}`)
  // One record per send(): each is its own ~1 MiB Produce request.
  const reports = await c.produceAll(producer, admin, topic, data.map(([key, value]) => ({ key, value, partition: 0 })), { chunk: 1 })
  await producer.disconnect()
  const d0 = c.firstDiff(data.map((_, i) => [0, i]), reports.map(r => [r.partition, r.offset]), 'produce result [partition, offset]')
  if (d0) c.fail(d0)

  const { got, wm } = await c.consumeAll(k, admin, topic, data.length, { timeout: 60 })
  const d = c.checkLarge(data, (got[0] || []).map(m => [Number(m.offset), m.key, m.value]))
  if (d) c.fail(d)
  if (!c.equal(wm[0], [0, data.length])) c.fail(`ListOffsets (low, high) of partition 0: expected [0, ${data.length}], got ${JSON.stringify(wm[0])}`)
  await admin.disconnect()
  c.passed(`${data.length} x 1 MiB values byte-identical at offsets 0..${data.length - 1} (default fetch sizes)`)
})
