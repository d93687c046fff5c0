'use strict'
// kafkajs: for none and gzip (its only built-in codec; snappy, lz4 and zstd need codec
// plugin packages that are not installed), 1,000 keyed compressible records produced
// with that codec to their own 1-partition topic are read back exactly (key, value,
// offsets 0..999).
const { CompressionTypes } = require('kafkajs')
const c = require('./compat')

const CODECS = [['none', CompressionTypes.None], ['gzip', CompressionTypes.GZIP]]

c.main(async () => {
  const data = c.compressionDataset()
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  for (const [name, codec] of CODECS) {
    const topic = c.topic('-' + name)
    await c.createTopic(admin, topic, 1)
    await c.waitPartitions(admin, topic, 1)
    const producer = k.producer()
    await producer.connect()
    const reports = await c.produceAll(producer, admin, topic, data.map(([key, value]) => ({ key, value, partition: 0 })), { compression: codec })
    await producer.disconnect()
    let d = c.firstDiff(data.map((_, i) => i), reports.map(r => r.offset), 'offset')
    if (d) c.fail(`${name}: produce-result offsets are not 0..${data.length - 1}: ${d}`)
    const { got } = await c.consumeAll(k, admin, topic, data.length, { timeout: 60 })
    d = c.firstDiff(data.map(([key, value], i) => [i, key, value]), (got[0] || []).map(m => [Number(m.offset), m.key, m.value]), 'record (offset, key, value)')
    if (d) c.fail(`${name}: ${d}`)
    c.log(`${name}: ${data.length} records identical`)
  }
  await admin.disconnect()
  c.passed(`codecs ${CODECS.map(x => x[0]).join(', ')}: ${data.length} records each read back exactly (snappy, lz4, zstd: kafkajs plugins, not installed)`)
})
