'use strict'
// kafkajs: admin.createTopics with 4 partitions, produce 10k keyed messages (the
// client's default partitioner: Java-compatible murmur2), consume all 4 partitions
// from the beginning; every message exactly once, per-partition produce order,
// consumed offsets equal produce-reported offsets, low/high offsets, metadata
// shows 4 partitions.
const c = require('./compat')

const NPART = 4
c.main(async () => {
  const topic = c.topic()
  const data = c.keyedDataset()
  const k = c.kafka()
  const admin = k.admin()
  await admin.connect()
  await c.createTopic(admin, topic, NPART)
  await c.waitPartitions(admin, topic, NPART)

  const producer = k.producer()
  await producer.connect()
  c.log(`producing ${data.length} keyed messages`)
  const reports = await c.produceAll(producer, admin, topic, data.map(([key, value]) => ({ key, value })))
  await producer.disconnect()

  const expected = {}
  for (let q = 0; q < NPART; q++) expected[q] = []
  const keyPart = new Map()
  data.forEach(([key, value], i) => {
    const { partition, offset } = reports[i]
    if (!(partition in expected)) c.fail(`message delivered to partition ${partition}, topic has ${NPART}`)
    const ks = key.toString('latin1')
    if (!keyPart.has(ks)) keyPart.set(ks, partition)
    if (keyPart.get(ks) !== partition) c.fail(`key ${ks} delivered to partitions ${keyPart.get(ks)} and ${partition}`)
    expected[partition].push([offset, key, value])
  })
  const empty = Object.keys(expected).filter(q => expected[q].length === 0)
  if (empty.length) c.fail(`keys did not spread: partitions ${empty} got no messages`)

  const { got, wm } = await c.consumeAll(k, admin, topic, data.length)
  for (let q = 0; q < NPART; q++) {
    const cons = (got[q] || []).map(m => [Number(m.offset), m.key, m.value])
    let d = c.firstDiff(expected[q], cons, `message (offset, key, value) of partition ${q}`)
    if (d) c.fail(d)
    const exp = expected[q].map((_, i) => i)
    d = c.firstDiff(exp, expected[q].map(e => e[0]), 'offset')
    if (d) c.fail(`partition ${q} offsets not contiguous from 0: ${d}`)
    if (!c.equal(wm[q], [0, expected[q].length])) c.fail(`partition ${q} (low, high) offsets: expected [0, ${expected[q].length}], got ${JSON.stringify(wm[q])}`)
  }
  const extra = Object.keys(got).filter(q => !(q in expected))
  if (extra.length) c.fail(`records from unexpected partitions ${extra}`)
  await c.waitPartitions(admin, topic, NPART)
  await admin.disconnect()
  c.passed(`${data.length} messages over ${NPART} partitions (${Object.values(expected).map(e => e.length).join(', ')}), exactly once, in order`)
})
