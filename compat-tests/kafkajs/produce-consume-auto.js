'use strict'
// kafkajs: produce 10k binary-ish messages to a new auto-created topic (the
// producer's metadata request auto-creates it), consume from the beginning
// (throwaway group, nothing committed), compare byte for byte (one partition).
const c = require('./compat')

c.main(async () => {
  const topic = c.topic()
  const data = c.autoDataset()
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer({ allowAutoTopicCreation: true })
  await producer.connect()
  c.log(`producing ${data.length} messages to new topic ${topic} (auto-create)`)
  const reports = await c.produceAll(producer, admin, topic, data.map(([key, value]) => ({ key, value })))
  if (reports.some(r => r.partition !== 0)) c.fail('expected every message on partition 0 of the auto-created topic')
  await producer.disconnect()

  const t = await c.waitPartitions(admin, topic, 1)
  if (t.partitions.length !== 1) c.fail(`auto-created topic has ${t.partitions.length} partitions`)
  const want = data.map((_, i) => i)
  const offsets = reports.map(r => r.offset)
  let d = c.firstDiff(want, offsets, 'offset')
  if (d) c.fail(`produce-response offsets are not 0..${data.length - 1}: ${d}`)

  const { got, wm } = await c.consumeAll(k, admin, topic, data.length)
  const recs = got[0] || []
  d = c.firstDiff(data, recs.map(m => [m.key, m.value]))
  if (d) c.fail(d)
  d = c.firstDiff(want, recs.map(m => Number(m.offset)), 'offset')
  if (d) c.fail(`consumed offsets are not 0..${data.length - 1}: ${d}`)
  if (!c.equal(wm[0], [0, data.length])) c.fail(`ListOffsets (low, high) of partition 0: expected [0, ${data.length}], got ${JSON.stringify(wm[0])}`)
  await admin.disconnect()
  c.passed(`${data.length} messages byte-identical, offsets contiguous, low/high offsets ok`)
})
